//! Digest authentication (RFC 7616, RFC 2617 as SIP uses it, RFC 3261 §22):
//! a `WWW-Authenticate` / `Proxy-Authenticate` challenge read, and the
//! `Authorization` / `Proxy-Authorization` answer to it.
//!
//! The hash is rsip's [`rsip::services::DigestGenerator`] (MD5, SHA-256,
//! SHA-512); the challenge's parameters are read here because the header is
//! untrusted input and a malformed one must be an error, not a panic or a
//! silent default. Only `qop=auth` (or none) is answered: `auth-int` would need
//! the body hashed and no carrier asks for it alone.

use rsip::headers::auth::{Algorithm, AuthQop};

/// One challenge, as a 401 or 407 carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// 401: `WWW-Authenticate` (answered with `Authorization`); 407: `Proxy-Authenticate`.
    pub proxy: bool,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `MD5` when the challenge names none.
    pub algorithm: String,
    /// The challenge offers `qop=auth`.
    pub qop_auth: bool,
    /// `stale=true`: the nonce expired, the credentials were fine.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the challenge is not a Digest challenge")]
    NotDigest,
    #[error("the challenge has no {0}")]
    Missing(&'static str),
    #[error("the challenge's algorithm {0} is not supported (MD5 and SHA-256 are)")]
    Algorithm(String),
    #[error("the challenge only offers qop={0}")]
    Qop(String),
}

impl Challenge {
    /// Reads the value of a `WWW-Authenticate` (`proxy` false) or
    /// `Proxy-Authenticate` header.
    pub fn parse(value: &str, proxy: bool) -> Result<Challenge, DigestError> {
        let rest = value.trim();
        let (scheme, params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let params = auth_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let qop = get("qop");
        let qop_auth = qop
            .as_deref()
            .is_some_and(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")));
        if let (Some(q), false) = (&qop, qop_auth) {
            return Err(DigestError::Qop(q.clone()));
        }
        let algorithm = get("algorithm").unwrap_or_else(|| "MD5".into());
        algorithm_of(&algorithm)?;
        Ok(Challenge {
            proxy,
            realm: get("realm").ok_or(DigestError::Missing("realm"))?,
            nonce: get("nonce").ok_or(DigestError::Missing("nonce"))?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The header that answers it.
    pub fn answer_header(&self) -> &'static str {
        if self.proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        }
    }

    /// The answer's value for `method` on `uri`, with client nonce `cnonce`
    /// (used when the challenge offers `qop=auth`).
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Result<String, DigestError> {
        let algorithm = algorithm_of(&self.algorithm)?;
        let rsip_uri = rsip::Uri::try_from(uri).map_err(|_| DigestError::Missing("request URI"))?;
        let method = method_of(method);
        let qop = self.qop_auth.then(|| AuthQop::Auth {
            cnonce: cnonce.to_string(),
            nc: 1,
        });
        let response = rsip::services::DigestGenerator {
            username,
            password,
            nonce: &self.nonce,
            uri: &rsip_uri,
            realm: &self.realm,
            method: &method,
            qop: qop.as_ref(),
            algorithm,
        }
        .compute();
        let mut v = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm
        );
        if self.qop_auth {
            v.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            v.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        Ok(v)
    }
}

fn algorithm_of(name: &str) -> Result<Algorithm, DigestError> {
    match name.to_ascii_uppercase().as_str() {
        "MD5" => Ok(Algorithm::Md5),
        "SHA-256" => Ok(Algorithm::Sha256),
        _ => Err(DigestError::Algorithm(name.to_string())),
    }
}

fn method_of(method: &str) -> rsip::Method {
    match method {
        "REGISTER" => rsip::Method::Register,
        "BYE" => rsip::Method::Bye,
        "OPTIONS" => rsip::Method::Options,
        _ => rsip::Method::Invite,
    }
}

/// A value inside a quoted string: backslash and double quote escaped.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `k=v, k="v, with comma"` pairs; unquoted and quoted values.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.trim().is_empty() {
            break;
        }
        let mut value = String::new();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((name.trim().to_string(), value));
        if out.len() > 32 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_answers_as_the_rfc_says() {
        // RFC 2617 §3.5, with the SIP method and URI swapped in for HTTP's.
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
            false,
        )
        .unwrap();
        assert!(c.qop_auth && !c.stale);
        assert_eq!(c.realm, "testrealm@host.com");
        let v = c
            .answer(
                "Mufasa",
                "Circle Of Life",
                "INVITE",
                "sip:100@host.com",
                "0a4f113b",
            )
            .unwrap();
        assert!(v.starts_with("Digest username=\"Mufasa\""), "{v}");
        assert!(v.contains("nc=00000001, cnonce=\"0a4f113b\""), "{v}");
        assert!(
            v.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{v}"
        );
        // The hash itself is rsip's (checked against Kamailio's auth module in
        // tests/call_peers.rs); here: it depends on every input.
        let other = c
            .answer(
                "Mufasa",
                "Circle of Life",
                "INVITE",
                "sip:100@host.com",
                "0a4f113b",
            )
            .unwrap();
        assert_ne!(v, other);
        assert!(!v.contains("Circle Of Life"));
    }

    #[test]
    fn stale_sha256_and_no_qop_are_read() {
        let c = Challenge::parse(
            "Digest realm=\"sip.example\",nonce=\"abc\",algorithm=SHA-256,stale=TRUE",
            true,
        )
        .unwrap();
        assert!(c.stale && c.proxy && !c.qop_auth);
        assert_eq!(c.answer_header(), "Proxy-Authorization");
        let v = c
            .answer("u", "p", "REGISTER", "sip:sip.example", "x")
            .unwrap();
        assert!(v.contains("algorithm=SHA-256") && !v.contains("qop"), "{v}");
    }

    #[test]
    fn what_cannot_be_answered_is_an_error() {
        assert_eq!(
            Challenge::parse("Basic realm=\"x\"", false),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\"", false),
            Err(DigestError::Missing("nonce"))
        );
        assert!(matches!(
            Challenge::parse(
                "Digest realm=\"x\", nonce=\"n\", algorithm=AKAv1-MD5",
                false
            ),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\"", false),
            Err(DigestError::Qop(_))
        ));
        // Garbage never panics.
        for s in [
            "",
            "Digest",
            "Digest ,,,=,\"",
            "Digest realm=\"unterminated",
        ] {
            let _ = Challenge::parse(s, false);
        }
    }
}
