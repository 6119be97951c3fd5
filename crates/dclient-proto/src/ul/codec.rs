//! Byte-level encoding and decoding of upper-layer PDUs (PS3.8 section 9.3), and the
//! [`Deframer`] that cuts a byte stream into whole PDUs.
//!
//! Offsets in comments are the 1-based byte positions of the PS3.8 tables. Every read goes
//! through a bounded [`Reader`] that checks what remains before it slices; every length
//! prefix opens a sub-reader that must be consumed exactly. Nothing is allocated from a
//! length that has not been checked against the bytes actually present.

use super::pdu::*;
use crate::error::{DecodeError, EncodeError};

/// The largest non-P-DATA PDU we accept (an A-ASSOCIATE-RQ with 128 contexts and a JWT fits
/// comfortably).
pub const MAX_CONTROL_PDU_LEN: u32 = 1 << 20;

/// Length of the PDU header: type (1), reserved (1), length (4).
pub const PDU_HEADER_LEN: usize = 6;

/// Length of a P-DATA-TF PDU header plus one PDV item header: 6 + 4 (item length) + 1
/// (context ID) + 1 (message control header).
pub const PDATA_OVERHEAD: usize = 12;

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// A bounded cursor over a byte slice. Every accessor checks the remaining length first.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole PDU, for error messages.
    base: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, naming what it reads for error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, base: 0, what }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.remaining() < n {
            Err(DecodeError::UnexpectedEnd {
                what: self.what,
                offset: self.offset(),
                needed: n,
                available: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.need(n)?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes all remaining bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.take(n).map(|_| ())
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Opens a sub-reader over the next `n` bytes (a length-prefixed field).
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.take(n)?;
        Ok(Reader { buf, pos: 0, base, what })
    }

    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
}

fn text(bytes: &[u8], what: &'static str, offset: usize) -> Result<String, DecodeError> {
    // UIDs and AE titles are ASCII (PS3.5 default repertoire). Accept any byte sequence that
    // is valid UTF-8 so that a peer's odd title is reported rather than refused, and strip the
    // padding some implementations add (spaces, NULs).
    let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidValue {
        what,
        offset,
        detail: "not ASCII text".into(),
    })?;
    Ok(s.trim_matches(|c| c == ' ' || c == '\0').to_owned())
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Decodes one whole PDU (header included). The slice must hold exactly one PDU.
pub fn decode_pdu(bytes: &[u8]) -> Result<Pdu, DecodeError> {
    let mut r = Reader::new(bytes, "PDU header");
    let ty = r.u8()?; // 1: PDU-type
    r.skip(1)?; // 2: reserved
    let len = r.u32()? as usize; // 3-6: PDU-length
    if len != r.remaining() {
        return Err(DecodeError::LengthMismatch {
            what: "PDU",
            declared: len as u64,
            actual: r.remaining() as u64,
        });
    }
    let mut body = r.sub(len, "PDU body")?;
    decode_pdu_body(ty, &mut body)
}

/// Decodes a PDU's variable field given its type byte.
pub fn decode_pdu_body(ty: u8, body: &mut Reader<'_>) -> Result<Pdu, DecodeError> {
    let pdu = match ty {
        pdu_type::ASSOCIATE_RQ => {
            let a = decode_associate(body, "A-ASSOCIATE-RQ")?;
            let mut presentation_contexts = Vec::new();
            let mut user_info = UserInfo::default();
            let mut unknown_items = Vec::new();
            let mut application_context = None;
            for item in a.items {
                match item.item_type {
                    item_type::APPLICATION_CONTEXT => {
                        application_context =
                            Some(text(item.data, "application context name", item.offset)?)
                    }
                    item_type::PRESENTATION_CONTEXT_RQ => {
                        presentation_contexts.push(decode_pc_rq(&item)?)
                    }
                    item_type::USER_INFORMATION => user_info = decode_user_info(&item)?,
                    t => unknown_items.push(UnknownItem { item_type: t, data: item.data.to_vec() }),
                }
            }
            Pdu::AssociateRq(AssociateRq {
                protocol_version: a.protocol_version,
                called_ae: a.called_ae,
                calling_ae: a.calling_ae,
                application_context: application_context.ok_or(DecodeError::Missing {
                    what: "application context item in A-ASSOCIATE-RQ",
                })?,
                presentation_contexts,
                user_info,
                unknown_items,
            })
        }
        pdu_type::ASSOCIATE_AC => {
            let a = decode_associate(body, "A-ASSOCIATE-AC")?;
            let mut presentation_contexts = Vec::new();
            let mut user_info = UserInfo::default();
            let mut unknown_items = Vec::new();
            let mut application_context = None;
            for item in a.items {
                match item.item_type {
                    item_type::APPLICATION_CONTEXT => {
                        application_context =
                            Some(text(item.data, "application context name", item.offset)?)
                    }
                    item_type::PRESENTATION_CONTEXT_AC => {
                        presentation_contexts.push(decode_pc_ac(&item)?)
                    }
                    item_type::USER_INFORMATION => user_info = decode_user_info(&item)?,
                    t => unknown_items.push(UnknownItem { item_type: t, data: item.data.to_vec() }),
                }
            }
            Pdu::AssociateAc(AssociateAc {
                protocol_version: a.protocol_version,
                called_ae: a.called_ae,
                calling_ae: a.calling_ae,
                application_context: application_context.ok_or(DecodeError::Missing {
                    what: "application context item in A-ASSOCIATE-AC",
                })?,
                presentation_contexts,
                user_info,
                unknown_items,
            })
        }
        pdu_type::ASSOCIATE_RJ => {
            let mut f = fixed4(body, "A-ASSOCIATE-RJ")?;
            f.skip(1)?; // 7: reserved
            let result = f.u8()?; // 8: result
            let source = f.u8()?; // 9: source
            let reason = f.u8()?; // 10: reason/diag.
            Pdu::AssociateRj(AssociateRj { result, source, reason })
        }
        pdu_type::P_DATA_TF => {
            let mut pdvs = Vec::new();
            while !body.is_empty() {
                // PDV item: 1-4 item-length, 5 presentation-context-ID, 6.. PDV data whose
                // first byte is the message control header (PS3.8 9.3.5.1 and E.2).
                let len = body.u32()? as usize;
                if len < 2 {
                    return Err(DecodeError::InvalidValue {
                        what: "PDV item length",
                        offset: body.offset() - 4,
                        detail: format!("{len} (a PDV holds at least a context ID and a message control header)"),
                    });
                }
                let mut item = body.sub(len, "PDV item")?;
                let context_id = item.u8()?;
                let mch = item.u8()?;
                if mch & 0xFC != 0 {
                    return Err(DecodeError::InvalidValue {
                        what: "PDV message control header",
                        offset: item.offset() - 1,
                        detail: format!("0x{mch:02X} has reserved bits set"),
                    });
                }
                pdvs.push(Pdv {
                    context_id,
                    is_command: mch & 1 != 0,
                    is_last: mch & 2 != 0,
                    data: item.rest().to_vec(),
                });
            }
            if pdvs.is_empty() {
                return Err(DecodeError::Missing { what: "PDV item in P-DATA-TF" });
            }
            Pdu::PData(PData { pdvs })
        }
        pdu_type::RELEASE_RQ => {
            fixed4(body, "A-RELEASE-RQ")?; // 7-10: reserved
            Pdu::ReleaseRq
        }
        pdu_type::RELEASE_RP => {
            fixed4(body, "A-RELEASE-RP")?; // 7-10: reserved
            Pdu::ReleaseRp
        }
        pdu_type::ABORT => {
            let mut f = fixed4(body, "A-ABORT")?;
            f.skip(2)?; // 7-8: reserved
            let source = AbortSource::from_u8(f.u8()?); // 9: source
            let reason = AbortReason::from_u8(f.u8()?); // 10: reason/diag.
            Pdu::Abort(Abort { source, reason })
        }
        other => Pdu::Unknown { pdu_type: other, data: body.rest().to_vec() },
    };
    Ok(pdu)
}

/// The fixed 4-byte body of RJ, RELEASE and ABORT PDUs. PS3.8 fixes the length at 4; we
/// insist, since a longer body means the framing is not what the peer thinks it is.
fn fixed4<'a>(body: &mut Reader<'a>, what: &'static str) -> Result<Reader<'a>, DecodeError> {
    if body.remaining() != 4 {
        return Err(DecodeError::LengthMismatch {
            what,
            declared: body.remaining() as u64,
            actual: 4,
        });
    }
    body.sub(4, what)
}

struct RawItem<'a> {
    item_type: u8,
    /// Byte 2 of the item header: reserved, except the sub-item version of 0x57.
    header_byte2: u8,
    data: &'a [u8],
    offset: usize,
}

