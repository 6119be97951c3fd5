//! RLE Lossless (PS3.5 Annex G), both ways, written here: dicom-rs 0.10 has no RLE encoder,
//! and its decoder panics on a fragment shorter than its header or a segment that decodes
//! short (found with the files of the codec tests). The format is small: a 64-byte header
//! (the number of segments, then 15 offsets), then one PackBits segment per byte of each
//! sample (most significant byte first, sample 0 first, G.2), each row encoded on its own
//! (G.3.1).

use std::path::Path;

use super::{CodecError, EncodeParams, Encoded, ImageInfo};

/// The RLE header: the number of segments and 15 offsets (G.5).
const HEADER: usize = 64;
/// At most 15 segments (G.5).
const MAX_SEGMENTS: usize = 15;

fn corrupt(s: String) -> CodecError {
    CodecError::Corrupt(format!("RLE: {s}"))
}

/// Segments an image needs: bytes per sample times samples (G.2).
fn segments(info: &ImageInfo) -> Result<usize, CodecError> {
    let bps = info.bytes_per_sample().ok_or_else(|| {
        CodecError::Unsupported(format!("RLE: Bits Allocated {}", info.bits_allocated))
    })?;
    let n = bps * usize::from(info.samples_per_pixel);
    if n == 0 || n > MAX_SEGMENTS {
        return Err(CodecError::Unsupported(format!(
            "RLE: {} samples of {} bits need {n} segments, the format holds 1 to 15",
            info.samples_per_pixel, info.bits_allocated
        )));
    }
    Ok(n)
}

