//! The one way nodes talk to each other: JSON over HTTP/1.1 with kept-alive connections.
//!
//! Every node-to-node call (Raft RPCs, join, forwarded writes, heartbeats, log streams) goes
//! through [`Transport`], so that mutual TLS can be slotted in here without touching the
//! callers.

use crate::limits::{MAX_ANSWER_BYTES, MAX_ERROR_BYTES};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing answered: the peer is down or the address is wrong.
    #[error("cannot reach {addr}: {msg}")]
    Unreachable { addr: String, msg: String },
    /// The peer answered with an error status.
    #[error("{message}")]
    Remote {
        addr: String,
        status: u16,
        message: String,
    },
    #[error("unreadable answer from {addr}: {msg}")]
    Decode { addr: String, msg: String },
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
}

impl TransportError {
    /// Did the call fail before the peer could have acted on it?
    pub fn is_unreachable(&self) -> bool {
        matches!(self, TransportError::Unreachable { .. })
    }
}

/// A raw byte pipe to a peer: an HTTP/1.1 connection the peer upgraded (routing mesh relays).
pub type Pipe = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// The protocol named in the `Upgrade` header of a pipe request.
pub const PIPE_PROTOCOL: &str = "shoal-pipe";

/// The body of a streamed answer, chunk by chunk as the peer sends it.
pub type ByteStream = BoxStream<'static, Result<Bytes, TransportError>>;

