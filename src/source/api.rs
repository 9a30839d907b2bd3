//! Bolna's REST API as a trunk source: `GET /sip-trunks/trunks` with a Bearer token.
//!
//! The token is only ever put into the `Authorization` header (marked sensitive);
//! errors carry the URL (without any userinfo) and the status, never the token.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::Url;

use super::{parse_json, wire, SourceError};
use crate::trunk::{Secret, Trunk};

/// Bolna's production API root.
pub const DEFAULT_API_URL: &str = "https://api.bolna.ai";
/// Overall time for one trunk-list request, body included.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response body accepted (a trunk list is a few KiB per trunk).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// How much of an error body is kept for the message.
const ERROR_BODY_BYTES: usize = 4096;
const EXCERPT_CHARS: usize = 160;

/// Reads the account's trunks from Bolna's API.
#[derive(Debug, Clone)]
pub struct ApiSource {
    /// API root, e.g. [`DEFAULT_API_URL`]; a trailing `/` is fine.
    pub base_url: String,
    pub token: Secret,
    /// Also fetch trunks with `is_active=false` (paused).
    pub include_inactive: bool,
    /// Overall timeout of the request, body included.
    pub timeout: Duration,
}

impl ApiSource {
    /// Production URL, active trunks only, [`DEFAULT_API_TIMEOUT`].
    pub fn new(token: Secret) -> ApiSource {
        ApiSource {
            base_url: DEFAULT_API_URL.to_string(),
            token,
            include_inactive: false,
            timeout: DEFAULT_API_TIMEOUT,
        }
    }

    /// The list endpoint, with the `is_active` filter unless inactive trunks are wanted.
    pub fn list_url(&self) -> Result<Url, SourceError> {
        let bad = |reason: String| SourceError::BadFlag {
            flag: "--api-url".into(),
            value: self.base_url.clone(),
            reason,
        };
        let raw = format!("{}/sip-trunks/trunks", self.base_url.trim_end_matches('/'));
        let mut url = Url::parse(&raw).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        if !self.include_inactive {
            url.query_pairs_mut().append_pair("is_active", "true");
        }
        Ok(url)
    }

