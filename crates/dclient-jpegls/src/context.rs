//! The context model the decoder and the encoder share (T.87 Annex A): the coding
//! parameters (A.2.1, C.2.4.1.1), gradient quantization and context numbers (A.3),
//! prediction (A.4), error mapping (A.5), the regular contexts' A, B, C, N with bias
//! correction (A.6), and the run mode's J table and run-interruption contexts (A.7).
//!
//! Both sides run exactly these functions, so what one reconstructs the other does too.

use crate::markers::Preset;

/// J\[RUNindex\]: the order of the run-length codes (T.87 A.2.1, A.7.1.1).
pub(crate) const J: [u32; 32] = [
    0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13,
    14, 15,
];

/// MIN_C and MAX_C, the bounds of the bias correction C\[Q\] (T.87 3.3, A.6.2).
const MIN_C: i32 = -128;
const MAX_C: i32 = 127;

/// An implementation bound on A\[Q\]: a valid stream with the default RESET stays below
/// 2^22; reaching 2^30 means the coded data is garbage (and i32 arithmetic stays exact).
const MAX_A: i32 = 1 << 30;

/// The coding parameters of one scan (T.87 A.2.1 and C.2.4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    /// MAXVAL: the largest sample value.
    pub maxval: i32,
    /// NEAR: the largest allowed reconstruction error (0: lossless).
    pub near: i32,
    /// 2 * NEAR + 1, the quantization step of prediction errors.
    pub step: i32,
    /// RANGE: the number of quantized error values.
    pub range: i32,
    /// qbpp: bits of a mapped error value in an escape code.
    pub qbpp: u32,
    /// LIMIT: the longest Golomb code of a regular-mode sample.
    pub limit: u32,
    /// T1, T2, T3: the gradient thresholds.
    pub t1: i32,
    /// T2.
    pub t2: i32,
    /// T3.
    pub t3: i32,
    /// RESET: when A, B and N are halved.
    pub reset: i32,
}

/// ceil(log2(n)) for n >= 1.
fn log2_ceil(n: i32) -> u32 {
    let mut x = 0;
    while (1i64 << x) < i64::from(n) {
        x += 1;
    }
    x
}

/// The default thresholds T1, T2, T3 for MAXVAL and NEAR (T.87 C.2.4.1.1.1, Figure C.3).
pub(crate) fn default_thresholds(maxval: i32, near: i32) -> (i32, i32, i32) {
    // CLAMP(i, j, MAXVAL) of Figure C.3.
    let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
    const BASIC_T1: i32 = 3;
    const BASIC_T2: i32 = 7;
    const BASIC_T3: i32 = 21;
    if maxval >= 128 {
        let factor = (maxval.min(4095) + 128) / 256;
        let t1 = clamp(factor * (BASIC_T1 - 2) + 2 + 3 * near, near + 1);
        let t2 = clamp(factor * (BASIC_T2 - 3) + 3 + 5 * near, t1);
        let t3 = clamp(factor * (BASIC_T3 - 4) + 4 + 7 * near, t2);
        (t1, t2, t3)
    } else {
        let factor = 256 / (maxval + 1);
        let t1 = clamp((BASIC_T1 / factor + 3 * near).max(2), near + 1);
        let t2 = clamp((BASIC_T2 / factor + 5 * near).max(3), t1);
        let t3 = clamp((BASIC_T3 / factor + 7 * near).max(4), t2);
        (t1, t2, t3)
    }
}

/// Which formula gives the default thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defaults {
    /// T.87 C.2.4.1.1.1, as the standard says.
    Standard,
    /// CharLS before 2.1 (bundled in DCMTK 3.6): the MAXVAL >= 128 formula for every
    /// MAXVAL (CharLS issue #51). Differs from the standard only below MAXVAL 128.
    CharLs1,
}

