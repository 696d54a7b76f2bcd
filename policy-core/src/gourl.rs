//! Go's `net/url` path escaping, which three built-ins follow: the AWS request
//! signer (`providers.aws.sign_req`), CEL's URL library (`getEscapedPath`)
//! and the Go-shaped URL values of `policy/builtins/goshape.rs`.

/// Go's `shouldEscape(b, encodePath)`.
pub(crate) fn path_byte_needs_escape(b: u8) -> bool {
    !(b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'$'
                | b'&'
                | b'+'
                | b','
                | b'/'
                | b':'
                | b';'
                | b'='
                | b'@'
        ))
}

/// Go's `escape(path, encodePath)`.
pub(crate) fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if path_byte_needs_escape(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Go's `validEncoded(s, encodePath)`: the sub-delimiters, `[`, `]` and `%`
/// are kept as written.
pub(crate) fn valid_encoded_path(s: &str) -> bool {
    s.bytes().all(|b| {
        matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !path_byte_needs_escape(b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_go_does() {
        assert_eq!(escape_path("/a b/c?d"), "/a%20b/c%3Fd");
        assert!(valid_encoded_path("/a(b)%2F"));
        assert!(!valid_encoded_path("/a b"));
    }
}
