//! The codestream's structure: markers and marker segments (T.87 Annex C, with the
//! marker syntax of ISO/IEC 10918-1 Annex B), read with a bounded reader and written.
//!
//! Every read checks the bytes left first; a length field is checked against the bytes
//! present before a segment is looked at. Entropy-coded data is not parsed here: the
//! decoder reads it from [`Segment::Scan`]'s `data_start` and hands back where it ended.

use crate::error::{invalid, unsupported, JpegLsError, Result};

/// Start of image.
pub(crate) const SOI: u8 = 0xD8;
/// End of image.
pub(crate) const EOI: u8 = 0xD9;
/// Start of frame, JPEG-LS baseline (SOF55, T.87 C.2.2).
pub(crate) const SOF55: u8 = 0xF7;
/// Start of frame, JPEG-LS extensions (ISO/IEC 14495-2): not supported.
const SOF57: u8 = 0xF9;
/// JPEG-LS preset parameters (LSE, T.87 C.2.4.1).
pub(crate) const LSE: u8 = 0xF8;
/// Start of scan (T.87 C.2.3).
pub(crate) const SOS: u8 = 0xDA;
/// Define restart interval (T.87 C.2.5).
const DRI: u8 = 0xDD;
/// Define number of lines (T.87 C.2.6): not supported.
const DNL: u8 = 0xDC;
/// First restart marker; RSTm is `RST0 + m`, m = 0..7.
pub(crate) const RST0: u8 = 0xD0;
/// Comment.
const COM: u8 = 0xFE;
/// APP8, where HP's colour transform ("mrfx") and SPIFF live.
const APP8: u8 = 0xE8;

/// The most components this codec decodes (T.81 B.2.3 allows four per scan; DICOM uses 1 or 3).
pub(crate) const MAX_COMPONENTS: usize = 4;

/// Preset coding parameters of an LSE segment of type 1 (T.87 C.2.4.1.1, Table C.2).
/// Zero means "the default" for each field, as in the standard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Preset {
    /// MAXVAL.
    pub maxval: u16,
    /// T1.
    pub t1: u16,
    /// T2.
    pub t2: u16,
    /// T3.
    pub t3: u16,
    /// RESET.
    pub reset: u16,
}

/// A frame header (SOF55, T.87 C.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// P: sample precision, 2..=16.
    pub bits: u8,
    /// Y: lines (0 would mean "given by DNL", refused).
    pub height: u32,
    /// X: samples per line.
    pub width: u32,
    /// Ci of each component, in frame order.
    pub ids: Vec<u8>,
}

/// A scan header (SOS, T.87 C.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanHeader {
    /// Csj of each component of the scan.
    pub ids: Vec<u8>,
    /// NEAR.
    pub near: u8,
    /// ILV: 0 none, 1 line, 2 sample.
    pub ilv: u8,
    /// Offset of the first byte of entropy-coded data.
    pub data_start: usize,
}

/// One marker (and its segment) of the codestream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// SOF55.
    Frame(FrameHeader),
    /// LSE type 1.
    Preset(Preset),
    /// LSE type 4: X and Y above 65535 (T.87 C.2.4.1.4).
    Oversize { width: u32, height: u32 },
    /// DRI: the restart interval in lines (0: none).
    RestartInterval(u32),
    /// SOS; the scan's data follows.
    Scan(ScanHeader),
    /// EOI.
    End,
}

