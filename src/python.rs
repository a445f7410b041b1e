//! Python's text forms of values, which formats vouch reads bake into their bytes: pickles
//! hold bytes literals, and model-signing 0.2 signed the `repr()` of its payload.

/// Python's `repr()` of a bytes object.
pub fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = format!("b{quote}");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b if b as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(
            bytes_repr(b"{\"a\": 'x'}\n\\\x01\xff"),
            r#"b'{"a": \'x\'}\n\\\x01\xff'"#
        );
        assert_eq!(bytes_repr(b"it's"), r#"b"it's""#);
    }
}
