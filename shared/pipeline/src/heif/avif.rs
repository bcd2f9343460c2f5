//! AVIF images: AV1-coded items in a HEIF container. heifer's parser reads the container
//! (items, properties, references, grids) and its colour code converts the planes; rav1d decodes
//! the AV1 pictures ([`super::av1`]). Coded items, grids of them, `iden` items, alpha planes
//! (`auxl` items of the alpha type), `clap`, `irot` and `imir` are read, with the same limits as
//! the other images: every picture is bounded by the pixel limit before the decoder allocates it,
//! and a grid is assembled in place in one canvas of its declared size.

use heifer::Image;
use heifer::color::{ColorParams, frame_to_rgba_into, frame_to_rgba_sized};
use heifer::heifer_isobmff::boxes::{ColorInfo, Property};
use heifer::heifer_isobmff::{HeifFile, ItemId};

use super::av1::{self, Picture};

/// Deepest chain of derived items (`iden` of a grid, ...).
const MAX_DEPTH: u32 = 4;

/// The primary image of an AVIF file, as 8-bit RGBA (the alpha plane kept when there is one),
/// with its transforms applied and its colour converted to sRGB.
pub(super) fn decode(file: &HeifFile<'_>, max_pixels: u64) -> Result<Image<u8>, String> {
    let primary = file.primary_id;
    let (mut image, cicp) = item(file, primary, 0, max_pixels)?;
    srgb(file, primary, &mut image, cicp);
    Ok(image)
}

/// Decodes a first frame of an image sequence (an animated AVIF without a still image).
pub(super) fn decode_frame(obus: &[u8], max_pixels: u64) -> Result<Image<u8>, String> {
    let picture = av1::decode(obus, max_pixels)?;
    let params = ColorParams::from_frame(&picture.frame);
    let mut image: Image<u8> = frame_to_rgba_sized(
        &picture.frame,
        params,
        picture.frame.widths[0],
        picture.frame.heights[0],
    );
    crate::color::cicp_to_srgb(&mut image.data, 4, picture.primaries, picture.transfer);
    Ok(image)
}

/// The primaries and transfer of a decoded picture, for the sRGB conversion.
type Cicp = Option<(u8, u8)>;

fn item(
    file: &HeifFile<'_>,
    id: ItemId,
    depth: u32,
    max_pixels: u64,
) -> Result<(Image<u8>, Cicp), String> {
    if depth > MAX_DEPTH {
        return Err("derived images nested too deeply".into());
    }
    let kind = file.item(id).map_err(|e| e.to_string())?.item_type.0;
    let (mut image, cicp) = match &kind {
        b"av01" => coded(file, id, max_pixels)?,
        b"grid" => grid(file, id, max_pixels)?,
        b"iden" => match file.referenced_items(id, b"dimg") {
            [source] => item(file, *source, depth + 1, max_pixels)?,
            _ => return Err("an iden item without exactly one source".into()),
        },
        other => {
            return Err(format!(
                "image items of type {} are not read",
                String::from_utf8_lossy(other)
            ));
        }
    };
    // The alpha plane of a derived image (a coded image attaches its own).
    if kind != *b"av01" {
        for aux in file.referencing_items(id, b"auxl") {
            if is_alpha(file, aux)? {
                let (alpha, _) = item(file, aux, depth + 1, max_pixels)?;
                attach_alpha(
                    &mut image,
                    |x, y| alpha.data[(y * alpha.width as usize + x) * 4],
                    (alpha.width, alpha.height),
                )?;
                break;
            }
        }
    }
    Ok((transform(file, id, image)?, cicp))
}