struct RawAssociate<'a> {
    protocol_version: u16,
    called_ae: String,
    calling_ae: String,
    items: Vec<RawItem<'a>>,
}

fn decode_associate<'a>(
    body: &mut Reader<'a>,
    what: &'static str,
) -> Result<RawAssociate<'a>, DecodeError> {
    let mut h = body.sub(68, what)?;
    let protocol_version = h.u16()?; // 7-8: protocol-version
    h.skip(2)?; // 9-10: reserved
    let off = h.offset();
    let called_ae = text(h.take(16)?, "called AE title", off)?; // 11-26
    let off = h.offset();
    let calling_ae = text(h.take(16)?, "calling AE title", off)?; // 27-42
    h.skip(32)?; // 43-74: reserved
    let items = decode_items(body)?; // 75-xxx: variable items
    Ok(RawAssociate { protocol_version, called_ae, calling_ae, items })
}

/// Splits a run of items with a 4-byte header (type, reserved, 2-byte length).
fn decode_items<'a>(r: &mut Reader<'a>) -> Result<Vec<RawItem<'a>>, DecodeError> {
    let mut items = Vec::new();
    while !r.is_empty() {
        let offset = r.offset();
        let item_type = r.u8()?;
        let header_byte2 = r.u8()?;
        let len = r.u16()? as usize;
        let data = r.sub(len, "item")?.rest();
        items.push(RawItem { item_type, header_byte2, data, offset: offset + 4 });
    }
    Ok(items)
}

