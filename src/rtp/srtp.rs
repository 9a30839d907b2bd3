//! SRTP protect/unprotect contexts for AES_CM_128_HMAC_SHA1_80 and _32,
//! keyed by SDES master keys ([`super::sdes`]).
//!
//! The cryptography is `webrtc-srtp`'s [`Context`] (AES-CM and HMAC-SHA1 from
//! RustCrypto underneath); nothing here computes a cipher or a MAC. What this
//! file adds around it, and why:
//!
//! - MKI: webrtc-srtp has none. When the carrier's key carries `|MKI:len`, its
//!   packets have the MKI between the payload and the tag (RFC 3711 §3.1), and
//!   the tag does not cover it: [`SrtpInbound`] checks and strips it before the
//!   context sees the packet; [`SrtpOutbound`] inserts ours likewise.
//! - SRTCP with the E bit clear: webrtc-srtp's `decrypt_rtcp` returns such a
//!   packet without checking its tag at all (0.17.2,
//!   `cipher_aes_cm_hmac_sha1/ctrcipher.rs`); we never negotiate
//!   UNENCRYPTED_SRTCP, so an E=0 packet is refused as unauthenticated here.
//! - Checks before the context: its SRTCP index read subtracts from the packet
//!   length unchecked and panics on a packet shorter than the trailer, and its
//!   RTP header parse (the `rtp` crate's) panics on some malformed header
//!   extensions ([`super::packet::rtp_extension_is_sound`]).
//! - A cap on the SSRCs handed to the inbound context ([`MAX_INBOUND_SSRCS`]):
//!   it keeps state per SSRC for every packet it is given, authentic or not,
//!   so garbage with random SSRCs would grow it without bound.
//!
//! No replay protection (the contexts are built without a replay window): a
//! replayed packet would be counted as a duplicate by the receiver's sequence
//! statistics, which is the more useful evidence for a prober.

use std::fmt;

use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

use super::sdes::{MasterKey, Mki, SrtpSuite};

/// The SRTCP trailer before the tag: E bit and 31-bit index.
const SRTCP_INDEX_LEN: usize = 4;
/// The tag of SRTCP for both suites (RFC 4568 §6.2: 80 bits for RTCP even in _32).
const SRTCP_TAG_LEN: usize = 10;
/// Distinct SSRCs the inbound context is given before new ones are refused.
pub const MAX_INBOUND_SSRCS: usize = 256;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtpError {
    /// The key could not make a context (should not happen for valid keys).
    Key(String),
    /// Too short, or not an RTP/RTCP packet at all.
    Malformed(&'static str),
    /// The authentication tag does not verify.
    AuthFailed,
    /// The packet's MKI is not the one of our key.
    UnknownMki,
    /// SRTCP with the E bit clear, which we did not negotiate.
    UnencryptedSrtcp,
    /// A new SSRC past [`MAX_INBOUND_SSRCS`].
    TooManySsrcs,
    /// Anything else the context reported.
    Other(String),
}

impl SrtpError {
    /// True when the packet failed authentication (as opposed to being short or
    /// garbled): a wrong key, a wrong MKI, tampering, or plain RTP on an SRTP
    /// session.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            SrtpError::AuthFailed | SrtpError::UnknownMki | SrtpError::UnencryptedSrtcp
        )
    }
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SrtpError::Key(e) => write!(f, "SRTP key: {e}"),
            SrtpError::Malformed(what) => write!(f, "not an SRTP packet: {what}"),
            SrtpError::AuthFailed => write!(f, "SRTP authentication failed"),
            SrtpError::UnknownMki => write!(f, "SRTP packet with an unknown MKI"),
            SrtpError::UnencryptedSrtcp => write!(f, "SRTCP packet with the E bit clear"),
            SrtpError::TooManySsrcs => write!(f, "SRTP packet from one SSRC too many"),
            SrtpError::Other(e) => write!(f, "SRTP: {e}"),
        }
    }
}

impl std::error::Error for SrtpError {}

fn map_err(e: webrtc_srtp::Error) -> SrtpError {
    use webrtc_srtp::Error as E;
    match e {
        E::RtpFailedToVerifyAuthTag
        | E::RtcpFailedToVerifyAuthTag
        | E::ErrFailedToVerifyAuthTag => SrtpError::AuthFailed,
        E::ErrTooShortRtp | E::ErrTooShortRtcp | E::SrtpTooSmall(..) | E::SrtcpTooSmall(..) => {
            SrtpError::Malformed("too short")
        }
        E::Util(_) | E::Rtcp(_) => SrtpError::Malformed("header"),
        other => SrtpError::Other(other.to_string()),
    }
}

