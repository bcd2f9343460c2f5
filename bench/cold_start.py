"""Cold start of a function: from process start to the first event handled, over the real
Lambda Runtime API protocol (served here on loopback) against the emulator. For `process`, the
event is an S3 event of a real photo that has a pending record; for `get` (an API function), the
sample API Gateway event of events/get/get.json for a pending record of its owner. Run under
scripts/with-emulator.sh (it sets AWS_ENDPOINT_URL).

usage: cold_start.py --bootstrap target/release/process --media-dev target/release/media-dev
                     [--function process|get] [--photo FILE] [--runs 5]
"""

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

BUCKET = TABLE = "media-local"


class Runtime(ThreadingHTTPServer):
    """A Lambda Runtime API that hands out one event and records when its answer comes."""

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.served = False
        self.first_next = None
        self.done = None
        self.answer = None
        self.finished = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        rt = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if rt.first_next is None:
            rt.first_next = time.perf_counter()
        if rt.served:
            rt.finished.wait(30)  # the function waits here for a second event
            self.send_error(410)
            return
        rt.served = True
        body = json.dumps(rt.event).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:000000000000:function:process")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        rt = self.server
        length = int(self.headers.get("Content-Length") or 0)
        rt.answer = (self.path.rsplit("/", 1)[-1], self.rfile.read(length).decode())
        rt.done = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        rt.finished.set()


def client(service):
    # with-emulator.sh sets AWS_ENDPOINT_URL and AWS_REGION; boto3 wants the region spelled out.
    return boto3.client(service, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def pending_upload(photo):
    """A pending record and its uploaded object, as presign and the browser would leave them."""
    now = datetime.datetime.now(datetime.timezone.utc)
    media_id = uuid.uuid7().hex if hasattr(uuid, "uuid7") else uuid.uuid4().hex
    key = f"uploads/{now:%Y/%m/%d}/{media_id}/original.jpg"
    with open(photo, "rb") as f:
        data = f.read()
    expires = now + datetime.timedelta(hours=1)
    client("dynamodb").put_item(TableName=TABLE, Item={
        "id": {"S": media_id}, "ownerId": {"S": "bench"}, "status": {"S": "pending"},
        "filename": {"S": os.path.basename(photo)}, "contentType": {"S": "image/jpeg"},
        "size": {"N": str(len(data))}, "objectKey": {"S": key},
        "createdAt": {"S": stamp(now)}, "updatedAt": {"S": stamp(now)},
        "expiresAt": {"S": stamp(expires)}, "gcQueue": {"S": "pending"},
        "gcDue": {"S": stamp(expires)},
    })
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="image/jpeg")
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": BUCKET},
                                "object": {"key": key, "size": len(data)}}}]}


SAMPLE_ID = "019aa7c1e2f37b8c9d0e1f2a3b4c5d6e"
SAMPLE_OWNER = "user-123"


def get_request():
    """A pending record of the sample owner and the sample GET event for it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    media_id = uuid.uuid4().hex
    expires = now + datetime.timedelta(hours=1)
    client("dynamodb").put_item(TableName=TABLE, Item={
        "id": {"S": media_id}, "ownerId": {"S": SAMPLE_OWNER}, "status": {"S": "pending"},
        "filename": {"S": "bench.jpg"}, "contentType": {"S": "image/jpeg"},
        "size": {"N": "1000"}, "objectKey": {"S": f"uploads/{now:%Y/%m/%d}/{media_id}/original.jpg"},
        "createdAt": {"S": stamp(now)}, "updatedAt": {"S": stamp(now)},
        "expiresAt": {"S": stamp(expires)}, "gcQueue": {"S": "pending"},
        "gcDue": {"S": stamp(expires)},
    })
    path = os.path.join(os.path.dirname(__file__), "..", "events", "get", "get.json")
    with open(path) as f:
        return json.loads(f.read().replace(SAMPLE_ID, media_id))


def one(bootstrap, function, photo):
    rt = Runtime(get_request() if function == "get" else pending_upload(photo))
    threading.Thread(target=rt.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{rt.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME=function, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024", AWS_LAMBDA_LOG_GROUP_NAME="bench",
               AWS_LAMBDA_LOG_STREAM_NAME="bench", MEDIA_BUCKET=BUCKET, MEDIA_TABLE=TABLE,
               S3_FORCE_PATH_STYLE="true", RUST_LOG="warn")
    started = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", "0", bootstrap], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not rt.finished.wait(60):
            raise SystemExit("the function never answered: " + proc.stderr.read().decode())
    finally:
        proc.kill()
        proc.wait()
        rt.shutdown()
    kind, body = rt.answer
    if kind != "response":
        raise SystemExit(f"the function failed: {body}")
    if function == "get" and '"statusCode":200' not in body.replace(" ", ""):
        raise SystemExit(f"the function did not answer 200: {body}")
    return (rt.first_next - started) * 1000, (rt.done - started) * 1000, body


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--media-dev", required=True)
    p.add_argument("--photo", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                   "shared", "corpus", "iphone_hdr_YES.jpg"))
    p.add_argument("--function", choices=["process", "get"], default="process")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    # Provisions the local bucket, table and queue (and runs an empty cleanup).
    subprocess.run([a.media_dev, "cleanup"], check=True, capture_output=True, timeout=120)
    inits, firsts = [], []
    for _ in range(a.runs):
        init, first, body = one(a.bootstrap, a.function, a.photo)
        inits.append(init)
        firsts.append(first)
    size = os.path.getsize(a.bootstrap)
    what = f"photo {os.path.basename(a.photo)}" if a.function == "process" else "GET of a record"
    print(f"{a.function} function, {a.runs} cold starts on one core, {what}: "
          f"init (start to first /next) median {statistics.median(inits):.1f} ms, "
          f"start to first event handled median {statistics.median(firsts):.1f} ms "
          f"(min {min(firsts):.1f}, max {max(firsts):.1f}); binary {size / 1e6:.1f} MB; "
          f"last answer {body[:300]}")


if __name__ == "__main__":
    main()
