//! Specific Character Set (0008,0005): decoding text values as PS3.5 section 6.1 and
//! PS3.3 C.12.1.1.2 describe, including ISO 2022 code extensions (escape sequences) as used
//! for Japanese (ISO 2022 IR 13 / IR 87 / IR 159), Korean (IR 149) and Chinese (IR 58).
//!
//! dicom-encoding 0.10 reads only the first value of (0008,0005) and maps
//! `ISO 2022 IR 13` to Windows-31J, so text with escape sequences (`\ISO 2022 IR 87`, the
//! usual Japanese declaration) comes out garbled there; this module handles the code
//! extensions itself and uses `encoding_rs` for the multi-byte tables.

use encoding_rs::Encoding;

const ESC: u8 = 0x1B;

/// A graphic character set that can be designated to G0 (bytes 0x21..=0x7E) or G1 (bytes
/// 0xA1..=0xFE) by an ISO 2022 escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Graphic {
    /// ISO IR 6 (ASCII), G0.
    Ascii,
    /// ISO IR 14, JIS X 0201 Romaji, G0: ASCII but for 0x5C (yen) and 0x7E (overline),
    /// which we keep as ASCII so that the value delimiter stays a backslash.
    Romaji,
    /// ISO IR 13, JIS X 0201 Katakana, G1 (half-width katakana).
    Katakana,
    /// ISO IR 87, JIS X 0208, G0, two bytes per character.
    Jis0208,
    /// ISO IR 159, JIS X 0212, G0, two bytes per character.
    Jis0212,
    /// ISO IR 149, KS X 1001, G1, two bytes per character.
    Ksx1001,
    /// ISO IR 58, GB 2312, G1, two bytes per character.
    Gb2312,
    /// An ISO 8859 (or TIS 620) upper half, G1, one byte per character.
    Upper(&'static Encoding),
    /// ISO IR 100 upper half (Latin-1), G1: bytes map to the same code points.
    Latin1,
}

/// How to decode the text of one data set, from its (0008,0005) values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharacterSet {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Kind {
    /// No (0008,0005), or ISO_IR 6. Bytes outside ASCII are read as Latin-1, which many
    /// peers send undeclared.
    #[default]
    Default,
    /// ISO_IR 100.
    Latin1,
    /// ISO_IR 192.
    Utf8,
    /// ISO_IR 13 (without code extensions): JIS X 0201.
    Jisx0201,
    /// A single-byte or multi-byte encoding from encoding_rs used for the whole value
    /// (ISO_IR 101..203 without extensions, GB18030, GBK).
    Whole(&'static Encoding),
    /// ISO 2022 code extensions: the initial G0 and G1 sets (from the first value),
    /// restored at each delimiter.
    Iso2022 { g0: Graphic, g1: Option<Graphic> },
    /// A term we do not know: UTF-8 when the bytes are valid UTF-8, else Latin-1.
    Unknown(String),
}

impl CharacterSet {
    /// The character set declared by the values of (0008,0005), e.g. `["ISO_IR 100"]`,
    /// `["", "ISO 2022 IR 87"]` or `["ISO 2022 IR 13", "ISO 2022 IR 87"]`. Unknown terms
    /// are logged and read as UTF-8 if valid, else Latin-1.
    pub fn from_terms<S: AsRef<str>>(terms: &[S]) -> CharacterSet {
        let norm: Vec<String> = terms
            .iter()
            .map(|t| t.as_ref().trim().replace('_', " ").to_ascii_uppercase())
            .collect();
        let first = norm.first().map(String::as_str).unwrap_or("");
        let extended = norm.len() > 1 || norm.iter().any(|t| t.starts_with("ISO 2022"));
        let kind = if extended {
            let (g0, g1) = match first {
                "ISO 2022 IR 13" | "ISO IR 13" => (Graphic::Romaji, Some(Graphic::Katakana)),
                "ISO 2022 IR 149" => (Graphic::Ascii, Some(Graphic::Ksx1001)),
                "ISO 2022 IR 58" => (Graphic::Ascii, Some(Graphic::Gb2312)),
                other => (Graphic::Ascii, upper_half(other)),
            };
            Kind::Iso2022 { g0, g1 }
        } else {
            match first {
                "" | "ISO IR 6" => Kind::Default,
                "ISO IR 100" => Kind::Latin1,
                "ISO IR 192" => Kind::Utf8,
                "ISO IR 13" => Kind::Jisx0201,
                "GB18030" => Kind::Whole(encoding_rs::GB18030),
                "GBK" => Kind::Whole(encoding_rs::GBK),
                other => match upper_half(other) {
                    Some(Graphic::Upper(enc)) => Kind::Whole(enc),
                    Some(_) => Kind::Latin1,
                    None => {
                        tracing::warn!(
                            "unknown Specific Character Set {other:?}: reading text as UTF-8 \
                             where valid, else Latin-1"
                        );
                        Kind::Unknown(other.to_owned())
                    }
                },
            }
        };
        CharacterSet { kind }
    }

