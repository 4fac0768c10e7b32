//! Who may talk to the workbench. Any web page the user visits can send "simple" cross-site requests
//! to a server on localhost, and a DNS-rebinding page can even read its answers; both carry a foreign
//! `Origin` or `Host`. Every request here must name an allowed host (the loopback names, the address
//! `--bind` gave, an `--allow-host`, or any IP literal when bound beyond loopback — rebinding needs a
//! domain name), and a request that carries an `Origin` must come from such a host. Uploads must say
//! `application/octet-stream`, which no cross-site page can send without a CORS preflight this server
//! never grants.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::IpAddr;
use std::sync::Arc;

/// The hosts a request may name, from how the server was started.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lower-case host names without port (`localhost`, `127.0.0.1`, `[::1]`, `--allow-host`s).
    names: Vec<String>,
    /// Whether any IP literal is accepted (the server listens beyond loopback).
    any_address: bool,
}

impl AllowedHosts {
    /// The loopback names, `bind` itself, and `extra` (`--allow-host`); bound beyond loopback, any
    /// IP literal too.
    pub fn new(bind: IpAddr, extra: &[String]) -> AllowedHosts {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        names.push(match bind {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
        names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        AllowedHosts {
            names,
            any_address: !bind.is_loopback(),
        }
    }

    /// Whether `host` (a `Host` header or an origin's authority, port optional) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = match host.rfind(':') {
            // `[::1]:8080`, `localhost:8080` (an IPv6 literal in a Host is always bracketed)
            Some(colon) if host[colon + 1..].chars().all(|c| c.is_ascii_digit()) => &host[..colon],
            _ => host.as_str(),
        };
        if name.is_empty() {
            return false;
        }
        if self.names.iter().any(|allowed| allowed == name) {
            return true;
        }
        self.any_address
            && name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
    }

    /// Why `headers` (of a `method` request to `path`) are refused, or `None` when they pass.
    pub fn refusal(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<String> {
        let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
        match text(header::HOST) {
            None => return Some("the request names no Host".into()),
            Some(host) if !self.allows(&host) => {
                return Some(format!(
                    "Host `{host}` is not this workbench (expected localhost or 127.0.0.1; start it with --allow-host {host} to allow that name)"
                ))
            }
            Some(_) => {}
        }
        if let Some(origin) = text(header::ORIGIN) {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if !authority.is_some_and(|a| self.allows(a)) {
                return Some(format!(
                    "requests from `{origin}` are refused: only the workbench's own page may call its API"
                ));
            }
        }
        if method == Method::POST && path == "/api/upload" {
            let kind = text(header::CONTENT_TYPE).unwrap_or_default();
            if !kind.starts_with("application/octet-stream") {
                return Some(format!(
                    "an upload must be sent as application/octet-stream, found `{kind}`"
                ));
            }
        }
        None
    }
}

/// The middleware: a refused request gets 403 with one message and reaches no handler.
pub async fn check(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    match allowed.refusal(request.method(), request.uri().path(), request.headers()) {
        Some(reason) => (StatusCode::FORBIDDEN, Json(serde_json::json!({ "error": reason }))).into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn loopback_names_pass_and_foreign_hosts_and_origins_are_refused() {
        let allowed = AllowedHosts::new("127.0.0.1".parse().unwrap(), &[]);
        for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST"] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.2:8080",
            "localhost.evil.example",
            "",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
        let get = |pairs: &[(header::HeaderName, &str)]| allowed.refusal(&Method::GET, "/api/setup", &headers(pairs));
        assert_eq!(get(&[(header::HOST, "127.0.0.1:8080")]), None);
        assert!(get(&[(header::HOST, "evil.example")])
            .unwrap()
            .contains("Host `evil.example`"));
        assert!(
            get(&[(header::HOST, "localhost:1"), (header::ORIGIN, "http://evil.example")])
                .unwrap()
                .contains("http://evil.example")
        );
        assert_eq!(
            get(&[(header::HOST, "localhost:1"), (header::ORIGIN, "http://localhost:1")]),
            None
        );
        assert!(get(&[(header::HOST, "localhost:1"), (header::ORIGIN, "null")]).is_some());
    }

    #[test]
    fn uploads_must_be_octet_streams_which_no_cross_site_form_can_send() {
        let allowed = AllowedHosts::new("127.0.0.1".parse().unwrap(), &[]);
        let upload = |kind: &str| {
            allowed.refusal(
                &Method::POST,
                "/api/upload",
                &headers(&[(header::HOST, "localhost"), (header::CONTENT_TYPE, kind)]),
            )
        };
        assert!(upload("text/plain").unwrap().contains("application/octet-stream"));
        assert_eq!(upload("application/octet-stream"), None);
    }

    #[test]
    fn beyond_loopback_ip_literals_and_named_hosts_pass() {
        let allowed = AllowedHosts::new("0.0.0.0".parse().unwrap(), &["lab-pc".into()]);
        assert!(allowed.allows("192.168.1.20:8080"));
        assert!(allowed.allows("[fe80::1]:8080"));
        assert!(allowed.allows("lab-pc:8080"));
        assert!(!allowed.allows("evil.example:8080"));
    }
}