fn decode_pc_rq(item: &RawItem<'_>) -> Result<PresentationContextRq, DecodeError> {
    let mut r =
        Reader { buf: item.data, pos: 0, base: item.offset, what: "presentation context item" };
    let id = r.u8()?; // 5: presentation-context-ID
    r.skip(3)?; // 6-8: reserved
    let mut abstract_syntax = None;
    let mut transfer_syntaxes = Vec::new();
    for sub in decode_items(&mut r)? {
        match sub.item_type {
            item_type::ABSTRACT_SYNTAX => {
                abstract_syntax = Some(text(sub.data, "abstract syntax name", sub.offset)?)
            }
            item_type::TRANSFER_SYNTAX => {
                transfer_syntaxes.push(text(sub.data, "transfer syntax name", sub.offset)?)
            }
            // Unknown sub-items inside a presentation context have nowhere to live; PS3.8
            // defines none, so skipping them is the tolerant reading.
            _ => {}
        }
    }
    Ok(PresentationContextRq {
        id,
        abstract_syntax: abstract_syntax.ok_or(DecodeError::Missing {
            what: "abstract syntax sub-item in presentation context",
        })?,
        transfer_syntaxes,
    })
}

fn decode_pc_ac(item: &RawItem<'_>) -> Result<PresentationContextAc, DecodeError> {
    let mut r =
        Reader { buf: item.data, pos: 0, base: item.offset, what: "presentation context item" };
    let id = r.u8()?; // 5: presentation-context-ID
    r.skip(1)?; // 6: reserved
    let result = PresentationContextResult::from_u8(r.u8()?); // 7: result/reason
    r.skip(1)?; // 8: reserved
    let mut transfer_syntax = String::new();
    for sub in decode_items(&mut r)? {
        if sub.item_type == item_type::TRANSFER_SYNTAX {
            transfer_syntax = text(sub.data, "transfer syntax name", sub.offset)?;
        }
    }
    Ok(PresentationContextAc { id, result, transfer_syntax })
}

