"""The process function on large files: peak memory and time to `ready` for files of 100 MB,
1 GB and 5 GB, with the real `bootstrap` over the Lambda Runtime API protocol (as
bench/cold_start.py runs it), DynamoDB on the emulator and S3 on the emulator (`--store moto`) or on
s3s-fs (`--store s3s-fs`, a file-backed S3: moto holds a completed multipart upload in memory
twice, which 5 GB does not survive). Each file is a real MP4 (mp4parse-rust's `white.mp4`)
followed by a `free` box that pads it to the size: a valid movie whose structure is a few
kilobytes, so what is measured is how the function treats the bytes it must not hold.
`--kind zip` and `--kind csv` measure documents over the in-memory bound instead, which are copied
to a scratch file and read through a mapping: a ZIP of a few real entries and one stored entry
that fills it (its central directory is read, the big entry is not), and a CSV whose every byte
is validated (the worst case: the whole mapping is paged in). Documents run with
MAX_DOCUMENT_SIZE=5 GiB and without the malware scan (clamd takes a document whole, at most
CLAMAV_STREAM_MAX_BYTES). Peak RSS is the kernel's high-water mark, which counts the mapped file's
pages; "heap" is the largest anonymous RSS seen (sampled every 10 ms), what the function's
memory limit is really about: the mapped pages are cache the kernel can drop. Run under
scripts/with-emulator.sh (it sets AWS_ENDPOINT_URL).

usage: large_files.py --bootstrap target/release/process --media-dev target/release/media-dev
                      [--sizes 100M,1G,5G] [--store moto|s3s-fs] [--s3s-fs .tools/bin/s3s-fs]
                      [--kind video|zip|csv]
"""

import argparse
import datetime
import hashlib
import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile

import boto3
from boto3.s3.transfer import TransferConfig

from cold_start import Runtime, client, stamp

BUCKET = TABLE = "media-local"
HERE = os.path.dirname(os.path.abspath(__file__))
MOVIE = os.path.join(HERE, "..", "tests", "av", "mp4parse-white.mp4")
UNITS = {"K": 1000, "M": 1000 ** 2, "G": 1000 ** 3}


def size_of(text):
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def padded_movie(path, size):
    """The real movie, then one `free` box up to `size` bytes (sparse on disk)."""
    with open(MOVIE, "rb") as f:
        movie = f.read()
    pad = size - len(movie)
    with open(path, "wb") as f:
        f.write(movie)
        if pad > 0xFFFFFFFF:
            f.write(struct.pack(">I4sQ", 1, b"free", pad))
        else:
            f.write(struct.pack(">I4s", pad, b"free"))
        f.truncate(size)


