//! GET requests as the download makes them: redirects followed here, and only to http(s) addresses.

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 8;

/// Why a GET gave no answer to read.
#[derive(Debug)]
pub enum GetError {
    /// The server answered with this HTTP error status.
    Status(u16),
    /// The connection failed or broke.
    Transport(String),
    /// A redirect led somewhere this tool does not go.
    Refused(String),
}

impl std::fmt::Display for GetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetError::Status(code) => write!(f, "HTTP {code}"),
            GetError::Transport(e) | GetError::Refused(e) => f.write_str(e),
        }
    }
}

/// GETs `url` with `headers`, following redirects here rather than in ureq (built with none): only to
/// `http:`/`https:` addresses (ureq panics on a redirect to `file:`), at most [`MAX_REDIRECTS`].
pub fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Result<ureq::Response, GetError> {
    let mut url = url::Url::parse(url).map_err(|e| GetError::Refused(format!("`{url}` is not a URL: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GetError::Refused(format!(
                "refusing `{url}`: only http and https addresses are fetched"
            )));
        }
        let request = headers
            .iter()
            .fold(agent.get(url.as_str()), |r, (name, value)| r.set(name, value));
        let response = match request.call() {
            Ok(response) => response,
            Err(ureq::Error::Status(code, _)) => return Err(GetError::Status(code)),
            Err(ureq::Error::Transport(e)) => return Err(GetError::Transport(e.to_string())),
        };
        if !(300..400).contains(&response.status()) {
            return Ok(response);
        }
        let location = response.header("Location").ok_or_else(|| {
            GetError::Refused(format!(
                "{url} redirected (HTTP {}) without a Location",
                response.status()
            ))
        })?;
        url = url
            .join(location)
            .map_err(|e| GetError::Refused(format!("{url} redirected to `{location}`, not a URL: {e}")))?;
    }
    Err(GetError::Refused(format!(
        "more than {MAX_REDIRECTS} redirects, the last to {url}"
    )))
}