/// The thresholds CharLS before 2.1 computed: Figure C.3's first branch for every MAXVAL.
fn charls1_thresholds(maxval: i32, near: i32) -> (i32, i32, i32) {
    let clamp = |i: i32, j: i32| if i > maxval || i < j { j } else { i };
    let factor = (maxval.min(4095) + 128) / 256;
    let t1 = clamp(factor + 2 + 3 * near, near + 1);
    let t2 = clamp(factor * 4 + 3 + 5 * near, t1);
    let t3 = clamp(factor * 17 + 4 + 7 * near, t2);
    (t1, t2, t3)
}

/// RESET's default (T.87 C.2.4.1.1, Table C.2).
pub(crate) const DEFAULT_RESET: i32 = 64;

impl Params {
    /// The parameters of a scan of `bits`-bit samples with `near`, after the preset
    /// coding parameters `preset` (zero fields: defaults), each checked against the
    /// ranges of T.87 Table C.1 and C.2.3. MAXVAL is the preset's when given, as the
    /// standard says (CharLS always uses 2^P - 1; the two agree for every stream whose
    /// LSE gives MAXVAL = 2^P - 1, which is what DCMTK and GDCM write).
    pub fn new(bits: u8, preset: &Preset, near: u8, defaults: Defaults) -> Result<Self, String> {
        let full = (1i32 << bits) - 1;
        let maxval = if preset.maxval == 0 { full } else { i32::from(preset.maxval) };
        if maxval > full {
            return Err(format!("MAXVAL {maxval} above 2^P - 1 = {full} for P = {bits}"));
        }
        let near = i32::from(near);
        if near > (maxval / 2).min(255) {
            return Err(format!(
                "NEAR {near} above min(255, MAXVAL/2) = {}",
                (maxval / 2).min(255)
            ));
        }
        let (d1, d2, d3) = match defaults {
            Defaults::Standard => default_thresholds(maxval, near),
            Defaults::CharLs1 => charls1_thresholds(maxval, near),
        };
        let pick = |v: u16, d: i32| if v == 0 { d } else { i32::from(v) };
        let (t1, t2, t3) = (pick(preset.t1, d1), pick(preset.t2, d2), pick(preset.t3, d3));
        if preset.t1 != 0 && !(near + 1..=maxval).contains(&t1) {
            return Err(format!("T1 = {t1} outside NEAR+1..=MAXVAL"));
        }
        if preset.t2 != 0 && !(t1..=maxval).contains(&t2) {
            return Err(format!("T2 = {t2} outside T1..=MAXVAL"));
        }
        if preset.t3 != 0 && !(t2..=maxval).contains(&t3) {
            return Err(format!("T3 = {t3} outside T2..=MAXVAL"));
        }
        let reset = pick(preset.reset, DEFAULT_RESET);
        if preset.reset != 0 && !(3..=maxval.max(255)).contains(&reset) {
            return Err(format!("RESET = {reset} outside 3..=max(255, MAXVAL)"));
        }
        let step = 2 * near + 1;
        let range = (maxval + 2 * near) / step + 1;
        let qbpp = log2_ceil(range);
        let bpp = log2_ceil(maxval + 1).max(2);
        let limit = 2 * (bpp + bpp.max(8));
        Ok(Self { maxval, near, step, range, qbpp, limit, t1, t2, t3, reset })
    }

    /// A prediction clamped to 0..=MAXVAL (T.87 A.4.2, Code segment A.5).
    #[inline(always)]
    pub fn clamp(&self, v: i32) -> i32 {
        v.clamp(0, self.maxval)
    }

    /// The quantized prediction error (T.87 A.4.4, Code segment A.8).
    #[inline(always)]
    pub fn quantize(&self, e: i32) -> i32 {
        if e > 0 {
            (e + self.near) / self.step
        } else {
            -((self.near - e) / self.step)
        }
    }

    /// The error reduced modulo RANGE (T.87 A.4.5, Code segment A.9).
    #[inline(always)]
    pub fn modulo(&self, mut e: i32) -> i32 {
        if e < 0 {
            e += self.range;
        }
        if e >= (self.range + 1) / 2 {
            e -= self.range;
        }
        e
    }