def padded_zip(path, size):
    """A ZIP of a few real text entries and one stored (uncompressed) entry up to `size` bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in ("README.txt", "LICENSE.txt", "docs/index.txt"):
            z.writestr(name, f"{name}: a real entry of the bench's archive\n" * 50)
        info = zipfile.ZipInfo("assets/payload.bin")
        info.compress_type = zipfile.ZIP_STORED
        fill = max(size - 4096, 0)
        with z.open(info, "w", force_zip64=fill > 0xFFFFFFF0) as f:
            block = bytes(range(256)) * 4096
            while fill > 0:
                f.write(block[:fill])
                fill -= min(fill, len(block))


def padded_csv(path, size):
    """A CSV of three columns: a header, then whole rows up to `size` bytes."""
    row = b"1234567,a product name of some length,19.99\n"
    block = row * ((1 << 20) // len(row))
    with open(path, "wb") as f:
        written = f.write(b"id,name,price\n")
        while written < size:
            rows = min(len(block), size - written) // len(row) * len(row)
            if rows == 0:
                break
            written += f.write(block[:rows])


KINDS = {
    # kind: (file name, content type, maker)
    "video": ("movie.mp4", "video/mp4", padded_movie),
    "zip": ("bundle.zip", "application/zip", padded_zip),
    "csv": ("table.csv", "text/csv", padded_csv),
}


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            h.update(chunk)
    return h.hexdigest()


def s3_client(endpoint):
    return boto3.client("s3", region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        endpoint_url=endpoint)


def start_s3s_fs(binary):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    root = tempfile.mkdtemp(prefix="s3s-fs-", dir=os.path.join(HERE, "..", ".local"))
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                             "--access-key", os.environ["AWS_ACCESS_KEY_ID"],
                             "--secret-key", os.environ["AWS_SECRET_ACCESS_KEY"], root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}", root


def pending_upload(s3, path, size, filename, content_type):
    now = datetime.datetime.now(datetime.timezone.utc)
    media_id = uuid.uuid4().hex
    key = f"uploads/{now:%Y/%m/%d}/{media_id}/original.{filename.rsplit('.', 1)[1]}"
    expires = now + datetime.timedelta(hours=24)
    client("dynamodb").put_item(TableName=TABLE, Item={
        "id": {"S": media_id}, "ownerId": {"S": "bench"}, "status": {"S": "pending"},
        "filename": {"S": filename}, "contentType": {"S": content_type},
        "size": {"N": str(size)}, "objectKey": {"S": key},
        "createdAt": {"S": stamp(now)}, "updatedAt": {"S": stamp(now)},
        "expiresAt": {"S": stamp(expires)}, "gcQueue": {"S": "pending"},
        "gcDue": {"S": stamp(expires)},
    })
    # In 64 MiB parts, as a browser would send a large file.
    s3.upload_file(path, BUCKET, key, ExtraArgs={"ContentType": content_type},
                   Config=TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20,
                                         max_concurrency=4))
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
                          "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": size}}}]}
    return media_id, event


def status_kib(pid, field):
    """A kibibyte figure of /proc/<pid>/status (`VmHWM`, `RssAnon`), 0 if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def run(bootstrap, event, s3_endpoint, extra_env):
    rt = Runtime(event)
    threading.Thread(target=rt.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{rt.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="process", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024", AWS_LAMBDA_LOG_GROUP_NAME="bench",
               AWS_LAMBDA_LOG_STREAM_NAME="bench", MEDIA_BUCKET=BUCKET, MEDIA_TABLE=TABLE,
               S3_FORCE_PATH_STYLE="true", RUST_LOG="info")
    if s3_endpoint:
        env["AWS_ENDPOINT_URL_S3"] = s3_endpoint
    env.update(extra_env)
    started = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", "0", bootstrap], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    logs = []
    threading.Thread(target=lambda: logs.extend(proc.stdout), daemon=True).start()
    heap = [0]

    def sample():
        while not rt.finished.is_set():
            try:
                heap[0] = max(heap[0], status_kib(proc.pid, "RssAnon"))
            except OSError:
                return
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    try:
        if not rt.finished.wait(1800):
            raise SystemExit("the function never answered")
        peak = status_kib(proc.pid, "VmHWM")
    finally:
        proc.kill()
        proc.wait()
        rt.shutdown()
    kind, body = rt.answer
    if kind != "response":
        raise SystemExit(f"the function failed: {body}")
    if os.environ.get("BENCH_VERBOSE"):
        print(body, b"".join(logs).decode(errors="replace")[-3000:])
    marks = ("read a large file", "read a large document through a scratch file")
    line = next((l.decode() for l in logs if any(m.encode() in l for m in marks)), "")
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    for m in marks:
        line = line.split(m, 1)[-1]
    fields = " ".join(f for f in line.split() if not f.startswith(("key=", "media_id=")))
    return (rt.done - started), peak, heap[0], fields


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--media-dev", required=True)
    p.add_argument("--sizes", default="100M,1G")
    p.add_argument("--store", choices=["moto", "s3s-fs"], default="moto")
    p.add_argument("--s3s-fs", default=os.path.join(HERE, "..", ".tools", "bin", "s3s-fs"))
    p.add_argument("--kind", choices=sorted(KINDS), default="video")
    a = p.parse_args()
    filename, content_type, make = KINDS[a.kind]
    extra_env = {} if a.kind == "video" else {
        "MAX_DOCUMENT_SIZE": str(5 << 30), "MALWARE_SCANNER": "none"}
    subprocess.run([a.media_dev, "cleanup"], check=True, capture_output=True, timeout=120)
    server = None
    endpoint = None
    if a.store == "s3s-fs":
        server, endpoint, root = start_s3s_fs(a.s3s_fs)
    s3 = s3_client(endpoint)
    if endpoint:
        s3.create_bucket(Bucket=BUCKET)
    try:
        for text in a.sizes.split(","):
            size = size_of(text)
            with tempfile.TemporaryDirectory(dir=os.path.join(HERE, "..", ".local")) as tmp:
                path = os.path.join(tmp, filename)
                make(path, size)
                size = os.path.getsize(path)
                expected = sha256_of(path)
                media_id, event = pending_upload(s3, path, size, filename, content_type)
                os.remove(path)
            seconds, peak, heap, line = run(a.bootstrap, event, endpoint, extra_env)
            item = client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": media_id}})["Item"]
            status = item["status"]["S"]
            ok = expected in item.get("metadata", {}).get("S", "")
            print(f"{a.kind} {text} ({size} bytes) on {a.store}: {status}, sha256 {'matches' if ok else 'WRONG'}; "
                  f"start to answer {seconds:.2f} s; peak RSS {peak / 1024:.1f} MiB, heap {heap / 1024:.1f} MiB")
            print(f"    {line[:400]}")
            for k in list(s3.list_objects_v2(Bucket=BUCKET, Prefix="derivatives/").get("Contents", [])):
                s3.delete_object(Bucket=BUCKET, Key=k["Key"])
    finally:
        if server:
            server.kill()
            server.wait()
            subprocess.run(["rm", "-rf", root], check=False)


if __name__ == "__main__":
    main()
