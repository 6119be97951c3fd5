//! Reading hand-made and hostile data sets: every error is typed, nothing panics, nothing
//! allocates what a header merely claims.

use dicom_core::{Tag, VR};

use super::*;

const IMPLICIT: DatasetEncoding = DatasetEncoding::ImplicitLittle;
const EXPLICIT: DatasetEncoding = DatasetEncoding::ExplicitLittle;
const BIG: DatasetEncoding = DatasetEncoding::ExplicitBig;

fn implicit(tag: (u16, u16), value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(tag.0.to_le_bytes());
    v.extend(tag.1.to_le_bytes());
    v.extend((value.len() as u32).to_le_bytes());
    v.extend(value);
    v
}

fn explicit_short(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(tag.0.to_le_bytes());
    v.extend(tag.1.to_le_bytes());
    v.extend(vr);
    v.extend((value.len() as u16).to_le_bytes());
    v.extend(value);
    v
}

fn raw(tag: (u16, u16), len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(tag.0.to_le_bytes());
    v.extend(tag.1.to_le_bytes());
    v.extend(len.to_le_bytes());
    v
}

fn explicit_long_header(tag: (u16, u16), vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(tag.0.to_le_bytes());
    v.extend(tag.1.to_le_bytes());
    v.extend(vr);
    v.extend([0, 0]);
    v.extend(len.to_le_bytes());
    v
}

#[test]
fn huge_declared_length_is_rejected_before_allocation() {
    // PatientName claiming 4 GiB - 2 in a 12-byte data set.
    let mut d = raw((0x0010, 0x0010), 0xFFFF_FFFE);
    d.extend(b"ABCD");
    let e = read_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN).unwrap_err();
    assert_eq!(
        e,
        DatasetError::LengthExceedsRemaining {
            offset: 0,
            tag: Tag(0x0010, 0x0010),
            length: 0xFFFF_FFFE,
            remaining: 4
        }
    );
    assert!(e.to_string().contains("(0010,0010)"), "{e}");
    assert!(validate_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN).is_err());
    // The same in explicit VR with a long header (UT).
    let mut d = explicit_long_header((0x0018, 0x1030), b"UT", 0x7FFF_FFFF);
    d.extend(b"xy");
    assert!(matches!(
        read_dataset(&d, EXPLICIT, MAX_IDENTIFIER_LEN),
        Err(DatasetError::LengthExceedsRemaining {
            offset: 0,
            length: 0x7FFF_FFFF,
            remaining: 2,
            ..
        })
    ));
}

#[test]
fn item_length_beyond_its_sequence_is_rejected() {
    // SQ of defined length 16 holding an item that claims 1000 bytes.
    let mut d = raw((0x0008, 0x1110), 16);
    d.extend(raw((0xFFFE, 0xE000), 1000));
    d.extend([0u8; 8]);
    assert!(matches!(
        read_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN),
        Err(DatasetError::LengthExceedsRemaining {
            offset: 8,
            tag: Tag(0xFFFE, 0xE000),
            length: 1000,
            remaining: 8
        })
    ));
}

#[test]
fn truncated_headers_and_unclosed_items() {
    let d = implicit((0x0010, 0x0010), b"Doe^John");
    for cut in 1..d.len() {
        assert!(read_dataset(&d[..cut], IMPLICIT, MAX_IDENTIFIER_LEN).is_err(), "cut at {cut}");
    }
    // Undefined-length sequence and item, never closed.
    let mut d = raw((0x0008, 0x1110), 0xFFFF_FFFF);
    d.extend(raw((0xFFFE, 0xE000), 0xFFFF_FFFF));
    d.extend(implicit((0x0008, 0x1155), b"1.2.3\0"));
    assert!(matches!(
        read_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN),
        Err(DatasetError::Truncated { .. })
    ));
}

