//! Where trunk definitions come from: Bolna's API, a JSON file, or flags.
//!
//! All three produce [`Trunk`]s with the documented create defaults applied. The
//! wire DTOs stay private to this module. Problems with the *content* of a trunk
//! (an unknown transport, a bad port number) are not load errors: they become
//! lint findings. Only input that cannot be read as trunks at all is a
//! [`SourceError`].

use std::path::PathBuf;

use serde_json::Value;

use crate::trunk::{InvalidDefinition, Trunk};

mod api;
mod file;
mod flags;
mod wire;

/// Defined with the crate's other errors; re-exported where it is raised.
pub use crate::error::SourceError;
pub use api::{read_token, ApiSource, DEFAULT_API_TIMEOUT, DEFAULT_API_URL, MAX_BODY_BYTES};
pub use file::load_file;
pub use flags::{trunk_from_flags, FlagTrunk};

/// Where a command's trunk list comes from.
pub enum Source {
    /// The API; `serve` re-fetches it every `--refresh`, keeping the last good
    /// list through failures.
    Api(ApiSource),
    /// A JSON file (`-` is stdin); `serve` re-reads it on SIGHUP.
    File(PathBuf),
    /// Trunks given once (flags, or stdin for `serve`).
    Fixed(Vec<Trunk>),
}

impl Source {
    /// Loads the trunk list (a file is read off the async threads).
    pub async fn load(&self) -> Result<Vec<Trunk>, SourceError> {
        match self {
            Source::Api(api) => api.fetch().await,
            Source::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || load_file(&path))
                    .await
                    .unwrap_or_else(|_| Ok(Vec::new()))
            }
            Source::Fixed(trunks) => Ok(trunks.clone()),
        }
    }
}

/// Parses a JSON document holding trunks: the `GET /sip-trunks/trunks` list
/// response, one trunk object (`SIPTrunkResponse`), or a create-request body
/// (`SIPTrunkCreateRequest`).
pub fn parse_trunks_json(bytes: &[u8]) -> Result<Vec<Trunk>, SourceError> {
    parse_json(bytes, "JSON input")
}

/// [`parse_trunks_json`], naming where the bytes came from in errors.
pub(crate) fn parse_json(bytes: &[u8], origin: &str) -> Result<Vec<Trunk>, SourceError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        let detail = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        SourceError::InvalidJson {
            origin: origin.to_string(),
            line: e.line(),
            column: e.column(),
            detail,
        }
    })?;
    let shape = |detail: String| SourceError::WrongShape {
        origin: origin.to_string(),
        detail,
    };
    let items = match doc {
        Value::Array(items) => items,
        Value::Object(ref o) if looks_like_trunk(o) => vec![doc],
        Value::Object(ref o) if o.contains_key("error") && o.contains_key("message") => {
            return Err(shape(format!(
                "it is an API error object: {:?}",
                wire::excerpt(o["message"].as_str().unwrap_or(""), 120)
            )))
        }
        Value::Object(_) => {
            return Err(shape(
                "an object without any trunk field (id, name, gateways, auth_type)".into(),
            ))
        }
        other => {
            return Err(shape(format!(
                "expected an array of trunks or a trunk object, found {}",
                wire::kind(&other)
            )))
        }
    };
    // A list without a single object is no trunk list at all; inside a real
    // list, a record that is not an object is one invalid trunk.
    if !items.is_empty() && !items.iter().any(Value::is_object) {
        return Err(shape(format!(
            "expected an array of trunk objects, but trunk #0 is {}",
            wire::kind(&items[0])
        )));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_record(i, item, origin))
        .collect())
}

/// One record of a trunk list: the trunk, or (when it does not fit the schema)
/// a [`Trunk::invalid`] stand-in with its id, name and what is wrong, so the
/// other records are still checked.
fn parse_record(index: usize, item: Value, origin: &str) -> Trunk {
    let invalid =
        |name: Option<String>, field: String, found: String, expected: &str| InvalidDefinition {
            origin: origin.to_string(),
            index,
            name,
            field,
            found,
            expected: expected.to_string(),
        };
    if !item.is_object() {
        let why = invalid(
            None,
            String::new(),
            wire::kind(&item).to_string(),
            "a trunk object (SIPTrunkResponse)",
        );
        return Trunk::invalid(None, why);
    }
    let text = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .map(|s| wire::excerpt(s, 60))
    };
    let (id, name) = (text("id"), text("name"));
    match serde_path_to_error::deserialize::<_, wire::WireTrunk>(item) {
        Ok(wire) => wire.into_trunk(),
        Err(e) => {
            let path = wire::excerpt(&e.path().to_string(), 80);
            let found = wire::found(&e.inner().to_string());
            let why = invalid(name, path.clone(), found, wire::expected(&path));
            Trunk::invalid(id, why)
        }
    }
}