fn decode_user_info(item: &RawItem<'_>) -> Result<UserInfo, DecodeError> {
    let mut r = Reader { buf: item.data, pos: 0, base: item.offset, what: "user information item" };
    let mut ui = UserInfo::default();
    for sub in decode_items(&mut r)? {
        let mut s =
            Reader { buf: sub.data, pos: 0, base: sub.offset, what: "user information sub-item" };
        match sub.item_type {
            item_type::MAX_LENGTH => {
                s.what = "maximum length sub-item";
                ui.max_length = Some(s.u32()?);
            }
            item_type::IMPLEMENTATION_CLASS_UID => {
                ui.implementation_class_uid =
                    Some(text(sub.data, "implementation class UID", sub.offset)?)
            }
            item_type::IMPLEMENTATION_VERSION_NAME => {
                ui.implementation_version_name =
                    Some(text(sub.data, "implementation version name", sub.offset)?)
            }
            item_type::ASYNC_OPS_WINDOW => {
                s.what = "asynchronous operations window sub-item";
                ui.async_ops_window =
                    Some(AsyncOpsWindow { invoked: s.u16()?, performed: s.u16()? });
            }
            item_type::ROLE_SELECTION => {
                s.what = "SCP/SCU role selection sub-item";
                let n = s.u16()? as usize;
                let off = s.offset();
                let sop_class_uid = text(s.take(n)?, "role selection SOP class UID", off)?;
                let scu_role = s.u8()? != 0;
                let scp_role = s.u8()? != 0;
                ui.role_selections.push(RoleSelection { sop_class_uid, scu_role, scp_role });
            }
            item_type::SOP_CLASS_EXTENDED => {
                s.what = "SOP class extended negotiation sub-item";
                let n = s.u16()? as usize;
                let off = s.offset();
                let sop_class_uid = text(s.take(n)?, "extended negotiation SOP class UID", off)?;
                ui.sop_class_extended
                    .push(SopClassExtended { sop_class_uid, info: s.rest().to_vec() });
            }
            item_type::SOP_CLASS_COMMON_EXTENDED => {
                s.what = "SOP class common extended negotiation sub-item";
                let n = s.u16()? as usize;
                let off = s.offset();
                let sop_class_uid = text(s.take(n)?, "common extended SOP class UID", off)?;
                let n = s.u16()? as usize;
                let off = s.offset();
                let service_class_uid = text(s.take(n)?, "service class UID", off)?;
                let n = s.u16()? as usize;
                let mut rel = s.sub(n, "related general SOP class identification")?;
                let mut related = Vec::new();
                while !rel.is_empty() {
                    let n = rel.u16()? as usize;
                    let off = rel.offset();
                    related.push(text(rel.take(n)?, "related general SOP class UID", off)?);
                }
                ui.sop_class_common_extended.push(SopClassCommonExtended {
                    version: sub.header_byte2,
                    sop_class_uid,
                    service_class_uid,
                    related_general_sop_classes: related,
                });
            }
            item_type::USER_IDENTITY_RQ => {
                s.what = "user identity sub-item";
                let identity_type = s.u8()?;
                let positive_response_requested = s.u8()? != 0;
                let n = s.u16()? as usize;
                let primary = s.take(n)?.to_vec();
                let n = s.u16()? as usize;
                let secondary = s.take(n)?.to_vec();
                ui.user_identity_rq = Some(UserIdentityRq {
                    identity_type,
                    positive_response_requested,
                    primary,
                    secondary,
                });
            }
            item_type::USER_IDENTITY_AC => {
                s.what = "user identity server response sub-item";
                let n = s.u16()? as usize;
                ui.user_identity_ac = Some(UserIdentityAc { server_response: s.take(n)?.to_vec() });
            }
            t => ui.unknown.push(UnknownItem { item_type: t, data: sub.data.to_vec() }),
        }
    }
    Ok(ui)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends the encoding of `pdu` to `out`.
/// On error `out` is left as it was: a PDU that cannot be encoded leaves no partial header
/// behind to be sent.
pub fn encode_pdu(pdu: &Pdu, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let r = append_pdu(pdu, out, start);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn append_pdu(pdu: &Pdu, out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
    out.push(pdu.pdu_type()); // 1: PDU-type
    out.push(0); // 2: reserved
    out.extend_from_slice(&[0; 4]); // 3-6: PDU-length, patched below
    match pdu {
        Pdu::AssociateRq(rq) => {
            encode_associate_header(out, rq.protocol_version, &rq.called_ae, &rq.calling_ae)?;
            encode_item(out, item_type::APPLICATION_CONTEXT, 0, rq.application_context.as_bytes())?;
            for pc in &rq.presentation_contexts {
                let mut v = vec![pc.id, 0, 0, 0]; // 5: ID, 6-8: reserved
                encode_item(&mut v, item_type::ABSTRACT_SYNTAX, 0, pc.abstract_syntax.as_bytes())?;
                for ts in &pc.transfer_syntaxes {
                    encode_item(&mut v, item_type::TRANSFER_SYNTAX, 0, ts.as_bytes())?;
                }
                encode_item(out, item_type::PRESENTATION_CONTEXT_RQ, 0, &v)?;
            }
            encode_user_info(out, &rq.user_info)?;
            for u in &rq.unknown_items {
                encode_item(out, u.item_type, 0, &u.data)?;
            }
        }
        Pdu::AssociateAc(ac) => {
            encode_associate_header(out, ac.protocol_version, &ac.called_ae, &ac.calling_ae)?;
            encode_item(out, item_type::APPLICATION_CONTEXT, 0, ac.application_context.as_bytes())?;
            for pc in &ac.presentation_contexts {
                // 5: ID, 6: reserved, 7: result/reason, 8: reserved
                let mut v = vec![pc.id, 0, pc.result.to_u8(), 0];
                encode_item(&mut v, item_type::TRANSFER_SYNTAX, 0, pc.transfer_syntax.as_bytes())?;
                encode_item(out, item_type::PRESENTATION_CONTEXT_AC, 0, &v)?;
            }
            encode_user_info(out, &ac.user_info)?;
            for u in &ac.unknown_items {
                encode_item(out, u.item_type, 0, &u.data)?;
            }
        }
        Pdu::AssociateRj(rj) => out.extend_from_slice(&[0, rj.result, rj.source, rj.reason]),
        Pdu::PData(p) => {
            for pdv in &p.pdvs {
                let len = u32::try_from(pdv.data.len() + 2)
                    .map_err(|_| EncodeError::TooLong { what: "PDV", len: pdv.data.len() })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.push(pdv.context_id);
                out.push(pdv.control_header());
                out.extend_from_slice(&pdv.data);
            }
        }
        Pdu::ReleaseRq | Pdu::ReleaseRp => out.extend_from_slice(&[0; 4]),
        Pdu::Abort(a) => out.extend_from_slice(&[0, 0, a.source.to_u8(), a.reason.to_u8()]),
        Pdu::Unknown { data, .. } => out.extend_from_slice(data),
    }
    let body_len = out.len() - start - PDU_HEADER_LEN;
    let len =
        u32::try_from(body_len).map_err(|_| EncodeError::TooLong { what: "PDU", len: body_len })?;
    out[start + 2..start + 6].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Encodes `pdu` into a fresh vector.
pub fn encode_pdu_to_vec(pdu: &Pdu) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::new();
    encode_pdu(pdu, &mut v)?;
    Ok(v)
}

/// Writes the header of a P-DATA-TF PDU carrying exactly one PDV of `data_len` bytes:
/// PDU header (6 bytes) and PDV item header (4 + 1 + 1). The PDV data follows it.
pub fn pdata_header(
    context_id: u8,
    is_command: bool,
    is_last: bool,
    data_len: usize,
) -> [u8; PDATA_OVERHEAD] {
    let item_len = (data_len + 2) as u32;
    let pdu_len = item_len + 4;
    let mut h = [0u8; PDATA_OVERHEAD];
    h[0] = pdu_type::P_DATA_TF;
    h[2..6].copy_from_slice(&pdu_len.to_be_bytes());
    h[6..10].copy_from_slice(&item_len.to_be_bytes());
    h[10] = context_id;
    h[11] = control_header(is_command, is_last);
    h
}

fn encode_associate_header(
    out: &mut Vec<u8>,
    version: u16,
    called: &str,
    calling: &str,
) -> Result<(), EncodeError> {
    out.extend_from_slice(&version.to_be_bytes()); // 7-8: protocol-version
    out.extend_from_slice(&[0, 0]); // 9-10: reserved
    out.extend_from_slice(&ae_field(called)?); // 11-26: called-AE-title
    out.extend_from_slice(&ae_field(calling)?); // 27-42: calling-AE-title
    out.extend_from_slice(&[0; 32]); // 43-74: reserved
    Ok(())
}

/// An AE title as the 16-byte, space-padded field of PS3.8 9.3.2. Leading and trailing
/// spaces are not significant (PS3.5 AE) and are dropped; any other character outside
/// printable ASCII (a CR, a tab) is refused rather than silently trimmed away.
pub fn ae_field(ae: &str) -> Result<[u8; 16], EncodeError> {
    let t = ae.trim_matches(' ');
    if t.is_empty() || t.len() > 16 || !t.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'\\') {
        return Err(EncodeError::InvalidAeTitle(ae.to_owned()));
    }
    let mut f = [b' '; 16];
    f[..t.len()].copy_from_slice(t.as_bytes());
    Ok(f)
}

fn encode_item(out: &mut Vec<u8>, ty: u8, byte2: u8, data: &[u8]) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len())
        .map_err(|_| EncodeError::TooLong { what: "item", len: data.len() })?;
    out.push(ty);
    out.push(byte2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Ok(())
}

