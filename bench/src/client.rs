//! A minimal keep-alive HTTP/1.1 client on a unix socket (hyper's connection API over a tokio
//! `UnixStream`). One `Conn` is one connection: concurrent load uses one `Conn` per task.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

pub struct Conn {
    path: PathBuf,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// Status and body of one answer.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "not JSON (HTTP {}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    pub fn new(path: &Path) -> Conn {
        Conn {
            path: path.to_path_buf(),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = UnixStream::connect(&self.path)
                .await
                .with_context(|| format!("cannot connect to {}", self.path.display()))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .context("HTTP handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just set"))
    }

    /// One request; the connection is kept for the next one unless something failed.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let res = self.request_inner(method, path, body).await;
        if res.is_err() {
            self.sender = None;
        }
        res
    }

    async fn request_inner(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let sender = self.sender().await?;
        sender.ready().await.context("connection not ready")?;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "shoal")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.unwrap_or_default()))?;
        let resp = sender.send_request(req).await.context("request failed")?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading the body")?
            .to_bytes();
        Ok(Reply { status, body })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> Result<Reply> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        self.request(Method::POST, path, Some(body)).await
    }

    /// `post` with a deadline.
    pub async fn post_within(
        &mut self,
        limit: Duration,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply> {
        match tokio::time::timeout(limit, self.post(path, body)).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                anyhow::bail!("POST {path}: no answer within {limit:?}")
            }
        }
    }

    /// `get` with a deadline.
    pub async fn get_within(&mut self, limit: Duration, path: &str) -> Result<Reply> {
        match tokio::time::timeout(limit, self.get(path)).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                anyhow::bail!("GET {path}: no answer within {limit:?}")
            }
        }
    }
}
