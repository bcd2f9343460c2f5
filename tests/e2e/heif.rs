//! iPhone and Android photos (HEIC, AVIF) through the whole stack: presigned, uploaded, decoded
//! by the process function, upright WebP thumbnails, EXIF with camera and GPS.

use e2e::{TestResult, spawn_app, token};
use serde_json::json;

fn photo(name: &str) -> TestResult<Vec<u8>> {
    let dir = if name.ends_with(".avif") {
        "avif"
    } else {
        "heif"
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name);
    Ok(std::fs::read(path)?)
}

#[tokio::test]
async fn phone_photos_become_ready_upright_with_their_exif() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    for (file, (width, height), make) in [
        ("pillow-pug-iphone13.heic", (4032, 3024), "Apple"),
        ("pillow-arrow-iphone8-rotated.heic", (3024, 4032), "Apple"),
        ("pillow-xiaomi.heic", (2592, 1944), "Xiaomi"),
    ] {
        let bytes = photo(file)?;
        let presigned = t.upload(&alice, file, "image/heic", &bytes).await?;
        let id = presigned["mediaId"].as_str().ok_or("no id")?;
        let media = t.wait_processed(&alice, id).await?;
        assert_eq!(media["status"], "ready", "{file}: {media}");
        let meta = &media["metadata"];
        assert_eq!(meta["format"], "heic", "{file}");
        assert_eq!(
            (&meta["width"], &meta["height"]),
            (&json!(width), &json!(height)),
            "{file}"
        );
        assert_eq!(meta["exif"]["make"], make, "{file}");
        // Upright: each thumbnail has the displayed shape.
        let url = media["thumbnails"]["medium"]
            .as_str()
            .ok_or("no thumbnail")?;
        let (status, thumb) = t.download(url).await?;
        assert_eq!(status, 200);
        let thumb = image::load_from_memory(&thumb)?;
        assert_eq!(thumb.width() > thumb.height(), width > height, "{file}");
        assert_eq!(thumb.width().max(thumb.height()), 400, "{file}");
    }
    // A phone photo declared as a JPEG is refused, and its object deleted.
    let bytes = photo("pillow-xiaomi.heic")?;
    let presigned = t.upload(&alice, "x.jpg", "image/jpeg", &bytes).await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["rejection"]["code"], "type_mismatch", "{media}");
    Ok(())
}

#[tokio::test]
async fn avif_images_become_ready_upright_with_their_alpha_exif_and_frames() -> TestResult {
    let t = spawn_app(&[]).await?;
    let alice = token("alice");
    for (file, (width, height), frames) in [
        ("libavif-paris-icc-exif.avif", (403, 302), None),
        ("libavif-abc-alpha-irot.avif", (256, 512), None),
        ("libavif-sofa-grid.avif", (1024, 770), None),
        ("libavif-animated-alpha-exif.avif", (150, 150), Some(5)),
    ] {
        let bytes = photo(file)?;
        let presigned = t.upload(&alice, file, "image/avif", &bytes).await?;
        let id = presigned["mediaId"].as_str().ok_or("no id")?;
        let media = t.wait_processed(&alice, id).await?;
        assert_eq!(media["status"], "ready", "{file}: {media}");
        let meta = &media["metadata"];
        assert_eq!(meta["format"], "avif", "{file}");
        assert_eq!(
            (&meta["width"], &meta["height"]),
            (&json!(width), &json!(height)),
            "{file}"
        );
        assert_eq!(meta["frames"], json!(frames), "{file}");
        let url = media["thumbnails"]["small"]
            .as_str()
            .ok_or("no thumbnail")?;
        let (status, thumb) = t.download(url).await?;
        assert_eq!(status, 200);
        let thumb = image::load_from_memory(&thumb)?;
        assert_eq!(thumb.width() >= thumb.height(), width >= height, "{file}");
        if file.contains("alpha") {
            assert!(thumb.color().has_alpha(), "{file}: alpha kept");
        }
    }
    // The Pixel 4a's EXIF comes through the Exif item.
    let bytes = photo("libavif-paris-icc-exif.avif")?;
    let presigned = t.upload(&alice, "paris.avif", "image/avif", &bytes).await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["metadata"]["exif"]["model"], "Pixel 4a", "{media}");
    // An AVIF declared as a HEIC is refused: same container, another coding.
    let presigned = t.upload(&alice, "x.heic", "image/heic", &bytes).await?;
    let id = presigned["mediaId"].as_str().ok_or("no id")?;
    let media = t.wait_processed(&alice, id).await?;
    assert_eq!(media["rejection"]["code"], "type_mismatch", "{media}");
    Ok(())
}