fn push_u16_str(v: &mut Vec<u8>, s: &[u8]) -> Result<(), EncodeError> {
    let n =
        u16::try_from(s.len()).map_err(|_| EncodeError::TooLong { what: "field", len: s.len() })?;
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(s);
    Ok(())
}

fn encode_user_info(out: &mut Vec<u8>, ui: &UserInfo) -> Result<(), EncodeError> {
    let mut v = Vec::new();
    if let Some(m) = ui.max_length {
        encode_item(&mut v, item_type::MAX_LENGTH, 0, &m.to_be_bytes())?;
    }
    if let Some(u) = &ui.implementation_class_uid {
        encode_item(&mut v, item_type::IMPLEMENTATION_CLASS_UID, 0, u.as_bytes())?;
    }
    if let Some(w) = ui.async_ops_window {
        let mut d = w.invoked.to_be_bytes().to_vec();
        d.extend_from_slice(&w.performed.to_be_bytes());
        encode_item(&mut v, item_type::ASYNC_OPS_WINDOW, 0, &d)?;
    }
    for r in &ui.role_selections {
        let mut d = Vec::new();
        push_u16_str(&mut d, r.sop_class_uid.as_bytes())?;
        d.push(u8::from(r.scu_role));
        d.push(u8::from(r.scp_role));
        encode_item(&mut v, item_type::ROLE_SELECTION, 0, &d)?;
    }
    if let Some(n) = &ui.implementation_version_name {
        encode_item(&mut v, item_type::IMPLEMENTATION_VERSION_NAME, 0, n.as_bytes())?;
    }
    for e in &ui.sop_class_extended {
        let mut d = Vec::new();
        push_u16_str(&mut d, e.sop_class_uid.as_bytes())?;
        d.extend_from_slice(&e.info);
        encode_item(&mut v, item_type::SOP_CLASS_EXTENDED, 0, &d)?;
    }
    for e in &ui.sop_class_common_extended {
        let mut d = Vec::new();
        push_u16_str(&mut d, e.sop_class_uid.as_bytes())?;
        push_u16_str(&mut d, e.service_class_uid.as_bytes())?;
        let mut rel = Vec::new();
        for r in &e.related_general_sop_classes {
            push_u16_str(&mut rel, r.as_bytes())?;
        }
        push_u16_str(&mut d, &rel)?;
        encode_item(&mut v, item_type::SOP_CLASS_COMMON_EXTENDED, e.version, &d)?;
    }
    if let Some(id) = &ui.user_identity_rq {
        let mut d = vec![id.identity_type, u8::from(id.positive_response_requested)];
        push_u16_str(&mut d, &id.primary)?;
        push_u16_str(&mut d, &id.secondary)?;
        encode_item(&mut v, item_type::USER_IDENTITY_RQ, 0, &d)?;
    }
    if let Some(id) = &ui.user_identity_ac {
        let mut d = Vec::new();
        push_u16_str(&mut d, &id.server_response)?;
        encode_item(&mut v, item_type::USER_IDENTITY_AC, 0, &d)?;
    }
    for u in &ui.unknown {
        encode_item(&mut v, u.item_type, 0, &u.data)?;
    }
    encode_item(out, item_type::USER_INFORMATION, 0, &v)
}

