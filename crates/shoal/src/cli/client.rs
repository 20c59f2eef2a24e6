//! The HTTP/1.1 client the commands use to talk the Docker Engine API to a shoal daemon, over a
//! unix socket or TCP. It owns the connection, the API-version prefix and the translation of
//! non-2xx answers into errors; it knows nothing about swarm objects.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

/// The socket the daemon listens on when neither `-H` nor `$SHOAL_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/shoal.sock";

/// The API version this client speaks (Docker Engine API 1.41 semantics).
pub const CLIENT_API_VERSION: &str = "1.41";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// Parses a `-H` value: `unix:///path.sock`, `tcp://HOST:PORT`, `http://HOST:PORT` or a bare
    /// socket path.
    pub fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        if let Some(path) = host.strip_prefix("unix://") {
            anyhow::ensure!(!path.is_empty(), "invalid host {host:?}: empty socket path");
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(addr) = host.strip_prefix(scheme) {
                let addr = addr.trim_end_matches('/');
                anyhow::ensure!(
                    addr.contains(':'),
                    "invalid host {host:?}: a TCP address needs a port (tcp://HOST:PORT)"
                );
                return Ok(Self::Tcp(addr.to_string()));
            }
        }
        anyhow::ensure!(
            !host.contains("://"),
            "invalid host {host:?}: use unix:///path.sock, tcp://HOST:PORT or a socket path"
        );
        anyhow::ensure!(!host.is_empty(), "invalid host: empty");
        Ok(Self::Unix(PathBuf::from(host)))
    }

    fn host_header(&self) -> String {
        match self {
            // Docker's client uses a placeholder name over unix sockets, too.
            Self::Unix(_) => "localhost".to_string(),
            Self::Tcp(addr) => addr.clone(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// A non-2xx answer from the daemon. Its text is what `docker` prints for the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// True when `err` is the daemon answering 404 (the object does not exist).
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ApiError>()
        .is_some_and(|e| e.status == StatusCode::NOT_FOUND.as_u16())
}

/// A client for one daemon. Each request uses its own connection; the API version is
/// negotiated once, on the first request.
pub struct Client {
    endpoint: Endpoint,
    version: OnceCell<String>,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            version: OnceCell::new(),
        }
    }

    /// `GET path`, decoded as JSON (`null` for an empty body).
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    /// `GET path`, the answer's text as the daemon sent it (for `inspect`, which keeps the
    /// daemon's key order).
    pub async fn get_raw(&self, path: &str) -> Result<String> {
        let versioned = format!("/v{}{}", self.api_version().await?, path);
        let (status, _, bytes) = self.send(Method::GET, &versioned, None).await?;
        check_status(status, &bytes)?;
        String::from_utf8(bytes.to_vec()).context("the daemon answered with invalid UTF-8")
    }

    /// `GET path`, its body read as it arrives (for logs, which may never end); a non-2xx
    /// answer is the daemon's error, read whole.
    pub async fn get_stream(&self, path: &str) -> Result<Streaming> {
        let versioned = format!("/v{}{}", self.api_version().await?, path);
        let answer = self.open(Method::GET, &versioned, None).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        let status = answer.status;
        let body = answer.collect().await?;
        Err(ApiError {
            status: status.as_u16(),
            message: error_message(status, &body),
        }
        .into())
    }

    /// `GET path` with one more header (`X-Registry-Auth`), decoded as JSON.
    pub async fn get_with_header(&self, path: &str, name: &str, value: &str) -> Result<Value> {
        let versioned = format!("/v{}{}", self.api_version().await?, path);
        let answer = self
            .open_with(Method::GET, &versioned, None, &[(name, value)])
            .await?;
        let status = answer.status;
        let bytes = answer.collect().await?;
        check_status(status, &bytes)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the daemon's answer to GET {path}"))
    }

    /// `POST path` with a JSON body, decoded as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.json(Method::POST, path, Some(body)).await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, path: &str) -> Result<Value> {
        self.json(Method::POST, path, None).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.json(Method::DELETE, path, None).await.map(drop)
    }

    /// `DELETE path`, the answer decoded as JSON.
    pub async fn delete_json(&self, path: &str) -> Result<Value> {
        self.json(Method::DELETE, path, None).await
    }

    /// `HEAD path` (unversioned), returning the answer's headers.
    pub async fn head(&self, path: &str) -> Result<HeaderMap> {
        let (status, headers, body) = self.send(Method::HEAD, path, None).await?;
        check_status(status, &body)?;
        Ok(headers)
    }

    /// The version the daemon answered `/_ping` with, capped at [`CLIENT_API_VERSION`].
    pub async fn api_version(&self) -> Result<&str> {
        self.version
            .get_or_try_init(|| async {
                match self.head("/_ping").await {
                    Ok(headers) => {
                        let server = headers
                            .get("api-version")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or(CLIENT_API_VERSION);
                        Ok(negotiate_version(server))
                    }
                    // A daemon that answers but not to HEAD: talk our own version.
                    Err(err) if err.downcast_ref::<ApiError>().is_some() => {
                        Ok(CLIENT_API_VERSION.to_string())
                    }
                    Err(err) => Err(err),
                }
            })
            .await
            .map(String::as_str)
    }

    async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let versioned = format!("/v{}{}", self.api_version().await?, path);
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .context("encoding the request body")?;
        let (status, _, bytes) = self.send(method.clone(), &versioned, body).await?;
        check_status(status, &bytes)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("decoding the daemon's answer to {method} {path}"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        let answer = self.open(method, path, body).await?;
        let (status, headers) = (answer.status, answer.headers.clone());
        Ok((status, headers, answer.collect().await?))
    }

    /// Sends one request on a connection of its own; the answer's body is still to be read.
    async fn open(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Streaming> {
        self.open_with(method, path, body, &[]).await
    }

    /// [`Client::open`] with more headers.
    async fn open_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Streaming> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, self.endpoint.host_header())
            .header(
                http::header::USER_AGENT,
                concat!("shoal-cli/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .context("building the request")?;
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|_| self.cannot_connect())?;
                start(stream, request).await
            }
            Endpoint::Tcp(addr) => {
                let stream = TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|_| self.cannot_connect())?;
                start(stream, request).await
            }
        }
    }

    fn cannot_connect(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "Cannot connect to the shoal daemon at {}: Is the daemon running?",
            self.endpoint
        )
    }
}

