//! Our encoder's streams decoded by other programs: each frame is encoded with
//! [`encode`], wrapped in a DICOM file (JPEG-LS Lossless or Near-Lossless, one fragment
//! per frame), and decoded by DCMTK's `dcmdjpls` and GDCM's `gdcmconv --raw`; and the
//! bare codestreams by the ISO reference implementation (libjpeg), the only one here that
//! takes every bit depth. Lossless streams must give back the original exactly;
//! near-lossless ones exactly what our own decoder gives, within NEAR of the original.
//!
//! The tools are required: a missing one fails these tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{ensure, Result};
use common::*;

/// One case: an image, coded with P = Bits Stored, an interleave mode and NEAR.
struct Case {
    img: Image,
    interleave: Interleave,
    near: u8,
}

fn case(img: Image, interleave: Interleave, near: u8) -> Case {
    Case { img, interleave, near }
}

fn check(c: &Case, tools: &[RefTool]) -> Result<usize> {
    let img = &c.img;
    let bits = img.bits_stored as u8;
    let dir = tempfile::tempdir()?;
    let mut streams = Vec::new();
    for f in 0..img.frames as usize {
        streams.push(encode(&img.frame_bytes(f, bits), &img.info(bits, c.interleave), c.near)?);
    }
    let path = dir.path().join("ours.dcm");
    img.write_encapsulated(&path, &streams, if c.near == 0 { TS_LOSSLESS } else { TS_NEAR })?;
    let refs = reference_decodings(&path, dir.path(), tools)?;
    for (f, cs) in streams.iter().enumerate() {
        let (_, bytes) = decode(cs)?;
        let ours = from_bytes(&bytes, bits);
        if c.near == 0 {
            ensure!(ours == img.frame(f), "frame {f}: our own decoder differs from the original");
        } else {
            let d = max_abs_diff(&ours, img.frame(f));
            ensure!(d <= u32::from(c.near), "frame {f}: {d} off the original (NEAR {})", c.near);
        }
        for (tool, frames) in &refs {
            ensure!(
                frames[f] == ours,
                "frame {f}: {tool} differs first at {:?} (index, theirs, ours)",
                first_diff(&frames[f], &ours)
            );
        }
    }
    Ok(streams.iter().map(Vec::len).sum())
}

