"""Our pipeline against the libvips anchor, on the corpus's large photos (and PNG and WebP
renderings of one of them, 12 MP AVIF renderings of another at 8 and 10 bits, and libavif's
kodim03 photo from tests/avif), one core each, warm: each side runs the three thumbnails
`--repeat` times in one process, and the sides alternate for `--rounds` rounds. Prints
per-file medians, the time and memory ratios, and the SSIM of each side's 400 px thumbnail
against a Lanczos3 reference made from a full decode.

usage: compare.py --media-dev PATH [--rounds 3] [--repeat 20] [--corpus DIR] [--only avif,png]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import pyvips

HERE = os.path.dirname(os.path.abspath(__file__))
JPEGS = [
    "87_OSError.jpg",
    "2569067123_aca715a2ee_o.jpg",
    "iphone_hdr_YES.jpg",
    "gain-map.jpg",
    "HMD_Nokia_8.3_5G.jpg",
]
OTHERS = ["4.webp", "5_webp_a.webp", "lossless_color_transform.webp", "basn2c16.png", "tbrn2c08.png"]
# PNG and WebP renderings of this corpus photo stand in for photo-sized uploads of those types.
RENDERED_FROM = "2569067123_aca715a2ee_o.jpg"
# 12 MP AVIFs (an iPhone's 4032x3024) are rendered from this phone photo: libvips's AV1 encoder
# (aom, in pyvips-binary), 4:2:0 at 8 and at 10 bits.
AVIF_FROM = "iphone_hdr_YES.jpg"
AVIF_FILES = [os.path.join(HERE, "..", "tests", "avif", "libavif-kodim03-8bit.avif")]
# Phone HEICs (12 MP iPhone grid, 5 MP Xiaomi). pyvips-binary's libheif has no HEVC decoder, so
# they are timed only against a libvips that has one (Debian's libvips42 with libheif1: run this
# script with a venv's pyvips, without pyvips-binary, on such a system); otherwise skipped.
HEIC_FILES = [os.path.join(HERE, "..", "tests", "heif", f)
              for f in ("pillow-pug-iphone13.heic", "pillow-xiaomi.heic")]
ONE_CORE = ["taskset", "-c", "0"]


def ours(media_dev, path, fmt, quality, method, repeat, out):
    env = dict(os.environ, THUMBNAIL_FORMAT=fmt, THUMBNAIL_QUALITY=str(quality),
               WEBP_METHOD=str(method), MAX_FILE_SIZE=str(64 << 20), RUST_LOG="warn")
    r = subprocess.run(ONE_CORE + [media_dev, "process", path, "--repeat", str(repeat),
                                   "--out", out], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        sys.exit(f"media-dev failed on {path}: {r.stderr or r.stdout}")
    t = json.loads(r.stdout)["timing"]
    return t["medianMs"], t["peakRssKiB"]


def vips(path, fmt, quality, method, repeat, out):
    env = dict(os.environ, VIPS_CONCURRENCY="1")
    r = subprocess.run(ONE_CORE + [sys.executable, os.path.join(HERE, "vips_thumbs.py"), path,
                                   "--repeat", str(repeat), "--format", fmt,
                                   "--quality", str(quality), "--method", str(method),
                                   "--out", out], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        sys.exit(f"vips failed on {path}: {r.stderr}")
    t = json.loads(r.stdout)
    return t["medianMs"], t["peakRssKiB"]


def luma(image):
    image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    a = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                   shape=[image.height, image.width, image.bands]).astype(np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def blur(x, sigma=1.5, radius=5):
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    x = np.apply_along_axis(lambda r: np.convolve(r, k, mode="valid"), 1, x)
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, x)


def ssim(a, b):
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) on luma."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def reference_ssim(original, thumbnail_path):
    """SSIM of a thumbnail against the full decode, auto-rotated, resized straight to the
    thumbnail's own size with Lanczos3 (gap=0: no box pre-shrink)."""
    thumb = pyvips.Image.new_from_file(thumbnail_path)
    full = pyvips.Image.new_from_file(original).autorot()
    ref = full.resize(thumb.width / full.width, vscale=thumb.height / full.height,
                      kernel="lanczos3", gap=0)
    return ssim(luma(ref), luma(thumb))