/// Reads marker segments from a codestream, one at a time.
pub(crate) struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Checks the SOI marker (T.87 C.1.1) and starts after it.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        if data.len() < 2 {
            return Err(JpegLsError::Truncated { what: "SOI marker", offset: data.len() });
        }
        if data[0] != 0xFF || data[1] != SOI {
            return Err(invalid(0, "no SOI marker (FFD8): not a JPEG-LS codestream"));
        }
        Ok(Self { data, pos: 2 })
    }

    /// Where the next marker is expected.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Continues at `pos` (after a scan's entropy-coded data).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    /// True when no byte is left.
    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Reads the next marker and its segment. Markers this codec ignores (APPn, COM, and
    /// the mapping-table LSE types) are skipped; `None` means the data ended cleanly
    /// between two segments (no EOI).
    pub fn next_segment(&mut self) -> Result<Option<Segment>> {
        loop {
            if self.at_end() {
                return Ok(None);
            }
            let at = self.pos;
            // A padding zero byte before a marker (some encoders write one after the
            // entropy-coded data) is tolerated, as CharLS does.
            if self.data[at] == 0x00 && self.data.get(at + 1) == Some(&0xFF) {
                self.pos += 1;
                continue;
            }
            if self.data[at] != 0xFF {
                return Err(invalid(
                    at,
                    format!("expected a marker, found byte 0x{:02X}", self.data[at]),
                ));
            }
            // Fill bytes (0xFF) may precede a marker (T.81 B.1.1.2).
            let mut p = at + 1;
            while self.data.get(p) == Some(&0xFF) {
                p += 1;
            }
            let Some(&code) = self.data.get(p) else {
                return Err(JpegLsError::Truncated { what: "marker", offset: p });
            };
            self.pos = p + 1;
            match code {
                EOI => return Ok(Some(Segment::End)),
                SOI => return Err(invalid(at, "a second SOI marker")),
                0xD0..=0xD7 => {
                    return Err(invalid(
                        at,
                        format!("restart marker RST{} outside a scan", code - RST0),
                    ))
                }
                0x00 => return Err(invalid(at, "a stuffed 0xFF00 where a marker belongs")),
                _ => {}
            }
            let body = self.segment_body(code, at)?;
            let body_start = self.pos - body.len();
            let seg = match code {
                SOF55 => Some(Segment::Frame(read_frame(body, body_start)?)),
                LSE => read_lse(body, body_start)?,
                SOS => {
                    let (ids, near, ilv) = read_scan(body, body_start)?;
                    Some(Segment::Scan(ScanHeader { ids, near, ilv, data_start: self.pos }))
                }
                DRI => Some(Segment::RestartInterval(read_be(body, body_start, "DRI")?)),
                DNL => return Err(unsupported(at, "DNL marker (number of lines after the scan)")),
                SOF57 => {
                    return Err(unsupported(at, "JPEG-LS part 2 (ISO/IEC 14495-2) frame SOF57"))
                }
                0xC0..=0xCF if code != 0xC4 && code != 0xC8 && code != 0xCC => {
                    return Err(unsupported(
                        at,
                        format!("ISO 10918 JPEG frame SOF{} (not JPEG-LS)", code - 0xC0),
                    ))
                }
                APP8 => {
                    check_app8(body, body_start)?;
                    None
                }
                0xE0..=0xEF | COM => None,
                _ => {
                    return Err(invalid(
                        at,
                        format!("marker FF{code:02X} is not allowed in JPEG-LS"),
                    ))
                }
            };
            if let Some(seg) = seg {
                return Ok(Some(seg));
            }
        }
    }

    /// The segment after a marker: its 2-byte length Lx counts itself (T.81 B.1.1.4).
    fn segment_body(&mut self, code: u8, marker_at: usize) -> Result<&'a [u8]> {
        let p = self.pos;
        let Some(len) = self.data.get(p..p + 2) else {
            return Err(JpegLsError::Truncated { what: "marker segment length", offset: p });
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return Err(invalid(p, format!("marker FF{code:02X} has segment length {len}")));
        }
        let Some(body) = self.data.get(p + 2..p + len) else {
            return Err(JpegLsError::Truncated {
                what: "marker segment (its length runs past the end)",
                offset: marker_at,
            });
        };
        self.pos = p + len;
        Ok(body)
    }
}

/// SOF55 (T.87 C.2.2): P, Y, X, Nf, then Ci, Hi/Vi, Tqi per component.
fn read_frame(b: &[u8], at: usize) -> Result<FrameHeader> {
    if b.len() < 6 {
        return Err(invalid(at, format!("SOF55 segment of {} bytes (at least 6)", b.len())));
    }
    let bits = b[0];
    let height = u32::from(u16::from_be_bytes([b[1], b[2]]));
    let width = u32::from(u16::from_be_bytes([b[3], b[4]]));
    let nf = usize::from(b[5]);
    if !(2..=16).contains(&bits) {
        return Err(invalid(at, format!("sample precision P = {bits} (2 to 16)")));
    }
    if nf == 0 {
        return Err(invalid(at + 5, "frame with 0 components"));
    }
    if b.len() != 6 + 3 * nf {
        return Err(invalid(
            at,
            format!("SOF55 segment of {} bytes for {nf} components ({})", b.len(), 6 + 3 * nf),
        ));
    }
    if nf > MAX_COMPONENTS {
        return Err(unsupported(at + 5, format!("{nf} components (at most {MAX_COMPONENTS})")));
    }
    let mut ids = Vec::with_capacity(nf);
    for i in 0..nf {
        let c = &b[6 + 3 * i..9 + 3 * i];
        if ids.contains(&c[0]) {
            return Err(invalid(at + 6 + 3 * i, format!("component id {} twice", c[0])));
        }
        if c[1] != 0x11 {
            return Err(unsupported(
                at + 7 + 3 * i,
                format!("sampling factors H={} V={} (only 1x1)", c[1] >> 4, c[1] & 15),
            ));
        }
        ids.push(c[0]);
    }
    Ok(FrameHeader { bits, height, width, ids })
}

