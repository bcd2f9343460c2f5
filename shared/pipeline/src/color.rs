//! Colour management of RGB inputs. The derivatives carry no ICC profile, and every viewer reads
//! untagged pixels as sRGB, so pixels tagged with another RGB profile (Display P3 from phones and
//! Macs, Adobe RGB from cameras) are converted to sRGB first; without it their colours would come
//! out dull. Pixels without a profile, or with an sRGB one, are left as they are.

use moxcms::{ColorProfile, DataColorSpace, Layout, RenderingIntent, TransformOptions};

/// The steps of the probe grid: 5^3 colours across the cube, corners and greys included.
const PROBE_STEPS: [u8; 5] = [0, 64, 128, 192, 255];

/// Converts 8-bit RGB (`channels` 3) or RGBA (4, alpha kept) pixels from the `icc` profile to
/// sRGB in place, with the relative colorimetric intent (libvips's default). Returns whether it
/// changed anything: a profile that does not parse, is not RGB, cannot be built into a transform,
/// or moves no colour of a probe grid by more than one level (sRGB itself, as many cameras tag)
/// leaves the pixels untouched. Never fails: broken colour data never rejects an image.
pub fn to_srgb(data: &mut [u8], channels: usize, icc: &[u8]) -> bool {
    let layout = match channels {
        3 => Layout::Rgb,
        4 => Layout::Rgba,
        _ => return false,
    };
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return false;
    };
    if profile.color_space != DataColorSpace::Rgb {
        return false;
    }
    let options = TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    };
    let Ok(transform) =
        profile.create_transform_8bit(layout, &ColorProfile::new_srgb(), layout, options)
    else {
        return false;
    };
    let probe: Vec<u8> = PROBE_STEPS
        .iter()
        .flat_map(|&r| PROBE_STEPS.iter().map(move |&g| (r, g)))
        .flat_map(|(r, g)| PROBE_STEPS.iter().map(move |&b| [r, g, b]))
        .flat_map(|rgb| rgb.into_iter().chain((channels == 4).then_some(255)))
        .collect();
    let mut probed = vec![0u8; probe.len()];
    if transform.transform(&probe, &mut probed).is_err()
        || probe.iter().zip(&probed).all(|(a, b)| a.abs_diff(*b) <= 1)
    {
        return false;
    }
    let source = data.to_vec();
    transform.transform(&source, data).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icc(profile: &ColorProfile) -> Vec<u8> {
        profile.encode().expect("encodes")
    }

    #[test]
    fn display_p3_pixels_become_srgb() {
        // A saturated P3 orange is redder and less green in sRGB terms.
        let mut px = vec![230, 120, 40, 90, 160, 90];
        assert!(to_srgb(&mut px, 3, &icc(&ColorProfile::new_display_p3())));
        assert!(px[0] > 240 && px[1] < 118, "{px:?}");
        // Greys stay grey (same white point).
        let mut grey = [128, 128, 128, 128];
        assert!(!to_srgb(&mut grey[..3], 3, &icc(&ColorProfile::new_srgb())));
        let mut p3_grey = vec![128, 128, 128, 200];
        to_srgb(&mut p3_grey, 4, &icc(&ColorProfile::new_display_p3()));
        assert!(
            p3_grey[..3].iter().all(|v| v.abs_diff(128) <= 1),
            "{p3_grey:?}"
        );
        assert_eq!(p3_grey[3], 200, "alpha untouched");
    }

    #[test]
    fn srgb_missing_and_broken_profiles_leave_pixels_alone() {
        let original = vec![230, 120, 40, 1, 2, 3];
        for profile in [
            icc(&ColorProfile::new_srgb()),
            Vec::new(),
            b"not a profile at all".to_vec(),
            icc(&ColorProfile::new_display_p3())[..100].to_vec(),
        ] {
            let mut px = original.clone();
            assert!(!to_srgb(&mut px, 3, &profile));
            assert_eq!(px, original);
        }
        let mut gray = original.clone();
        assert!(!to_srgb(
            &mut gray,
            2,
            &icc(&ColorProfile::new_display_p3())
        ));
    }

    #[test]
    fn adobe_rgb_pixels_become_srgb() {
        let mut px = vec![60, 170, 80];
        assert!(to_srgb(&mut px, 3, &icc(&ColorProfile::new_adobe_rgb())));
        assert_ne!(px, vec![60, 170, 80]);
    }
}
