//! The decoder: the frame's marker segments in order (T.87 C.1), then each scan's
//! entropy-coded data line by line (T.87 Annex A and F.1), into one sample-interleaved
//! output buffer.
//!
//! Memory: the output is reserved once, after the frame header and before the first
//! scan, only when the declared size is within the caller's limit; it is then filled line
//! by line. Entropy-coded data that runs out is read as zero bits, and the line that used
//! any of them fails as truncated, so a lying header costs at most one line of work past
//! the data.

use crate::context::{predict, Defaults, Model, Params, J};
use crate::error::{invalid, unsupported, JpegLsError, Result};
use crate::markers::{self, FrameHeader, Parser, Preset, ScanHeader, Segment};
use crate::{FrameInfo, Interleave};

/// Reads the bits of one segment of entropy-coded data (the bytes between two markers),
/// removing the stuffed 0 bit after each 0xFF (T.87 A.1). Past the segment it gives zero
/// bits and counts them, so the caller can tell a truncated stream from a valid one.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// First byte of the segment.
    start: usize,
    /// Next byte to load.
    pos: usize,
    /// End of the segment (the marker's 0xFF).
    end: usize,
    /// The next 0xFF at or after `pos`, or `end`.
    ff: usize,
    /// Bits not consumed yet, most significant first.
    cache: u64,
    /// How many of `cache`'s high bits are valid.
    bits: u32,
    /// Zero bits put into the cache past the segment's end.
    pad: u32,
}

impl<'a> BitReader<'a> {
    /// A reader of the segment `data[start..end]`.
    pub fn new(data: &'a [u8], start: usize, end: usize) -> Self {
        let mut r = Self { data, start, pos: start, end, ff: start, cache: 0, bits: 0, pad: 0 };
        r.find_ff();
        r.fill();
        r
    }

    fn find_ff(&mut self) {
        let seg = self.data.get(self.pos..self.end).unwrap_or(&[]);
        self.ff = self.pos + seg.iter().position(|&b| b == 0xFF).unwrap_or(seg.len());
    }

    /// Tops the cache up to at least 57 valid bits.
    #[inline]
    fn fill(&mut self) {
        if self.pos + 8 <= self.ff {
            // No 0xFF in the next 8 bytes: no stuffing to remove.
            if let Some(b) = self.data.get(self.pos..self.pos + 8) {
                let word = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                self.cache |= word >> self.bits;
                let bytes = (64 - self.bits) / 8;
                self.pos += bytes as usize;
                self.bits += bytes * 8;
                return;
            }
        }
        self.fill_slow();
    }

    #[cold]
    fn fill_slow(&mut self) {
        while self.bits <= 56 {
            let Some(&b) = self.data.get(self.pos).filter(|_| self.pos < self.end) else {
                // Past the segment: zero bits, counted.
                self.pad += 64 - self.bits;
                self.bits = 64;
                return;
            };
            self.cache |= u64::from(b) << (56 - self.bits);
            self.pos += 1;
            self.bits += 8;
            if b == 0xFF {
                // The next byte's high bit is the stuffed 0: it lands on the 0xFF's last
                // bit (a 1), so 0xFF keeps its 8 bits and the next byte adds 7.
                self.bits -= 1;
            }
        }
        if self.pos > self.ff {
            self.find_ff();
        }
    }

    #[inline(always)]
    fn skip(&mut self, n: u32) {
        self.cache <<= n;
        self.bits -= n;
    }

    /// `n` bits (1..=31) as a number.
    #[inline(always)]
    fn take(&mut self, n: u32) -> u32 {
        if self.bits < n {
            self.fill();
        }
        let v = (self.cache >> (64 - n)) as u32;
        self.skip(n);
        v
    }

    /// One bit.
    #[inline(always)]
    fn bit(&mut self) -> bool {
        if self.bits == 0 {
            self.fill();
        }
        let b = self.cache >> 63 != 0;
        self.skip(1);
        b
    }