def render_inputs(corpus, work):
    src = pyvips.Image.new_from_file(os.path.join(corpus, RENDERED_FROM))
    png = os.path.join(work, "photo-6mp.png")
    # libvips writes unfiltered rows by default; libpng, Pillow and browsers filter adaptively
    # (about half the size for a photo, and a different decode cost), so both are timed.
    filtered = os.path.join(work, "photo-6mp-filtered.png")
    webp = os.path.join(work, "photo-6mp.webp")
    src.pngsave(png, compression=6, keep="none")
    src.pngsave(filtered, compression=6, keep="none", filter="all")
    src.webpsave(webp, Q=85, keep="none")
    phone = pyvips.Image.new_from_file(os.path.join(corpus, AVIF_FROM))
    phone = phone.resize(4032 / phone.width)
    avif8 = os.path.join(work, "photo-12mp-8bit.avif")
    avif10 = os.path.join(work, "photo-12mp-10bit.avif")
    phone.heifsave(avif8, compression="av1", Q=70, effort=2, subsample_mode="on", keep="none")
    phone.heifsave(avif10, compression="av1", Q=70, effort=2, bitdepth=10, keep="none")
    return [png, filtered, webp, avif8, avif10] + AVIF_FILES


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--media-dev", required=True)
    p.add_argument("--corpus", default=os.environ.get(
        "MEDIA_CORPUS_DIR", os.path.join(HERE, "..", "..", "shared", "corpus")))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--webp-method", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated extensions to time (default all)")
    a = p.parse_args()
    only = {e.strip().lower() for e in a.only.split(",") if e.strip()}

    work = tempfile.mkdtemp(prefix="media-bench-")
    rendered = render_inputs(a.corpus, work) if not only or only & {"png", "webp", "avif"} else []
    files = [os.path.join(a.corpus, f) for f in JPEGS + OTHERS] + rendered
    readable = []
    for f in files + HEIC_FILES:
        try:
            pyvips.Image.new_from_file(f)
            readable.append(f)
        except pyvips.Error:
            print(f"skipped {os.path.basename(f)}: this libvips cannot read it")
    files = readable
    if only:
        files = [f for f in files if f.rsplit(".", 1)[-1].lower() in only]
    setups = [("jpeg", 85), ("webp", 80)]
    print(f"one core (taskset -c 0), {a.repeat} runs per process, {a.rounds} alternating rounds; "
          f"libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}; "
          f"WebP method/effort {a.webp_method} on both sides")
    rows = []
    for fmt, quality in setups:
        print(f"\n== {fmt} thumbnails, quality {quality} ==")
        print(f"{'file':34} {'MP':>5} {'ours ms':>8} {'vips ms':>8} {'ratio':>6} "
              f"{'ours MiB':>8} {'vips MiB':>8} {'SSIM ours':>9} {'SSIM vips':>9}")
        for path in files:
            name = os.path.basename(path)
            head = pyvips.Image.new_from_file(path)
            mp = head.width * head.height / 1e6
            o_ms, o_kib, v_ms, v_kib = [], [], [], []
            out_o = os.path.join(work, "ours", fmt)
            out_v = os.path.join(work, "vips", fmt)
            for r in range(a.rounds):
                sides = [("o", ours), ("v", vips)]
                if r % 2:
                    sides.reverse()
                for side, fn in sides:
                    if side == "o":
                        ms, kib = fn(a.media_dev, path, fmt, quality, a.webp_method, a.repeat, out_o)
                        o_ms.append(ms); o_kib.append(kib)
                    else:
                        ms, kib = fn(path, fmt, quality, a.webp_method, a.repeat, out_v)
                        v_ms.append(ms); v_kib.append(kib)
            stem = os.path.splitext(name)[0]
            ext = "jpg" if fmt == "jpeg" else "webp"
            s_o = reference_ssim(path, os.path.join(out_o, f"{stem}.medium.{ext}"))
            s_v = reference_ssim(path, os.path.join(out_v, f"{stem}.medium.{ext}"))
            om, vm = statistics.median(o_ms), statistics.median(v_ms)
            row = dict(fmt=fmt, file=name, kind=name.rsplit(".", 1)[-1], mp=mp, ours=om, vips=vm,
                       ratio=om / vm, ours_mib=max(o_kib) / 1024, vips_mib=max(v_kib) / 1024,
                       ssim_ours=s_o, ssim_vips=s_v)
            rows.append(row)
            print(f"{name:34} {mp:5.1f} {om:8.1f} {vm:8.1f} {om / vm:6.2f} "
                  f"{row['ours_mib']:8.1f} {row['vips_mib']:8.1f} {s_o:9.4f} {s_v:9.4f}")

    print("\n== summary: median (worst) of per-file time ratios, worst memory ratio, worst SSIM gap ==")
    groups = (
        ("JPEG inputs", lambda r: r["kind"] == "jpg"),
        ("PNG inputs (photo, 6 MP)", lambda r: r["kind"] == "png" and r["mp"] >= 0.5),
        ("WebP inputs (>= 0.5 MP)", lambda r: r["kind"] == "webp" and r["mp"] >= 0.5),
        ("small PNG/WebP (< 0.5 MP)",
         lambda r: r["kind"] in ("png", "webp") and r["mp"] < 0.5),
        ("AVIF inputs", lambda r: r["kind"] == "avif"),
        ("HEIC inputs", lambda r: r["kind"] == "heic"),
    )
    for fmt, _ in setups:
        for label, pick in groups:
            sel = [r for r in rows if r["fmt"] == fmt and pick(r)]
            if not sel:
                continue
            ratio = statistics.median(r["ratio"] for r in sel)
            mem = max(r["ours_mib"] / r["vips_mib"] for r in sel)
            # Transparent and 16-bit inputs are left out of the SSIM gap: flattening and
            # depth reduction differ by design, not by resampling quality.
            opaque = [r for r in sel if r["mp"] >= 0.5]
            gaps = [r["ssim_vips"] - r["ssim_ours"] for r in opaque]
            gap = f"{max(gaps):+.4f}" if gaps else "n/a (transparent or 16-bit inputs)"
            print(f"{fmt:4} thumbnails, {label:26}: time {ratio:.2f}x libvips "
                  f"(worst {max(r['ratio'] for r in sel):.2f}x), memory at most {mem:.2f}x, "
                  f"SSIM gap {gap}")


if __name__ == "__main__":
    main()