    /// The reconstructed value from a prediction and a (signed, quantized) error: the
    /// decoder's computation (T.87 A.4.4 and F.1 step 13 with the modulo wrap).
    #[inline(always)]
    pub fn reconstruct(&self, px: i32, e: i32) -> i32 {
        let mut v = px + e * self.step;
        if v < -self.near {
            v += self.range * self.step;
        } else if v > self.maxval + self.near {
            v -= self.range * self.step;
        }
        self.clamp(v)
    }
}

/// The median edge detector (T.87 A.4.1, Code segment A.5).
#[inline(always)]
pub(crate) fn predict(ra: i32, rb: i32, rc: i32) -> i32 {
    if rc >= ra.max(rb) {
        ra.min(rb)
    } else if rc <= ra.min(rb) {
        ra.max(rb)
    } else {
        ra + rb - rc
    }
}

/// The variables of one regular-mode context (T.87 A.2.1: A, B, C, N of context Q).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Regular {
    /// A\[Q\]: accumulated magnitudes of errors.
    pub a: i32,
    /// B\[Q\]: accumulated errors (bias).
    pub b: i32,
    /// C\[Q\]: the bias correction of the prediction.
    pub c: i32,
    /// N\[Q\]: occurrences.
    pub n: i32,
}

impl Regular {
    /// The Golomb parameter k (T.87 A.5.1, Code segment A.10).
    #[inline(always)]
    pub fn k(&self) -> u32 {
        golomb_k(self.n, self.a)
    }

    /// Whether the error mapping is inverted (T.87 A.5.2, Code segment A.11: NEAR = 0,
    /// k = 0 and 2 B\[Q\] <= -N\[Q\]); the caller checks NEAR and k.
    #[inline(always)]
    pub fn inverted_map(&self) -> bool {
        2 * self.b + self.n - 1 < 0
    }

    /// Updates A, B, N and then B, C (T.87 A.6.1 and A.6.2, Code segments A.12, A.13)
    /// with the quantized error `e`. False when A leaves the bound of a valid stream.
    #[inline(always)]
    pub fn update(&mut self, e: i32, step: i32, reset: i32) -> bool {
        let mut a = self.a + e.abs();
        let mut b = self.b + e * step;
        let mut n = self.n;
        if a >= MAX_A {
            return false;
        }
        if n == reset {
            a >>= 1;
            b >>= 1;
            n >>= 1;
        }
        n += 1;
        self.a = a;
        self.n = n;
        if b + n <= 0 {
            b += n;
            if b <= -n {
                b = -n + 1;
            }
            if self.c > MIN_C {
                self.c -= 1;
            }
        } else if b > 0 {
            b -= n;
            if b > 0 {
                b = 0;
            }
            if self.c < MAX_C {
                self.c += 1;
            }
        }
        self.b = b;
        true
    }
}

/// The least k with N << k >= A (T.87 Code segments A.10 and A.18); A < 2^31 and N >= 1
/// bound it by 31.
#[inline(always)]
fn golomb_k(n: i32, a: i32) -> u32 {
    let (n, a) = (u64::from(n.max(1) as u32), u64::from(a.max(0) as u32));
    let mut k = 0;
    while (n << k) < a {
        k += 1;
    }
    k
}

/// The variables of a run-interruption context (T.87 A.7.2: A, N, Nn of context 365 or
/// 366, and RItype).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunContext {
    /// A\[Q\].
    pub a: i32,
    /// N\[Q\].
    pub n: i32,
    /// Nn\[Q\]: occurrences of negative errors.
    pub nn: i32,
    /// RItype: 1 when the interruption sample's Ra and Rb were within NEAR.
    pub ritype: i32,
}

impl RunContext {
    /// k for the interruption sample (T.87 A.7.2.1, Code segment A.18).
    #[inline]
    pub fn k(&self) -> u32 {
        golomb_k(self.n, self.a + (self.n >> 1) * self.ritype)
    }

    /// `map` of T.87 Code segment A.21 for error `e` and parameter `k`.
    #[inline]
    pub fn map(&self, e: i32, k: u32) -> i32 {
        let m = (k == 0 && e > 0 && 2 * self.nn < self.n)
            || (e < 0 && 2 * self.nn >= self.n)
            || (e < 0 && k != 0);
        i32::from(m)
    }

