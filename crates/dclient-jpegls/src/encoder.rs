//! The encoder: one scan (a single component, or every component line- or
//! sample-interleaved) with the default coding parameters, coded as T.87 Annex A says,
//! the mirror of the decoder on the same context model.

use crate::context::{default_thresholds, predict, Defaults, Model, Params, DEFAULT_RESET, J};
use crate::error::{JpegLsError, Result};
use crate::markers::{self, Preset};
use crate::{FrameInfo, Interleave};

/// Writes bits most significant first, inserting a 0 bit after every 0xFF byte so that
/// no marker can appear in the coded data (T.87 A.1).
struct BitWriter {
    out: Vec<u8>,
    /// Pending bits, in the low `n` bits.
    acc: u64,
    n: u32,
    last_ff: bool,
}

impl BitWriter {
    /// Appends the low `n` (0..=32) bits of `v`; `v` has no bits above them.
    #[inline(always)]
    fn put(&mut self, v: u32, n: u32) {
        self.acc = (self.acc << n) | u64::from(v);
        self.n += n;
        if self.n >= 32 {
            self.flush();
        }
    }

    /// `n` zero bits.
    #[inline(always)]
    fn zeros(&mut self, mut n: u32) {
        while n > 32 {
            self.put(0, 32);
            n -= 32;
        }
        self.put(0, n);
    }

