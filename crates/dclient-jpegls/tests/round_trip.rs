//! Round trips through our encoder and decoder (no external tool): random and structured
//! images at every bit depth 2..=16, 1 to 4 components in every interleave mode, odd
//! sizes, lossless and near-lossless; plus the encoder's refusals and the decoder's
//! handling of what surrounds a valid scan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dclient_jpegls::decode_with_limit;

/// Samples of one of three kinds: noise over the whole range (escape codes, modulo
/// wrap), a smooth ramp with small noise (regular mode), or mostly flat with rare
/// changes (run mode, run interruptions).
fn samples(rng: &mut Rng, n: usize, bits: u8, kind: usize) -> Vec<u32> {
    let max = (1u64 << bits) - 1;
    let mut v = Vec::with_capacity(n);
    let mut level = rng.below(max + 1);
    for i in 0..n {
        let s = match kind {
            0 => rng.below(max + 1),
            1 => ((i as u64 * 7) % (max + 1)).saturating_add(rng.below(3)).min(max),
            _ => {
                if rng.below(40) == 0 {
                    level = rng.below(max + 1);
                }
                level
            }
        };
        v.push(s as u32);
    }
    v
}

fn interleaves(components: u8) -> &'static [Interleave] {
    if components == 1 {
        &[Interleave::None]
    } else {
        &[Interleave::Line, Interleave::Sample]
    }
}