/// An answer whose body is read as it arrives. Dropping it hangs up.
pub struct Streaming {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    /// Kept so that the connection stays up until the body has been read.
    _sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<hyper::Result<()>>,
}

impl Streaming {
    /// The next piece of the body as the daemon sent it; `None` once it has ended.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame.context("reading the daemon's answer")?;
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// The whole body.
    async fn collect(mut self) -> Result<Bytes> {
        let mut all = bytes::BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn start<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Streaming>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the daemon")?;
    let driver = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .context("sending the request to the daemon")?;
    let (parts, body) = response.into_parts();
    Ok(Streaming {
        status: parts.status,
        headers: parts.headers,
        body,
        _sender: sender,
        driver,
    })
}

fn check_status(status: StatusCode, body: &[u8]) -> Result<()> {
    if status.is_success() {
        return Ok(());
    }
    Err(ApiError {
        status: status.as_u16(),
        message: error_message(status, body),
    }
    .into())
}

/// The text of an error answer: Docker's `{"message": ...}`, else the raw body, else the status.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        if let Some(Value::String(message)) = obj.get("message") {
            return message.clone();
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        status.to_string()
    } else {
        text
    }
}

/// The lower of the daemon's version and ours.
fn negotiate_version(server: &str) -> String {
    fn parse(v: &str) -> Option<(u32, u32)> {
        let (major, minor) = v.trim().split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }
    match (parse(server), parse(CLIENT_API_VERSION)) {
        (Some(s), Some(c)) if s < c => server.trim().to_string(),
        _ => CLIENT_API_VERSION.to_string(),
    }
}

/// Builds a query string (`?k=v&…`), percent-encoding the values.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// Adds `filters` as Docker's JSON (`{"key":{"value":true}}`) when it is not empty.
    pub fn filters(self, filters: &Filters) -> Self {
        if filters.is_empty() {
            self
        } else {
            self.push("filters", filters.to_json())
        }
    }

    /// `path` followed by the query string, if any.
    pub fn to_path(&self, path: &str) -> String {
        if self.0.is_empty() {
            return path.to_string();
        }
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{path}?{}", pairs.join("&"))
    }
}

/// A Docker list filter: for each key, a set of accepted values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters(std::collections::BTreeMap<String, std::collections::BTreeSet<String>>);

impl Filters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `--filter key=value` arguments.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut filters = Self::new();
        for arg in args {
            let (key, value) = arg
                .split_once('=')
                .with_context(|| format!("bad format of filter (expected name=value): {arg:?}"))?;
            filters.add(key.trim().to_lowercase(), value.trim());
        }
        Ok(filters)
    }

    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.entry(key.into()).or_default().insert(value.into());
        self
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add(key, value);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_json(&self) -> String {
        let obj: serde_json::Map<String, Value> = self
            .0
            .iter()
            .map(|(k, values)| {
                let set: serde_json::Map<String, Value> = values
                    .iter()
                    .map(|v| (v.clone(), Value::Bool(true)))
                    .collect();
                (k.clone(), Value::Object(set))
            })
            .collect();
        Value::Object(obj).to_string()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms_parse_to_endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///run/x.sock").unwrap(),
            Endpoint::Unix("/run/x.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375").unwrap(),
            Endpoint::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Endpoint::parse("/tmp/shoal.sock").unwrap(),
            Endpoint::Unix("/tmp/shoal.sock".into())
        );
        assert!(Endpoint::parse("tcp://localhost").is_err());
        assert!(Endpoint::parse("ssh://host").is_err());
        assert_eq!(
            Endpoint::parse(DEFAULT_HOST).unwrap().to_string(),
            DEFAULT_HOST
        );
    }

    #[test]
    fn error_answers_read_like_docker() {
        let err = check_status(
            StatusCode::NOT_FOUND,
            br#"{"message":"service x not found"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error response from daemon: service x not found"
        );
        assert!(is_not_found(&err));
        let err = check_status(StatusCode::BAD_GATEWAY, b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Error response from daemon: 502 Bad Gateway"
        );
    }

    #[test]
    fn version_is_capped_at_ours() {
        assert_eq!(negotiate_version("1.45"), "1.41");
        assert_eq!(negotiate_version("1.40"), "1.40");
        assert_eq!(negotiate_version("garbage"), "1.41");
    }

    #[test]
    fn filters_encode_as_docker_json_in_the_query() {
        let f = Filters::parse(&["label=a=b".into(), "name=web".into()]).unwrap();
        assert_eq!(f.to_json(), r#"{"label":{"a=b":true},"name":{"web":true}}"#);
        let path = Query::new()
            .push("status", "true")
            .filters(&f)
            .to_path("/services");
        assert_eq!(
            path,
            "/services?status=true&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%2C%22name%22%3A%7B%22web%22%3Atrue%7D%7D"
        );
        assert!(Filters::parse(&["nonsense".into()]).is_err());
    }
}