    /// True for the default repertoire (no (0008,0005) or ISO_IR 6).
    pub fn is_default(&self) -> bool {
        self.kind == Kind::Default
    }

    /// Decodes a whole text value field (all its values, with their backslash delimiters).
    /// For PN (`is_pn`), `^` and `=` also restore the initial ISO 2022 state. Never fails:
    /// bytes that do not decode become U+FFFD.
    pub fn decode(&self, bytes: &[u8], is_pn: bool) -> String {
        if bytes.is_ascii() && !matches!(self.kind, Kind::Iso2022 { .. }) {
            // ASCII is the same in every character set allowed in DICOM but ISO 2022
            // (where ESC starts a designation).
            return ascii_to_string(bytes);
        }
        match &self.kind {
            Kind::Default | Kind::Latin1 => latin1(bytes),
            Kind::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Kind::Jisx0201 => {
                let mut s = String::with_capacity(bytes.len() * 3);
                for &b in bytes {
                    push_single(&mut s, Graphic::Katakana, b);
                }
                s
            }
            Kind::Whole(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
            Kind::Iso2022 { g0, g1 } => decode_iso2022(bytes, *g0, *g1, is_pn),
            Kind::Unknown(_) => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => latin1(bytes),
            },
        }
    }
}

/// The G1 set of a single-byte ISO 8859 family term (with or without "ISO 2022").
fn upper_half(term: &str) -> Option<Graphic> {
    let ir = term.trim_start_matches("ISO 2022 ").trim_start_matches("ISO ");
    let enc = match ir {
        "IR 100" => return Some(Graphic::Latin1),
        "IR 101" => encoding_rs::ISO_8859_2,
        "IR 109" => encoding_rs::ISO_8859_3,
        "IR 110" => encoding_rs::ISO_8859_4,
        "IR 144" => encoding_rs::ISO_8859_5,
        "IR 127" => encoding_rs::ISO_8859_6,
        "IR 126" => encoding_rs::ISO_8859_7,
        "IR 138" => encoding_rs::ISO_8859_8,
        "IR 148" => encoding_rs::WINDOWS_1254,
        "IR 203" => encoding_rs::ISO_8859_15,
        "IR 166" => encoding_rs::WINDOWS_874,
        _ => return None,
    };
    Some(Graphic::Upper(enc))
}

fn ascii_to_string(bytes: &[u8]) -> String {
    // Callers checked is_ascii, so this never takes the lossy path.
    String::from_utf8_lossy(bytes).into_owned()
}

/// Latin-1: each byte is the code point of the same value.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn push_single(out: &mut String, set: Graphic, b: u8) {
    match set {
        Graphic::Katakana if (0xA1..=0xDF).contains(&b) => {
            out.push(char::from_u32(0xFF61 + u32::from(b - 0xA1)).unwrap_or('\u{FFFD}'))
        }
        Graphic::Latin1 => out.push(b as char),
        Graphic::Upper(enc) => {
            let one = [b];
            let (s, _) = enc.decode_without_bom_handling(&one);
            out.push_str(&s);
        }
        _ if b < 0x80 => out.push(b as char),
        _ => out.push('\u{FFFD}'),
    }
}