fn check_all(cases: &[Case], tools: &[RefTool]) {
    let mut failures = Vec::new();
    for c in cases {
        let label = format!("{} {:?} NEAR {}", c.img.name, c.interleave, c.near);
        match check(c, tools) {
            Ok(n) => eprintln!("ok {label:<32} {n} bytes"),
            Err(e) => failures.push(format!("{label}: {e:#}")),
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn bit_depths_6_to_16_decode_in_dcmtk() {
    // DCMTK 3.6.7's CharLS refuses fewer than 6 bits ("unsupported compression
    // parameters") and GDCM fewer than 8: 2 to 5 bits are checked by the round trips.
    // Below 8 bits our encoder writes the default thresholds in an LSE segment, which
    // is what lets DCMTK (whose defaults differ there) decode them.
    let cases: Vec<Case> = (6..=16u16)
        .map(|bits| {
            let ba = if bits > 8 { 16 } else { 8 };
            case(Image::mono(&format!("mono{bits}"), 31, 19, ba, bits), Interleave::None, 0)
        })
        .collect();
    check_all(&cases, &[RefTool::Dcmdjpls]);
}

#[test]
fn bit_depths_8_to_16_decode_in_gdcm() {
    // GDCM 3.0.21 refuses JPEG-LS streams of fewer than 8 bits ("Could not change the
    // Transfer Syntax"), whoever wrote them; DCMTK decodes those (above).
    let cases: Vec<Case> = (8..=16u16)
        .map(|bits| {
            let ba = if bits > 8 { 16 } else { 8 };
            case(Image::mono(&format!("mono{bits}"), 31, 19, ba, bits), Interleave::None, 0)
        })
        .collect();
    check_all(&cases, &[RefTool::GdcmRaw]);
}

#[test]
fn signed_colour_and_multi_frame_decode_in_both() {
    let cases = [
        case(Image::mono("mono12s", 64, 48, 16, 12).with(1, 1, true), Interleave::None, 0),
        case(Image::mono("mono16s", 64, 48, 16, 16).with(1, 1, true), Interleave::None, 0),
        case(Image::mono("rgb8", 64, 48, 8, 8).with(1, 3, false), Interleave::Line, 0),
        case(Image::mono("rgb8", 64, 48, 8, 8).with(1, 3, false), Interleave::Sample, 0),
        case(Image::mono("rgb12", 33, 21, 16, 12).with(1, 3, false), Interleave::Sample, 0),
        case(Image::mono("rgb16", 33, 21, 16, 16).with(1, 3, false), Interleave::Line, 0),
        case(Image::mono("mono12x3", 64, 48, 16, 12).with(3, 1, false), Interleave::None, 0),
        case(Image::mono("rgb8x2", 40, 30, 8, 8).with(2, 3, false), Interleave::Sample, 0),
        case(Image::mono("rgb8x2", 40, 30, 8, 8).with(2, 3, false), Interleave::Line, 0),
    ];
    check_all(&cases, BOTH);
}

#[test]
fn odd_sizes_decode_in_both() {
    let cases = [
        case(Image::mono("1x1", 1, 1, 8, 8), Interleave::None, 0),
        case(Image::mono("1x1-16", 1, 1, 16, 16), Interleave::None, 0),
        case(Image::mono("1x1-rgb", 1, 1, 8, 8).with(1, 3, false), Interleave::Sample, 0),
        case(Image::mono("1x37", 1, 37, 16, 12), Interleave::None, 0),
        case(Image::mono("37x1", 37, 1, 8, 8), Interleave::None, 0),
        case(Image::mono("37x1-rgb", 37, 1, 8, 8).with(1, 3, false), Interleave::Line, 0),
        case(Image::mono("17x13", 17, 13, 16, 16), Interleave::None, 0),
        case(Image::mono("17x13-rgb", 17, 13, 8, 8).with(1, 3, false), Interleave::Sample, 0),
    ];
    check_all(&cases, BOTH);
}

#[test]
fn near_lossless_decodes_in_both() {
    let cases = [
        case(Image::mono("mono8", 64, 48, 8, 8), Interleave::None, 2),
        case(Image::mono("mono12", 64, 48, 16, 12), Interleave::None, 3),
        case(Image::mono("mono16", 64, 48, 16, 16), Interleave::None, 7),
        case(Image::mono("rgb8", 64, 48, 8, 8).with(1, 3, false), Interleave::Sample, 2),
        case(Image::mono("rgb8", 64, 48, 8, 8).with(1, 3, false), Interleave::Line, 1),
        case(Image::mono("17x13", 17, 13, 8, 8), Interleave::None, 10),
    ];
    check_all(&cases, BOTH);
}

#[test]
fn near_lossless_6_and_7_bits_decodes_in_dcmtk() {
    let cases = [
        case(Image::mono("mono6", 40, 30, 8, 6), Interleave::None, 1),
        case(Image::mono("mono7", 40, 30, 8, 7), Interleave::None, 3),
    ];
    check_all(&cases, &[RefTool::Dcmdjpls]);
}

#[test]
fn every_bit_depth_and_mode_decodes_in_the_iso_reference_libjpeg() {
    let mut cases = Vec::new();
    for bits in 2..=16u16 {
        let ba = if bits > 8 { 16 } else { 8 };
        let img = Image::mono(&format!("mono{bits}"), 31, 19, ba, bits);
        cases.push(case(img.clone(), Interleave::None, 0));
        cases.push(case(img, Interleave::None, if bits > 2 { 1 } else { 0 }));
        for (nc, ilv) in [
            (3u16, Interleave::Line),
            (3, Interleave::Sample),
            (2, Interleave::Sample),
            (4, Interleave::Line),
        ] {
            cases.push(case(
                Image::mono(&format!("{nc}c{bits}"), 13, 9, ba, bits).with(1, nc, false),
                ilv,
                0,
            ));
        }
    }
    cases.push(case(
        Image::mono("rgb8-near", 40, 30, 8, 8).with(1, 3, false),
        Interleave::Sample,
        3,
    ));
    cases.push(case(
        Image::mono("rgb12-near", 40, 30, 16, 12).with(1, 3, false),
        Interleave::Line,
        2,
    ));
    cases.push(case(Image::mono("1x1", 1, 1, 8, 8), Interleave::None, 0));
    cases.push(case(Image::mono("1x37", 1, 37, 16, 12), Interleave::None, 0));
    cases.push(case(Image::mono("37x1-rgb", 37, 1, 8, 8).with(1, 3, false), Interleave::Sample, 0));

    let streams: Vec<Vec<u8>> = cases
        .iter()
        .map(|c| {
            let bits = c.img.bits_stored as u8;
            encode(&c.img.frame_bytes(0, bits), &c.img.info(bits, c.interleave), c.near).unwrap()
        })
        .collect();
    let decoded = libjpeg_decode(&streams).unwrap();
    let mut failures = Vec::new();
    for ((c, cs), theirs) in cases.iter().zip(&streams).zip(&decoded) {
        let bits = c.img.bits_stored as u8;
        let theirs = from_bytes(theirs, bits);
        let want = if c.near == 0 {
            c.img.frame(0).to_vec()
        } else {
            from_bytes(&decode(cs).unwrap().1, bits)
        };
        if theirs != want {
            failures.push(format!(
                "{} {:?} NEAR {}: differs first at {:?}",
                c.img.name,
                c.interleave,
                c.near,
                first_diff(&theirs, &want)
            ));
        }
    }
    eprintln!("{} streams checked by libjpeg", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
