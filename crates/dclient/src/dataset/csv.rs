//! CSV rows (RFC 4180), for the match tables and reports built from data sets.

use std::io::{self, Write};

/// Writes one CSV row of `cells` (RFC 4180: comma-separated, CRLF, a cell quoted when it
/// holds a comma, a quote or a line break, its quotes doubled).
pub fn write_csv_row<W: Write>(w: &mut W, cells: &[String]) -> io::Result<()> {
    let mut line = String::with_capacity(128);
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if c.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&c.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(c);
        }
    }
    line.push_str("\r\n");
    w.write_all(line.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let mut v = Vec::new();
        write_csv_row(&mut v, &["a".into(), "b,c".into(), "say \"hi\"".into()]).unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "a,\"b,c\",\"say \"\"hi\"\"\"\r\n");
    }
}