    /// A value coded with the limited-length Golomb code LG(k, glimit) (T.87 A.5.3):
    /// the unary high part, then k bits; or the escape of glimit - qbpp - 1 zeros, a 1,
    /// and value - 1 in qbpp bits. `None` for a code no encoder writes.
    #[inline(always)]
    fn golomb(&mut self, k: u32, glimit: u32, qbpp: u32) -> Option<u32> {
        if self.bits < 57 {
            self.fill();
        }
        // glimit - qbpp - 1 <= 55 for every valid parameter set: the unary part and its
        // terminating 1 are in the 57 bits of the cache.
        let max_unary = glimit.checked_sub(qbpp + 1)?;
        let zeros = self.cache.leading_zeros();
        if zeros < max_unary {
            self.skip(zeros + 1);
            if k == 0 {
                return Some(zeros);
            }
            let low = self.take(k);
            u32::try_from((u64::from(zeros) << k) | u64::from(low)).ok()
        } else if zeros == max_unary && max_unary < 57 {
            self.skip(max_unary + 1);
            Some(self.take(qbpp) + 1)
        } else {
            None
        }
    }

    /// True when the decoder used bits past the segment's end.
    pub fn overrun(&self) -> bool {
        self.pad > self.bits
    }

    /// True when the segment's bytes are all loaded: a code that fails now most likely
    /// failed on the zero bits past the end, i.e. on missing data.
    pub fn at_end(&self) -> bool {
        self.pad > 0
    }

    /// The byte the reader has reached (for error messages).
    pub fn offset(&self) -> usize {
        self.pos.min(self.end)
    }

    /// The offset just after the last bit consumed (CharLS's `get_actual_position`):
    /// the loaded bytes minus those whose bits are all still in the cache.
    pub fn consumed_end(&self) -> usize {
        let mut unconsumed = self.bits.saturating_sub(self.pad);
        let mut p = self.pos.min(self.end);
        while p > self.start {
            // A byte after 0xFF brought 7 bits, any other 8.
            let brought = if p - 1 > self.start && self.data[p - 2] == 0xFF { 7 } else { 8 };
            if unconsumed < brought {
                break;
            }
            unconsumed -= brought;
            p -= 1;
        }
        p
    }

    /// The end of the segment: where its marker is.
    pub fn end(&self) -> usize {
        self.end
    }
}

/// Why a line did not decode; turned into a [`JpegLsError`] with the scan and line.
#[derive(Debug)]
pub(crate) struct Bad;

/// The result of decoding part of a line.
type Step<T> = std::result::Result<T, Bad>;

/// Decodes the entropy-coded lines of one scan.
struct ScanDecoder<'a> {
    m: Model,
    r: BitReader<'a>,
    width: usize,
}

