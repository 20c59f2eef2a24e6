//! How a node describes itself: hostname, platform, CPUs and memory, and the local Docker
//! Engine's version and labels when one runs.

use serde_json::Value;
use shoal_types::swarm::{EngineDescription, NodeDescription, Platform, Resources};
use std::collections::BTreeMap;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn describe(engine_socket: &Path) -> NodeDescription {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    let mut engine = EngineDescription::default();
    if let Some(version) = engine_get(engine_socket, "/version").await {
        engine.engine_version = version
            .get("Version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    if let Some(info) = engine_get(engine_socket, "/info").await {
        let mut labels = BTreeMap::new();
        for l in info
            .get("Labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some((k, v)) = l.as_str().and_then(|l| l.split_once('=')) {
                labels.insert(k.to_string(), v.to_string());
            }
        }
        engine.labels = labels;
    }
    NodeDescription {
        hostname,
        platform: Platform {
            architecture: std::env::consts::ARCH.to_string(),
            os: std::env::consts::OS.to_string(),
        },
        resources: Resources {
            nano_cpus: cpus * 1_000_000_000,
            memory_bytes: memory,
            ..Default::default()
        },
        engine,
        ..Default::default()
    }
}

/// One GET to the local Docker Engine; `None` when no engine answers.
pub async fn engine_get(socket: &Path, path: &str) -> Option<Value> {
    let fut = async {
        let mut s = tokio::net::UnixStream::connect(socket).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        serde_json::from_slice(&buf[split + 4..]).ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}