/// SOS (T.87 C.2.3): Ns, then Csj, Tmj per component, NEAR, ILV, Al/Ah.
fn read_scan(b: &[u8], at: usize) -> Result<(Vec<u8>, u8, u8)> {
    let Some(&ns) = b.first() else {
        return Err(invalid(at, "empty SOS segment"));
    };
    let ns = usize::from(ns);
    if ns == 0 || ns > MAX_COMPONENTS {
        return Err(invalid(at, format!("scan of {ns} components (1 to {MAX_COMPONENTS})")));
    }
    if b.len() != 4 + 2 * ns {
        return Err(invalid(
            at,
            format!("SOS segment of {} bytes for {ns} components ({})", b.len(), 4 + 2 * ns),
        ));
    }
    let mut ids = Vec::with_capacity(ns);
    for i in 0..ns {
        let (id, table) = (b[1 + 2 * i], b[2 + 2 * i]);
        if table != 0 {
            return Err(unsupported(at + 2 + 2 * i, format!("mapping table {table} (palette)")));
        }
        if ids.contains(&id) {
            return Err(invalid(at + 1 + 2 * i, format!("component id {id} twice in a scan")));
        }
        ids.push(id);
    }
    let near = b[1 + 2 * ns];
    let ilv = b[2 + 2 * ns];
    let al_ah = b[3 + 2 * ns];
    if ilv > 2 {
        return Err(invalid(at + 2 + 2 * ns, format!("interleave mode ILV = {ilv} (0, 1 or 2)")));
    }
    if ilv == 0 && ns > 1 {
        return Err(invalid(at + 2 + 2 * ns, format!("ILV = 0 with {ns} components in the scan")));
    }
    if al_ah & 0x0F != 0 {
        return Err(unsupported(at + 3 + 2 * ns, format!("point transform Pt = {}", al_ah & 15)));
    }
    Ok((ids, near, ilv))
}

/// LSE (T.87 C.2.4.1): type 1 (preset coding parameters) and 4 (oversize dimensions)
/// are read; mapping tables (types 2 and 3) are skipped (a scan that uses one is refused).
fn read_lse(b: &[u8], at: usize) -> Result<Option<Segment>> {
    let Some(&id) = b.first() else {
        return Err(invalid(at, "empty LSE segment"));
    };
    match id {
        1 => {
            if b.len() != 11 {
                return Err(invalid(at, format!("LSE type 1 of {} bytes (11)", b.len())));
            }
            let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
            Ok(Some(Segment::Preset(Preset {
                maxval: w(1),
                t1: w(3),
                t2: w(5),
                t3: w(7),
                reset: w(9),
            })))
        }
        2 | 3 => Ok(None),
        4 => {
            let Some(&wxy) = b.get(1) else {
                return Err(invalid(at, "LSE type 4 without Wxy"));
            };
            let n = usize::from(wxy);
            if !(2..=4).contains(&n) || b.len() != 2 + 2 * n {
                return Err(invalid(at, format!("LSE type 4 with Wxy = {wxy}, {} bytes", b.len())));
            }
            let height = read_be(&b[2..2 + n], at + 2, "LSE type 4 Y")?;
            let width = read_be(&b[2 + n..], at + 2 + n, "LSE type 4 X")?;
            Ok(Some(Segment::Oversize { width, height }))
        }
        _ => Err(unsupported(at, format!("LSE type {id} (JPEG-LS part 2)"))),
    }
}

/// A big-endian unsigned number of 2, 3 or 4 bytes (DRI, LSE type 4: T.87 C.2.4.1.4, C.2.5).
fn read_be(b: &[u8], at: usize, what: &str) -> Result<u32> {
    if !(2..=4).contains(&b.len()) {
        return Err(invalid(at, format!("{what} of {} bytes (2 to 4)", b.len())));
    }
    Ok(b.iter().fold(0u32, |v, &x| (v << 8) | u32::from(x)))
}

/// APP8: HP's colour transform segment ("mrfx", used by HP's and CharLS's encoders, never in
/// DICOM) with a transform other than none is refused; anything else in APP8 (SPIFF) is skipped.
fn check_app8(b: &[u8], at: usize) -> Result<()> {
    if b.len() == 5 && &b[..4] == b"mrfx" && b[4] != 0 {
        return Err(unsupported(at, format!("HP colour transform {}", b[4])));
    }
    Ok(())
}

/// The offset of the marker that ends entropy-coded data starting at `from`: the first 0xFF
/// followed by a byte with its high bit set (T.87 A.1: after 0xFF the encoder stuffs a 0
/// bit, so 0xFF then a byte below 0x80 is data). The end of `data` if there is none.
pub(crate) fn find_marker(data: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(off) = data.get(i..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) {
        let ff = i + off;
        match data.get(ff + 1) {
            Some(&next) if next < 0x80 => i = ff + 1,
            _ => return ff,
        }
    }
    data.len()
}

