//! What a task printed: the log of the task's container on this node's engine, line by line
//! with the engine's timestamps, for `docker service logs`. It reads only; it never decides
//! which tasks a request covers (the managers do) nor how lines are shown to a client.

use std::path::Path;

use bollard::container::LogOutput;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::container::{LABEL_NODE_ID, LABEL_TASK_ID};
use crate::{Engine, EngineError};

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// What part of a task's log to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep reading what the container prints from now on, until the reader goes away or the
    /// container is removed.
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Only lines logged at or after this moment.
    pub since: Option<DateTime<Utc>>,
    /// Only the last lines: the engine's count, per container.
    pub tail: Option<u64>,
}

/// One line as the engine logged it; `message` keeps its line break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub timestamp: DateTime<Utc>,
    pub message: Bytes,
}

/// A task's log lines, in the order the engine logged them.
pub type LogLines = BoxStream<'static, Result<LogLine, EngineError>>;

/// The log of the container that runs `task_id` for `node_id` on the engine at
/// `engine_socket`. Fails before any line when the container does not exist
/// ([`EngineError::NotFound`]) or the engine does not answer.
pub async fn container_logs(
    engine_socket: &Path,
    node_id: &str,
    task_id: &str,
    options: &LogOptions,
) -> Result<LogLines, EngineError> {
    let engine = Engine::new(engine_socket);
    // Several nodes may share one engine (tests, a manager and a worker on one host): the
    // node's label keeps each to its own containers.
    let found = engine
        .list_containers(&[
            format!("{LABEL_TASK_ID}={task_id}"),
            format!("{LABEL_NODE_ID}={node_id}"),
        ])
        .await?;
    let Some(id) = found.into_iter().find_map(|c| c.id) else {
        return Err(EngineError::NotFound {
            message: format!("task {task_id} has no container on node {node_id}"),
        });
    };
    // The engine counts `since` in whole seconds: ask from the second before, drop the rest.
    let since_secs = options
        .since
        .map(|t| i32::try_from(t.timestamp()).unwrap_or(i32::MAX).max(1))
        .unwrap_or(0);
    let tail = options
        .tail
        .map(|n| n.to_string())
        .unwrap_or_else(|| "all".into());
    let since = options.since;
    let lines = engine
        .container_logs(
            &id,
            options.follow,
            options.stdout,
            options.stderr,
            since_secs,
            &tail,
        )?
        .filter_map(move |r| {
            let line = match r {
                Ok(out) => line(out).map(Ok),
                Err(e) => Some(Err(e)),
            };
            let keep = match (&line, since) {
                (Some(Ok(l)), Some(since)) => l.timestamp >= since,
                _ => true,
            };
            futures::future::ready(line.filter(|_| keep))
        })
        .boxed();
    Ok(lines)
}

/// One engine message (`TIMESTAMP SP message`) as a line; stdin echoes are not log lines.
fn line(out: LogOutput) -> Option<LogLine> {
    let (stream, raw) = match out {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (LogStream::Stdout, message)
        }
        LogOutput::StdErr { message } => (LogStream::Stderr, message),
        LogOutput::StdIn { .. } => return None,
    };
    Some(LogLine::parse(stream, raw))
}

impl LogLine {
    /// A line from an engine message with its timestamp (`TIMESTAMP SP message`), the way
    /// the engine sends it when asked for timestamps.
    pub fn parse(stream: LogStream, raw: Bytes) -> LogLine {
        split_timestamp(stream, raw)
    }
}

fn split_timestamp(stream: LogStream, raw: Bytes) -> LogLine {
    let parsed = raw.iter().position(|b| *b == b' ').and_then(|sp| {
        let ts = std::str::from_utf8(&raw[..sp]).ok()?;
        let ts = DateTime::parse_from_rfc3339(ts).ok()?;
        Some((ts.with_timezone(&Utc), sp))
    });
    match parsed {
        Some((timestamp, sp)) => LogLine {
            stream,
            timestamp,
            message: raw.slice(sp + 1..),
        },
        // An engine always sends the timestamp it was asked for; keep the line anyway.
        None => LogLine {
            stream,
            timestamp: Utc::now(),
            message: raw,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_timestamp_is_split_off_the_message() {
        let l = split_timestamp(
            LogStream::Stderr,
            Bytes::from_static(b"2024-05-01T10:00:00.123456789Z err or\n"),
        );
        assert_eq!(l.stream, LogStream::Stderr);
        assert_eq!(l.message, Bytes::from_static(b"err or\n"));
        assert_eq!(
            l.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2024-05-01T10:00:00.123456789Z"
        );
    }

    #[test]
    fn a_message_without_a_timestamp_is_kept_whole() {
        let l = split_timestamp(LogStream::Stdout, Bytes::from_static(b"hello world\n"));
        assert_eq!(l.message, Bytes::from_static(b"hello world\n"));
    }

    #[tokio::test]
    async fn a_missing_engine_is_reported_before_any_line() {
        let err = container_logs(
            Path::new("/nonexistent/shoal-test.sock"),
            "n1",
            "t1",
            &LogOptions::default(),
        )
        .await
        .err()
        .expect("no engine, no log");
        assert!(err.is_unreachable(), "{err:?}");
    }
}
