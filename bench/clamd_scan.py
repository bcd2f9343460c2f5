"""Scan time per MB through clamd's INSTREAM, as the process function streams a file (1 MiB
chunks), for a few kinds of content. Run under scripts/with-emulator.sh (it starts a clamd with the
project's test signatures and sets CLAMAV_ADDRESS). A production signature database (millions of
signatures) scans slower than the test one: run it against your own clamd to size yours.

usage: clamd_scan.py [--mib 64] [--runs 5]
"""

import argparse
import os
import random
import socket
import statistics
import struct
import time
import zipfile
import io


def scan(address, data):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(b"zINSTREAM\0")
    for i in range(0, len(data), 1 << 20):
        chunk = data[i:i + (1 << 20)]
        s.sendall(struct.pack(">I", len(chunk)) + chunk)
    s.sendall(b"\0\0\0\0")
    reply = b""
    while not reply.endswith(b"\0"):
        got = s.recv(4096)
        if not got:
            break
        reply += got
    s.close()
    return reply.rstrip(b"\0").decode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=48)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    address = os.environ["CLAMAV_ADDRESS"]
    size = a.mib << 20
    rng = random.Random(7)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    text = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.txt", text)
    kinds = {
        "random bytes (media-like)": rng.randbytes(size),
        "text": text,
        "zip of that text (deflated)": zipped.getvalue(),
    }
    for name, data in kinds.items():
        times = []
        for _ in range(a.runs):
            started = time.perf_counter()
            reply = scan(address, data)
            times.append(time.perf_counter() - started)
        mb = len(data) / 1e6
        med = statistics.median(times)
        print(f"{name}: {mb:.1f} MB, median {med * 1000:.0f} ms, {med * 1000 / mb:.1f} ms/MB "
              f"({mb / med:.0f} MB/s); {reply}")


if __name__ == "__main__":
    main()