#[test]
fn undefined_lengths_both_syntaxes() {
    // Implicit: SQ (undefined) { item (undefined) { UI } item-delim } seq-delim, then PN.
    let mut d = raw((0x0008, 0x1110), 0xFFFF_FFFF);
    d.extend(raw((0xFFFE, 0xE000), 0xFFFF_FFFF));
    d.extend(implicit((0x0008, 0x1155), b"1.2.3\0"));
    d.extend(raw((0xFFFE, 0xE00D), 0));
    d.extend(raw((0xFFFE, 0xE000), 0));
    d.extend(raw((0xFFFE, 0xE0DD), 0));
    d.extend(implicit((0x0010, 0x0010), b"Doe^John"));
    let o = read_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN).unwrap();
    let items = o.element(Tag(0x0008, 0x1110)).unwrap().items().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].element(Tag(0x0008, 0x1155)).unwrap().to_str().unwrap(), "1.2.3");
    assert_eq!(o.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(), "Doe^John");
    let s = validate_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN).unwrap();
    assert_eq!((s.elements, s.sequences, s.items), (3, 1, 2));

    // Explicit: UN of undefined length is an implicit-VR sequence (PS3.5 6.2.2).
    let mut d = explicit_long_header((0x0009, 0x1010), b"UN", 0xFFFF_FFFF);
    d.extend(raw((0xFFFE, 0xE000), 0xFFFF_FFFF));
    d.extend(implicit((0x0010, 0x0020), b"PID1"));
    d.extend(raw((0xFFFE, 0xE00D), 0));
    d.extend(raw((0xFFFE, 0xE0DD), 0));
    d.extend(explicit_short((0x0010, 0x0010), b"PN", b"Doe^Jane"));
    let o = read_dataset(&d, EXPLICIT, MAX_IDENTIFIER_LEN).unwrap();
    let items = o.element(Tag(0x0009, 0x1010)).unwrap().items().unwrap();
    assert_eq!(items[0].element(Tag(0x0010, 0x0020)).unwrap().to_str().unwrap(), "PID1");
    assert_eq!(o.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(), "Doe^Jane");
}

#[test]
fn encapsulated_pixel_data_fragments() {
    let mut d = explicit_long_header((0x7FE0, 0x0010), b"OB", 0xFFFF_FFFF);
    d.extend(raw((0xFFFE, 0xE000), 0));
    d.extend(raw((0xFFFE, 0xE000), 4));
    d.extend([1, 2, 3, 4]);
    d.extend(raw((0xFFFE, 0xE0DD), 0));
    let o = read_dataset(&d, EXPLICIT, MAX_IDENTIFIER_LEN).unwrap();
    assert_eq!(display_value(o.element(Tag(0x7FE0, 0x0010)).unwrap()), "(4 bytes)");
    // A fragment that claims more than there is.
    let mut bad = explicit_long_header((0x7FE0, 0x0010), b"OB", 0xFFFF_FFFF);
    bad.extend(raw((0xFFFE, 0xE000), 400));
    assert!(matches!(
        read_dataset(&bad, EXPLICIT, 1 << 20),
        Err(DatasetError::LengthExceedsRemaining { .. })
    ));
}

#[test]
fn nesting_is_capped() {
    let mut d = Vec::new();
    for _ in 0..(MAX_DEPTH + 5) {
        d.extend(raw((0x0008, 0x1110), 0xFFFF_FFFF));
        d.extend(raw((0xFFFE, 0xE000), 0xFFFF_FFFF));
    }
    assert!(matches!(
        read_dataset(&d, IMPLICIT, MAX_IDENTIFIER_LEN),
        Err(DatasetError::TooDeep { .. })
    ));
    // A million nested levels would overflow the stack without the cap.
    let deep: Vec<u8> = (0..200_000).flat_map(|_| raw((0x0008, 0x1110), 0xFFFF_FFFF)).collect();
    assert!(read_dataset(&deep, IMPLICIT, MAX_IDENTIFIER_LEN).is_err());
}

#[test]
fn size_cap_and_misplaced_delimiters() {
    let d = vec![0u8; 100];
    assert_eq!(
        read_dataset(&d, IMPLICIT, 99).unwrap_err(),
        DatasetError::TooLarge { len: 100, max: 99 }
    );
    let d = raw((0xFFFE, 0xE0DD), 0);
    assert!(matches!(
        read_dataset(&d, IMPLICIT, 1 << 20),
        Err(DatasetError::UnexpectedDelimiter { offset: 0, .. })
    ));
    let mut d = raw((0x0008, 0x1110), 8);
    d.extend(implicit((0x0010, 0x0010), b""));
    assert!(matches!(
        read_dataset(&d, IMPLICIT, 1 << 20),
        Err(DatasetError::ExpectedItem { offset: 8, .. })
    ));
}

