//! `GET /services/{id}/logs` and `GET /tasks/{id}/logs`: the logs of a service's tasks, or of
//! one task, merged from the nodes that ran them into Docker's multiplexed stream (one raw
//! stream for a TTY); and the node's side, `/internal/logs`, which streams one task's log from
//! the local engine to the manager that asked.
//!
//! Which tasks and on which nodes is the manager's call (`cluster::logs`); reading an engine
//! is the agent's (`shoal_agent::logs`). This module only parses, opens, merges and frames.

use super::*;
use bytes::BytesMut;
use chrono::{DateTime, TimeZone, Utc};
use futures::stream::{BoxStream, StreamExt};
use shoal_agent::{LogLine, LogOptions, LogStream};
use shoal_manager::cluster::logs::{LogSelector, LogSource, LogsReq};
use shoal_manager::{ApiError, Manager};
use shoal_raft::transport::ByteStream;
use std::collections::HashSet;
use std::convert::Infallible;
use tokio::sync::mpsc;

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
const RAW: &str = "application/vnd.docker.raw-stream";

/// Stream types of Docker's multiplexed framing.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const SYSTEMERR: u8 = 3;

/// Docker's timestamps in logs: RFC 3339 in UTC, always nine digits of nanoseconds.
const TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.9fZ";

/// Lines that wait for a slow client before the readers pause.
const BACKLOG: usize = 256;

