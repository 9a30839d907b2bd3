//! SDES keying (RFC 4568): the `a=crypto` attribute, its `inline:` master
//! key (30 bytes of key and salt in base64, optional `|lifetime` and
//! `|MKI:length`), and fresh keys of our own.
//!
//! By hand: webrtc-srtp is keyed by DTLS-SRTP in WebRTC and has no SDES; its
//! context takes a raw master key and salt ([`super::srtp`]), which is all
//! SDES needs. The grammar is RFC 4568 §9.2's, for the two suites we support.
//!
//! Refused, since the SRTP context cannot honour them: other suites, and
//! session parameters that change the transform (KDR other than 0,
//! UNENCRYPTED_SRTP/SRTCP, UNAUTHENTICATED_SRTP, FEC_ORDER, FEC_KEY). WSH is
//! accepted and ignored. Of several `;`-separated keys only the first is used.
//! The lifetime is kept, not enforced (a test call sends far fewer than 2^31
//! packets).

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::RngCore;

/// Master key bytes of the AES_CM_128 suites.
pub const KEY_LEN: usize = 16;
/// Master salt bytes of the AES_CM_128 suites.
pub const SALT_LEN: usize = 14;

/// Decodes standard base64 with or without `=` padding (30 bytes need none).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The SDES crypto-suites we support (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES_CM_128_HMAC_SHA1_80: 80-bit tags on SRTP and SRTCP.
    AesCm128HmacSha1_80,
    /// AES_CM_128_HMAC_SHA1_32: 32-bit tags on SRTP, 80-bit on SRTCP.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The suite's name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite of a name (exact, as RFC 4568's grammar is case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(SrtpSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(SrtpSuite::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    /// Bytes of the SRTP authentication tag (10 or 4).
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// A master key identifier (RFC 4568 §6.1: `MKI:length`, length 1–128 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mki {
    /// The identifier's value.
    pub value: u64,
    /// Its length on the wire in bytes.
    pub len: u8,
}

impl Mki {
    /// The MKI as carried in packets: `value` big-endian in `len` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; usize::from(self.len)];
        let be = self.value.to_be_bytes();
        let n = be.len().min(out.len());
        let at = out.len() - n;
        out[at..].copy_from_slice(&be[be.len() - n..]);
        out
    }
}

/// One SDES master key: key, salt, and the optional lifetime and MKI.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The AES-128 master key.
    pub key: [u8; KEY_LEN],
    /// The 112-bit master salt.
    pub salt: [u8; SALT_LEN],
    /// The key's lifetime in packets, if given (`|2^31`).
    pub lifetime: Option<u64>,
    /// The MKI, if given.
    pub mki: Option<Mki>,
}

impl fmt::Debug for MasterKey {
    /// Never prints the key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A fresh random key and salt (the OS-seeded thread RNG), no lifetime or MKI.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN + SALT_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_key_salt(&bytes)
    }

    /// A key from its 30 bytes: the master key, then the master salt.
    pub fn from_key_salt(bytes: &[u8; KEY_LEN + SALT_LEN]) -> Self {
        let mut key = [0u8; KEY_LEN];
        let mut salt = [0u8; SALT_LEN];
        key.copy_from_slice(&bytes[..KEY_LEN]);
        salt.copy_from_slice(&bytes[KEY_LEN..]);
        MasterKey {
            key,
            salt,
            lifetime: None,
            mki: None,
        }
    }

    /// Parses a key-param: `inline:<base64 of 30 bytes>[|lifetime][|MKI:len]`.
    pub fn parse_inline(param: &str) -> Result<Self, SdesError> {
        let info = param.strip_prefix("inline:").ok_or(SdesError::NotInline)?;
        let mut parts = info.split('|');
        let b64 = parts.next().unwrap_or_default();
        let raw = BASE64.decode(b64).map_err(|_| SdesError::BadBase64)?;
        let bytes: [u8; KEY_LEN + SALT_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| SdesError::KeyLength(raw.len()))?;
        let mut key = Self::from_key_salt(&bytes);
        for part in parts {
            if let Some((value, len)) = part.split_once(':') {
                if key.mki.is_some() {
                    return Err(SdesError::BadKeyParam(part.to_string()));
                }
                key.mki =
                    Some(parse_mki(value, len).ok_or_else(|| SdesError::BadMki(part.to_string()))?);
            } else if key.lifetime.is_none() && key.mki.is_none() {
                key.lifetime = Some(
                    parse_lifetime(part).ok_or_else(|| SdesError::BadLifetime(part.to_string()))?,
                );
            } else {
                return Err(SdesError::BadKeyParam(part.to_string()));
            }
        }
        Ok(key)
    }

    /// The key-param for SDP: `inline:<base64>[|lifetime][|MKI:len]`.
    pub fn to_inline(&self) -> String {
        let mut bytes = Vec::with_capacity(KEY_LEN + SALT_LEN);
        bytes.extend_from_slice(&self.key);
        bytes.extend_from_slice(&self.salt);
        let mut out = format!("inline:{}", BASE64.encode(bytes));
        if let Some(l) = self.lifetime {
            out.push_str(&format!("|{l}"));
        }
        if let Some(m) = &self.mki {
            out.push_str(&format!("|{}:{}", m.value, m.len));
        }
        out
    }
}