/// Reads the restart marker RSTm expected at `pos` (fill bytes allowed before it) and
/// returns the offset after it (T.87 C.2.5, T.81 B.2.1).
pub(crate) fn expect_restart(data: &[u8], pos: usize, m: u8) -> Result<usize> {
    let mut p = pos;
    if data.get(p) != Some(&0xFF) {
        return Err(match data.get(p) {
            None => JpegLsError::Truncated { what: "restart marker", offset: p },
            Some(_) => invalid(p, format!("expected restart marker RST{m}")),
        });
    }
    while data.get(p) == Some(&0xFF) {
        p += 1;
    }
    match data.get(p) {
        Some(&code) if code == RST0 + m => Ok(p + 1),
        Some(&code) => Err(invalid(p - 1, format!("expected RST{m}, found marker FF{code:02X}"))),
        None => Err(JpegLsError::Truncated { what: "restart marker", offset: p }),
    }
}

/// Writes a marker and its segment (the length field counts itself).
fn write_segment(out: &mut Vec<u8>, code: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, code]);
    // Bodies written here are at most 20 bytes.
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// SOI, then SOF55 for `bits`, `height` x `width` and components with ids 1..=n.
pub(crate) fn write_header(out: &mut Vec<u8>, bits: u8, width: u16, height: u16, n: u8) {
    out.extend_from_slice(&[0xFF, SOI]);
    let mut sof = vec![bits];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.push(n);
    for id in 1..=n {
        sof.extend_from_slice(&[id, 0x11, 0]);
    }
    write_segment(out, SOF55, &sof);
}

/// LSE type 1 with the given values.
pub(crate) fn write_preset(out: &mut Vec<u8>, p: &Preset) {
    let mut b = vec![1u8];
    for v in [p.maxval, p.t1, p.t2, p.t3, p.reset] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    write_segment(out, LSE, &b);
}

/// SOS for components `ids`, no mapping table, NEAR and ILV, no point transform.
pub(crate) fn write_scan_header(out: &mut Vec<u8>, ids: &[u8], near: u8, ilv: u8) {
    let mut b = vec![ids.len() as u8];
    for &id in ids {
        b.extend_from_slice(&[id, 0]);
    }
    b.extend_from_slice(&[near, ilv, 0]);
    write_segment(out, SOS, &b);
}

/// EOI.
pub(crate) fn write_end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xFF, EOI]);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn marker_search_skips_stuffed_ff() {
        // FF 7F is data (stuffed), FF D0 is a marker.
        assert_eq!(find_marker(&[1, 0xFF, 0x7F, 2, 0xFF, 0xD0], 0), 4);
        assert_eq!(find_marker(&[1, 2, 3], 0), 3);
        assert_eq!(find_marker(&[1, 0xFF], 0), 1);
    }

    #[test]
    fn header_round_trip() {
        let mut out = Vec::new();
        write_header(&mut out, 12, 640, 480, 3);
        write_preset(&mut out, &Preset { maxval: 4095, t1: 3, t2: 7, t3: 21, reset: 64 });
        write_scan_header(&mut out, &[1, 2, 3], 2, 1);
        let data_start = out.len();
        write_end(&mut out);
        let mut p = Parser::new(&out).unwrap();
        assert_eq!(
            p.next_segment().unwrap(),
            Some(Segment::Frame(FrameHeader {
                bits: 12,
                height: 480,
                width: 640,
                ids: vec![1, 2, 3]
            }))
        );
        assert_eq!(
            p.next_segment().unwrap(),
            Some(Segment::Preset(Preset { maxval: 4095, t1: 3, t2: 7, t3: 21, reset: 64 }))
        );
        assert_eq!(
            p.next_segment().unwrap(),
            Some(Segment::Scan(ScanHeader { ids: vec![1, 2, 3], near: 2, ilv: 1, data_start }))
        );
        assert_eq!(p.next_segment().unwrap(), Some(Segment::End));
    }

    #[test]
    fn jpeg_baseline_is_unsupported_not_invalid() {
        let data = [0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x02];
        let err = Parser::new(&data).unwrap().next_segment().unwrap_err();
        assert!(matches!(err, JpegLsError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn segment_length_past_the_end_is_truncated() {
        let data = [0xFF, 0xD8, 0xFF, 0xF7, 0x00, 0x20, 8];
        let err = Parser::new(&data).unwrap().next_segment().unwrap_err();
        assert!(matches!(err, JpegLsError::Truncated { .. }), "{err}");
    }
}