impl ScanDecoder<'_> {
    /// One line of one component (ILV none or line): `prev` and `cur` hold the line above
    /// and this line at indices 1..=width, with the edges at 0 and width + 1 (T.87 A.2.1:
    /// Ra of the first sample is Rb, Rd of the last is Rb).
    fn line(&mut self, prev: &mut [i32], cur: &mut [i32], run_index: &mut usize) -> Step<()> {
        let w = self.width;
        prev[w + 1] = prev[w];
        cur[0] = prev[1];
        let mut x = 1;
        while x <= w {
            let (ra, rb, rc, rd) = (cur[x - 1], prev[x], prev[x - 1], prev[x + 1]);
            let q = self.m.context(rd - rb, rb - rc, rc - ra);
            if q != 0 {
                cur[x] = self.regular(q, predict(ra, rb, rc))?;
                x += 1;
            } else {
                x += self.run(&prev[..], cur, x, 1, run_index)?;
            }
        }
        Ok(())
    }

    /// One line of `nc` sample-interleaved components (ILV sample): pixel x at
    /// `x * nc..(x + 1) * nc`. Run mode only when every component's context is 0.
    fn line_interleaved(
        &mut self,
        prev: &mut [i32],
        cur: &mut [i32],
        nc: usize,
        run_index: &mut usize,
    ) -> Step<()> {
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
                x += self.run(&prev[..], cur, x, nc, run_index)?;
            } else {
                for (c, &q) in qs.iter().enumerate().take(nc) {
                    let i = x * nc + c;
                    cur[i] = self.regular(q, predict(cur[i - nc], prev[i], prev[i - nc]))?;
                }
                x += 1;
            }
        }
        Ok(())
    }

    /// A regular-mode sample in context `q` with prediction `px` (T.87 A.4 to A.6, F.1).
    #[inline(always)]
    fn regular(&mut self, q: i32, px: i32) -> Step<i32> {
        let p = self.m.p;
        let sign = if q < 0 { -1 } else { 1 };
        let ctx = &mut self.m.regular[q.unsigned_abs() as usize];
        let px = p.clamp(px + sign * ctx.c);
        let k = ctx.k();
        let merr = self.r.golomb(k, p.limit, p.qbpp).ok_or(Bad)?;
        // A valid MErrval is at most RANGE + 1.
        if merr > 2 * p.range as u32 {
            return Err(Bad);
        }
        let merr = merr as i32;
        let mut e = if merr & 1 == 0 { merr >> 1 } else { -((merr + 1) >> 1) };
        if p.near == 0 && k == 0 && ctx.inverted_map() {
            e = -e - 1;
        }
        if !ctx.update(e, p.step, p.reset) {
            return Err(Bad);
        }
        Ok(p.reconstruct(px, sign * e))
    }

    /// Run mode from pixel `x` (T.87 A.7, F.1 steps 15-17): the run length, then, unless
    /// the run reached the end of the line, the interruption pixel. Returns the pixels done.
    fn run(
        &mut self,
        prev: &[i32],
        cur: &mut [i32],
        x: usize,
        nc: usize,
        run_index: &mut usize,
    ) -> Step<usize> {
        let remaining = self.width + 1 - x;
        let mut n = 0;
        while self.r.bit() {
            let full = 1usize << J[*run_index];
            let count = full.min(remaining - n);
            n += count;
            if count == full && *run_index < 31 {
                *run_index += 1;
            }
            if n == remaining {
                break;
            }
        }
        if n != remaining && J[*run_index] > 0 {
            n += self.r.take(J[*run_index]) as usize;
        }
        if n > remaining {
            return Err(Bad);
        }
        // The run's pixels all take Ra's value.
        let ra_at = (x - 1) * nc;
        for i in x * nc..(x + n) * nc {
            cur[i] = cur[ra_at + i % nc];
        }
        if n == remaining {
            return Ok(n);
        }
        let at = (x + n) * nc;
        if nc == 1 {
            cur[at] = self.interruption(cur[ra_at], prev[at], *run_index)?;
        } else {
            for c in 0..nc {
                cur[at + c] =
                    self.interruption_component(cur[ra_at + c], prev[at + c], *run_index)?;
            }
        }
        *run_index = run_index.saturating_sub(1);
        Ok(n + 1)
    }

    /// The run-interruption sample of a single-component line (T.87 A.7.2).
    fn interruption(&mut self, ra: i32, rb: i32, run_index: usize) -> Step<i32> {
        let p = self.m.p;
        if (ra - rb).abs() <= p.near {
            let e = self.interruption_error(1, run_index)?;
            Ok(p.reconstruct(ra, e))
        } else {
            let e = self.interruption_error(0, run_index)?;
            Ok(p.reconstruct(rb, if rb < ra { -e } else { e }))
        }
    }

    /// One component of a run-interruption pixel in sample-interleaved mode: predicted
    /// by Rb in context 365 (RItype 0), as CharLS (which wrote DCMTK's and GDCM's
    /// streams) codes it.
    fn interruption_component(&mut self, ra: i32, rb: i32, run_index: usize) -> Step<i32> {
        let e = self.interruption_error(0, run_index)?;
        Ok(self.m.p.reconstruct(rb, if rb < ra { -e } else { e }))
    }

    /// The error of a run-interruption sample (T.87 A.7.2, F.1 step 17).
    fn interruption_error(&mut self, ritype: usize, run_index: usize) -> Step<i32> {
        let p = self.m.p;
        let ctx = &mut self.m.run[ritype];
        let k = ctx.k();
        let glimit = p.limit - J[run_index] - 1;
        let em = self.r.golomb(k, glimit, p.qbpp).ok_or(Bad)?;
        if em > 2 * p.range as u32 {
            return Err(Bad);
        }
        let em = em as i32;
        let e = ctx.unmap(em + ctx.ritype, k);
        if !ctx.update(e, em, p.reset) {
            return Err(Bad);
        }
        Ok(e)
    }
}