/// `2^n` (n ≤ 48) or a decimal count.
fn parse_lifetime(s: &str) -> Option<u64> {
    match s.strip_prefix("2^") {
        Some(exp) => {
            let e: u32 = exp.parse().ok()?;
            (e <= 48).then(|| 1u64 << e)
        }
        None => s
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?,
    }
}

fn parse_mki(value: &str, len: &str) -> Option<Mki> {
    if !value.bytes().all(|b| b.is_ascii_digit()) || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = value.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if !(1..=128).contains(&len) {
        return None;
    }
    // The value must fit in `len` bytes.
    (len >= 8 || value >> (8 * u32::from(len)) == 0).then_some(Mki { value, len })
}

/// One `a=crypto` attribute (RFC 4568 §9.1): tag, suite, the first key, and
/// the session parameters as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that the answer repeats (1–999999999).
    pub tag: u32,
    /// The crypto-suite.
    pub suite: SrtpSuite,
    /// The first (and, as we use it, only) master key.
    pub key: MasterKey,
    /// Session parameters that we accept and ignore (WSH).
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// Parses the value of `a=crypto:` (the text after the colon; a leading
    /// `a=crypto:` or `crypto:` is accepted too).
    pub fn parse(value: &str) -> Result<Self, SdesError> {
        let value = value.trim();
        let value = value.strip_prefix("a=").unwrap_or(value);
        let value = value.strip_prefix("crypto:").unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next().ok_or(SdesError::Missing("tag"))?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::BadTag(tag.to_string()));
        }
        let tag: u32 = tag
            .parse()
            .map_err(|_| SdesError::BadTag(tag.to_string()))?;
        let suite_name = fields.next().ok_or(SdesError::Missing("crypto-suite"))?;
        let suite = SrtpSuite::from_name(suite_name)
            .ok_or_else(|| SdesError::UnsupportedSuite(suite_name.to_string()))?;
        let keys = fields.next().ok_or(SdesError::Missing("key-params"))?;
        // Several keys are separated by ';': we key with the first one.
        let first = keys.split(';').next().unwrap_or_default();
        let key = MasterKey::parse_inline(first)?;
        let mut session_params = Vec::new();
        for p in fields {
            let name = p.split('=').next().unwrap_or_default();
            match name {
                "WSH" => session_params.push(p.to_string()),
                "KDR" if p == "KDR=0" => session_params.push(p.to_string()),
                _ => return Err(SdesError::UnsupportedSessionParam(p.to_string())),
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key,
            session_params,
        })
    }

    /// Our own attribute: a fresh random key for `suite` under `tag`.
    pub fn generate(tag: u32, suite: SrtpSuite) -> Self {
        CryptoAttribute {
            tag,
            suite,
            key: MasterKey::generate(),
            session_params: Vec::new(),
        }
    }
}

impl fmt::Display for CryptoAttribute {
    /// The attribute's value, as after `a=crypto:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.tag,
            self.suite.name(),
            self.key.to_inline()
        )?;
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// Why an `a=crypto` attribute or key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdesError {
    /// A required field is absent.
    Missing(&'static str),
    /// The tag is not 1–9 digits.
    BadTag(String),
    /// A crypto-suite we do not support.
    UnsupportedSuite(String),
    /// The key method is not `inline:`.
    NotInline,
    /// The key is not base64.
    BadBase64,
    /// The key and salt are not 30 bytes (the length found).
    KeyLength(usize),
    /// A lifetime that is neither `2^n` (n ≤ 48) nor a decimal number.
    BadLifetime(String),
    /// An MKI that is not `value:length` with length 1–128 and the value fitting.
    BadMki(String),
    /// A key parameter out of order or repeated.
    BadKeyParam(String),
    /// A session parameter that changes the transform (KDR≠0, UNENCRYPTED_*, …).
    UnsupportedSessionParam(String),
}

impl fmt::Display for SdesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdesError::Missing(what) => write!(f, "a=crypto has no {what}"),
            SdesError::BadTag(t) => write!(f, "a=crypto tag {t:?} is not 1-9 digits"),
            SdesError::UnsupportedSuite(s) => write!(f, "crypto-suite {s} is not supported"),
            SdesError::NotInline => write!(f, "the key method is not inline:"),
            SdesError::BadBase64 => write!(f, "the inline key is not base64"),
            SdesError::KeyLength(n) => write!(f, "the inline key is {n} bytes, not 30"),
            SdesError::BadLifetime(l) => write!(f, "key lifetime {l:?} is not valid"),
            SdesError::BadMki(m) => write!(f, "MKI {m:?} is not valid"),
            SdesError::BadKeyParam(p) => write!(f, "key parameter {p:?} is out of place"),
            SdesError::UnsupportedSessionParam(p) => {
                write!(f, "session parameter {p} is not supported")
            }
        }
    }
}

impl std::error::Error for SdesError {}

#[cfg(test)]
mod tests;
