//! The server address and credentials of a ClickHouse URL, and identifier checks.

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A ClickHouse URL split into the address and the credentials it may carry
/// (`http://user:password@host:8123`; `%XX` escapes in them are decoded).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Endpoint {
        let plain = Endpoint {
            url: url.to_owned(),
            user: None,
            password: None,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return plain;
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return plain;
        };
        let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(percent_decode(password))),
            None => (userinfo, None),
        };
        Endpoint {
            url: format!("{scheme}://{host}"),
            user: Some(percent_decode(user)).filter(|u| !u.is_empty()),
            password,
        }
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        assert_eq!(
            Endpoint::parse("http://shaobing:p%40ss:w@ch.local:8123/"),
            Endpoint {
                url: "http://ch.local:8123/".into(),
                user: Some("shaobing".into()),
                password: Some("p@ss:w".into()),
            }
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8123"),
            Endpoint {
                url: "http://127.0.0.1:8123".into(),
                user: None,
                password: None,
            }
        );
        assert_eq!(
            Endpoint::parse("https://ro@h/x@y").user.as_deref(),
            Some("ro")
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn names_must_be_identifiers() {
        assert!(is_identifier("shaobing"));
        assert!(is_identifier("_t1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a;DROP"));
        assert!(!is_identifier(""));
    }
}