/// A coded (`av01`) item, with its alpha plane when it has one.
fn coded(file: &HeifFile<'_>, id: ItemId, max_pixels: u64) -> Result<(Image<u8>, Cicp), String> {
    let picture = picture(file, id, max_pixels)?;
    // `ispe` is the image's size; the coded picture may be larger (it is padded), never smaller.
    let (width, height) = file
        .image_size(id)
        .map_err(|e| e.to_string())?
        .unwrap_or((picture.frame.widths[0], picture.frame.heights[0]));
    let mut image = frame_to_rgba_sized(&picture.frame, params(file, id, &picture)?, width, height);
    let cicp = Some((picture.primaries, picture.transfer));
    drop(picture);
    for aux in file.referencing_items(id, b"auxl") {
        if !is_alpha(file, aux)? {
            continue;
        }
        let alpha = self::picture(file, aux, max_pixels)?;
        let frame = &alpha.frame;
        // The alpha plane is the auxiliary picture's luma, in its own range.
        let full = params(file, aux, &alpha)?.full_range;
        let top = f32::from(((1u32 << frame.bit_depth[0]) - 1) as u16);
        let (offset, span) = if full {
            (0.0, top)
        } else {
            let scale = f32::from(1u16 << (frame.bit_depth[0] - 8));
            (16.0 * scale, 219.0 * scale)
        };
        let stride = frame.widths[0] as usize;
        attach_alpha(
            &mut image,
            |x, y| {
                let a = f32::from(frame.planes[0][y * stride + x]);
                ((a - offset) / span * 255.0).round().clamp(0.0, 255.0) as u8
            },
            (frame.widths[0], frame.heights[0]),
        )?;
        break;
    }
    Ok((image, cicp))
}

/// Decodes the AV1 picture of a coded item.
fn picture(file: &HeifFile<'_>, id: ItemId, max_pixels: u64) -> Result<Picture, String> {
    let item = file.item(id).map_err(|e| e.to_string())?;
    if item.item_type.0 != *b"av01" {
        return Err("a tile or plane is not AV1-coded".into());
    }
    let data = file.item_data(id).map_err(|e| e.to_string())?;
    av1::decode(&data, max_pixels)
}

/// How an item's samples are read: its `colr` (nclx) property if present, otherwise the AV1
/// sequence header's (AVIF defers to the coded stream).
fn params(file: &HeifFile<'_>, id: ItemId, picture: &Picture) -> Result<ColorParams, String> {
    Ok(properties(file, id)?
        .find_map(|p| match p {
            Property::Color(ColorInfo::Nclx {
                matrix, full_range, ..
            }) => Some(ColorParams {
                matrix: *matrix,
                full_range: *full_range,
            }),
            _ => None,
        })
        .unwrap_or_else(|| ColorParams::from_frame(&picture.frame)))
}

fn properties<'f>(
    file: &'f HeifFile<'_>,
    id: ItemId,
) -> Result<impl Iterator<Item = &'f Property>, String> {
    file.item_properties(id).map_err(|e| e.to_string())
}

/// Whether an item is an auxiliary image of the alpha type.
fn is_alpha(file: &HeifFile<'_>, id: ItemId) -> Result<bool, String> {
    Ok(properties(file, id)?.any(|p| {
        matches!(p, Property::AuxiliaryType(t)
            if t == "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha" || t == "urn:mpeg:hevc:2015:auxid:1")
    }))
}

/// Sets the alpha channel of `image` from `alpha(x, y)`, a plane of at least the image's size.
fn attach_alpha(
    image: &mut Image<u8>,
    alpha: impl Fn(usize, usize) -> u8,
    (width, height): (u32, u32),
) -> Result<(), String> {
    if width < image.width || height < image.height {
        return Err("the alpha plane is smaller than the image".into());
    }
    let w = image.width as usize;
    for (i, pixel) in image.data.chunks_exact_mut(4).enumerate() {
        pixel[3] = alpha(i % w, i / w);
    }
    image.has_alpha = true;
    Ok(())
}

