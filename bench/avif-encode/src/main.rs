//! An 800 px wide thumbnail of a photo encoded as AVIF by rav1e (speeds 10, 9, 8, 6) and as WebP
//! by libwebp (methods 2 and 4), one thread each, median of 5; prints time and size.

use std::time::Instant;

fn median_of_5(mut run: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = Instant::now();
        size = run();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[2], size)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: avif-encode-bench PHOTO")?;
    let photo = image::open(&path)?.to_rgba8();
    let height = 800 * photo.height() / photo.width();
    let thumb = image::imageops::resize(&photo, 800, height, image::imageops::FilterType::Triangle);
    let (w, h) = (thumb.width() as usize, thumb.height() as usize);
    let rgba: Vec<rgb::RGBA8> = thumb
        .pixels()
        .map(|p| rgb::RGBA8::new(p[0], p[1], p[2], p[3]))
        .collect();
    let rgb: Vec<u8> = thumb.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect();
    println!("{path}: {w}x{h}");
    for speed in [10, 9, 8, 6] {
        let (ms, size) = median_of_5(|| {
            ravif::Encoder::new()
                .with_quality(70.0)
                .with_speed(speed)
                .with_num_threads(Some(1))
                .encode_rgba(ravif::Img::new(&rgba[..], w, h))
                .map(|e| e.avif_file.len())
                .unwrap_or(0)
        });
        println!("  AVIF rav1e speed {speed:2} q70: {ms:7.1} ms {size:7} B");
    }
    for method in [2, 4] {
        let (ms, size) = median_of_5(|| {
            let Ok(mut config) = webp::WebPConfig::new() else {
                return 0;
            };
            config.quality = 80.0;
            config.method = method;
            webp::Encoder::new(&rgb, webp::PixelLayout::Rgb, w as u32, h as u32)
                .encode_advanced(&config)
                .map(|m| m.len())
                .unwrap_or(0)
        });
        println!("  WebP libwebp method {method} q80: {ms:7.1} ms {size:7} B");
    }
    Ok(())
}