fn profile(suite: SrtpSuite) -> ProtectionProfile {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

fn context(key: &MasterKey, suite: SrtpSuite) -> Result<Context, SrtpError> {
    // None, None: no replay windows (see the module doc).
    Context::new(&key.key, &key.salt, profile(suite), None, None)
        .map_err(|e| SrtpError::Key(e.to_string()))
}

/// Protects what we send: RTP to SRTP, RTCP to SRTCP, with our key.
pub struct SrtpOutbound {
    ctx: Context,
    suite: SrtpSuite,
    mki: Option<Vec<u8>>,
}

impl fmt::Debug for SrtpOutbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpOutbound")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpOutbound {
    /// A context for our key (the one in our offer or answer).
    pub fn new(key: &MasterKey, suite: SrtpSuite) -> Result<Self, SrtpError> {
        Ok(SrtpOutbound {
            ctx: context(key, suite)?,
            suite,
            mki: key.mki.as_ref().map(Mki::to_bytes),
        })
    }

    /// An RTP packet, encrypted and tagged (and the MKI inserted, if any).
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self.ctx.encrypt_rtp(packet).map_err(map_err)?;
        Ok(insert_mki(
            &out,
            self.mki.as_deref(),
            self.suite.rtp_tag_len(),
        ))
    }

    /// A compound RTCP packet, encrypted, indexed and tagged.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let out = self.ctx.encrypt_rtcp(packet).map_err(map_err)?;
        Ok(insert_mki(&out, self.mki.as_deref(), SRTCP_TAG_LEN))
    }
}

fn insert_mki(packet: &[u8], mki: Option<&[u8]>, tag_len: usize) -> Vec<u8> {
    let Some(mki) = mki else {
        return packet.to_vec();
    };
    let at = packet.len() - tag_len;
    let mut out = Vec::with_capacity(packet.len() + mki.len());
    out.extend_from_slice(&packet[..at]);
    out.extend_from_slice(mki);
    out.extend_from_slice(&packet[at..]);
    out
}

/// Unprotects what the carrier sends, with the carrier's key.
pub struct SrtpInbound {
    ctx: Context,
    suite: SrtpSuite,
    mki: Option<Vec<u8>>,
    ssrcs: Vec<u32>,
}

impl fmt::Debug for SrtpInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpInbound")
            .field("suite", &self.suite)
            .field("ssrcs", &self.ssrcs)
            .finish_non_exhaustive()
    }
}

impl SrtpInbound {
    /// A context for the carrier's key (the one in its offer or answer).
    pub fn new(key: &MasterKey, suite: SrtpSuite) -> Result<Self, SrtpError> {
        Ok(SrtpInbound {
            ctx: context(key, suite)?,
            suite,
            mki: key.mki.as_ref().map(Mki::to_bytes),
            ssrcs: Vec::new(),
        })
    }

    /// An SRTP packet verified and decrypted to plain RTP.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag = self.suite.rtp_tag_len();
        let packet = self.strip_mki(packet, tag, 12)?;
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed("RTP version is not 2"));
        }
        // The context parses the (clear) header with `rtp`, which panics on
        // some malformed header extensions (see `packet`).
        if !super::packet::rtp_extension_is_sound(&packet) {
            return Err(SrtpError::Malformed("RTP header extension"));
        }
        self.admit(u32::from_be_bytes([
            packet[8], packet[9], packet[10], packet[11],
        ]))?;
        self.ctx
            .decrypt_rtp(&packet)
            .map(|b| b.to_vec())
            .map_err(map_err)
    }

    /// An SRTCP packet verified and decrypted to plain (compound) RTCP.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let packet = self.strip_mki(packet, SRTCP_TAG_LEN, 8 + SRTCP_INDEX_LEN)?;
        if packet[0] >> 6 != 2 {
            return Err(SrtpError::Malformed("RTCP version is not 2"));
        }
        let e_bit = packet[packet.len() - SRTCP_TAG_LEN - SRTCP_INDEX_LEN] >> 7;
        if e_bit == 0 {
            return Err(SrtpError::UnencryptedSrtcp);
        }
        self.admit(u32::from_be_bytes([
            packet[4], packet[5], packet[6], packet[7],
        ]))?;
        self.ctx
            .decrypt_rtcp(&packet)
            .map(|b| b.to_vec())
            .map_err(map_err)
    }

    /// Checks the length (at least `min` bytes before MKI and tag), then checks
    /// and removes the MKI, if our key has one.
    fn strip_mki(&self, packet: &[u8], tag: usize, min: usize) -> Result<Vec<u8>, SrtpError> {
        let mki_len = self.mki.as_ref().map_or(0, Vec::len);
        if packet.len() < min + mki_len + tag {
            return Err(SrtpError::Malformed("too short"));
        }
        let Some(mki) = &self.mki else {
            return Ok(packet.to_vec());
        };
        let at = packet.len() - tag - mki_len;
        if &packet[at..at + mki_len] != mki.as_slice() {
            return Err(SrtpError::UnknownMki);
        }
        let mut out = Vec::with_capacity(packet.len() - mki_len);
        out.extend_from_slice(&packet[..at]);
        out.extend_from_slice(&packet[at + mki_len..]);
        Ok(out)
    }

    fn admit(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        if self.ssrcs.contains(&ssrc) {
            return Ok(());
        }
        if self.ssrcs.len() >= MAX_INBOUND_SSRCS {
            return Err(SrtpError::TooManySsrcs);
        }
        self.ssrcs.push(ssrc);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