/// A grid: its tiles (coded items, all of one size) decoded one at a time and converted in place
/// into a canvas of the grid's output size, so at most one tile's planes exist beside it.
fn grid(file: &HeifFile<'_>, id: ItemId, max_pixels: u64) -> Result<(Image<u8>, Cicp), String> {
    let grid = file.grid(id).map_err(|e| e.to_string())?;
    let tiles = file.referenced_items(id, b"dimg");
    let (rows, columns) = (usize::from(grid.rows), usize::from(grid.columns));
    if tiles.is_empty() || tiles.len() != rows * columns {
        return Err("the grid's tile count does not match its rows and columns".into());
    }
    let (width, height) = (grid.output_width, grid.output_height);
    if width == 0 || height == 0 || u64::from(width) * u64::from(height) > max_pixels {
        return Err(format!("a {width}x{height} grid"));
    }
    let (tile_w, tile_h) = file
        .image_size(tiles[0])
        .map_err(|e| e.to_string())?
        .ok_or("a grid tile has no size (ispe)")?;
    // The tiles must cover the output, and no whole row or column of them may lie outside it.
    let covers = |tile: u32, count: usize, output: u32| {
        let total = u64::from(tile) * count as u64;
        tile > 0 && total >= u64::from(output) && total - u64::from(tile) < u64::from(output)
    };
    if !covers(tile_w, columns, width) || !covers(tile_h, rows, height) {
        return Err(format!(
            "{columns}x{rows} tiles of {tile_w}x{tile_h} do not make a {width}x{height} image"
        ));
    }
    let mut canvas = Image::filled_samples(width, height, 8, [0u8; 4]);
    let mut cicp = None;
    let stride = width as usize * 4;
    for (index, &tile) in tiles.iter().enumerate() {
        if file.image_size(tile).map_err(|e| e.to_string())? != Some((tile_w, tile_h)) {
            return Err("the grid's tiles differ in size".into());
        }
        let picture = picture(file, tile, max_pixels)?;
        let params = params(file, tile, &picture)?;
        cicp = cicp.or(Some((picture.primaries, picture.transfer)));
        let x0 = (index % columns) * tile_w as usize;
        let y0 = (index / columns) * tile_h as usize;
        let w = (tile_w as usize).min(width as usize - x0);
        let h = (tile_h as usize).min(height as usize - y0);
        let mut out: Vec<&mut [u8]> = canvas
            .data
            .chunks_exact_mut(stride)
            .skip(y0)
            .take(h)
            .map(|row| &mut row[x0 * 4..(x0 + w) * 4])
            .collect();
        frame_to_rgba_into(&picture.frame, params, &mut out, w, h);
    }
    Ok((canvas, cicp))
}

/// The transformative properties of an item, in their order (`clap`, `irot`, `imir`).
fn transform(file: &HeifFile<'_>, id: ItemId, mut image: Image<u8>) -> Result<Image<u8>, String> {
    for property in properties(file, id)? {
        image = match *property {
            Property::CleanAperture {
                width,
                height,
                horiz_offset,
                vert_offset,
            } => {
                if width.1 == 0 || height.1 == 0 || horiz_offset.1 == 0 || vert_offset.1 == 0 {
                    return Err("a clap with a zero denominator".into());
                }
                let cw = f64::from(width.0) / f64::from(width.1);
                let ch = f64::from(height.0) / f64::from(height.1);
                let cx = f64::from(horiz_offset.0) / f64::from(horiz_offset.1)
                    + (f64::from(image.width) - 1.0) / 2.0;
                let cy = f64::from(vert_offset.0) / f64::from(vert_offset.1)
                    + (f64::from(image.height) - 1.0) / 2.0;
                let left = (cx - (cw - 1.0) / 2.0).round().max(0.0) as u32;
                let top = (cy - (ch - 1.0) / 2.0).round().max(0.0) as u32;
                let cropped = image.crop(left, top, cw.round() as u32, ch.round() as u32);
                if cropped.width == 0 || cropped.height == 0 {
                    return Err("the clean aperture is empty".into());
                }
                cropped
            }
            Property::Rotation(0) => image,
            Property::Rotation(quarters) => image.rotate_ccw(quarters),
            Property::Mirror(top_bottom) => image.mirror(top_bottom),
            _ => image,
        };
    }
    Ok(image)
}

/// Converts the image to sRGB: from its ICC profile when it has one, else from its `nclx`
/// primaries and transfer, else from those of its AV1 sequence header.
fn srgb(file: &HeifFile<'_>, id: ItemId, image: &mut Image<u8>, coded: Cicp) {
    if let Ok(Some(icc)) = file.icc_profile(id) {
        crate::color::to_srgb(&mut image.data, 4, icc);
        return;
    }
    let nclx = |item: ItemId| {
        properties(file, item).ok().and_then(|mut ps| {
            ps.find_map(|p| match p {
                Property::Color(ColorInfo::Nclx {
                    primaries,
                    transfer,
                    ..
                }) => Some((*primaries, *transfer)),
                _ => None,
            })
        })
    };
    let declared = nclx(id).or_else(|| {
        file.referenced_items(id, b"dimg")
            .first()
            .and_then(|&t| nclx(t))
    });
    let (primaries, transfer) = match (declared, coded) {
        (Some((p, t)), _) => (u8::try_from(p).unwrap_or(2), u8::try_from(t).unwrap_or(2)),
        (None, Some(cicp)) => cicp,
        (None, None) => return,
    };
    crate::color::cicp_to_srgb(&mut image.data, 4, primaries, transfer);
}