/// The line above and the current line of one plane (a component, or for ILV 2 all
/// components' pixels), each with one pixel of edge on both sides.
struct Lines {
    prev: Vec<i32>,
    cur: Vec<i32>,
}

/// A line buffer of `len` zeros; a failed allocation is an error, not an abort (a
/// frame that passed the size limit may still be wide beyond what memory holds).
fn zeroed(len: usize) -> Result<Vec<i32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| JpegLsError::OutOfMemory { bytes: len * 4 })?;
    v.resize(len, 0);
    Ok(v)
}

/// Where decoded samples go: the frame's sample-interleaved output.
struct Output {
    buf: Vec<u8>,
    width: usize,
    components: usize,
    bytes_per_sample: usize,
}

impl Output {
    fn line_bytes(&self) -> usize {
        self.width * self.components * self.bytes_per_sample
    }

    /// Stores samples `x = 1..=width` of `line` (stride `nc`, component `c` of the line
    /// at frame component `comps[c]`) as line `y`. The first scan extends the buffer
    /// (inside its reservation), later ones write into it.
    fn put(&mut self, y: usize, line: &[i32], nc: usize, comps: &[usize]) {
        let lb = self.line_bytes();
        if self.buf.len() < (y + 1) * lb {
            self.buf.resize((y + 1) * lb, 0);
        }
        let row = &mut self.buf[y * lb..(y + 1) * lb];
        let (stride, bps) = (self.components, self.bytes_per_sample);
        if stride == 1 && nc == 1 {
            // One component: a straight copy.
            let samples = line[1..].iter().take(self.width);
            if bps == 1 {
                row.iter_mut().zip(samples).for_each(|(d, &v)| *d = v as u8);
            } else {
                for (d, &v) in row.chunks_exact_mut(2).zip(samples) {
                    d.copy_from_slice(&(v as u16).to_le_bytes());
                }
            }
            return;
        }
        for (c, &fc) in comps.iter().enumerate() {
            let samples = line[nc..].iter().skip(c).step_by(nc).take(self.width);
            if bps == 1 {
                for (dst, &v) in row.iter_mut().skip(fc).step_by(stride).zip(samples) {
                    *dst = v as u8;
                }
            } else {
                for (dst, &v) in row.chunks_exact_mut(2).skip(fc).step_by(stride).zip(samples) {
                    dst.copy_from_slice(&(v as u16).to_le_bytes());
                }
            }
        }
    }
}

/// The frame's state while its segments are read.
struct FrameState {
    header: FrameHeader,
    out: Output,
    done: Vec<bool>,
    interleave: Option<Interleave>,
    scans: usize,
}

/// Decodes a whole codestream (T.87 C.1: SOI, tables/misc, SOF55, then scans, EOI).
pub(crate) fn decode(data: &[u8], max_bytes: usize) -> Result<(FrameInfo, Vec<u8>)> {
    let mut parser = Parser::new(data)?;
    let mut header: Option<FrameHeader> = None;
    let mut frame: Option<FrameState> = None;
    let mut preset = Preset::default();
    let mut restart_interval = 0u32;
    loop {
        let at = parser.position();
        let Some(seg) = parser.next_segment()? else {
            break;
        };
        match seg {
            Segment::Frame(h) => {
                if header.is_some() || frame.is_some() {
                    return Err(invalid(at, "a second SOF55 frame header"));
                }
                header = Some(h);
            }
            Segment::Oversize { width, height } => {
                let Some(h) = header.as_mut().filter(|_| frame.is_none()) else {
                    return Err(invalid(at, "LSE type 4 (dimensions) outside the frame header"));
                };
                h.width = width;
                h.height = height;
            }
            Segment::Preset(p) => preset = p,
            Segment::RestartInterval(ri) => restart_interval = ri,
            Segment::Scan(scan) => {
                if frame.is_none() {
                    let Some(h) = header.take() else {
                        return Err(invalid(at, "SOS before the SOF55 frame header"));
                    };
                    frame = Some(start_frame(h, max_bytes, at)?);
                }
                let Some(f) = frame.as_mut() else {
                    return Err(invalid(at, "SOS before the SOF55 frame header"));
                };
                let end = decode_scan(data, f, &scan, &preset, restart_interval, at)?;
                parser.seek(end);
            }
            Segment::End => break,
        }
    }
    let at = parser.position();
    let Some(f) = frame else {
        return Err(JpegLsError::Truncated { what: "no scan in the codestream", offset: at });
    };
    if f.done.iter().any(|d| !d) {
        return Err(JpegLsError::Truncated {
            what: "codestream ends before every component's scan",
            offset: at,
        });
    }
    let h = &f.header;
    let info = FrameInfo {
        width: h.width,
        height: h.height,
        bits_per_sample: h.bits,
        components: h.ids.len() as u8,
        interleave: f.interleave.unwrap_or(Interleave::None),
    };
    Ok((info, f.out.buf))
}