pub(super) async fn service_logs(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Response> {
    logs(d, LogSelector::Service(id), q.as_deref()).await
}

pub(super) async fn task_logs(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Response> {
    logs(d, LogSelector::Task(id), q.as_deref()).await
}

/// Checks everything Docker checks before the stream starts (after it has, only a line in
/// the stream can say what went wrong), opens every task's log, and streams them merged.
async fn logs(d: Arc<Daemon>, selector: LogSelector, raw: Option<&str>) -> HttpResult<Response> {
    let q = Query::parse(raw)?;
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    if !(stdout || stderr) {
        return Err(HttpError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let m = d.manager()?;
    let follow = q.flag("follow");
    // Watching starts before the first look, so that no task that starts in between is missed.
    let events = follow.then(|| m.replica().subscribe());
    let plan = m.log_plan(&selector)?;
    let options = LogOptions {
        follow,
        stdout,
        stderr,
        since: parse_since(q.get("since"))?,
        tail: parse_tail(q.get("tail"))?,
    };
    let render = Render {
        timestamps: q.flag("timestamps"),
        details: q.flag("details"),
        mux: !plan.tty,
    };

    let opened = futures::future::join_all(
        plan.sources
            .iter()
            .map(|s| open(&d, &m, s.clone(), options.clone())),
    )
    .await;
    let (tx, rx) = mpsc::channel(BACKLOG);
    let mut problems = plan.problems;
    let mut readable = false;
    let mut started = HashSet::new();
    for (source, opened) in plan.sources.into_iter().zip(opened) {
        started.insert(source.task_id.clone());
        match opened {
            Opened::Lines(lines) => {
                readable = true;
                tokio::spawn(forward(source, lines, render, tx.clone()));
            }
            Opened::Gone => {}
            Opened::Unavailable(why) => problems.push(why),
        }
    }
    if !readable && !problems.is_empty() {
        return Err(HttpError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no logs could be read: {}", problems.join(", ")),
        ));
    }
    if let Some(events) = events {
        let follow = Follow {
            events,
            manager: Arc::downgrade(&m),
            daemon: d.clone(),
            selector: plan.selector,
            started,
            options,
            render,
        };
        tokio::spawn(follow.run(tx));
    } else {
        drop(tx);
    }
    Ok(stream_response(
        if render.mux { MULTIPLEXED } else { RAW },
        merged(rx, problems, render),
    ))
}

/// `/internal/logs` on the node that ran the task: its container's log from the local
/// engine, one frame per line, until the engine ends it or the manager hangs up.
pub(crate) async fn node_logs(d: &Daemon, req: LogsReq) -> HttpResult<Response> {
    let me = crate::internal::this_node(d, &req.node_id)?;
    let options = LogOptions {
        follow: req.follow,
        stdout: req.stdout,
        stderr: req.stderr,
        since: req.since,
        tail: req.tail,
    };
    let lines = shoal_agent::container_logs(&d.config().engine_socket, &me, &req.task_id, &options)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                HttpError::not_found(e.to_string())
            } else {
                HttpError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        })?;
    // An engine error ends the stream with one frame that says so.
    let frames = lines
        .scan(false, |failed, r| {
            if *failed {
                return futures::future::ready(None);
            }
            let frame = match r {
                Ok(line) => wire_frame(&line),
                Err(e) => {
                    *failed = true;
                    frame(SYSTEMERR, e.to_string().as_bytes())
                }
            };
            futures::future::ready(Some(frame))
        })
        .boxed();
    Ok(stream_response(MULTIPLEXED, frames))
}

fn stream_response(content_type: &'static str, body: BoxStream<'static, Bytes>) -> Response {
    let body = axum::body::Body::from_stream(body.map(Ok::<_, Infallible>));
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `tail`: absent, empty or `all` for every line, else a count (Docker's words for the rest).
fn parse_tail(v: Option<&str>) -> HttpResult<Option<u64>> {
    match v {
        None | Some("") | Some("all") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n < 0 => Err(HttpError::bad_request("negative tail values not supported")),
            Ok(n) => Ok(Some(n.unsigned_abs())),
            Err(_) => Err(HttpError::bad_request(
                "tail value must be a positive integer or \"all\"",
            )),
        },
    }
}

/// `since`: Unix seconds with an optional fraction (`1700000000.5`), as the CLI sends it.
fn parse_since(v: Option<&str>) -> HttpResult<Option<DateTime<Utc>>> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || HttpError::bad_request(format!("could not parse since timestamp: {v:?}"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // A fraction counts from the decimal point: `.5` is half a second.
    let nanos = format!("{frac:0<9}");
    let nanos: u32 = nanos[..9].parse().map_err(|_| bad())?;
    Utc.timestamp_opt(secs, nanos)
        .single()
        .map(Some)
        .ok_or_else(bad)
}

/// How the client asked to see each line.
#[derive(Debug, Clone, Copy)]
struct Render {
    timestamps: bool,
    /// The swarm context before the message, as `key=value,…` sorted by key.
    details: bool,
    /// Multiplexed frames; a TTY's log is raw.
    mux: bool,
}

impl Render {
    fn line(&self, source: &LogSource, line: &LogLine) -> Bytes {
        let mut payload = Vec::with_capacity(line.message.len() + 200);
        if self.timestamps {
            payload.extend_from_slice(line.timestamp.format(TIMESTAMP).to_string().as_bytes());
            payload.push(b' ');
        }
        if self.details {
            // IDs are lowercase letters and digits: nothing to escape.
            payload.extend_from_slice(
                format!(
                    "com.docker.swarm.node.id={},com.docker.swarm.service.id={},com.docker.swarm.task.id={} ",
                    source.node_id, source.service_id, source.task_id
                )
                .as_bytes(),
            );
        }
        payload.extend_from_slice(&line.message);
        if self.mux {
            frame(stream_type(line.stream), &payload)
        } else {
            payload.into()
        }
    }

    /// The last line of a stream that missed some tasks, on the system-error stream.
    fn error(&self, msg: &str) -> Bytes {
        let text = format!("Error grabbing logs: {msg}\n");
        if self.mux {
            frame(SYSTEMERR, text.as_bytes())
        } else {
            Bytes::from(text)
        }
    }
}

fn stream_type(s: LogStream) -> u8 {
    match s {
        LogStream::Stdout => STDOUT,
        LogStream::Stderr => STDERR,
    }
}

/// One frame of Docker's multiplexed stream: stream type, three zero bytes, big-endian length.
fn frame(kind: u8, payload: &[u8]) -> Bytes {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
    out.into()
}

/// A line between nodes: the engine's own form, `TIMESTAMP SP message`.
fn wire_frame(line: &LogLine) -> Bytes {
    let mut payload = Vec::with_capacity(line.message.len() + 32);
    payload.extend_from_slice(line.timestamp.format(TIMESTAMP).to_string().as_bytes());
    payload.push(b' ');
    payload.extend_from_slice(&line.message);
    frame(stream_type(line.stream), &payload)
}

/// The largest frame taken from another node: an engine splits log lines at 16 KiB, and a
/// frame is buffered whole before it is passed on.
const MAX_NODE_FRAME: usize = 1 << 20;

/// Takes one whole frame off the front of `buf`, if it holds one. A frame announced larger
/// than [`MAX_NODE_FRAME`] is an error: it would be buffered whole.
fn take_frame(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, String> {
    let Some(&[kind, _, _, _, a, b, c, d]) = buf.get(..8) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > MAX_NODE_FRAME {
        return Err(format!(
            "the node sent a log frame of {len} bytes, more than {MAX_NODE_FRAME}"
        ));
    }
    if buf.len() < 8 + len {
        return Ok(None);
    }
    let mut f = buf.split_to(8 + len);
    Ok(Some((kind, f.split_off(8).freeze())))
}

type Lines = BoxStream<'static, Result<LogLine, String>>;

/// The lines of a node's `/internal/logs` answer; a system-error frame ends them with its
/// message.
fn node_lines(body: ByteStream) -> Lines {
    futures::stream::unfold(
        (body, BytesMut::new(), false),
        |(mut body, mut buf, done)| async move {
            if done {
                return None;
            }
            loop {
                let frame = match take_frame(&mut buf) {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), (body, buf, true))),
                };
                if let Some((kind, payload)) = frame {
                    let item = match kind {
                        STDOUT => Ok(LogLine::parse(LogStream::Stdout, payload)),
                        STDERR => Ok(LogLine::parse(LogStream::Stderr, payload)),
                        _ => Err(String::from_utf8_lossy(&payload).trim_end().to_string()),
                    };
                    let done = item.is_err();
                    return Some((item, (body, buf, done)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e.to_string()), (body, buf, true))),
                    None => return None,
                }
            }
        },
    )
    .boxed()
}

