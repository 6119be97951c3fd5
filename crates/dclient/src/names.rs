//! Human names for UIDs (SOP classes and transfer syntaxes), for messages and reports.

use dicom_core::dictionary::UidDictionary;
use dicom_dictionary_std::StandardSopClassDictionary;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// The name of a SOP class or transfer syntax UID ("CT Image Storage", "Explicit VR Little
/// Endian"), if it is a standard one.
pub fn uid_name(uid: &str) -> Option<&'static str> {
    if let Some(e) = StandardSopClassDictionary.by_uid(uid) {
        return Some(e.name);
    }
    TransferSyntaxRegistry.get(uid).map(|ts| ts.name())
}

/// "CT Image Storage (1.2.840.10008.5.1.4.1.1.2)", or the bare UID when unknown.
pub fn describe_uid(uid: &str) -> String {
    match uid_name(uid) {
        Some(n) => format!("{n} ({uid})"),
        None => uid.to_owned(),
    }
}

/// `host:port` as people write it: an IPv6 address in brackets (`[::1]:11112`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A peer's text made fit for a one-line message or log: control characters (a newline,
/// an escape sequence that would drive the terminal) shown escaped as `\n`, `\u{1b}`, and
/// at most 80 characters.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(84));
    for (i, c) in s.chars().enumerate() {
        if i == 80 {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("::1", 104), "[::1]:104");
        assert_eq!(host_port("127.0.0.1", 104), "127.0.0.1:104");
        assert_eq!(host_port("pacs.example", 11112), "pacs.example:11112");
    }

    #[test]
    fn names_of_common_uids() {
        assert_eq!(uid_name("1.2.840.10008.1.1"), Some("Verification SOP Class"));
        assert_eq!(uid_name("1.2.840.10008.1.2.1"), Some("Explicit VR Little Endian"));
        assert_eq!(uid_name("1.2.3.4"), None);
        assert_eq!(describe_uid("1.2.3.4"), "1.2.3.4");
    }

    #[test]
    fn printable_escapes_control_characters_and_cuts_long_text() {
        assert_eq!(printable("1.2.3"), "1.2.3");
        assert_eq!(printable("1.2\n\u{1b}[31mX"), "1.2\\n\\u{1b}[31mX");
        assert_eq!(printable(&"9".repeat(100)), format!("{}...", "9".repeat(80)));
    }
}