fn looks_like_trunk(o: &serde_json::Map<String, Value>) -> bool {
    ["id", "name", "gateways", "auth_type", "provider"]
        .iter()
        .any(|k| o.contains_key(*k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{AuthType, Field, MediaEncryption, Transport};
    use std::io;
    use std::time::Duration;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/trunks/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    /// The description of the one invalid record in `r`.
    fn field_error(r: Result<Vec<Trunk>, SourceError>) -> String {
        let trunks = r.expect("a record that does not fit is not a load error");
        let bad: Vec<_> = trunks.iter().filter(|t| t.invalid.is_some()).collect();
        assert_eq!(bad.len(), 1, "{trunks:?}");
        bad[0].invalid.as_ref().unwrap().describe()
    }

    #[test]
    fn doc_list_example_with_placeholders_loads() {
        let t = parse_trunks_json(&fixture("list-doc-example.json")).unwrap();
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert_eq!(t.id.as_deref(), Some("<string>"));
        assert_eq!(t.auth_type, Field::Valid(AuthType::Userpass));
        assert_eq!(t.transport, Field::Invalid("<string>".into()));
        assert_eq!(t.allow, vec!["<string>"]);
        assert_eq!(t.gateways[0].address, "sip.zadarma.com");
        assert_eq!(t.ip_identifiers, vec!["15.207.90.192/31"]);
        assert_eq!(t.phone_numbers.len(), 1);
        assert!(t.phone_numbers[0].deleted);
        assert_eq!(t.qualify_frequency, 123);
        // Not in the list response: documented default.
        assert_eq!(t.media_encryption, Field::Valid(MediaEncryption::No));
    }

    #[test]
    fn list_response_fixture_loads_in_order() {
        let t = parse_trunks_json(&fixture("list-response.json")).unwrap();
        let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Twilio Production",
                "Plivo Elastic Trunk",
                "Twilio Production (encrypted)",
                "Old Zadarma"
            ]
        );
        assert!(!t[3].is_active);
        assert_eq!(t[2].transport, Field::Valid(Transport::Tls));
        assert_eq!(t[2].media_encryption, Field::Valid(MediaEncryption::Sdes));
        assert_eq!(t[0].live_phone_numbers().count(), 1);
    }

    #[test]
    fn guide_create_requests_and_responses_load() {
        let reqs = parse_trunks_json(&fixture("guide-create-requests.json")).unwrap();
        let resps = parse_trunks_json(&fixture("guide-create-responses.json")).unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(resps.len(), 3);
        for (req, resp) in reqs.iter().zip(&resps) {
            assert_eq!(req.id, None);
            assert!(resp.id.is_some());
            assert_eq!(req.name, resp.name);
            assert_eq!(req.gateways, resp.gateways);
            assert_eq!(req.transport, resp.transport);
            assert_eq!(req.media_encryption, resp.media_encryption);
            assert_eq!(req.effective_codecs(), resp.effective_codecs());
        }
        // Twilio userpass request carries the password; the response does not.
        assert_eq!(
            reqs[0].auth_password.as_ref().map(|s| s.expose()),
            Some("<your-sip-password>")
        );
        assert_eq!(resps[0].auth_password, None);
        // Plivo: defaults filled for fields the response omits.
        let plivo = &resps[1];
        assert_eq!(plivo.auth_type, Field::Valid(AuthType::IpBased));
        assert_eq!(plivo.ip_identifiers.len(), 3);
        assert_eq!(plivo.allow, vec!["ulaw", "alaw"]);
        assert_eq!(plivo.disallow, vec!["all"]);
        assert_eq!(plivo.qualify_frequency, 60);
        assert!(plivo.rtp_symmetric && plivo.force_rport && !plivo.direct_media);
        assert!(plivo.outbound_leading_plus_enabled);
        assert_eq!(resps[2].gateways[0].port, 5061);
    }

    #[test]
    fn create_request_with_phone_numbers_only() {
        let t = parse_trunks_json(&fixture("create-request.json")).unwrap();
        assert_eq!(t[0].phone_numbers.len(), 1);
        assert_eq!(t[0].phone_numbers[0].phone_number, "919876543210");
        assert_eq!(t[0].phone_numbers[0].id, None);
        assert!(!t[0].phone_numbers[0].deleted);
    }

    #[test]
    fn missing_and_null_fields_take_create_defaults() {
        let minimal = parse_trunks_json(br#"{"name":"m","gateways":[{"gateway_address":"h"}]}"#)
            .unwrap()
            .remove(0);
        let nulls = parse_trunks_json(
            br#"{"name":"m","gateways":[{"gateway_address":"h","port":null,"priority":null}],
                "transport":null,"allow":null,"disallow":null,"qualify_frequency":null,
                "media_encryption":null,"rtp_symmetric":null,"force_rport":null,
                "direct_media":null,"inbound_enabled":null,"is_active":null,
                "outbound_leading_plus_enabled":null,"ip_identifiers":null,
                "phone_numbers":null,"auth_type":null,"auth_password":null,"id":null}"#,
        )
        .unwrap()
        .remove(0);
        let mut want = Trunk::with_defaults("m");
        want.gateways.push(crate::trunk::Gateway {
            address: "h".into(),
            port: 5060,
            priority: 1,
        });
        assert_eq!(minimal, want);
        assert_eq!(nulls, want);
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_enums_kept_as_invalid() {
        let t = parse_trunks_json(
            br#"[{"name":"x","future_field":{"a":[1,2]},"transport":"SCTP",
                 "auth_type":"oauth","media_encryption":"zrtp","gateways":[]}]"#,
        )
        .unwrap();
        assert_eq!(t[0].transport, Field::Invalid("SCTP".into()));
        assert_eq!(t[0].auth_type, Field::Invalid("oauth".into()));
        assert_eq!(t[0].media_encryption, Field::Invalid("zrtp".into()));
    }

    #[test]
    fn short_transport_names_and_case_are_accepted() {
        let t = parse_trunks_json(br#"{"name":"x","transport":"TLS"}"#).unwrap();
        assert_eq!(t[0].transport, Field::Valid(Transport::Tls));
    }

    #[test]
    fn ipv6_brackets_stripped_and_numeric_string_ports_tolerated() {
        let t = parse_trunks_json(
            br#"{"name":"x","gateways":[{"gateway_address":"[2001:db8::5]","port":"5080","priority":"2"},
                 {"gateway_address":"2001:db8::6"}],
                 "ip_identifiers":["192.0.2.1", {"ip_address":"198.51.100.0/24"}],
                 "qualify_frequency":"30"}"#,
        )
        .unwrap();
        assert_eq!(t[0].gateways[0].address, "2001:db8::5");
        assert_eq!(
            (t[0].gateways[0].port, t[0].gateways[0].priority),
            (5080, 2)
        );
        assert_eq!(t[0].gateways[1].address, "2001:db8::6");
        assert_eq!(t[0].ip_identifiers, vec!["192.0.2.1", "198.51.100.0/24"]);
        assert_eq!(t[0].qualify_frequency, 30);
    }

    #[test]
    fn out_of_range_ports_load_for_lint_to_report() {
        let t = parse_trunks_json(
            br#"{"name":"x","gateways":[{"gateway_address":"h","port":70000},{"gateway_address":"h","port":-1}]}"#,
        )
        .unwrap();
        assert_eq!(t[0].gateways[0].port, 70000);
        assert_eq!(t[0].gateways[1].port, -1);
    }

    #[test]
    fn wrong_types_name_the_trunk_and_field() {
        let d = field_error(parse_trunks_json(
            br#"[{"name":"ok"},{"name":"B","gateways":[{"gateway_address":"h","port":"abc"}]}]"#,
        ));
        assert!(d.contains("trunk #1"), "{d}");
        assert!(d.contains("\"B\""), "{d}");
        assert!(d.contains("gateways[0].port"), "{d}");
        assert!(d.contains("abc"), "{d}");

        let d = field_error(parse_trunks_json(br#"{"name":"x","gateways":{"a":1}}"#));
        assert!(d.contains("trunk #0") && d.contains("gateways"), "{d}");

        let d = field_error(parse_trunks_json(
            br#"{"name":"x","inbound_enabled":"yes"}"#,
        ));
        assert!(d.contains("inbound_enabled"), "{d}");

        let d = field_error(parse_trunks_json(
            br#"{"name":"x","port":1.5e300,"qualify_frequency":1.5}"#,
        ));
        assert!(d.contains("qualify_frequency"), "{d}");

        let d = field_error(parse_trunks_json(br#"{"name":"x","ip_identifiers":[3]}"#));
        assert!(
            d.contains("ip_identifiers[0]") && d.contains("ip_address"),
            "{d}"
        );

        for bad in [
            &br#"42"#[..],
            br#""trunks""#,
            br#"null"#,
            br#"[1, 2]"#,
            br#"[[]]"#,
            br#"{"trunks": []}"#,
            br#"{"error": 401, "message": "Unauthorized"}"#,
        ] {
            let e = parse_trunks_json(bad).unwrap_err();
            assert!(matches!(e, SourceError::WrongShape { .. }), "{e:?}");
            assert!(e.hint().is_some());
        }
    }

    #[test]
    fn empty_list_is_fine() {
        assert_eq!(parse_trunks_json(b"[]").unwrap(), vec![]);
        assert_eq!(parse_trunks_json(b"\xEF\xBB\xBF[ ]\n").unwrap(), vec![]);
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        for (bad, line) in [
            (&b""[..], 1),
            (b"[", 1),
            (b"{\n  \"name\": \"x\",\n  \"gateways\": [,]\n}", 3),
            (b"\xff\xfe", 1),
            (b"[{}] trailing", 1),
        ] {
            match parse_trunks_json(bad) {
                Err(SourceError::InvalidJson {
                    line: l, origin, ..
                }) => {
                    assert_eq!(l, line, "{bad:?}");
                    assert_eq!(origin, "JSON input");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = parse_trunks_json(b"{\n  \"name\": \"x\",\n  \"gateways\": [,]\n}").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("line 3, column"), "{s}");
        assert_eq!(s.matches("line").count(), 1, "{s}");
    }

    #[test]
    fn password_never_printed() {
        let secret = "pw-Hunter2-XYZZY";
        let doc = format!(
            r#"{{"name":"x","auth_type":"userpass","auth_username":"u","auth_password":"{secret}"}}"#
        );
        let t = parse_trunks_json(doc.as_bytes()).unwrap();
        assert_eq!(t[0].auth_password.as_ref().unwrap().expose(), secret);
        let dbg = format!("{:?} {:#?}", t, t);
        assert!(!dbg.contains(secret), "{dbg}");

        // A password of the wrong type is reported without its value.
        let t = parse_trunks_json(br#"{"name":"x","auth_password":918273645}"#).unwrap();
        let why = t[0].invalid.as_ref().expect("a number is no password");
        let all = format!("{} {t:?}", why.describe());
        assert!(all.contains("auth_password"), "{all}");
        assert!(!all.contains("918273645"), "{all}");

        // Nor is a good password of a record that is malformed elsewhere.
        let doc = format!(r#"{{"name":"x","auth_password":"{secret}","gateways":"gw"}}"#);
        let t = parse_trunks_json(doc.as_bytes()).unwrap();
        let all = format!("{} {t:?}", t[0].invalid.as_ref().unwrap().describe());
        assert!(all.contains("gateways") && !all.contains(secret), "{all}");
    }

    #[test]
    fn control_characters_do_not_reach_messages() {
        let e = parse_trunks_json(
            b"{\"name\":\"a\x1b[31mred\",\"gateways\":[{\"port\":\"\x1b]0;x\x07\"}]}",
        );
        let d = format!("{}", e.unwrap_err());
        assert!(!d.chars().any(|c| c.is_control()), "{d:?}");
    }

    #[test]
    fn every_error_has_a_hint() {
        let io = || io::Error::new(io::ErrorKind::NotFound, "nope");
        let errs = [
            SourceError::FileUnreadable {
                path: "f".into(),
                source: io(),
            },
            SourceError::ApiUnauthorized {
                url: "u".into(),
                status: 401,
            },
            SourceError::ApiUnauthorized {
                url: "u".into(),
                status: 403,
            },
            SourceError::ApiStatus {
                url: "u".into(),
                status: 503,
                excerpt: String::new(),
            },
            SourceError::ApiStatus {
                url: "u".into(),
                status: 404,
                excerpt: "x".into(),
            },
            SourceError::ApiTimeout {
                url: "u".into(),
                timeout: Duration::from_millis(1500),
            },
            SourceError::TokenMissing,
            SourceError::TokenFileEmpty { path: "t".into() },
        ];
        for e in &errs {
            assert!(e.hint().is_some_and(|h| !h.is_empty() && !h.contains('\n')));
        }
        assert_eq!(
            errs[1].hint().unwrap(),
            "check BOLNA_API_KEY / --token-file: the API rejected the token"
        );
        assert_eq!(
            errs[3].hint().unwrap(),
            "Bolna's API is failing; retry later"
        );
        assert_eq!(
            errs[5].to_string(),
            "the trunk API u did not answer within 1500ms"
        );
    }
}