    /// The error from EMErrval + RItype (the inverse of Code segments A.20 and A.21).
    #[inline]
    pub fn unmap(&self, temp: i32, k: u32) -> i32 {
        let map = temp & 1;
        let abs = (temp + map) / 2;
        if (k != 0 || 2 * self.nn >= self.n) == (map == 1) {
            -abs
        } else {
            abs
        }
    }

    /// Updates A, N, Nn (T.87 A.7.2.2, Code segment A.23). False when A leaves the bound
    /// of a valid stream.
    #[inline]
    pub fn update(&mut self, e: i32, em: i32, reset: i32) -> bool {
        if e < 0 {
            self.nn += 1;
        }
        self.a += (em + 1 - self.ritype) >> 1;
        if self.a >= MAX_A {
            return false;
        }
        if self.n == reset {
            self.a >>= 1;
            self.n >>= 1;
            self.nn >>= 1;
        }
        self.n += 1;
        true
    }
}

/// The context model of one scan: parameters, the gradient quantizer, 365 regular
/// contexts (index |Q|, Q = 81 Q1 + 9 Q2 + Q3) and the two run-interruption contexts.
pub(crate) struct Model {
    /// The scan's coding parameters.
    pub p: Params,
    /// Q(D) for D in -T3..=T3, at index D + T3 (T.87 A.3.3, Code segment A.4); beyond
    /// T3, Q is -4 or 4, what the ends of the table hold, so D is clamped into it.
    qtab: Vec<i8>,
    /// A, B, C, N of the regular contexts.
    pub regular: [Regular; 365],
    /// Contexts 365 (RItype 0) and 366 (RItype 1).
    pub run: [RunContext; 2],
}

impl Model {
    /// A model for `p`, initialised (T.87 A.2.1).
    pub fn new(p: Params) -> Self {
        let qtab = (-p.t3..=p.t3).map(|d| quantize_gradient(&p, d)).collect();
        let mut m = Self {
            p,
            qtab,
            regular: [Regular { a: 0, b: 0, c: 0, n: 1 }; 365],
            run: [RunContext { a: 0, n: 1, nn: 0, ritype: 0 }; 2],
        };
        m.reset();
        m
    }

    /// Initialises every context (T.87 A.2.1 steps 1 and 2): at the start of a scan and
    /// after each restart marker.
    pub fn reset(&mut self) {
        let a = ((self.p.range + 32) / 64).max(2);
        self.regular = [Regular { a, b: 0, c: 0, n: 1 }; 365];
        self.run =
            [RunContext { a, n: 1, nn: 0, ritype: 0 }, RunContext { a, n: 1, nn: 0, ritype: 1 }];
    }

    /// The signed context number 81 Q1 + 9 Q2 + Q3 of gradients D1, D2, D3 (T.87 A.3):
    /// negative exactly when the first non-zero Qi is (then SIGN = -1, A.3.4); zero
    /// selects run mode in a single-component line.
    #[inline(always)]
    pub fn context(&self, d1: i32, d2: i32, d3: i32) -> i32 {
        81 * self.q(d1) + 9 * self.q(d2) + self.q(d3)
    }

    #[inline(always)]
    fn q(&self, d: i32) -> i32 {
        let i = (d.clamp(-self.p.t3, self.p.t3) + self.p.t3) as usize;
        // Always in the table; the fallback is never taken.
        i32::from(self.qtab.get(i).copied().unwrap_or(0))
    }
}