    /// Emits whole bytes: 8 bits, or 7 after a 0xFF (its high bit is the stuffed 0).
    #[inline]
    fn flush(&mut self) {
        loop {
            if self.last_ff {
                if self.n < 7 {
                    break;
                }
                self.n -= 7;
                self.out.push((self.acc >> self.n) as u8 & 0x7F);
                self.last_ff = false;
            } else {
                if self.n < 8 {
                    break;
                }
                self.n -= 8;
                let b = (self.acc >> self.n) as u8;
                self.out.push(b);
                self.last_ff = b == 0xFF;
            }
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    /// Value `v` with the limited-length Golomb code LG(k, glimit) (T.87 A.5.3).
    #[inline(always)]
    fn golomb(&mut self, v: u32, k: u32, glimit: u32, qbpp: u32) {
        let high = v >> k;
        let max_unary = glimit - qbpp - 1;
        if high < max_unary {
            let low = v & ((1u32 << k) - 1);
            if high + k < 32 {
                // high zeros, a 1, then the k low bits, in one go.
                self.put((1 << k) | low, high + k + 1);
            } else {
                self.zeros(high);
                self.put(1, 1);
                self.put(low, k);
            }
        } else {
            self.zeros(max_unary);
            self.put(1, 1);
            self.put(v - 1, qbpp);
        }
    }

    /// Pads the last byte with zero bits; after a final 0xFF adds a 0x00 so that the
    /// marker which follows is not read as stuffed data (as CharLS does).
    fn finish(mut self) -> Vec<u8> {
        self.flush();
        if self.n > 0 {
            let need = if self.last_ff { 7 } else { 8 };
            self.acc <<= need - self.n;
            self.n = need;
            self.flush();
        }
        if self.last_ff {
            self.out.push(0);
        }
        self.out
    }
}

/// Codes the lines of one scan.
struct ScanEncoder {
    m: Model,
    w: BitWriter,
    width: usize,
}

impl ScanEncoder {
    /// One line of one component: `cur[1..=width]` holds the samples and is replaced by
    /// their reconstruction (equal for NEAR = 0); the edges as in the decoder.
    fn line(&mut self, prev: &mut [i32], cur: &mut [i32], run_index: &mut usize) {
        let w = self.width;
        prev[w + 1] = prev[w];
        cur[0] = prev[1];
        let mut x = 1;
        while x <= w {
            let (ra, rb, rc, rd) = (cur[x - 1], prev[x], prev[x - 1], prev[x + 1]);
            let q = self.m.context(rd - rb, rb - rc, rc - ra);
            if q != 0 {
                cur[x] = self.regular(q, predict(ra, rb, rc), cur[x]);
                x += 1;
            } else {
                x += self.run(prev, cur, x, 1, run_index);
            }
        }
    }

    /// One line of `nc` sample-interleaved components (pixel x at `x * nc..`).
    fn line_interleaved(
        &mut self,
        prev: &mut [i32],
        cur: &mut [i32],
        nc: usize,
        run_index: &mut usize,
    ) {
        let w = self.width;
        for c in 0..nc {
            prev[(w + 1) * nc + c] = prev[w * nc + c];
            cur[c] = prev[nc + c];
        }
        let mut x = 1;
        let mut qs = [0i32; markers::MAX_COMPONENTS];
        while x <= w {
            let mut all_zero = true;
            for (c, q) in qs.iter_mut().enumerate().take(nc) {
                let i = x * nc + c;
                let (ra, rb, rc, rd) = (cur[i - nc], prev[i], prev[i - nc], prev[i + nc]);
                *q = self.m.context(rd - rb, rb - rc, rc - ra);
                all_zero &= *q == 0;
            }
            if all_zero {
                x += self.run(prev, cur, x, nc, run_index);
            } else {
                for (c, &q) in qs.iter().enumerate().take(nc) {
                    let i = x * nc + c;
                    let px = predict(cur[i - nc], prev[i], prev[i - nc]);
                    cur[i] = self.regular(q, px, cur[i]);
                }
                x += 1;
            }
        }
    }

    /// A regular-mode sample `ix` in context `q` with prediction `px` (T.87 A.4 to A.6);
    /// returns its reconstruction.
    #[inline(always)]
    fn regular(&mut self, q: i32, px: i32, ix: i32) -> i32 {
        let p = self.m.p;
        let sign = if q < 0 { -1 } else { 1 };
        let ctx = &mut self.m.regular[q.unsigned_abs() as usize];
        let px = p.clamp(px + sign * ctx.c);
        let (e, rx) = if p.near == 0 {
            (p.modulo(sign * (ix - px)), ix)
        } else {
            let e = p.modulo(p.quantize(sign * (ix - px)));
            (e, p.reconstruct(px, sign * e))
        };
        let k = ctx.k();
        let merr = if p.near == 0 && k == 0 && ctx.inverted_map() {
            if e >= 0 {
                2 * e + 1
            } else {
                -2 * (e + 1)
            }
        } else if e >= 0 {
            2 * e
        } else {
            -2 * e - 1
        };
        // A stays far below its bound for input samples within MAXVAL.
        let _ = ctx.update(e, p.step, p.reset);
        self.w.golomb(merr as u32, k, p.limit, p.qbpp);
        rx
    }

    /// Run mode from pixel `x` (T.87 A.7.1): the run of pixels within NEAR of Ra, its
    /// length code, then the interruption pixel unless the line ended. Returns the pixels
    /// done.
    fn run(
        &mut self,
        prev: &[i32],
        cur: &mut [i32],
        x: usize,
        nc: usize,
        run_index: &mut usize,
    ) -> usize {
        let near = self.m.p.near;
        let ra_at = (x - 1) * nc;
        let mut n = 0;
        while x + n <= self.width {
            let at = (x + n) * nc;
            if (0..nc).any(|c| (cur[at + c] - cur[ra_at + c]).abs() > near) {
                break;
            }
            for c in 0..nc {
                cur[at + c] = cur[ra_at + c];
            }
            n += 1;
        }
        let eol = x + n > self.width;
        let mut rest = n;
        while rest >= 1 << J[*run_index] {
            self.w.put(1, 1);
            rest -= 1 << J[*run_index];
            if *run_index < 31 {
                *run_index += 1;
            }
        }
        if eol {
            if rest > 0 {
                self.w.put(1, 1);
            }
            return n;
        }
        // A 0, then the rest of the run in J[RUNindex] bits.
        self.w.put(rest as u32, J[*run_index] + 1);
        let at = (x + n) * nc;
        if nc == 1 {
            cur[at] = self.interruption(cur[at], cur[ra_at], prev[at], *run_index);
        } else {
            for c in 0..nc {
                let (ix, ra, rb) = (cur[at + c], cur[ra_at + c], prev[at + c]);
                cur[at + c] = self.interruption_sample(ix, ra, rb, 0, *run_index);
            }
        }
        *run_index = run_index.saturating_sub(1);
        n + 1
    }

    /// The interruption sample of a single-component line (T.87 A.7.2): RItype 1 when
    /// Ra and Rb are within NEAR.
    fn interruption(&mut self, ix: i32, ra: i32, rb: i32, run_index: usize) -> i32 {
        let ritype = usize::from((ra - rb).abs() <= self.m.p.near);
        self.interruption_sample(ix, ra, rb, ritype, run_index)
    }

    /// Codes an interruption sample with RItype `ritype` (1: predicted by Ra; 0: by Rb,
    /// the error negated when Ra > Rb); in sample-interleaved mode every component is
    /// RItype 0, as the decoder (and CharLS) expects.
    fn interruption_sample(
        &mut self,
        ix: i32,
        ra: i32,
        rb: i32,
        ritype: usize,
        run_index: usize,
    ) -> i32 {
        let p = self.m.p;
        let (px, sign) = if ritype == 1 { (ra, 1) } else { (rb, if rb < ra { -1 } else { 1 }) };
        let (e, rx) = if p.near == 0 {
            (p.modulo(sign * (ix - px)), ix)
        } else {
            let e = p.modulo(p.quantize(sign * (ix - px)));
            (e, p.reconstruct(px, sign * e))
        };
        let ctx = &mut self.m.run[ritype];
        let k = ctx.k();
        let em = 2 * e.abs() - ctx.ritype - ctx.map(e, k);
        let _ = ctx.update(e, em, p.reset);
        self.w.golomb(em as u32, k, p.limit - J[run_index] - 1, p.qbpp);
        rx
    }
}

/// Checks `info` and the buffer, and encodes the frame as one scan.
pub(crate) fn encode(pixels: &[u8], info: &FrameInfo, near: u8) -> Result<Vec<u8>> {
    let bad = |s: String| Err(JpegLsError::InvalidInput(s));
    let bad_params = |s: String| JpegLsError::InvalidInput(s);
    let FrameInfo { width, height, bits_per_sample: bits, components: nc, interleave } = *info;
    if !(1..=65535).contains(&width) || !(1..=65535).contains(&height) {
        return bad(format!("{width}x{height}: width and height must be 1 to 65535"));
    }
    if !(2..=16).contains(&bits) {
        return bad(format!("{bits} bits per sample: 2 to 16 are allowed"));
    }
    if !(1..=markers::MAX_COMPONENTS as u8).contains(&nc) {
        return bad(format!("{nc} components: 1 to {} are allowed", markers::MAX_COMPONENTS));
    }
    let ilv = match (nc, interleave) {
        (1, _) => 0,
        (_, Interleave::Line) => 1,
        (_, Interleave::Sample) => 2,
        (_, Interleave::None) => {
            return bad(format!(
                "interleave None with {nc} components: use Line or Sample (one scan per \
                 component is mis-decoded by GDCM 3.0)"
            ))
        }
    };
    let bps = if bits > 8 { 2 } else { 1 };
    let (w, h, nc) = (width as usize, height as usize, usize::from(nc));
    let expected = w * h * nc * bps;
    if pixels.len() != expected {
        return bad(format!(
            "{} bytes of pixels for {width}x{height}x{nc} at {bits} bits ({expected} expected)",
            pixels.len()
        ));
    }
    let maxval = (1i32 << bits) - 1;
    let params = Params::new(bits, &Preset::default(), near, Defaults::Standard)
        .map_err(|e| bad_params(format!("NEAR {near} for {bits} bits: {e}")))?;

    let mut out = Vec::with_capacity(expected / 2 + 64);
    markers::write_header(&mut out, bits, width as u16, height as u16, nc as u8);
    if !(128..=4095).contains(&maxval) {
        // The thresholds are the defaults, written out where decoders disagree on them:
        // below MAXVAL 128 CharLS before 2.1 (DCMTK 3.6) computes others; above 4095
        // DCMTK and GDCM write them too, and so our streams equal theirs byte for byte.
        let (t1, t2, t3) = default_thresholds(maxval, i32::from(near));
        let preset = Preset {
            maxval: maxval as u16,
            t1: t1 as u16,
            t2: t2 as u16,
            t3: t3 as u16,
            reset: DEFAULT_RESET as u16,
        };
        markers::write_preset(&mut out, &preset);
    }
    let ids: Vec<u8> = (1..=nc as u8).collect();
    markers::write_scan_header(&mut out, &ids, near, ilv);

    let mut enc = ScanEncoder {
        m: Model::new(params),
        w: BitWriter { out, acc: 0, n: 0, last_ff: false },
        width: w,
    };
    let sample = |i: usize| -> i32 {
        let v = if bps == 1 {
            i32::from(pixels[i])
        } else {
            i32::from(u16::from_le_bytes([pixels[2 * i], pixels[2 * i + 1]]))
        };
        v & maxval
    };
    let (planes, stride) = if ilv == 2 { (1, nc) } else { (nc, 1) };
    let line_len = (w + 2) * stride;
    let mut prev = vec![vec![0i32; line_len]; planes];
    let mut cur = vec![vec![0i32; line_len]; planes];
    let mut run_index = [0usize; markers::MAX_COMPONENTS];
    for y in 0..h {
        let row = y * w * nc;
        for plane in 0..planes {
            let line = &mut cur[plane];
            if ilv == 2 {
                for (i, v) in line[nc..(w + 1) * nc].iter_mut().enumerate() {
                    *v = sample(row + i);
                }
            } else {
                for (x, v) in line[1..=w].iter_mut().enumerate() {
                    *v = sample(row + x * nc + plane);
                }
            }
            if ilv == 2 {
                enc.line_interleaved(&mut prev[plane], line, nc, &mut run_index[0]);
            } else {
                enc.line(&mut prev[plane], line, &mut run_index[plane]);
            }
            std::mem::swap(&mut prev[plane], line);
        }
    }
    let mut out = enc.w.finish();
    markers::write_end(&mut out);
    Ok(out)
}
