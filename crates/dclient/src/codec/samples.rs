//! The image a frame belongs to (the Image Pixel module, PS3.3 C.7.6.3) and sample-level
//! helpers shared by the codecs.

/// What a codec needs to know about the frames of a data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    /// Rows (0028,0010).
    pub rows: u16,
    /// Columns (0028,0011).
    pub columns: u16,
    /// Samples per Pixel (0028,0002).
    pub samples_per_pixel: u16,
    /// Bits Allocated (0028,0100).
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101).
    pub bits_stored: u16,
    /// Pixel Representation (0028,0103): 1 for two's complement samples.
    pub pixel_representation: u16,
    /// Photometric Interpretation (0028,0004), trimmed.
    pub photometric: String,
    /// Planar Configuration (0028,0006) of native data: 1 for colour-by-plane.
    pub planar_configuration: u16,
    /// Number of Frames (0028,0008); 1 when absent.
    pub frames: u32,
}

impl ImageInfo {
    /// A one-frame MONOCHROME2 image (tests).
    #[cfg(test)]
    pub(crate) fn mono(rows: u16, columns: u16, bits: u16) -> ImageInfo {
        ImageInfo {
            rows,
            columns,
            samples_per_pixel: 1,
            bits_allocated: if bits > 8 { 16 } else { 8 },
            bits_stored: bits,
            pixel_representation: 0,
            photometric: "MONOCHROME2".into(),
            planar_configuration: 0,
            frames: 1,
        }
    }

    /// Bytes per sample (1 or 2 for the codecs; 4 for 32-bit native data). `None` when
    /// Bits Allocated is not a whole number of bytes (1-bit data).
    pub(crate) fn bytes_per_sample(&self) -> Option<usize> {
        (self.bits_allocated % 8 == 0 && self.bits_allocated > 0)
            .then_some(usize::from(self.bits_allocated / 8))
    }

    /// Pixels in one frame.
    pub(crate) fn pixels(&self) -> usize {
        usize::from(self.rows) * usize::from(self.columns)
    }

    /// Bytes of one native frame; `None` for 1-bit data or an empty image.
    pub(crate) fn frame_len(&self) -> Option<usize> {
        let n = self
            .pixels()
            .checked_mul(usize::from(self.samples_per_pixel))?
            .checked_mul(self.bytes_per_sample()?)?;
        (n > 0).then_some(n)
    }

    /// Whether samples are two's complement.
    pub(crate) fn signed(&self) -> bool {
        self.pixel_representation == 1
    }

    /// Checks what every codec needs: 1 or 3 samples, 8 or 16 bits allocated, Bits Stored
    /// within them, a non-empty image.
    pub(crate) fn check_codec_limits(&self, codec: &str) -> Result<(), super::CodecError> {
        let bad = |s: String| Err(super::CodecError::Unsupported(format!("{codec}: {s}")));
        if self.samples_per_pixel != 1 && self.samples_per_pixel != 3 {
            return bad(format!("{} samples per pixel (1 or 3 supported)", self.samples_per_pixel));
        }
        if self.bits_allocated != 8 && self.bits_allocated != 16 {
            return bad(format!("Bits Allocated {} (8 or 16 supported)", self.bits_allocated));
        }
        if self.bits_stored == 0 || self.bits_stored > self.bits_allocated {
            return bad(format!(
                "Bits Stored {} with Bits Allocated {}",
                self.bits_stored, self.bits_allocated
            ));
        }
        if self.rows == 0 || self.columns == 0 {
            return bad("an empty image (0 rows or columns)".into());
        }
        Ok(())
    }

    /// Sample `i` of a native frame (little endian), masked to Bits Stored and, for signed
    /// data, sign-extended.
    pub(crate) fn sample(&self, frame: &[u8], i: usize) -> i32 {
        let v = if self.bits_allocated == 8 {
            u32::from(frame[i])
        } else {
            u32::from(u16::from_le_bytes([frame[2 * i], frame[2 * i + 1]]))
        };
        let bits = u32::from(self.bits_stored.clamp(1, 16));
        let v = v & ((1u32 << bits) - 1);
        if self.signed() && v >> (bits - 1) & 1 == 1 {
            (v as i32) - (1i32 << bits)
        } else {
            v as i32
        }
    }
}

/// Sign-extends the samples of a native frame of signed data above Bits Stored, in place:
/// decoders return the stored bits only (JPEG lossless, JPEG-LS), and native data keeps a
/// sample's sign in every bit allocated (as DCMTK's and GDCM's decoders write it).
pub(crate) fn normalise_signed(info: &ImageInfo, frame: &mut [u8]) {
    if !info.signed() || info.bits_stored == 0 || info.bits_stored >= info.bits_allocated {
        return;
    }
    let bits = u32::from(info.bits_stored);
    match info.bits_allocated {
        16 => {
            for c in frame.chunks_exact_mut(2) {
                let v = u16::from_le_bytes([c[0], c[1]]);
                let shift = 16 - bits;
                let x = ((v << shift) as i16) >> shift;
                c.copy_from_slice(&x.to_le_bytes());
            }
        }
        8 => {
            for b in frame.iter_mut() {
                let shift = 8 - bits;
                *b = (((*b << shift) as i8) >> shift) as u8;
            }
        }
        _ => {}
    }
}

/// Colour-by-plane (RRR..GGG..BBB) to colour-by-pixel (RGBRGB..).
pub(crate) fn planar_to_interleaved(p: &[u8], samples: usize, bps: usize) -> Vec<u8> {
    if samples <= 1 || p.is_empty() {
        return p.to_vec();
    }
    let plane = p.len() / samples;
    let n = plane / bps;
    let mut out = vec![0u8; n * samples * bps];
    for s in 0..samples {
        for i in 0..n {
            let src = s * plane + i * bps;
            let dst = (i * samples + s) * bps;
            out[dst..dst + bps].copy_from_slice(&p[src..src + bps]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_samples_are_sign_extended_above_bits_stored() {
        let mut info = ImageInfo::mono(1, 2, 12);
        info.pixel_representation = 1;
        let mut f = vec![0xFF, 0x0F, 0x01, 0x00]; // 12-bit -1 and 1
        normalise_signed(&info, &mut f);
        assert_eq!(f, vec![0xFF, 0xFF, 0x01, 0x00]);
        assert_eq!(info.sample(&f, 0), -1);
        assert_eq!(info.sample(&f, 1), 1);
    }

    #[test]
    fn planes_interleave() {
        let p = [1, 2, 10, 20, 100, 200];
        assert_eq!(planar_to_interleaved(&p, 3, 1), vec![1, 10, 100, 2, 20, 200]);
    }
}
