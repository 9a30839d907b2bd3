//! Findings about a trunk: what is wrong or risky, how bad, and how to fix it.
//!
//! `lint` holds the static checks derived from Bolna's setup guide and API rules.
//! Every finding has a stable `check` id (part of the JSON output and the metrics),
//! a severity, a message saying what was observed, and a remedy.

use serde::Serialize;

pub mod call;
pub mod credentials;
pub mod lint;
pub mod media;
pub mod mtu;
pub mod origination;
pub mod path;
pub mod reachability;

pub use lint::{lint, lint_flag_trunk};

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Stable identifiers of every check. Their `as_str` spellings are an API
/// (JSON output, metric labels, README table): never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    DefinitionInvalid,
    TransportInvalid,
    AuthTypeInvalid,
    MediaEncryptionInvalid,
    SdesRequiresTls,
    NoGateways,
    GatewayAddressInvalid,
    GatewayPortInvalid,
    TlsGatewayPort,
    PlainGatewayOn5061,
    TlsIpLiteralGateway,
    DuplicateGateway,
    CodecNoG711,
    CodecUlawDisallowed,
    CodecUlawMissing,
    CodecCompressed,
    UserpassMissingUsername,
    UserpassMissingPassword,
    IpBasedMissingIdentifiers,
    IpIdentifierInvalid,
    IpIdentifierTooBroad,
    QualifyFrequencyNegative,
    QualifyDisabled,
    OptimisticWithoutSdes,
    DirectMediaEnabled,
    RtpSymmetricDisabled,
    ForceRportDisabled,
    InboundWithoutNumbers,
    TrunkInactive,
    MediaNotAdvertised,
    MediaCodecMismatch,
    MediaCarrierAlawOnly,
    SdesCarrierPlainRtp,
    SdesCarrierPlainRtpOptimistic,
    SdesCarrierSrtpOnly,
    SdesNoSupportedSuite,
    SdesCryptoSuiteUnsupported,
    GatewayOutsideIpIdentifiers,
    UdpLargeMessagesLost,
    InviteExceedsUdpLimit,
    MtuLadderInconclusive,
    CredentialsRejected,
    CredentialsUntested,
    CredentialsNotChallenged,
    RegisterUnanswered,
}

