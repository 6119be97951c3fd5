//! `decode_pdu` on arbitrary bytes: never panics; what decodes re-encodes (when the value
//! is encodable) to bytes that decode to the same PDU.
#![no_main]

use dclient_proto::ul::codec::{decode_pdu, encode_pdu_to_vec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pdu) = decode_pdu(data) else { return };
    // Some decoded values cannot be encoded (an all-blank AE title, say): that is an error
    // the encoder reports, not a panic.
    let Ok(bytes) = encode_pdu_to_vec(&pdu) else { return };
    let again = decode_pdu(&bytes).expect("our own encoding of a decoded PDU decodes");
    assert_eq!(pdu, again, "decode -> encode -> decode changed the PDU");
});
