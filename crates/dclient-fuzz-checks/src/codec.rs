//! The check of the `jpegls_decode` target: the JPEG-LS decoder of `dclient-jpegls`.

use dclient_jpegls::{decode_with_limit, encode, Interleave};

/// The decoded-frame limit of the target: inputs are at most 4 KB, so anything above
/// this is a header that lies, which must be refused before allocating.
pub const LIMIT: usize = 1 << 24;

/// `jpegls_decode`: `decode_with_limit` on arbitrary bytes never panics and stays within
/// the limit; a frame it returns has the size its header declares, and re-encoding it
/// losslessly and decoding that gives the same samples back.
pub fn jpegls_decode(data: &[u8]) {
    let Ok((info, pixels)) = decode_with_limit(data, LIMIT) else { return };
    assert_eq!(Some(pixels.len()), info.frame_bytes(), "{info:?}");
    assert!(pixels.len() <= LIMIT);
    if info.width > 65535 || info.height > 65535 {
        // (LSE type 4 sizes: our encoder writes SOF55 sizes only.)
        return;
    }
    let mut again = info;
    if info.components > 1 && info.interleave == Interleave::None {
        again.interleave = Interleave::Line;
    }
    let cs = encode(&pixels, &again, 0).expect("decoded samples re-encode");
    let (info2, pixels2) = decode_with_limit(&cs, LIMIT).expect("our own stream decodes");
    assert_eq!(
        (info2.width, info2.height, info2.components),
        (info.width, info.height, info.components)
    );
    assert!(pixels2 == pixels, "{info:?}: the lossless round trip changed samples");
}