/// Checks the frame's size against the limit and reserves the output.
fn start_frame(h: FrameHeader, max_bytes: usize, at: usize) -> Result<FrameState> {
    if h.height == 0 {
        return Err(unsupported(at, "frame of 0 lines (height given by a DNL marker)"));
    }
    if h.width == 0 {
        return Err(invalid(at, "frame of 0 samples per line"));
    }
    let bps = if h.bits > 8 { 2 } else { 1 };
    let nc = h.ids.len();
    let bytes = u64::from(h.width) * u64::from(h.height) * nc as u64 * bps as u64;
    if bytes > max_bytes as u64 {
        return Err(JpegLsError::TooLarge {
            width: h.width,
            height: h.height,
            components: nc as u8,
            bits: h.bits,
            bytes,
            limit: max_bytes,
        });
    }
    let bytes = bytes as usize;
    let mut buf = Vec::new();
    buf.try_reserve_exact(bytes).map_err(|_| JpegLsError::OutOfMemory { bytes })?;
    let out = Output { buf, width: h.width as usize, components: nc, bytes_per_sample: bps };
    Ok(FrameState { done: vec![false; nc], header: h, out, interleave: None, scans: 0 })
}

/// Decodes one scan whose header is `scan` (read at `at`); returns where its data ends.
fn decode_scan(
    data: &[u8],
    f: &mut FrameState,
    scan: &ScanHeader,
    preset: &Preset,
    restart_interval: u32,
    at: usize,
) -> Result<usize> {
    f.scans += 1;
    let mut comps = Vec::with_capacity(scan.ids.len());
    for &id in &scan.ids {
        let Some(c) = f.header.ids.iter().position(|&x| x == id) else {
            return Err(invalid(at, format!("scan of component {id}, not in the frame")));
        };
        if f.done[c] {
            return Err(invalid(at, format!("a second scan of component {id}")));
        }
        f.done[c] = true;
        comps.push(c);
    }
    let bits = f.header.bits;
    let params =
        Params::new(bits, preset, scan.near, Defaults::Standard).map_err(|e| invalid(at, e))?;
    // A single component "interleaved" is the same code as ILV 0.
    let ilv = if comps.len() == 1 { 0 } else { scan.ilv };
    if f.interleave.is_none() {
        f.interleave = Some(match ilv {
            0 => Interleave::None,
            1 => Interleave::Line,
            _ => Interleave::Sample,
        });
    }
    let job = ScanJob { data, scan, comps: &comps, ilv, restart_interval, scan_no: f.scans };
    let legacy =
        Params::new(bits, preset, scan.near, Defaults::CharLs1).ok().filter(|l| *l != params);
    let Some(legacy) = legacy else {
        return job.run(f, params).map(|(end, _)| end);
    };
    // MAXVAL < 128 with default thresholds: CharLS before 2.1 (DCMTK 3.6's) computed
    // other defaults (CharLS issue #51) and wrote no LSE. A scan decoded with the wrong
    // thresholds goes astray: it fails, or ends bytes away from its marker. So the
    // standard's defaults are tried first and CharLS 1's only when they give such a
    // result and their own decoding ends where the data does.
    let first = job.run(f, params);
    if matches!(first, Ok((_, true))) {
        return first.map(|(end, _)| end);
    }
    if let Ok((end, true)) = job.run(f, legacy) {
        return Ok(end);
    }
    match first {
        // Decodable but not ending cleanly with either: the standard's reading stands.
        Ok(_) => job.run(f, params).map(|(end, _)| end),
        Err(e) => Err(e),
    }
}

