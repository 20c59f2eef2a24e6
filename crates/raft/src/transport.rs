//! The one way nodes talk to each other: JSON over HTTP/1.1 with kept-alive connections.
//!
//! Every node-to-node call (Raft RPCs, join, forwarded writes, heartbeats) goes through
//! [`Transport`], so that mutual TLS can be slotted in here without touching the callers.

use bytes::Bytes;
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

    /// POSTs `body` as JSON to `http://addr/path` and decodes the JSON answer. A non-2xx
    /// answer carries Docker's `{"message": ...}` body.
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
        let bytes = serde_json::to_vec(body).map_err(|e| TransportError::Decode {
            addr: addr.to_string(),
            msg: e.to_string(),
        })?;
        let mut req = http::Request::post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(c) = self
            .credential
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {c}"));
        }
        let req =
            req.body(Full::new(Bytes::from(bytes)))
                .map_err(|e| TransportError::Unreachable {
                    addr: addr.to_string(),
                    msg: e.to_string(),
                })?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| TransportError::Unreachable {
                    addr: addr.to_string(),
                    msg: e.to_string(),
                })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| TransportError::Decode {
                    addr: addr.to_string(),
                    msg: e.to_string(),
                })?
                .to_bytes();
            if !status.is_success() {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                return Err(TransportError::Remote {
                    addr: addr.to_string(),
                    status: status.as_u16(),
                    message,
                });
            }
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
}
