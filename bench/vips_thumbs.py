"""The libvips anchor: the same three thumbnails as `media-dev process`, the way sharp and
libvips users make them. The 800 px one with shrink-on-load (`thumbnail_buffer`, which also
auto-rotates), the 400 and 150 ones from it, each encoded with no metadata.

usage: vips_thumbs.py FILE --repeat N --format jpeg|webp --quality Q [--method M] [--out DIR]
prints one JSON line: {"medianMs", "minMs", "peakRssKiB", "runs"}
"""

import argparse
import json
import os
import statistics
import time

import pyvips

SIZES = (("large", 800), ("medium", 400), ("small", 150))
# No metadata in the thumbnails: `keep` since libvips 8.15, `strip` before (Debian's 8.14, the
# libvips that reads HEIC here).
NO_METADATA = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}


def encode(image, fmt, quality, method):
    if fmt == "jpeg":
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])  # as media-dev does
        # libvips's defaults otherwise: 4:2:0 below Q 90, no optimised coding, baseline.
        return image.jpegsave_buffer(Q=quality, **NO_METADATA)
    return image.webpsave_buffer(Q=quality, effort=method, **NO_METADATA)


def thumbnails(data, fmt, quality, method):
    large = pyvips.Image.thumbnail_buffer(data, 800).copy_memory()
    out = {"large": encode(large, fmt, quality, method)}
    for name, size in SIZES[1:]:
        out[name] = encode(large.thumbnail_image(size), fmt, quality, method)
    return out


def peak_rss_kib():
    """VmHWM, as media-dev reports it. Not getrusage: Linux carries ru_maxrss across exec, so a
    child would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--format", choices=("jpeg", "webp"), default="jpeg")
    p.add_argument("--quality", type=int, default=85)
    p.add_argument("--method", type=int, default=4)
    p.add_argument("--out")
    a = p.parse_args()
    # One core, like the Rust side: no libvips worker threads, no operation cache between runs.
    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)
    with open(a.file, "rb") as f:
        data = f.read()
    runs = []
    out = None
    for _ in range(a.repeat):
        t = time.perf_counter()
        out = thumbnails(data, a.format, a.quality, a.method)
        runs.append((time.perf_counter() - t) * 1000)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        stem = os.path.splitext(os.path.basename(a.file))[0]
        ext = "jpg" if a.format == "jpeg" else "webp"
        for name, buf in out.items():
            with open(os.path.join(a.out, f"{stem}.{name}.{ext}"), "wb") as f:
                f.write(buf)
    print(json.dumps({
        "medianMs": round(statistics.median(runs), 2),
        "minMs": round(min(runs), 2),
        "runs": len(runs),
        "peakRssKiB": peak_rss_kib(),
    }))


if __name__ == "__main__":
    main()