/// Decodes ISO 2022 text: escape sequences designate G0/G1 sets; bytes below 0x80 go
/// through G0 and the others through G1. CR, LF, FF, TAB, the value delimiter and, in PN,
/// `^` and `=` restore the initial designations (PS3.5 6.1.2.5.3).
fn decode_iso2022(bytes: &[u8], init_g0: Graphic, init_g1: Option<Graphic>, is_pn: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    let (mut g0, mut g1) = (init_g0, init_g1);
    let mut i = 0;
    // Each pass consumes at least one byte.
    while i < bytes.len() {
        let b = bytes[i];
        if b == ESC {
            match designation(&bytes[i + 1..]) {
                Some((n, Slot::G0(set))) => {
                    g0 = set;
                    i += 1 + n;
                }
                Some((n, Slot::G1(set))) => {
                    g1 = Some(set);
                    i += 1 + n;
                }
                None => {
                    out.push('\u{FFFD}');
                    i += 1;
                }
            }
            continue;
        }
        let resets = matches!(b, b'\r' | b'\n' | 0x0C | b'\t' | b'\\')
            || (is_pn && matches!(b, b'^' | b'='));
        if b < 0x80 {
            let two_byte = matches!(g0, Graphic::Jis0208 | Graphic::Jis0212);
            if two_byte
                && (0x21..=0x7E).contains(&b)
                && i + 1 < bytes.len()
                && (0x21..=0x7E).contains(&bytes[i + 1])
            {
                let (b1, b2) = (b | 0x80, bytes[i + 1] | 0x80);
                let euc: &[u8] = if g0 == Graphic::Jis0212 { &[0x8F, b1, b2] } else { &[b1, b2] };
                let (s, _) = encoding_rs::EUC_JP.decode_without_bom_handling(euc);
                out.push_str(&s);
                i += 2;
                continue;
            }
            if resets {
                g0 = init_g0;
                g1 = init_g1;
            }
            out.push(b as char);
            i += 1;
            continue;
        }
        match g1 {
            Some(set @ (Graphic::Ksx1001 | Graphic::Gb2312)) => {
                if i + 1 < bytes.len() && bytes[i + 1] >= 0xA1 {
                    let enc = if set == Graphic::Ksx1001 {
                        encoding_rs::EUC_KR
                    } else {
                        encoding_rs::GBK
                    };
                    let (s, _) = enc.decode_without_bom_handling(&bytes[i..i + 2]);
                    out.push_str(&s);
                    i += 2;
                } else {
                    out.push('\u{FFFD}');
                    i += 1;
                }
            }
            Some(set) => {
                push_single(&mut out, set, b);
                i += 1;
            }
            None => {
                // Nothing designated to G1: the peer sent 8-bit text undeclared; Latin-1
                // is the most likely reading.
                out.push(b as char);
                i += 1;
            }
        }
    }
    out
}

enum Slot {
    G0(Graphic),
    G1(Graphic),
}