enum Opened {
    Lines(Lines),
    /// The task has no container (any more): nothing to read, nothing to report.
    Gone,
    /// Why the task's log cannot be read.
    Unavailable(String),
}

/// Opens one task's log: from the local engine when the task ran on this node, else from
/// its node.
async fn open(d: &Daemon, m: &Manager, source: LogSource, options: LogOptions) -> Opened {
    if source.addr.is_none() {
        return match shoal_agent::container_logs(
            &d.config().engine_socket,
            &source.node_id,
            &source.task_id,
            &options,
        )
        .await
        {
            Ok(lines) => Opened::Lines(lines.map(|r| r.map_err(|e| e.to_string())).boxed()),
            Err(e) if e.is_not_found() => Opened::Gone,
            Err(e) => Opened::Unavailable(format!("node {}: {e}", source.node_id)),
        };
    }
    let req = LogsReq {
        node_id: source.node_id.clone(),
        task_id: source.task_id.clone(),
        follow: options.follow,
        stdout: options.stdout,
        stderr: options.stderr,
        since: options.since,
        tail: options.tail,
    };
    match m.node_logs(&source, &req).await {
        Ok(body) => Opened::Lines(node_lines(body)),
        Err(ApiError::NotFound(_)) => Opened::Gone,
        Err(e) => Opened::Unavailable(e.to_string()),
    }
}

enum Chunk {
    Data(Bytes),
    Problem(String),
}