#[derive(Clone)]
pub struct Transport {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The credential this node presents (`Authorization: Bearer …`), once it has one.
    credential: std::sync::Arc<std::sync::RwLock<Option<String>>>,
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(500)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(connector);
        Self {
            client,
            credential: Default::default(),
        }
    }

    /// Sets (or clears) the credential presented on every call from now on.
    pub fn set_credential(&self, credential: Option<String>) {
        *self.credential.write().unwrap_or_else(|e| e.into_inner()) = credential;
    }

    /// A JSON POST to `http://addr/path` with `bearer`, or this node's own credential.
    fn request<Req>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        bearer: Option<&str>,
    ) -> Result<http::Request<Full<Bytes>>, TransportError>
    where
        Req: Serialize + ?Sized,
    {
        let bytes = serde_json::to_vec(body).map_err(|e| TransportError::Decode {
            addr: addr.to_string(),
            msg: e.to_string(),
        })?;
        self.request_json(addr, path, Bytes::from(bytes), bearer)
    }

    /// A POST of JSON the caller already serialized.
    fn request_json(
        &self,
        addr: &str,
        path: &str,
        json: Bytes,
        bearer: Option<&str>,
    ) -> Result<http::Request<Full<Bytes>>, TransportError> {
        let mut req = http::Request::post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json");
        let own = self
            .credential
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(c) = bearer.map(str::to_string).or(own) {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {c}"));
        }
        req.body(Full::new(json))
            .map_err(|e| TransportError::Unreachable {
                addr: addr.to_string(),
                msg: e.to_string(),
            })
    }

    /// Sends a request and waits for the answer's head; a non-2xx answer becomes
    /// [`TransportError::Remote`] with the message of Docker's `{"message": ...}` body.
    async fn send(
        &self,
        addr: &str,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, TransportError> {
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| TransportError::Unreachable {
                addr: addr.to_string(),
                msg: e.to_string(),
            })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(remote_error(addr, resp).await)
    }

    /// POSTs `body` as JSON to `http://addr/path` and decodes the JSON answer. A non-2xx
    /// answer carries Docker's `{"message": ...}` body. An answer larger than
    /// [`MAX_ANSWER_BYTES`] is refused unread.
    pub async fn post<Req, Resp>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let req = self.request(addr, path, body, None)?;
        self.call(addr, req, timeout, MAX_ANSWER_BYTES).await
    }

    /// POSTs JSON the caller already serialized (and measured), reading an answer of at most
    /// `max_answer` bytes.
    pub async fn post_json<Resp>(
        &self,
        addr: &str,
        path: &str,
        json: Bytes,
        timeout: Duration,
        max_answer: usize,
    ) -> Result<Resp, TransportError>
    where
        Resp: DeserializeOwned,
    {
        let req = self.request_json(addr, path, json, None)?;
        self.call(addr, req, timeout, max_answer).await
    }

    async fn call<Resp>(
        &self,
        addr: &str,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
        max_answer: usize,
    ) -> Result<Resp, TransportError>
    where
        Resp: DeserializeOwned,
    {
        let call = async {
            let resp = self.send(addr, req).await?;
            let body =
                read_bounded(resp, max_answer)
                    .await
                    .map_err(|msg| TransportError::Decode {
                        addr: addr.to_string(),
                        msg,
                    })?;
            serde_json::from_slice(&body).map_err(|e| TransportError::Decode {
                addr: addr.to_string(),
                msg: e.to_string(),
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }

    /// POSTs `body` as JSON and hands back the answer's body as it arrives, for answers that
    /// last (log streams). `timeout` covers only the wait for the answer's head; the stream
    /// ends when the peer ends it, and dropping it closes the connection. `bearer` replaces
    /// this node's own credential for this call (a manager speaking to one particular node).
    pub async fn post_stream<Req>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<ByteStream, TransportError>
    where
        Req: Serialize + ?Sized,
    {
        let req = self.request(addr, path, body, bearer)?;
        let resp = match tokio::time::timeout(timeout, self.send(addr, req)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(TransportError::Timeout {
                    addr: addr.to_string(),
                    timeout,
                })
            }
        };
        let peer = addr.to_string();
        Ok(resp
            .into_body()
            .into_data_stream()
            .map(move |chunk| {
                chunk.map_err(|e| TransportError::Unreachable {
                    addr: peer.clone(),
                    msg: e.to_string(),
                })
            })
            .boxed())
    }

    /// Opens a raw byte pipe: POSTs `body` as JSON to `http://addr/path` asking to upgrade the
    /// connection, and hands back the connection once the peer answered `101 Switching
    /// Protocols`. Its own connection, never a pooled one. `timeout` covers the connect and the
    /// wait for the answer.
    pub async fn open_pipe<Req>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Pipe, TransportError>
    where
        Req: Serialize + ?Sized,
    {
        let unreachable = |msg: String| TransportError::Unreachable {
            addr: addr.to_string(),
            msg,
        };
        let mut req = self.request(addr, path, body, bearer)?;
        req.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        req.headers_mut().insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static(PIPE_PROTOCOL),
        );
        let open = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            let peer = addr.to_string();
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!("pipe connection to {peer}: {e}");
                }
            });
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
                return Err(remote_error(addr, resp).await);
            }
            let upgraded = hyper::upgrade::on(resp)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok(hyper_util::rt::TokioIo::new(upgraded))
        };
        match tokio::time::timeout(timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        }
    }
}

/// The body of an answer, read up to `max` bytes: a longer one (announced or sent) is
/// refused without reading the rest.
async fn read_bounded(
    resp: http::Response<hyper::body::Incoming>,
    max: usize,
) -> Result<Bytes, String> {
    let too_large = || format!("the answer is larger than {max} bytes");
    let announced = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(resp.into_body(), max)
        .collect()
        .await
    {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(e.to_string()),
    }
}

/// A refusal from the other node: its status and Docker-style `{"message"}` (or its body).
async fn remote_error(addr: &str, resp: http::Response<hyper::body::Incoming>) -> TransportError {
    let status = resp.status();
    let body = read_bounded(resp, MAX_ERROR_BYTES)
        .await
        .unwrap_or_else(|e| Bytes::from(e.into_bytes()));
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    TransportError::Remote {
        addr: addr.to_string(),
        status: status.as_u16(),
        message,
    }
}