/// The designation after an ESC, and how many bytes it takes (without the ESC).
fn designation(s: &[u8]) -> Option<(usize, Slot)> {
    let g = |n, slot| Some((n, slot));
    match s {
        [b'(', b'B', ..] => g(2, Slot::G0(Graphic::Ascii)),
        [b'(', b'J', ..] => g(2, Slot::G0(Graphic::Romaji)),
        [b')', b'I', ..] => g(2, Slot::G1(Graphic::Katakana)),
        [b'$', b'B', ..] | [b'$', b'@', ..] => g(2, Slot::G0(Graphic::Jis0208)),
        [b'$', b'(', b'D', ..] => g(3, Slot::G0(Graphic::Jis0212)),
        [b'$', b')', b'C', ..] => g(3, Slot::G1(Graphic::Ksx1001)),
        [b'$', b')', b'A', ..] => g(3, Slot::G1(Graphic::Gb2312)),
        [b'-', f, ..] => {
            let set = match f {
                b'A' => Graphic::Latin1,
                b'B' => Graphic::Upper(encoding_rs::ISO_8859_2),
                b'C' => Graphic::Upper(encoding_rs::ISO_8859_3),
                b'D' => Graphic::Upper(encoding_rs::ISO_8859_4),
                b'L' => Graphic::Upper(encoding_rs::ISO_8859_5),
                b'G' => Graphic::Upper(encoding_rs::ISO_8859_6),
                b'F' => Graphic::Upper(encoding_rs::ISO_8859_7),
                b'H' => Graphic::Upper(encoding_rs::ISO_8859_8),
                b'M' => Graphic::Upper(encoding_rs::WINDOWS_1254),
                b'b' => Graphic::Upper(encoding_rs::ISO_8859_15),
                b'T' => Graphic::Upper(encoding_rs::WINDOWS_874),
                _ => return None,
            };
            g(2, Slot::G1(set))
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cs(terms: &[&str]) -> CharacterSet {
        CharacterSet::from_terms(terms)
    }

    #[test]
    fn latin1_and_utf8() {
        assert_eq!(cs(&["ISO_IR 100"]).decode(b"Buc^J\xe9r\xf4me", true), "Buc^Jérôme");
        assert_eq!(
            cs(&["ISO_IR 192"]).decode("Wang^XiaoDong=王^小東=".as_bytes(), true),
            "Wang^XiaoDong=王^小東="
        );
        // Undeclared 8-bit text reads as Latin-1.
        assert_eq!(cs(&[] as &[&str]).decode(b"M\xfcller", true), "Müller");
    }

    /// PS3.5 Annex H, example H.3.1: ISO 2022 IR 87 with escape sequences.
    #[test]
    fn japanese_iso2022_ir87() {
        let bytes =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        assert_eq!(
            cs(&["", "ISO 2022 IR 87"]).decode(bytes, true),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
    }

    /// PS3.5 Annex H, example H.3.2: ISO 2022 IR 13 (half-width katakana) and IR 87.
    #[test]
    fn japanese_iso2022_ir13_ir87() {
        let bytes = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J";
        assert_eq!(
            cs(&["ISO 2022 IR 13", "ISO 2022 IR 87"]).decode(bytes, true),
            "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
        );
    }

    /// PS3.5 Annex I: Korean with ISO 2022 IR 149.
    #[test]
    fn korean_iso2022_ir149() {
        let bytes = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf";
        assert_eq!(
            cs(&["", "ISO 2022 IR 149"]).decode(bytes, true),
            "Hong^Gildong=洪^吉洞=홍^길동"
        );
    }

    /// PS3.5 Annex J: GB18030.
    #[test]
    fn chinese_gb18030() {
        let bytes = b"Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=";
        assert_eq!(cs(&["GB18030"]).decode(bytes, true), "Wang^XiaoDong=王^小东=");
    }

    #[test]
    fn other_single_byte_sets() {
        assert_eq!(cs(&["ISO_IR 144"]).decode(b"\xbb\xee\xda", true), "Люк");
        assert_eq!(
            cs(&["ISO_IR 126"]).decode(b"\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2", true),
            "Διονυσιος"
        );
        assert_eq!(cs(&["ISO_IR 101"]).decode(b"Wa\xb3\xeasa", true), "Wałęsa");
    }

    #[test]
    fn bad_escape_and_truncated_pairs_do_not_panic() {
        let c = cs(&["", "ISO 2022 IR 87"]);
        for bytes in
            [&b"\x1b"[..], b"\x1b$", b"\x1b$B;", b"\x1b$B\x7f\x7f", b"\xff\xfe", b"\x1bZ\x1b(Q"]
        {
            let _ = c.decode(bytes, true);
        }
        let k = cs(&["", "ISO 2022 IR 149"]);
        assert_eq!(k.decode(b"\x1b$)C\xfb", false), "\u{FFFD}");
    }
}