/// Q(D) (T.87 A.3.3, Code segment A.4).
fn quantize_gradient(p: &Params, d: i32) -> i8 {
    if d <= -p.t3 {
        -4
    } else if d <= -p.t2 {
        -3
    } else if d <= -p.t1 {
        -2
    } else if d < -p.near {
        -1
    } else if d <= p.near {
        0
    } else if d < p.t1 {
        1
    } else if d < p.t2 {
        2
    } else if d < p.t3 {
        3
    } else {
        4
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_thresholds_match_table_c3_and_dcmtk() {
        // T.87 Table C.3: MAXVAL 255, NEAR 0 gives 3, 7, 21.
        assert_eq!(default_thresholds(255, 0), (3, 7, 21));
        // DCMTK writes these in its LSE for 16-bit data: lossless, and NEAR = 3.
        assert_eq!(default_thresholds(65535, 0), (18, 67, 276));
        assert_eq!(default_thresholds(65535, 3), (27, 82, 297));
        // Small MAXVAL: FACTOR = 256 / (MAXVAL + 1).
        assert_eq!(default_thresholds(3, 0), (2, 3, 3));
        assert_eq!(default_thresholds(15, 0), (2, 3, 4));
    }

    #[test]
    fn charls1_defaults_differ_only_below_maxval_128() {
        for maxval in [128, 255, 1023, 4095, 4096, 65535] {
            for near in [0, 1, 3, 10] {
                assert_eq!(charls1_thresholds(maxval, near), default_thresholds(maxval, near));
            }
        }
        // 6 and 7 bits: T3 is 4 for CharLS 1, 5 and 10 in the standard.
        assert_eq!(charls1_thresholds(63, 0), (2, 3, 4));
        assert_eq!(default_thresholds(63, 0), (2, 3, 5));
        assert_eq!(default_thresholds(127, 0), (2, 3, 10));
    }

    #[test]
    fn parameters_of_lossless_16_bit() {
        let p = Params::new(16, &Preset::default(), 0, Defaults::Standard).unwrap();
        assert_eq!((p.range, p.qbpp, p.limit, p.reset), (65536, 16, 64, 64));
        let p = Params::new(8, &Preset::default(), 3, Defaults::Standard).unwrap();
        assert_eq!((p.range, p.qbpp, p.limit), (38, 6, 32));
    }

    #[test]
    fn preset_values_outside_table_c1_are_refused() {
        assert!(Params::new(
            8,
            &Preset { maxval: 256, ..Preset::default() },
            0,
            Defaults::Standard
        )
        .is_err());
        assert!(Params::new(
            8,
            &Preset { t1: 9, t2: 8, ..Preset::default() },
            0,
            Defaults::Standard
        )
        .is_err());
        assert!(Params::new(8, &Preset { reset: 2, ..Preset::default() }, 0, Defaults::Standard)
            .is_err());
        assert!(Params::new(8, &Preset::default(), 128, Defaults::Standard).is_err());
    }

    #[test]
    fn the_clamped_table_quantizes_every_gradient_as_code_segment_a4() {
        for (bits, near, preset) in [
            (8, 0, Preset::default()),
            (16, 3, Preset::default()),
            (12, 0, Preset { t1: 2, t2: 2, t3: 2, ..Preset::default() }),
        ] {
            let p = Params::new(bits, &preset, near, Defaults::Standard).unwrap();
            let m = Model::new(p);
            for d in -p.maxval..=p.maxval {
                assert_eq!(m.q(d), i32::from(quantize_gradient(&p, d)), "D = {d}");
            }
        }
    }

    #[test]
    fn context_sign_is_the_first_nonzero_gradient() {
        let m = Model::new(Params::new(8, &Preset::default(), 0, Defaults::Standard).unwrap());
        assert_eq!(m.context(0, 0, 0), 0);
        assert!(m.context(-1, 30, 30) < 0);
        assert!(m.context(0, 1, -30) > 0);
        assert_eq!(m.context(30, 30, 30), 364);
    }

    #[test]
    fn run_interruption_unmap_inverts_map() {
        for (nn, n) in [(0, 1), (1, 2), (3, 4), (0, 5)] {
            for ritype in 0..2 {
                let ctx = RunContext { a: 4, n, nn, ritype };
                for k in 0..3 {
                    for e in -20i32..=20 {
                        if ritype == 1 && e == 0 {
                            continue;
                        }
                        let em = 2 * e.abs() - ritype - ctx.map(e, k);
                        assert_eq!(ctx.unmap(em + ritype, k), e, "e {e} k {k} ritype {ritype}");
                    }
                }
            }
        }
    }
}