impl CheckId {
    /// Every check, in the order lint runs them (findings of equal severity
    /// keep this order).
    pub const ALL: &'static [CheckId] = &[
        CheckId::DefinitionInvalid,
        CheckId::TransportInvalid,
        CheckId::AuthTypeInvalid,
        CheckId::MediaEncryptionInvalid,
        CheckId::SdesRequiresTls,
        CheckId::NoGateways,
        CheckId::GatewayAddressInvalid,
        CheckId::GatewayPortInvalid,
        CheckId::TlsGatewayPort,
        CheckId::PlainGatewayOn5061,
        CheckId::TlsIpLiteralGateway,
        CheckId::DuplicateGateway,
        CheckId::CodecNoG711,
        CheckId::CodecUlawDisallowed,
        CheckId::CodecUlawMissing,
        CheckId::CodecCompressed,
        CheckId::UserpassMissingUsername,
        CheckId::UserpassMissingPassword,
        CheckId::IpBasedMissingIdentifiers,
        CheckId::IpIdentifierInvalid,
        CheckId::IpIdentifierTooBroad,
        CheckId::QualifyFrequencyNegative,
        CheckId::QualifyDisabled,
        CheckId::OptimisticWithoutSdes,
        CheckId::DirectMediaEnabled,
        CheckId::RtpSymmetricDisabled,
        CheckId::ForceRportDisabled,
        CheckId::InboundWithoutNumbers,
        CheckId::TrunkInactive,
        CheckId::MediaNotAdvertised,
        CheckId::MediaCodecMismatch,
        CheckId::MediaCarrierAlawOnly,
        CheckId::SdesCarrierPlainRtp,
        CheckId::SdesCarrierPlainRtpOptimistic,
        CheckId::SdesCarrierSrtpOnly,
        CheckId::SdesNoSupportedSuite,
        CheckId::SdesCryptoSuiteUnsupported,
        CheckId::GatewayOutsideIpIdentifiers,
        CheckId::UdpLargeMessagesLost,
        CheckId::InviteExceedsUdpLimit,
        CheckId::MtuLadderInconclusive,
        CheckId::CredentialsRejected,
        CheckId::CredentialsUntested,
        CheckId::CredentialsNotChallenged,
        CheckId::RegisterUnanswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::TransportInvalid => "transport_invalid",
            CheckId::AuthTypeInvalid => "auth_type_invalid",
            CheckId::MediaEncryptionInvalid => "media_encryption_invalid",
            CheckId::SdesRequiresTls => "sdes_requires_tls",
            CheckId::NoGateways => "no_gateways",
            CheckId::GatewayAddressInvalid => "gateway_address_invalid",
            CheckId::GatewayPortInvalid => "gateway_port_invalid",
            CheckId::TlsGatewayPort => "tls_gateway_port",
            CheckId::PlainGatewayOn5061 => "plain_gateway_on_5061",
            CheckId::TlsIpLiteralGateway => "tls_ip_literal_gateway",
            CheckId::DuplicateGateway => "duplicate_gateway",
            CheckId::CodecNoG711 => "codec_no_g711",
            CheckId::CodecUlawDisallowed => "codec_ulaw_disallowed",
            CheckId::CodecUlawMissing => "codec_ulaw_missing",
            CheckId::CodecCompressed => "codec_compressed",
            CheckId::UserpassMissingUsername => "userpass_missing_username",
            CheckId::UserpassMissingPassword => "userpass_missing_password",
            CheckId::IpBasedMissingIdentifiers => "ip_based_missing_identifiers",
            CheckId::IpIdentifierInvalid => "ip_identifier_invalid",
            CheckId::IpIdentifierTooBroad => "ip_identifier_too_broad",
            CheckId::QualifyFrequencyNegative => "qualify_frequency_negative",
            CheckId::QualifyDisabled => "qualify_disabled",
            CheckId::OptimisticWithoutSdes => "optimistic_without_sdes",
            CheckId::DirectMediaEnabled => "direct_media_enabled",
            CheckId::RtpSymmetricDisabled => "rtp_symmetric_disabled",
            CheckId::ForceRportDisabled => "force_rport_disabled",
            CheckId::InboundWithoutNumbers => "inbound_without_numbers",
            CheckId::TrunkInactive => "trunk_inactive",
            CheckId::MediaNotAdvertised => "media_not_advertised",
            CheckId::MediaCodecMismatch => "media_codec_mismatch",
            CheckId::MediaCarrierAlawOnly => "media_carrier_alaw_only",
            CheckId::SdesCarrierPlainRtp => "sdes_carrier_plain_rtp",
            CheckId::SdesCarrierPlainRtpOptimistic => "sdes_carrier_plain_rtp_optimistic",
            CheckId::SdesCarrierSrtpOnly => "sdes_carrier_srtp_only",
            CheckId::SdesNoSupportedSuite => "sdes_no_supported_suite",
            CheckId::SdesCryptoSuiteUnsupported => "sdes_crypto_suite_unsupported",
            CheckId::GatewayOutsideIpIdentifiers => "gateway_outside_ip_identifiers",
            CheckId::UdpLargeMessagesLost => "udp_large_messages_lost",
            CheckId::InviteExceedsUdpLimit => "invite_exceeds_udp_limit",
            CheckId::MtuLadderInconclusive => "mtu_ladder_inconclusive",
            CheckId::CredentialsRejected => "credentials_rejected",
            CheckId::CredentialsUntested => "credentials_untested",
            CheckId::CredentialsNotChallenged => "credentials_not_challenged",
            CheckId::RegisterUnanswered => "register_unanswered",
            CheckId::DefinitionInvalid => "definition_invalid",
        }
    }

    /// The check with this `as_str` spelling (the inverse of [`CheckId::as_str`]).
    pub fn from_id(s: &str) -> Option<CheckId> {
        CheckId::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The severity of every finding of this check.
    pub fn severity(self) -> Severity {
        use CheckId::*;
        match self {
            DefinitionInvalid
            | TransportInvalid
            | AuthTypeInvalid
            | MediaEncryptionInvalid
            | SdesRequiresTls
            | NoGateways
            | GatewayAddressInvalid
            | GatewayPortInvalid
            | CodecNoG711
            | UserpassMissingUsername
            | UserpassMissingPassword
            | IpBasedMissingIdentifiers
            | IpIdentifierInvalid
            | QualifyFrequencyNegative
            | UdpLargeMessagesLost => Severity::Error,
            TlsGatewayPort
            | PlainGatewayOn5061
            | TlsIpLiteralGateway
            | DuplicateGateway
            | CodecUlawDisallowed
            | CodecUlawMissing
            | CodecCompressed
            | IpIdentifierTooBroad
            | DirectMediaEnabled
            | RtpSymmetricDisabled
            | ForceRportDisabled
            | InboundWithoutNumbers
            | InviteExceedsUdpLimit => Severity::Warning,
            QualifyDisabled | OptimisticWithoutSdes | TrunkInactive | MtuLadderInconclusive => {
                Severity::Info
            }
            MediaNotAdvertised => Severity::Info,
            MediaCodecMismatch => Severity::Error,
            MediaCarrierAlawOnly => Severity::Warning,
            SdesCarrierPlainRtp => Severity::Error,
            SdesCarrierPlainRtpOptimistic => Severity::Warning,
            SdesCarrierSrtpOnly => Severity::Error,
            SdesNoSupportedSuite => Severity::Error,
            SdesCryptoSuiteUnsupported => Severity::Warning,
            GatewayOutsideIpIdentifiers => Severity::Warning,
            CredentialsRejected => Severity::Error,
            CredentialsUntested | CredentialsNotChallenged => Severity::Info,
            RegisterUnanswered => Severity::Warning,
        }
    }

    /// One line saying what the check looks for (README table, `--list-checks`).
    pub fn describe(self) -> &'static str {
        match self {
            CheckId::DefinitionInvalid => {
                "the trunk's JSON does not fit the create-trunk schema (a field of the wrong type)"
            }
            CheckId::TransportInvalid => {
                "transport is not transport-udp, transport-tcp or transport-tls"
            }
            CheckId::AuthTypeInvalid => "auth_type is not userpass or ip-based",
            CheckId::MediaEncryptionInvalid => "media_encryption is not no or sdes",
            CheckId::SdesRequiresTls => {
                "media_encryption=sdes without transport-tls (the API answers 422)"
            }
            CheckId::NoGateways => "the trunk has no gateway (at least one is required)",
            CheckId::GatewayAddressInvalid => {
                "a gateway_address is empty or not a bare hostname/IP (scheme, port, path...)"
            }
            CheckId::GatewayPortInvalid => "a gateway port is outside 1-65535",
            CheckId::TlsGatewayPort => "a TLS trunk has a gateway not on port 5061",
            CheckId::PlainGatewayOn5061 => "a UDP/TCP trunk has a gateway on the TLS port 5061",
            CheckId::TlsIpLiteralGateway => {
                "a TLS trunk has an IP-literal gateway (certificates are validated by hostname)"
            }
            CheckId::DuplicateGateway => "the same gateway address and port appear twice",
            CheckId::CodecNoG711 => "neither ulaw nor alaw is offered",
            CheckId::CodecUlawDisallowed => "disallow removes ulaw although allow lists it",
            CheckId::CodecUlawMissing => "alaw is offered but ulaw (Bolna's default) is not",
            CheckId::CodecCompressed => "compressed codecs (G.729, GSM, Opus...) are offered",
            CheckId::UserpassMissingUsername => {
                "auth_type=userpass with an empty auth_username (or none in a create request)"
            }
            CheckId::UserpassMissingPassword => "a userpass create request without auth_password",
            CheckId::IpBasedMissingIdentifiers => "auth_type=ip-based without ip_identifiers",
            CheckId::IpIdentifierInvalid => "an ip_identifier is not an IP address or CIDR",
            CheckId::IpIdentifierTooBroad => {
                "an ip_identifier with prefix length 0 matches every address"
            }
            CheckId::QualifyFrequencyNegative => "qualify_frequency is negative",
            CheckId::QualifyDisabled => "qualify_frequency=0: SIP OPTIONS monitoring is off",
            CheckId::OptimisticWithoutSdes => {
                "media_encryption_optimistic=true has no effect without sdes"
            }
            CheckId::DirectMediaEnabled => "direct_media=true (the guide: keep false)",
            CheckId::RtpSymmetricDisabled => "rtp_symmetric=false (required for NAT)",
            CheckId::ForceRportDisabled => "force_rport=false (required for NAT)",
            CheckId::InboundWithoutNumbers => {
                "inbound_enabled=true but no (non-deleted) phone number on the trunk"
            }
            CheckId::TrunkInactive => "is_active=false: the trunk is paused",
            CheckId::MediaNotAdvertised => {
                "the carrier's OPTIONS reply carries no (usable) SDP: codecs and SRTP not checked"
            }
            CheckId::MediaCodecMismatch => {
                "no codec common to the trunk, Bolna (ulaw, alaw) and the carrier's SDP: calls fail with 488"
            }
            CheckId::MediaCarrierAlawOnly => {
                "the carrier's SDP offers alaw but not ulaw (Bolna's default)"
            }
            CheckId::SdesCarrierPlainRtp => {
                "media_encryption=sdes but the carrier's SDP is plain RTP without a=crypto: one-way audio"
            }
            CheckId::SdesCarrierPlainRtpOptimistic => {
                "as sdes_carrier_plain_rtp with media_encryption_optimistic=true: media falls back to clear RTP"
            }
            CheckId::SdesCarrierSrtpOnly => {
                "media_encryption=no but the carrier's SDP offers only SRTP (RTP/SAVP): one-way audio"
            }
            CheckId::SdesNoSupportedSuite => {
                "media_encryption=sdes but the carrier's a=crypto suites are all unsupported"
            }
            CheckId::SdesCryptoSuiteUnsupported => {
                "the carrier's a=crypto offers a suite other than AES_CM_128_HMAC_SHA1_80/_32"
            }
            CheckId::GatewayOutsideIpIdentifiers => {
                "an ip-based trunk's gateway resolves outside its ip_identifiers"
            }
            CheckId::UdpLargeMessagesLost => {
                "`--mtu`: large UDP messages are lost while small ones are answered (fragments dropped)"
            }
            CheckId::InviteExceedsUdpLimit => {
                "`--mtu`: Bolna's estimated INVITE is within 200 bytes of the path MTU (or over 1300 bytes)"
            }
            CheckId::MtuLadderInconclusive => {
                "`--mtu`: the size ladder lost messages out of size order, or all of them"
            }
            CheckId::CredentialsRejected => {
                "a userpass gateway's registrar refuses auth_username/auth_password (REGISTER query)"
            }
            CheckId::CredentialsUntested => {
                "the registrar challenges, but no password was given: credentials not tested"
            }
            CheckId::CredentialsNotChallenged => {
                "the registrar answered a REGISTER query without asking for credentials"
            }
            CheckId::RegisterUnanswered => {
                "a userpass gateway answers OPTIONS but not the REGISTER query (timeout, error)"
            }
        }
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One thing found about a trunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub check: CheckId,
    pub severity: Severity,
    /// What was observed, in one sentence.
    pub message: String,
    /// What to do about it, in the setup guide's words where it has them.
    pub remedy: String,
    /// The `PATCH /sip-trunks/trunks/{id}` body that fixes it, when an update does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of every variant. A new variant does not compile until it
    /// is added here, and the test then fails until it is in [`CheckId::ALL`].
    fn ordinal(c: CheckId) -> usize {
        use CheckId::*;
        match c {
            TransportInvalid => 0,
            AuthTypeInvalid => 1,
            MediaEncryptionInvalid => 2,
            SdesRequiresTls => 3,
            NoGateways => 4,
            GatewayAddressInvalid => 5,
            GatewayPortInvalid => 6,
            TlsGatewayPort => 7,
            PlainGatewayOn5061 => 8,
            TlsIpLiteralGateway => 9,
            DuplicateGateway => 10,
            CodecNoG711 => 11,
            CodecUlawDisallowed => 12,
            CodecUlawMissing => 13,
            CodecCompressed => 14,
            UserpassMissingUsername => 15,
            UserpassMissingPassword => 16,
            IpBasedMissingIdentifiers => 17,
            IpIdentifierInvalid => 18,
            IpIdentifierTooBroad => 19,
            QualifyFrequencyNegative => 20,
            QualifyDisabled => 21,
            OptimisticWithoutSdes => 22,
            DirectMediaEnabled => 23,
            RtpSymmetricDisabled => 24,
            ForceRportDisabled => 25,
            InboundWithoutNumbers => 26,
            TrunkInactive => 27,
            MediaNotAdvertised => 28,
            MediaCodecMismatch => 29,
            MediaCarrierAlawOnly => 30,
            SdesCarrierPlainRtp => 31,
            SdesCarrierPlainRtpOptimistic => 32,
            SdesCarrierSrtpOnly => 33,
            SdesNoSupportedSuite => 34,
            SdesCryptoSuiteUnsupported => 35,
            GatewayOutsideIpIdentifiers => 36,
            UdpLargeMessagesLost => 37,
            InviteExceedsUdpLimit => 38,
            MtuLadderInconclusive => 39,
            DefinitionInvalid => 40,
            CredentialsRejected => 41,
            CredentialsUntested => 42,
            CredentialsNotChallenged => 43,
            RegisterUnanswered => 44,
        }
    }

    #[test]
    fn all_lists_every_check_once() {
        const VARIANTS: usize = 45;
        assert_eq!(
            CheckId::ALL.len(),
            VARIANTS,
            "CheckId::ALL misses a variant"
        );
        let mut seen = [false; VARIANTS];
        for c in CheckId::ALL {
            assert!(
                !std::mem::replace(&mut seen[ordinal(*c)], true),
                "{c:?} twice"
            );
        }
    }
}