// ---------------------------------------------------------------------------------------------
// Deframer
// ---------------------------------------------------------------------------------------------

/// Cuts a byte stream, arriving in any chunking, into whole PDUs.
///
/// The declared length of each PDU is checked against our limits as soon as its 6-byte header
/// is present, before any buffer grows for it: P-DATA-TF up to the maximum length we
/// advertised, any other PDU up to [`MAX_CONTROL_PDU_LEN`].
#[derive(Debug)]
pub struct Deframer {
    /// Allocated (and initialised) room; only `start..end` holds unread bytes. The room
    /// only grows, so reading into it never zero-fills again.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_pdata_len: u32,
}

impl Deframer {
    /// A deframer accepting P-DATA-TF PDUs whose variable field is at most `max_pdata_len`
    /// bytes (our advertised maximum length; 0 is read as 64 MiB, our hard cap).
    pub fn new(max_pdata_len: u32) -> Self {
        Deframer { buf: Vec::new(), start: 0, end: 0, max_pdata_len: effective_max(max_pdata_len) }
    }

    /// Changes the P-DATA limit (after negotiation).
    pub fn set_max_pdata_len(&mut self, max: u32) {
        self.max_pdata_len = effective_max(max);
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.reserve(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Makes room for `n` more bytes after `end`.
    fn reserve(&mut self, n: usize) {
        if self.buf.len() < self.end + n {
            self.buf.resize(self.end + n, 0);
        }
    }

    /// Lets the caller read straight into spare room of the buffer (no intermediate copy).
    /// `f` gets a writable slice of at least `min_room` bytes and returns how many it filled.
    pub fn fill<E>(
        &mut self,
        min_room: usize,
        f: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.compact();
        // Read as much as the current PDU still needs, at least `min_room`.
        let want = self.bytes_wanted().max(min_room);
        self.reserve(want);
        let end = self.end;
        let r = f(&mut self.buf[end..end + want]);
        if let Ok(n) = &r {
            self.end += (*n).min(want);
        }
        r
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// How many more bytes would complete the PDU being received (a guess of 6 when even the
    /// header is incomplete). Only declared lengths within our limits count.
    fn bytes_wanted(&self) -> usize {
        let avail = self.unread();
        if avail.len() < PDU_HEADER_LEN {
            return PDU_HEADER_LEN - avail.len();
        }
        let ty = avail[0];
        let len = u32::from_be_bytes([avail[2], avail[3], avail[4], avail[5]]);
        if self.check_len(ty, len).is_err() {
            return 0;
        }
        (PDU_HEADER_LEN + len as usize).saturating_sub(avail.len())
    }

    fn check_len(&self, ty: u8, len: u32) -> Result<(), DecodeError> {
        let max = if ty == pdu_type::P_DATA_TF { self.max_pdata_len } else { MAX_CONTROL_PDU_LEN };
        if len <= max {
            return Ok(());
        }
        if !(pdu_type::ASSOCIATE_RQ..=pdu_type::ABORT).contains(&ty) {
            // Not a PDU at all (an HTTP answer, a TLS record): say so, rather than quote the
            // "length" its bytes 3-6 happen to make. (An unknown type with a length within
            // our limits is read, and refused as an unrecognized PDU.)
            let ch =
                if ty.is_ascii_graphic() { format!(" ('{}')", ty as char) } else { String::new() };
            return Err(DecodeError::InvalidValue {
                what: "PDU",
                offset: 0,
                detail: format!(
                    "type 0x{ty:02X}{ch} is not a DICOM PDU type: is the peer speaking DICOM on this port?"
                ),
            });
        }
        Err(DecodeError::PduTooLarge { pdu_type: ty, length: len, max })
    }

    /// Moves unread bytes to the front once more than half the buffer has been consumed.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Bytes buffered and not yet returned as a PDU.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The next whole PDU, if one has arrived. A PDU that fails to decode is an error; the
    /// stream cannot be resynchronised after that, the association must be aborted.
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, DecodeError> {
        match self.next_frame()? {
            Some((ty, range)) => {
                let mut body = Reader {
                    buf: &self.buf[range.clone()],
                    pos: 0,
                    base: PDU_HEADER_LEN,
                    what: "PDU body",
                };
                let pdu = decode_pdu_body(ty, &mut body);
                self.start = range.end;
                pdu.map(Some)
            }
            None => Ok(None),
        }
    }

    /// The next whole frame: its type and the range of its variable field in the buffer.
    fn next_frame(&self) -> Result<Option<(u8, std::ops::Range<usize>)>, DecodeError> {
        let avail = self.unread();
        if avail.len() < PDU_HEADER_LEN {
            return Ok(None);
        }
        let ty = avail[0];
        let len = u32::from_be_bytes([avail[2], avail[3], avail[4], avail[5]]);
        self.check_len(ty, len)?;
        let total = PDU_HEADER_LEN + len as usize;
        if avail.len() < total {
            return Ok(None);
        }
        let body_start = self.start + PDU_HEADER_LEN;
        Ok(Some((ty, body_start..self.start + total)))
    }
}

fn effective_max(m: u32) -> u32 {
    const HARD_CAP: u32 = 64 << 20;
    if m == 0 {
        HARD_CAP
    } else {
        m.min(HARD_CAP)
    }
}