/// What a scan's decoding needs besides its parameters.
struct ScanJob<'a> {
    data: &'a [u8],
    scan: &'a ScanHeader,
    /// Frame component of each scan component.
    comps: &'a [usize],
    ilv: u8,
    restart_interval: u32,
    scan_no: usize,
}

impl ScanJob<'_> {
    /// Decodes the scan's lines into `f`'s output with `params`. Returns where the data
    /// ends, and whether the decoding consumed it to within two bytes of that end (every
    /// encoder pads the last byte with zero bits, and after a final 0xFF adds one byte).
    fn run(&self, f: &mut FrameState, params: Params) -> Result<(usize, bool)> {
        let (data, scan, comps, ilv, scan_no) =
            (self.data, self.scan, self.comps, self.ilv, self.scan_no);
        let nc = comps.len();
        let width = f.header.width as usize;
        let height = f.header.height as usize;
        let interval =
            if self.restart_interval == 0 { height } else { self.restart_interval as usize };
        // Line buffers: two lines (previous, current) per component for ILV 0 and 1, or
        // two lines of interleaved pixels for ILV 2, each with one pixel of edge on both
        // sides.
        let (planes, stride) = if ilv == 2 { (1, nc) } else { (nc, 1) };
        let line_len = (width + 2) * stride;
        let mut lines = Vec::with_capacity(planes);
        for _ in 0..planes {
            lines.push(Lines { prev: zeroed(line_len)?, cur: zeroed(line_len)? });
        }
        let mut run_index = [0usize; markers::MAX_COMPONENTS];

        let seg_end = markers::find_marker(data, scan.data_start);
        let mut dec = ScanDecoder {
            m: Model::new(params),
            r: BitReader::new(data, scan.data_start, seg_end),
            width,
        };
        let mut restarts = 0u8;
        for y in 0..height {
            if y > 0 && y % interval == 0 {
                // T.87 C.2.5 and A.2.1: a restart marker, then everything starts afresh.
                let next = markers::expect_restart(data, dec.r.end(), restarts % 8)?;
                restarts = restarts.wrapping_add(1);
                dec.r = BitReader::new(data, next, markers::find_marker(data, next));
                dec.m.reset();
                run_index = [0; markers::MAX_COMPONENTS];
                for l in &mut lines {
                    l.prev.fill(0);
                    l.cur.fill(0);
                }
            }
            let bad = |r: &BitReader| {
                if r.overrun() || r.at_end() {
                    JpegLsError::Truncated {
                        what: "entropy-coded data of a scan",
                        offset: r.offset(),
                    }
                } else {
                    JpegLsError::InvalidData { scan: scan_no, line: y as u32, offset: r.offset() }
                }
            };
            for (plane, l) in lines.iter_mut().enumerate() {
                let res = if ilv == 2 {
                    dec.line_interleaved(&mut l.prev, &mut l.cur, nc, &mut run_index[0])
                } else {
                    dec.line(&mut l.prev, &mut l.cur, &mut run_index[plane])
                };
                if res.is_err() || dec.r.overrun() {
                    return Err(bad(&dec.r));
                }
                if ilv == 2 {
                    f.out.put(y, &l.cur, nc, comps);
                } else {
                    f.out.put(y, &l.cur, 1, &comps[plane..plane + 1]);
                }
                // This line is the next one's line above.
                std::mem::swap(&mut l.prev, &mut l.cur);
            }
        }
        let clean = dec.r.end() - dec.r.consumed_end() <= 2;
        Ok((dec.r.end(), clean))
    }
}
