//! The one way nodes talk to each other: JSON over HTTP/1.1 with kept-alive connections,
//! inside mutual TLS.
//!
//! Every node-to-node call (Raft RPCs, join, forwarded writes, heartbeats, log streams, mesh
//! pipes) goes through [`Transport`], which presents this node's certificate and takes only
//! peers whose certificate the cluster's root CA issued (see [`crate::tls`]). Until the node
//! holds a certificate it can make one kind of call: the join, pinned to the CA its token
//! names.

use crate::limits::{MAX_ANSWER_BYTES, MAX_ERROR_BYTES};
use crate::tls::{self, CaPin, NodeCert, TlsError};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
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

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What the node uses while it holds a certificate: a pooled client presenting it, the
/// configuration pipes are opened with, and the node port's server configuration.
#[derive(Clone)]
struct Tls {
    cert: NodeCert,
    client: HttpsClient,
    client_config: std::sync::Arc<tls::ClientConfig>,
    server: std::sync::Arc<tls::ServerConfig>,
}

#[derive(Clone)]
pub struct Transport {
    tls: std::sync::Arc<std::sync::RwLock<Option<Tls>>>,
    /// The credential this node presents (`Authorization: Bearer …`), once it has one.
    credential: std::sync::Arc<std::sync::RwLock<Option<String>>>,
}

fn pooled_client(config: std::sync::Arc<tls::ClientConfig>) -> HttpsClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(500)));
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*config).clone())
        .https_only()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(32)
        .build(https)
}

/// An error with every cause it carries (a TLS refusal hides two levels down in hyper's).
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !msg.contains(&more) {
            msg.push_str(": ");
            msg.push_str(&more);
        }
        source = s.source();
    }
    msg
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport {
    /// A transport without a certificate: it can only join (see [`Transport::join`]).
    pub fn new() -> Self {
        Self {
            tls: Default::default(),
            credential: Default::default(),
        }
    }

    /// Presents `cert` on every call from now on (or, with `None`, makes no call and serves
    /// no TLS: the node left its cluster).
    pub fn set_certificate(&self, cert: Option<&NodeCert>) -> Result<(), TlsError> {
        let tls = match cert {
            Some(cert) => {
                let configs = tls::configs(cert)?;
                Some(Tls {
                    cert: cert.clone(),
                    client: pooled_client(configs.client.clone()),
                    client_config: configs.client,
                    server: configs.server,
                })
            }
            None => None,
        };
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = tls;
        Ok(())
    }

    /// The certificate this node presents now.
    pub fn certificate(&self) -> Option<NodeCert> {
        self.current().map(|t| t.cert)
    }

    /// The node port's TLS configuration, while the node holds a certificate.
    pub fn server_config(&self) -> Option<std::sync::Arc<tls::ServerConfig>> {
        self.current().map(|t| t.server)
    }

    fn current(&self) -> Option<Tls> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn no_certificate(addr: &str) -> TransportError {
        TransportError::Unreachable {
            addr: addr.to_string(),
            msg: "this node holds no certificate of a swarm".into(),
        }
    }

    /// The join: a POST without a client certificate (the node has none yet) to a manager
    /// whose chain must hold the root CA `pin` accepts (the join token's digest).
    pub async fn join<Req, Resp>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        pin: CaPin,
        timeout: Duration,
    ) -> Result<Resp, TransportError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let config = tls::join_client(pin).map_err(|e| TransportError::Unreachable {
            addr: addr.to_string(),
            msg: e.to_string(),
        })?;
        let client = pooled_client(config);
        let req = self.request(addr, path, body, None)?;
        self.call_with(&client, addr, req, timeout, MAX_ANSWER_BYTES)
            .await
    }

    /// Sets (or clears) the credential presented on every call from now on.
    pub fn set_credential(&self, credential: Option<String>) {
        *self.credential.write().unwrap_or_else(|e| e.into_inner()) = credential;
    }

    /// A JSON POST to `https://addr/path` with `bearer`, or this node's own credential.
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
        let mut req = http::Request::post(format!("https://{addr}{path}"))
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
        let tls = self.current().ok_or_else(|| Self::no_certificate(addr))?;
        send_with(&tls.client, addr, req).await
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
        let tls = self.current().ok_or_else(|| Self::no_certificate(addr))?;
        self.call_with(&tls.client, addr, req, timeout, max_answer)
            .await
    }

    /// POSTs `body` as JSON to `https://addr/path` and decodes the JSON answer. A non-2xx
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

    async fn call_with<Resp>(
        &self,
        client: &HttpsClient,
        addr: &str,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
        max_answer: usize,
    ) -> Result<Resp, TransportError>
    where
        Resp: DeserializeOwned,
    {
        let call = async {
            let resp = send_with(client, addr, req).await?;
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

    /// Opens a raw byte pipe: POSTs `body` as JSON to `https://addr/path` asking to upgrade the
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
        let tls = self.current().ok_or_else(|| Self::no_certificate(addr))?;
        let open = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            let host = addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| unreachable(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(tls.client_config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| unreachable(chain(&e)))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
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

/// Sends a request on `client` and waits for the answer's head; a non-2xx answer becomes
/// [`TransportError::Remote`] with the message of Docker's `{"message": ...}` body.
async fn send_with(
    client: &HttpsClient,
    addr: &str,
    req: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, TransportError> {
    let resp = client
        .request(req)
        .await
        .map_err(|e| TransportError::Unreachable {
            addr: addr.to_string(),
            msg: chain(&e),
        })?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(remote_error(addr, resp).await)
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