/// Copies one task's lines into the merged stream until they end or the client goes away.
async fn forward(source: LogSource, mut lines: Lines, render: Render, tx: mpsc::Sender<Chunk>) {
    loop {
        let next = tokio::select! {
            _ = tx.closed() => return,
            next = lines.next() => next,
        };
        let chunk = match next {
            None => return,
            Some(Ok(line)) => Chunk::Data(render.line(&source, &line)),
            Some(Err(e)) => Chunk::Problem(format!("task {}: {e}", source.task_id)),
        };
        let last = matches!(chunk, Chunk::Problem(_));
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// With `follow`, tasks that start later join the stream (a service scaled up, a task
/// replaced), as in Swarm.
struct Follow {
    /// Subscribed before the first look at the tasks.
    events: tokio::sync::broadcast::Receiver<shoal_store::Event>,
    manager: std::sync::Weak<Manager>,
    daemon: Arc<Daemon>,
    selector: LogSelector,
    /// Tasks already in the stream.
    started: HashSet<String>,
    options: LogOptions,
    render: Render,
}

impl Follow {
    /// Runs until the client goes away, or the service or task is gone.
    async fn run(mut self, tx: mpsc::Sender<Chunk>) {
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                e = self.events.recv() => match e {
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(e) if e.kind != shoal_store::Kind::Task => continue,
                    Ok(_) => {}
                },
            }
            let Some(m) = self.manager.upgrade() else {
                return;
            };
            let Ok(plan) = m.log_plan(&self.selector) else {
                return;
            };
            for source in plan.sources {
                if !self.started.insert(source.task_id.clone()) {
                    continue;
                }
                match open(&self.daemon, &m, source.clone(), self.options.clone()).await {
                    Opened::Lines(lines) => {
                        tokio::spawn(forward(source, lines, self.render, tx.clone()));
                    }
                    Opened::Gone => {}
                    Opened::Unavailable(why) => {
                        if tx.send(Chunk::Problem(why)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The client's stream: lines as they come from every task; at the end, when some tasks could
/// not be read, Swarm's warning on the system-error stream.
fn merged(
    rx: mpsc::Receiver<Chunk>,
    problems: Vec<String>,
    render: Render,
) -> BoxStream<'static, Bytes> {
    futures::stream::unfold(
        (rx, problems, false),
        move |(mut rx, mut problems, warned)| async move {
            loop {
                match rx.recv().await {
                    Some(Chunk::Data(b)) => return Some((b, (rx, problems, warned))),
                    Some(Chunk::Problem(p)) => problems.push(p),
                    None if warned || problems.is_empty() => return None,
                    None => {
                        let msg = format!(
                            "warning: incomplete log stream. some logs could not be retrieved for the following reasons: {}",
                            problems.join(", ")
                        );
                        return Some((render.error(&msg), (rx, problems, true)));
                    }
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: LogStream, msg: &'static str) -> LogLine {
        LogLine {
            stream,
            timestamp: Utc.timestamp_opt(1_700_000_000, 5_000).single().unwrap(),
            message: Bytes::from_static(msg.as_bytes()),
        }
    }

    fn source() -> LogSource {
        LogSource {
            task_id: "t1".into(),
            service_id: "s1".into(),
            node_id: "n1".into(),
            addr: None,
        }
    }

    #[test]
    fn a_line_with_details_and_timestamps_is_framed_like_docker() {
        let r = Render {
            timestamps: true,
            details: true,
            mux: true,
        };
        let out = r.line(&source(), &line(LogStream::Stderr, "err\n"));
        let payload = b"2023-11-14T22:13:20.000005000Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 err\n";
        assert_eq!(&out[..4], &[2, 0, 0, 0]);
        assert_eq!(&out[4..8], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&out[8..], payload);
    }

    #[test]
    fn a_tty_line_is_raw() {
        let r = Render {
            timestamps: false,
            details: false,
            mux: false,
        };
        let out = r.line(&source(), &line(LogStream::Stdout, "hi\n"));
        assert_eq!(&out[..], b"hi\n");
    }

    #[tokio::test]
    async fn node_frames_split_across_chunks_come_back_as_lines() {
        let mut bytes = wire_frame(&line(LogStream::Stdout, "one\n")).to_vec();
        bytes.extend_from_slice(&wire_frame(&line(LogStream::Stderr, "two\n")));
        bytes.extend_from_slice(&frame(SYSTEMERR, b"engine went away"));
        let chunks: Vec<Result<Bytes, shoal_raft::transport::TransportError>> = bytes
            .chunks(5)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let lines: Vec<_> = node_lines(futures::stream::iter(chunks).boxed())
            .collect()
            .await;
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], Ok(line(LogStream::Stdout, "one\n")));
        assert_eq!(lines[1], Ok(line(LogStream::Stderr, "two\n")));
        assert_eq!(lines[2], Err("engine went away".to_string()));
    }

    #[test]
    fn since_and_tail_are_parsed_like_docker() {
        assert_eq!(parse_tail(None).unwrap(), None);
        assert_eq!(parse_tail(Some("all")).unwrap(), None);
        assert_eq!(parse_tail(Some("3")).unwrap(), Some(3));
        assert!(parse_tail(Some("-1")).is_err());
        assert!(parse_tail(Some("x")).is_err());
        assert_eq!(parse_since(Some("")).unwrap(), None);
        assert_eq!(
            parse_since(Some("1700000000.5")).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 500_000_000).single()
        );
        assert_eq!(
            parse_since(Some("1700000000")).unwrap(),
            Utc.timestamp_opt(1_700_000_000, 0).single()
        );
        assert!(parse_since(Some("yesterday")).is_err());
    }

    #[test]
    fn a_node_frame_larger_than_the_limit_ends_the_stream_with_an_error() {
        let mut buf = BytesMut::from(&[1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(take_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&frame(STDOUT, b"hi")[..]);
        assert_eq!(
            take_frame(&mut buf),
            Ok(Some((STDOUT, Bytes::from_static(b"hi"))))
        );
        assert!(buf.is_empty());
    }

    proptest::proptest! {
        /// Whatever another node sends as its log stream, split anywhere, reading it gives
        /// lines or an error, never a panic, and never buffers more than one frame.
        #[test]
        fn any_bytes_from_a_node_give_lines_or_an_error(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..8)
        ) {
            let body: ByteStream = futures::stream::iter(
                chunks.into_iter().map(|c| Ok(Bytes::from(c))),
            )
            .boxed();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let lines: Vec<_> = rt.block_on(node_lines(body).collect());
            // An error, if any, is the last item.
            if let Some(i) = lines.iter().position(|l| l.is_err()) {
                proptest::prop_assert_eq!(i, lines.len() - 1);
            }
        }
    }
}