#[test]
fn bad_vr_and_bad_value_lengths() {
    let d = explicit_short((0x0010, 0x0010), b"zz", b"");
    assert!(matches!(
        read_dataset(&d, EXPLICIT, 1 << 20),
        Err(DatasetError::UnknownVr { offset: 4, .. })
    ));
    let d = explicit_short((0x0028, 0x0010), b"US", &[1, 2, 3]);
    assert_eq!(
        read_dataset(&d, EXPLICIT, 1 << 20).unwrap_err(),
        DatasetError::BadValueLength { offset: 0, tag: Tag(0x0028, 0x0010), vr: VR::US, length: 3 }
    );
    let d = explicit_long_header((0x0010, 0x0010), b"UT", 0xFFFF_FFFF);
    assert!(matches!(
        read_dataset(&d, EXPLICIT, 1 << 20),
        Err(DatasetError::UndefinedLength { .. })
    ));
}

#[test]
fn big_endian_values() {
    let mut d = Vec::new();
    d.extend([0x00, 0x28, 0x00, 0x10]);
    d.extend(b"US");
    d.extend([0x00, 0x02, 0x02, 0x00]);
    let o = read_dataset(&d, BIG, 1 << 20).unwrap();
    assert_eq!(o.element(Tag(0x0028, 0x0010)).unwrap().to_int::<u16>().unwrap(), 512);
}

#[test]
fn text_decoded_by_own_charset_and_items_inherit() {
    // ISO_IR 100 at the root; an item without its own (0008,0005) inherits it.
    let mut d = implicit((0x0008, 0x0005), b"ISO_IR 100");
    let mut item = implicit((0x0010, 0x0010), b"J\xe9r\xf4me");
    let mut seq = raw((0xFFFE, 0xE000), item.len() as u32);
    seq.append(&mut item);
    d.extend(raw((0x0008, 0x1110), seq.len() as u32));
    d.extend(seq);
    d.extend(implicit((0x0010, 0x0010), b"Buc^J\xe9r\xf4me"));
    let o = read_dataset(&d, IMPLICIT, 1 << 20).unwrap();
    assert_eq!(o.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(), "Buc^Jérôme");
    let items = o.element(Tag(0x0008, 0x1110)).unwrap().items().unwrap();
    assert_eq!(items[0].element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(), "Jérôme");
    // Japanese with escapes, as PS3.5 H.3.1.
    let mut d = implicit((0x0008, 0x0005), b"\\ISO 2022 IR 87");
    d.extend(implicit(
        (0x0010, 0x0010),
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B ",
    ));
    let o = read_dataset(&d, IMPLICIT, 1 << 20).unwrap();
    assert_eq!(
        o.element(Tag(0x0010, 0x0010)).unwrap().to_str().unwrap(),
        "Yamada^Tarou=山田^太郎=やまだ^たろう"
    );
}

/// Deterministic pseudo-random inputs and mutations of a valid data set: errors or
/// objects, never a panic, and quickly.
#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut q = Query::from_pairs([
        ("PatientName", "Wang^XiaoDong=王^小東"),
        ("Rows", "512"),
        ("ReferencedStudySequence/ReferencedSOPInstanceUID", "1.2.3"),
        ("ReferencedStudySequence/ReferencedSOPClassUID", "1.2"),
    ])
    .unwrap();
    q.set("ModalitiesInStudy", "CT\\MR").unwrap();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for enc in [IMPLICIT, EXPLICIT, BIG] {
        let good = q.encode(enc).unwrap();
        for _ in 0..3000 {
            let mut d = good.clone();
            for _ in 0..(1 + rnd() % 4) {
                let i = (rnd() as usize) % d.len();
                d[i] = rnd() as u8;
            }
            let cut = (rnd() as usize) % (d.len() + 1);
            let _ = read_dataset(&d[..cut], enc, MAX_IDENTIFIER_LEN);
            let _ = validate_dataset(&d, enc, MAX_IDENTIFIER_LEN);
        }
        for _ in 0..500 {
            let n = (rnd() % 64) as usize;
            let d: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
            let _ = read_dataset(&d, enc, MAX_IDENTIFIER_LEN);
        }
    }
}
