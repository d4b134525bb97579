//! The HTTP client the CLI uses to talk to a running runtime: the API
//! address, the bearer token (from a stored secret or the environment,
//! never from the command line), and errors that carry the server's JSON
//! error message.

use anyhow::Context;
use clap::Args;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::secrets::{SecretRef, SecretStore, SecretValue};

/// Everything left as is in a path segment or query value: unreserved
/// characters (RFC 3986).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text`, percent-encoded for a path segment or a query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// How to reach the API: `--api` and `--token-secret` when given, else
/// the runtime's own `projector.toml` (`-c`, or with no `--api` the one in
/// the current directory when there is one): its `[http] bind` and
/// `token_secret`; else `http://127.0.0.1:8080` and no token. With `--api`
/// and no `-c`, no config is read.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The runtime's HTTP address; default: `[http] bind` of the config,
    /// else `http://127.0.0.1:8080`.
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// A stored secret (`NAME/KEY`) holding the API's bearer token;
    /// default: `PROJECTOR_API_TOKEN`, else the config's `[http]
    /// token_secret`.
    #[arg(long, value_name = "NAME/KEY")]
    pub token_secret: Option<SecretRef>,
    /// The runtime's configuration file, read for its API address and
    /// token. Default `projector.toml` when it exists.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// The API address of a runtime listening on `bind`: its own address, or
/// loopback when it listens on every interface.
fn api_url(bind: std::net::SocketAddr) -> String {
    let host = match bind.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(host, bind.port()))
}

/// A client of one runtime's API.
#[derive(Debug)]
pub struct ApiClient {
    base: String,
    token: Option<SecretValue>,
}

/// A request the API answered with an error status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}: {message}")]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// Its canonical reason (`Not Found`).
    pub reason: String,
    /// The API's error code (`not_found`), when it sent one.
    pub code: Option<String>,
    /// The API's message.
    pub message: String,
}

impl ApiFailure {
    /// The failure as one JSON document, for `--output json`:
    /// `{"status": 404, "code": "not_found", "error": "..."}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "code": self.code,
            "error": self.message,
        })
    }
}

/// With `--output json`, print an API failure in `result` as JSON on
/// standard output, so that a script reads JSON whatever happened; the
/// error is still returned (a message on standard error, exit status 1).
pub fn json_failure<T>(result: anyhow::Result<T>, output: super::Output) -> anyhow::Result<T> {
    if let (Err(err), super::Output::Json) = (&result, output)
        && let Some(failure) = err.downcast_ref::<ApiFailure>()
    {
        println!("{}", failure.to_json());
    }
    result
}

impl ApiClient {
    /// A client for `args`. The token comes from `--token-secret`, else from
    /// `PROJECTOR_API_TOKEN`, else from the config's `[http] token_secret`
    /// when a config is read (see [`ApiArgs`]).
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        // The config is read when it names the runtime: given with -c, or,
        // with no --api, the one in the current directory. With --api and no
        // -c it is not read at all: its token is never sent to another
        // address, and a broken local file does not stand in the way.
        let http = match (&args.config, &args.api) {
            (Some(path), _) => Some(
                crate::config::Config::load(path)
                    .with_context(|| format!("-c {}", path.display()))?
                    .http,
            ),
            (None, Some(_)) => None,
            (None, None) => {
                let default = std::path::Path::new("projector.toml");
                if default.exists() {
                    Some(
                        crate::config::Config::load(default)
                            .context(
                                "./projector.toml (give -c FILE, or --api URL to read no config)",
                            )?
                            .http,
                    )
                } else {
                    None
                }
            }
        };
        let resolve = |reference: &SecretRef, what: &str| {
            SecretStore::from_env()
                .and_then(|store| store.resolve(reference))
                .with_context(|| format!("{what} {reference}"))
        };
        let token = match &args.token_secret {
            Some(reference) => Some(resolve(reference, "--token-secret")?),
            None => match std::env::var("PROJECTOR_API_TOKEN")
                .ok()
                .filter(|token| !token.is_empty())
            {
                Some(token) => Some(SecretValue::new(&token)),
                None => match http.as_ref().and_then(|http| http.token_secret.as_ref()) {
                    Some(reference) => Some(resolve(reference, "[http] token_secret")?),
                    None => None,
                },
            },
        };
        let base = match (&args.api, &http) {
            (Some(api), _) => api.clone(),
            (None, Some(http)) => api_url(http.bind),
            (None, None) => "http://127.0.0.1:8080".to_owned(),
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `GET path_and_query`, the response on a 2xx status. Any other status
    /// is an error carrying the server's message.
    pub fn get(&self, path_and_query: &str) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let url = format!("{}{path_and_query}", self.base);
        let mut request = ureq::get(&url).config().http_status_as_error(false).build();
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.expose()));
        }
        self.answer(request.call())
    }

    /// `POST path_and_query` with an empty JSON body, as JSON of type `T`;
    /// any status but 2xx is an error carrying the server's message. The
    /// JSON content type is what the API asks of every request that
    /// changes state (a web page cannot send it cross-site unasked).
    pub fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> anyhow::Result<T> {
        self.post(path_and_query, "application/json", b"{}")
    }

    /// `POST path_and_query` with `body` of `content_type`, answered with
    /// JSON of type `T`; any status but 2xx is an error carrying the
    /// server's message.
    pub fn post<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<T> {
        let url = format!("{}{path_and_query}", self.base);
        let mut request = ureq::post(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.expose()));
        }
        self.answer(request.send(body))?
            .body_mut()
            .read_json()
            .with_context(|| {
                format!("the answer to POST {path_and_query} is not what it should be")
            })
    }

    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let mut response = response.with_context(|| {
            format!(
                "cannot reach projector at {}: is `projector run` running there?",
                self.base
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str::<serde_json::Value>(&body).ok();
        let field = |name: &str| {
            json.as_ref()
                .and_then(|json| json[name].as_str().map(str::to_owned))
        };
        Err(ApiFailure {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            code: field("code"),
            message: field("error").unwrap_or(body),
        }
        .into())
    }

    /// `GET path_and_query` as JSON of type `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> anyhow::Result<T> {
        self.get(path_and_query)?
            .body_mut()
            .read_json()
            .with_context(|| format!("{path_and_query} did not answer with the expected JSON"))
    }
}