/// Decodes one RLE fragment (one frame, PS3.5 A.4.2) into a native frame.
pub(super) fn decode(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, CodecError> {
    let nseg = segments(info)?;
    if data.len() < HEADER {
        return Err(corrupt(format!("a frame of {} bytes is shorter than its header", data.len())));
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let declared = word(0) as usize;
    if declared != nseg {
        return Err(corrupt(format!(
            "the header declares {declared} segments; {} samples of {} bits make {nseg}",
            info.samples_per_pixel, info.bits_allocated
        )));
    }
    let mut offsets: Vec<usize> = (0..nseg).map(|k| word(4 + 4 * k) as usize).collect();
    offsets.push(data.len());
    if offsets[0] != HEADER {
        return Err(corrupt(format!("the first segment starts at {}, not 64", offsets[0])));
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(corrupt(format!("segment offsets {:?} out of order or past the end", offsets)));
    }
    let bps = nseg / usize::from(info.samples_per_pixel);
    let spp = usize::from(info.samples_per_pixel);
    let pixels = info.pixels();
    let mut out = vec![0u8; pixels * nseg];
    let mut plane = vec![0u8; pixels];
    for k in 0..nseg {
        let seg = &data[offsets[k]..offsets[k + 1]];
        let got = unpack(seg, &mut plane);
        if got < pixels {
            return Err(corrupt(format!(
                "segment {k} decodes to {got} bytes, the image has {pixels} pixels (cut short?)"
            )));
        }
        // Segment k holds byte (bps - 1 - k % bps) (little endian index) of sample k / bps.
        let sample = k / bps;
        let byte = bps - 1 - k % bps;
        for (i, &b) in plane.iter().enumerate() {
            out[(i * spp + sample) * bps + byte] = b;
        }
    }
    Ok(out)
}

/// PackBits (G.3.2) from `seg` into `out` until it is full; returns the bytes written.
fn unpack(seg: &[u8], out: &mut [u8]) -> usize {
    let (mut i, mut o) = (0usize, 0usize);
    while i < seg.len() && o < out.len() {
        let n = seg[i] as i8;
        i += 1;
        if n >= 0 {
            // Copy the next n + 1 bytes literally.
            let len = (n as usize + 1).min(seg.len() - i).min(out.len() - o);
            out[o..o + len].copy_from_slice(&seg[i..i + len]);
            i += n as usize + 1;
            o += len;
        } else if n != -128 {
            // Repeat the next byte 1 - n times.
            let Some(&b) = seg.get(i) else { break };
            i += 1;
            let len = ((1 - i32::from(n)) as usize).min(out.len() - o);
            out[o..o + len].fill(b);
            o += len;
        }
    }
    o
}

/// PackBits of one row (runs never cross a row, G.3.1).
fn pack_row(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let mut i = 0;
    while i < n {
        let mut run = 1;
        while i + run < n && run < 128 && row[i + run] == row[i] {
            run += 1;
        }
        if run >= 2 {
            out.push((1 - run as i16) as i8 as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        // A literal run: up to two equal bytes in a row, or 128 bytes.
        let start = i;
        i += 1;
        while i < n && i - start < 128 && !(i + 1 < n && row[i] == row[i + 1]) {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

/// Encodes one native frame into one RLE fragment.
pub(super) fn encode(
    info: &ImageInfo,
    frame: &[u8],
    _params: EncodeParams,
    _scratch: &Path,
) -> Result<Encoded, CodecError> {
    let nseg = segments(info)?;
    let spp = usize::from(info.samples_per_pixel);
    let bps = nseg / spp;
    let (rows, cols) = (usize::from(info.rows), usize::from(info.columns));
    if frame.len() != rows * cols * nseg {
        return Err(CodecError::Unsupported(format!(
            "RLE: a frame of {} bytes for {rows} x {cols} x {nseg}",
            frame.len()
        )));
    }
    let mut out = Vec::with_capacity(frame.len() / 2 + HEADER);
    out.resize(HEADER, 0);
    out[0..4].copy_from_slice(&(nseg as u32).to_le_bytes());
    let mut row = vec![0u8; cols];
    for k in 0..nseg {
        let (sample, byte) = (k / bps, bps - 1 - k % bps);
        let at = 4 + 4 * k;
        let start = out.len() as u32;
        out[at..at + 4].copy_from_slice(&start.to_le_bytes());
        for r in 0..rows {
            for (c, b) in row.iter_mut().enumerate() {
                *b = frame[((r * cols + c) * spp + sample) * bps + byte];
            }
            pack_row(&row, &mut out);
        }
        if out.len() % 2 == 1 {
            out.push(0); // segments have an even length (G.5)
        }
    }
    Ok(Encoded { data: out, photometric: None, lossy_method: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rows: u16, cols: u16, spp: u16, bits: u16) -> ImageInfo {
        ImageInfo {
            samples_per_pixel: spp,
            photometric: if spp == 3 { "RGB".into() } else { "MONOCHROME2".into() },
            ..ImageInfo::mono(rows, cols, bits)
        }
    }

    #[test]
    fn round_trips_every_layout() {
        let scratch = std::env::temp_dir();
        for (spp, bits) in [(1, 8), (1, 16), (3, 8), (3, 16)] {
            let i = info(7, 13, spp, bits);
            let len = i.frame_len().expect("len");
            // Runs, literals and noise.
            let frame: Vec<u8> =
                (0..len).map(|k| if k % 50 < 20 { 7 } else { (k * 37 % 251) as u8 }).collect();
            let enc = encode(&i, &frame, EncodeParams::default(), &scratch).expect("encode");
            assert_eq!(enc.data.len() % 2, 0);
            assert_eq!(decode(&i, &enc.data).expect("decode"), frame, "{spp} x {bits}");
        }
    }

    #[test]
    fn damaged_fragments_are_errors_not_panics() {
        let i = info(4, 4, 1, 16);
        let frame = vec![3u8; 32];
        let enc = encode(&i, &frame, EncodeParams::default(), &std::env::temp_dir()).expect("enc");
        for cut in 0..enc.data.len() {
            let _ = decode(&i, &enc.data[..cut]);
        }
        assert!(decode(&i, &enc.data[..10]).expect_err("short").to_string().contains("header"));
        let mut bad = enc.data.clone();
        bad[0] = 9;
        assert!(decode(&i, &bad).expect_err("segments").to_string().contains("9 segments"));
    }
}