#[test]
fn every_bit_depth_component_count_interleave_and_odd_size() {
    let mut rng = Rng::new(7);
    let sizes = [(1u32, 1u32), (1, 23), (23, 1), (17, 13), (2, 2)];
    let mut checked = 0;
    for bits in 2..=16u8 {
        let max = (1u32 << bits) - 1;
        for components in 1..=4u8 {
            for &interleave in interleaves(components) {
                for &(w, h) in &sizes {
                    for kind in 0..3 {
                        for near in [0u8, 1, (max / 2).min(255) as u8] {
                            let info = FrameInfo {
                                width: w,
                                height: h,
                                bits_per_sample: bits,
                                components,
                                interleave,
                            };
                            let n = (w * h * u32::from(components)) as usize;
                            let orig = samples(&mut rng, n, bits, kind);
                            let pixels = to_bytes(&orig, bits, None);
                            let label = format!("{bits} bits, {components}c {interleave:?}, {w}x{h}, kind {kind}, NEAR {near}");
                            let cs = encode(&pixels, &info, near)
                                .unwrap_or_else(|e| panic!("{label}: {e}"));
                            let (got_info, got) =
                                decode(&cs).unwrap_or_else(|e| panic!("{label}: {e}"));
                            let want_ilv =
                                if components == 1 { Interleave::None } else { interleave };
                            assert_eq!(
                                got_info,
                                FrameInfo { interleave: want_ilv, ..info },
                                "{label}"
                            );
                            let got = from_bytes(&got, bits);
                            let d = max_abs_diff(&got, &orig);
                            assert!(d <= u32::from(near), "{label}: off by {d}");
                            if near == 0 {
                                assert_eq!(got, orig, "{label}");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    eprintln!("{checked} round trips");
}

#[test]
fn larger_images_of_16_bit_noise_and_8_bit_colour() {
    let mut rng = Rng::new(99);
    for (bits, components, interleave, near) in [
        (16u8, 1u8, Interleave::None, 0u8),
        (16, 1, Interleave::None, 255),
        (8, 3, Interleave::Sample, 0),
        (8, 3, Interleave::Line, 4),
        (12, 4, Interleave::Sample, 0),
    ] {
        for kind in 0..3 {
            let info =
                FrameInfo { width: 301, height: 97, bits_per_sample: bits, components, interleave };
            let orig = samples(&mut rng, (301 * 97 * u32::from(components)) as usize, bits, kind);
            let cs = encode(&to_bytes(&orig, bits, None), &info, near).unwrap();
            let (_, got) = decode(&cs).unwrap();
            let d = max_abs_diff(&from_bytes(&got, bits), &orig);
            assert!(
                d <= u32::from(near),
                "{bits} bits {components}c NEAR {near} kind {kind}: off by {d}"
            );
        }
    }
}

#[test]
fn bits_above_bits_per_sample_are_ignored_by_the_encoder() {
    // Sign-extended 12-bit data codes as its low 12 bits, as CharLS does.
    let orig: Vec<u32> = (0..64u32).map(|i| (i * 97) & 0xFFF).collect();
    let info = FrameInfo {
        width: 8,
        height: 8,
        bits_per_sample: 12,
        components: 1,
        interleave: Interleave::None,
    };
    let clean = encode(&to_bytes(&orig, 12, None), &info, 0).unwrap();
    let extended = encode(&to_bytes(&orig, 12, Some(12)), &info, 0).unwrap();
    let garbage: Vec<u8> =
        to_bytes(&orig, 12, None).chunks(2).flat_map(|c| [c[0], c[1] | 0xA0]).collect();
    assert_eq!(clean, extended);
    assert_eq!(clean, encode(&garbage, &info, 0).unwrap());
}

#[test]
fn encoder_refuses_what_it_cannot_code() {
    let ok = FrameInfo {
        width: 4,
        height: 3,
        bits_per_sample: 8,
        components: 3,
        interleave: Interleave::Sample,
    };
    let px = vec![0u8; 36];
    assert!(encode(&px, &ok, 0).is_ok());
    let cases = [
        (FrameInfo { interleave: Interleave::None, ..ok }, 36, 0),
        (FrameInfo { bits_per_sample: 1, ..ok }, 36, 0),
        (FrameInfo { bits_per_sample: 17, ..ok }, 72, 0),
        (FrameInfo { components: 0, ..ok }, 0, 0),
        (FrameInfo { components: 5, ..ok }, 60, 0),
        (FrameInfo { width: 0, ..ok }, 0, 0),
        (FrameInfo { height: 70000, ..ok }, 4 * 70000 * 3, 0),
        (ok, 35, 0),
        (ok, 36, 128),
    ];
    for (info, len, near) in cases {
        match encode(&vec![0u8; len], &info, near) {
            Err(JpegLsError::InvalidInput(msg)) => eprintln!("refused {info:?} NEAR {near}: {msg}"),
            other => panic!("{info:?} {len} bytes NEAR {near}: {other:?}"),
        }
    }
}

fn small_stream() -> Vec<u8> {
    let info = FrameInfo {
        width: 16,
        height: 8,
        bits_per_sample: 8,
        components: 1,
        interleave: Interleave::None,
    };
    let px: Vec<u8> = (0..128u32).map(|i| (i * 37 % 251) as u8).collect();
    encode(&px, &info, 0).unwrap()
}

#[test]
fn bytes_after_eoi_and_a_zero_before_it_are_tolerated_a_missing_eoi_too() {
    let cs = small_stream();
    let (_, want) = decode(&cs).unwrap();
    let mut padded = cs.clone();
    padded.extend_from_slice(&[0, 0xFF, 0xFF, 1, 2]);
    assert_eq!(decode(&padded).unwrap().1, want);
    let mut zero = cs[..cs.len() - 2].to_vec();
    zero.extend_from_slice(&[0, 0xFF, 0xFF, 0xD9]);
    assert_eq!(decode(&zero).unwrap().1, want);
    assert_eq!(decode(&cs[..cs.len() - 2]).unwrap().1, want);
}

#[test]
fn a_frame_larger_than_the_limit_is_refused_before_allocating() {
    // SOF55: P 16, 65535 x 65535, 4 components: 34 GB.
    let mut cs = vec![0xFF, 0xD8, 0xFF, 0xF7, 0, 20, 16, 0xFF, 0xFF, 0xFF, 0xFF, 4];
    for id in 1..=4 {
        cs.extend_from_slice(&[id, 0x11, 0]);
    }
    cs.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 0, 0, 0xFF, 0xD9]);
    for result in [decode(&cs), decode_with_limit(&cs, 1 << 20)] {
        match result {
            Err(JpegLsError::TooLarge { bytes, .. }) => assert_eq!(bytes, 65535 * 65535 * 4 * 2),
            other => panic!("{other:?}"),
        }
    }
    // Within the limit, the same header fails on its missing data, not on memory.
    let small = encode(
        &[0; 4],
        &FrameInfo {
            width: 2,
            height: 2,
            bits_per_sample: 8,
            components: 1,
            interleave: Interleave::None,
        },
        0,
    )
    .unwrap();
    assert!(matches!(
        decode_with_limit(&small, 3),
        Err(JpegLsError::TooLarge { bytes: 4, limit: 3, .. })
    ));
    assert!(decode_with_limit(&small, 4).is_ok());
}

#[test]
fn a_header_that_lies_about_the_height_fails_as_truncated() {
    let mut cs = small_stream();
    // Y of SOF55 (after FFD8 FFF7 Lf P): 8 lines become 65535.
    assert_eq!(&cs[2..4], &[0xFF, 0xF7]);
    cs[7..9].copy_from_slice(&[0xFF, 0xFF]);
    let err = decode(&cs).unwrap_err();
    assert!(matches!(err, JpegLsError::Truncated { .. }), "{err}");
}

#[test]
fn a_restart_marker_out_of_sequence_is_invalid() {
    // Two strips of our own, spliced as restart intervals; then RST0 renumbered.
    let info = FrameInfo {
        width: 9,
        height: 2,
        bits_per_sample: 8,
        components: 1,
        interleave: Interleave::None,
    };
    let a = encode(&(0..18).map(|i| i as u8 * 9).collect::<Vec<_>>(), &info, 0).unwrap();
    let b = encode(&(0..18).map(|i| 200 - i as u8 * 3).collect::<Vec<_>>(), &info, 0).unwrap();
    let cs = splice_restart_intervals(&[a, b], 4, 2).unwrap();
    let (_, px) = decode(&cs).unwrap();
    assert_eq!(px[..18], (0..18).map(|i| i as u8 * 9).collect::<Vec<_>>()[..]);
    assert_eq!(px[18..], (0..18).map(|i| 200 - i as u8 * 3).collect::<Vec<_>>()[..]);
    let at = cs.windows(2).position(|w| w == [0xFF, 0xD0]).unwrap();
    let mut wrong = cs.clone();
    wrong[at + 1] = 0xD3;
    assert!(matches!(decode(&wrong), Err(JpegLsError::InvalidStream { .. })));
}

#[test]
fn other_jpeg_and_unsupported_features_are_named() {
    let cs = small_stream();
    // ISO 10918 baseline JPEG: SOF0 instead of SOF55.
    let mut jpeg = cs.clone();
    jpeg[3] = 0xC0;
    assert!(matches!(decode(&jpeg), Err(JpegLsError::Unsupported { .. })));
    // A scan that uses mapping table 1 (palette).
    let sos = cs.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let mut table = cs.clone();
    table[sos + 6] = 1;
    assert!(matches!(decode(&table), Err(JpegLsError::Unsupported { .. })));
    // Sub-sampled component.
    let mut sub = cs.clone();
    sub[2 + 2 + 2 + 6 + 1] = 0x21;
    assert!(matches!(decode(&sub), Err(JpegLsError::Unsupported { .. })));
    // Not a codestream at all.
    assert!(matches!(decode(b"DICM"), Err(JpegLsError::InvalidStream { .. })));
    assert!(matches!(decode(&[]), Err(JpegLsError::Truncated { .. })));
}

#[test]
fn a_frame_coded_as_several_multi_component_scans() {
    // Four components in two line-interleaved scans of two (T.87 allows any partition of
    // the frame's components into scans): components 1, 2 from one stream of ours and 3, 4
    // from another, spliced under one SOF55 of four components.
    let (w, h) = (11u32, 7u32);
    let mut rng = Rng::new(3);
    let px: Vec<u32> = (0..w * h * 4).map(|_| rng.below(256) as u32).collect();
    let pick =
        |cs: [usize; 2]| -> Vec<u8> { px.chunks(4).flat_map(|p| cs.map(|c| p[c] as u8)).collect() };
    let info = FrameInfo {
        width: w,
        height: h,
        bits_per_sample: 8,
        components: 2,
        interleave: Interleave::Line,
    };
    let a = encode(&pick([0, 1]), &info, 0).unwrap();
    let b = encode(&pick([2, 3]), &info, 0).unwrap();
    let (pa, pb) = (split_single_scan(&a).unwrap(), split_single_scan(&b).unwrap());
    // SOI, SOF55 of 4 components, SOS (1, 2) and its data, SOS (3, 4) and its data, EOI.
    let mut cs = vec![0xFF, 0xD8, 0xFF, 0xF7, 0, 20, 8, 0, h as u8, 0, w as u8, 4];
    for id in 1..=4 {
        cs.extend_from_slice(&[id, 0x11, 0]);
    }
    let sos_b = pb.header.windows(2).position(|x| x == [0xFF, 0xDA]).unwrap();
    let sos_a = pa.header.windows(2).position(|x| x == [0xFF, 0xDA]).unwrap();
    cs.extend_from_slice(&pa.header[sos_a..]);
    cs.extend_from_slice(pa.data);
    let mut second = pb.header[sos_b..].to_vec();
    second[5] = 3;
    second[7] = 4;
    cs.extend_from_slice(&second);
    cs.extend_from_slice(pb.data);
    cs.extend_from_slice(&[0xFF, 0xD9]);
    let (got_info, got) = decode(&cs).unwrap();
    assert_eq!(got_info.components, 4);
    assert_eq!(got_info.interleave, Interleave::Line);
    assert_eq!(from_bytes(&got, 8), px);
}

#[test]
fn a_second_frame_header_after_a_scan_is_invalid() {
    let cs = small_stream();
    let sof_len = usize::from(u16::from_be_bytes([cs[4], cs[5]]));
    let sof = cs[2..4 + sof_len].to_vec();
    let mut twice = cs[..cs.len() - 2].to_vec();
    twice.extend_from_slice(&sof);
    twice.extend_from_slice(&[0xFF, 0xD9]);
    assert!(
        matches!(decode(&twice), Err(JpegLsError::InvalidStream { .. })),
        "{:?}",
        decode(&twice)
    );
}
