//! Colour management of RGB inputs. The derivatives carry no ICC profile, and every viewer reads
//! untagged pixels as sRGB, so pixels tagged with another RGB profile (Display P3 from phones and
//! Macs, Adobe RGB from cameras) are converted to sRGB first; without it their colours would come
//! out dull. Pixels without a profile, or with an sRGB one, are left as they are.

use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    RenderingIntent, TransferCharacteristics, TransformOptions,
};

/// The steps of the probe grid: 5^3 colours across the cube, corners and greys included.
const PROBE_STEPS: [u8; 5] = [0, 64, 128, 192, 255];

/// Converts 8-bit RGB (`channels` 3) or RGBA (4, alpha kept) pixels from the `icc` profile to
/// sRGB in place, with the relative colorimetric intent (libvips's default). Returns whether it
/// changed anything: a profile that does not parse, is not RGB, cannot be built into a transform,
/// or moves no colour of a probe grid by more than one level (sRGB itself, as many cameras tag)
/// leaves the pixels untouched. Never fails: broken colour data never rejects an image.
pub fn to_srgb(data: &mut [u8], channels: usize, icc: &[u8]) -> bool {
    match ColorProfile::new_from_slice(icc) {
        Ok(profile) => profile_to_srgb(data, channels, &profile),
        Err(_) => false,
    }
}

/// Like [`to_srgb`], for pixels described by their CICP code points (H.273: the `nclx` colour
/// of HEIF and AVIF files, an AV1 sequence header) rather than an ICC profile. Unspecified
/// primaries are BT.709 and an unspecified transfer is sRGB's, as browsers read them. HDR
/// transfers are brought to SDR first: PQ (16) is tone-mapped ([`pq_to_sdr`]), and HLG (18),
/// which is made to look right on an SDR display as it is, is read as BT.709's.
pub fn cicp_to_srgb(data: &mut [u8], channels: usize, primaries: u8, transfer: u8) -> bool {
    let transfer_was_pq = transfer == PQ;
    let transfer = match transfer {
        PQ => {
            pq_to_sdr(data, channels);
            SRGB
        }
        HLG => BT709,
        other => other,
    };
    let color_primaries = match CicpColorPrimaries::try_from(primaries) {
        Ok(CicpColorPrimaries::Unspecified) | Err(_) => CicpColorPrimaries::Bt709,
        Ok(p) => p,
    };
    let transfer_characteristics = match TransferCharacteristics::try_from(transfer) {
        Ok(TransferCharacteristics::Unspecified) | Err(_) => TransferCharacteristics::Srgb,
        Ok(t) => t,
    };
    let profile = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries,
        transfer_characteristics,
        matrix_coefficients: MatrixCoefficients::Bt709,
        full_range: true,
    });
    let converted = profile.red_trc.is_some() && profile_to_srgb(data, channels, &profile);
    converted || transfer_was_pq
}

/// H.273 transfer characteristics used here.
const BT709: u8 = 1;
const SRGB: u8 = 13;
const PQ: u8 = 16;
const HLG: u8 = 18;

/// SDR reference white in nits (ITU-R BT.2408), and the peak PQ content is mapped from.
const REFERENCE_WHITE: f64 = 203.0;
const PQ_PEAK: f64 = 1000.0;

/// Tone-maps PQ-coded (SMPTE ST 2084) samples in place to sRGB-coded SDR ones, keeping their
/// primaries: each channel to absolute light, relative to the reference white, through the
/// extended Reinhard curve (the peak maps to white), then the sRGB curve. Alpha is untouched.
fn pq_to_sdr(data: &mut [u8], channels: usize) {
    let (m1, m2) = (2610.0 / 16384.0, 2523.0 / 4096.0 * 128.0);
    let (c1, c2, c3) = (
        3424.0 / 4096.0,
        2413.0 / 4096.0 * 32.0,
        2392.0 / 4096.0 * 32.0,
    );
    let white = PQ_PEAK / REFERENCE_WHITE;
    let table: Vec<u8> = (0..=255u8)
        .map(|code| {
            let e = f64::from(code) / 255.0;
            let p = e.powf(1.0 / m2);
            let nits = 10_000.0 * ((p - c1).max(0.0) / (c2 - c3 * p)).powf(1.0 / m1);
            let l = nits / REFERENCE_WHITE;
            let mapped = (l * (1.0 + l / (white * white)) / (1.0 + l)).clamp(0.0, 1.0);
            let encoded = if mapped <= 0.003_130_8 {
                12.92 * mapped
            } else {
                1.055 * mapped.powf(1.0 / 2.4) - 0.055
            };
            (encoded * 255.0).round() as u8
        })
        .collect();
    let colour = channels.min(3);
    for pixel in data.chunks_exact_mut(channels.max(1)) {
        for v in &mut pixel[..colour] {
            *v = table[usize::from(*v)];
        }
    }
}

fn profile_to_srgb(data: &mut [u8], channels: usize, profile: &ColorProfile) -> bool {
    let layout = match channels {
        3 => Layout::Rgb,
        4 => Layout::Rgba,
        _ => return false,
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
    fn cicp_colours_become_srgb() {
        // BT.2020 primaries (9) with the BT.709 transfer (1): a wider gamut than sRGB's, so the
        // same code values name another colour.
        let mut px = vec![60, 170, 80, 255];
        assert!(cicp_to_srgb(&mut px, 4, 9, 1));
        assert_ne!(px[..3], [60, 170, 80]);
        assert_eq!(px[3], 255, "alpha untouched");
        // Display P3 (12) with the sRGB transfer (13): as the ICC path.
        let mut p3 = vec![230, 120, 40];
        assert!(cicp_to_srgb(&mut p3, 3, 12, 13));
        assert!(p3[0] > 240 && p3[1] < 118, "{p3:?}");
        // sRGB itself, unspecified and unknown code points leave the pixels alone.
        for (primaries, transfer) in [(1, 13), (2, 2), (1, 2), (200, 200)] {
            let mut same = vec![230, 120, 40];
            assert!(
                !cicp_to_srgb(&mut same, 3, primaries, transfer),
                "{primaries}/{transfer}"
            );
            assert_eq!(same, [230, 120, 40]);
        }
    }

    #[test]
    fn pq_is_tone_mapped_to_sdr() {
        // PQ code 0.58 is about 203 nits, the SDR reference white: near white once mapped; code
        // 0.25 is about 5 nits, a dark grey; 0 stays black, and the peak saturates at white.
        let mut px = vec![148, 148, 148, 64, 64, 64, 0, 0, 0, 255, 255, 255];
        assert!(cicp_to_srgb(&mut px, 3, 1, 16));
        assert!(px[0] > 170 && px[0] < 235, "{px:?}");
        assert!(px[3] > 20 && px[3] < 90, "{px:?}");
        assert_eq!((px[6], px[9]), (0, 255), "{px:?}");
        // Greys stay grey; alpha is kept.
        let mut rgba = vec![148, 148, 148, 77];
        cicp_to_srgb(&mut rgba, 4, 9, 16);
        assert!(rgba[0] == rgba[1] && rgba[1] == rgba[2] || rgba[0].abs_diff(rgba[2]) <= 1);
        assert_eq!(rgba[3], 77);
    }

    #[test]
    fn adobe_rgb_pixels_become_srgb() {
        let mut px = vec![60, 170, 80];
        assert!(to_srgb(&mut px, 3, &icc(&ColorProfile::new_adobe_rgb())));
        assert_ne!(px, vec![60, 170, 80]);
    }
}