    /// Fetches and parses the trunk list. With `include_inactive == false`,
    /// trunks marked inactive are also dropped client-side.
    pub async fn fetch(&self) -> Result<Vec<Trunk>, SourceError> {
        let url = self.list_url()?;
        let shown = display_url(&url);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .map_err(|_| SourceError::TokenMalformed)?;
        auth.set_sensitive(true);

        let client = reqwest::Client::builder()
            .user_agent(concat!("trunkprobe/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout)
            .build()
            .map_err(|e| SourceError::ApiConnect {
                url: shown.clone(),
                detail: error_chain(&e),
            })?;
        let request = client
            .get(url)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");

        let exchange = async {
            let mut resp = request.send().await?;
            let status = resp.status();
            let limit = if status.is_success() {
                MAX_BODY_BYTES
            } else {
                ERROR_BODY_BYTES
            };
            if status.is_success() && resp.content_length().is_some_and(|n| n > limit as u64) {
                return Ok((status, None));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                if body.len() + chunk.len() > limit {
                    if status.is_success() {
                        return Ok((status, None));
                    }
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, Some(body)))
        };
        // reqwest's timeout covers the body too; the outer one is a backstop.
        let outcome = tokio::time::timeout(self.timeout + Duration::from_millis(50), exchange)
            .await
            .map_err(|_| SourceError::ApiTimeout {
                url: shown.clone(),
                timeout: self.timeout,
            })?;
        let (status, body) = outcome.map_err(|e| self.transport_error(&shown, &e))?;
        tracing::debug!(url = %shown, status = status.as_u16(), "trunk API answered");

        let Some(body) = body else {
            return Err(SourceError::ApiBodyTooLarge {
                url: shown,
                limit: MAX_BODY_BYTES,
            });
        };
        if matches!(status.as_u16(), 401 | 403) {
            return Err(SourceError::ApiUnauthorized {
                url: shown,
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text = self.redact(text.trim());
            return Err(SourceError::ApiStatus {
                url: shown,
                status: status.as_u16(),
                excerpt: wire::excerpt(&text, EXCERPT_CHARS),
            });
        }
        let mut trunks = parse_json(&body, &shown).map_err(|e| match e {
            SourceError::InvalidJson {
                origin,
                line,
                column,
                detail,
            } => SourceError::ApiInvalidJson {
                url: origin,
                line,
                column,
                detail,
            },
            other => other,
        })?;
        if !self.include_inactive {
            trunks.retain(|t| t.is_active);
        }
        Ok(trunks)
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> SourceError {
        if e.is_timeout() {
            SourceError::ApiTimeout {
                url: url.to_string(),
                timeout: self.timeout,
            }
        } else {
            SourceError::ApiConnect {
                url: url.to_string(),
                detail: self.redact(&error_chain(e)),
            }
        }
    }

    /// Replaces any occurrence of the token (a server echoing it back) with `***`.
    fn redact(&self, s: &str) -> String {
        let t = self.token.expose();
        if t.len() >= 4 {
            s.replace(t, "***")
        } else {
            s.to_string()
        }
    }
}

/// The URL for messages: no username or password.
fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// The error and its causes on one line, without the URL (errors show it already).
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = String::new();
    let mut cur: Option<&dyn std::error::Error> = e.source();
    let top = if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "HTTP error"
    };
    out.push_str(top);
    let mut depth = 0;
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
        depth += 1;
        if depth > 5 {
            break;
        }
    }
    wire::excerpt(&out, 300)
}

/// The API token: `token_file` wins when given (surrounding whitespace and the
/// trailing newline trimmed), else `env_value` (the caller passes `BOLNA_API_KEY`),
/// else [`SourceError::TokenMissing`]. An empty env value counts as missing.
pub fn read_token(
    env_value: Option<String>,
    token_file: Option<&Path>,
) -> Result<Secret, SourceError> {
    if let Some(path) = token_file {
        let raw =
            std::fs::read_to_string(path).map_err(|source| SourceError::TokenFileUnreadable {
                path: path.to_path_buf(),
                source,
            })?;
        let token = raw.trim();
        if token.is_empty() {
            return Err(SourceError::TokenFileEmpty {
                path: path.to_path_buf(),
            });
        }
        return Ok(Secret::new(token));
    }
    match env_value.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(Secret::new(t)),
        _ => Err(SourceError::TokenMissing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(base: &str, inactive: bool) -> ApiSource {
        ApiSource {
            base_url: base.into(),
            token: Secret::new("t"),
            include_inactive: inactive,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn list_url_joins_without_double_slash_and_filters_active() {
        assert_eq!(
            src("https://api.bolna.ai/", false)
                .list_url()
                .unwrap()
                .as_str(),
            "https://api.bolna.ai/sip-trunks/trunks?is_active=true"
        );
        assert_eq!(
            src("http://127.0.0.1:9/v1//", true)
                .list_url()
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/v1/sip-trunks/trunks"
        );
    }

    #[test]
    fn list_url_rejects_non_http() {
        for bad in ["ftp://x", "not a url", ""] {
            let e = src(bad, false).list_url().unwrap_err();
            assert!(matches!(e, SourceError::BadFlag { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_output_hides_the_token() {
        let mut s = src("https://api.bolna.ai", false);
        s.token = Secret::new("tok-SECRET-123");
        assert!(!format!("{s:?}").contains("SECRET"));
    }

    #[test]
    fn display_url_drops_userinfo() {
        let u = Url::parse("https://user:pw@api.example/x").unwrap();
        assert_eq!(display_url(&u), "https://api.example/x");
    }

    #[test]
    fn read_token_prefers_file_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "  file-token\n").unwrap();
        let t = read_token(Some("env-token".into()), Some(&f)).unwrap();
        assert_eq!(t.expose(), "file-token");
        let t = read_token(Some(" env-token\n".into()), None).unwrap();
        assert_eq!(t.expose(), "env-token");
    }

    #[test]
    fn read_token_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n \n").unwrap();
        assert!(matches!(
            read_token(Some("env".into()), Some(&empty)),
            Err(SourceError::TokenFileEmpty { .. })
        ));
        assert!(matches!(
            read_token(None, Some(&dir.path().join("missing"))),
            Err(SourceError::TokenFileUnreadable { .. })
        ));
        assert!(matches!(
            read_token(None, None),
            Err(SourceError::TokenMissing)
        ));
        assert!(matches!(
            read_token(Some("  ".into()), None),
            Err(SourceError::TokenMissing)
        ));
    }

    #[tokio::test]
    async fn malformed_token_is_an_error_without_the_token() {
        let mut s = src("http://127.0.0.1:9", false);
        s.token = Secret::new("bad\ntoken-SECRET");
        let e = s.fetch().await.unwrap_err();
        assert!(matches!(e, SourceError::TokenMalformed));
        assert!(!format!("{e} {e:?} {:?}", e.hint()).contains("SECRET"));
    }
}
