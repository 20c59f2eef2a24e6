//! `shoal service logs`: reads the daemon's log stream of a service or of one task as it
//! arrives and prints it the way `docker service logs` does: each line introduced by
//! `SERVICE.SLOT.TASK@NODE    | `, stdout lines on stdout, stderr lines on stderr, and an error
//! the daemon puts at the end of the stream as the command's error. It only reads; which tasks
//! and nodes a log covers is the daemon's business.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde_json::Value;

use super::client::{encode, is_not_found, Client, Query};
use super::table::{self, str_at};

/// Stream types of Docker's multiplexed framing (moby's `stdcopy`).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const SYSTEMERR: u8 = 3;

/// What separates a task's name from its line.
const SEPARATOR: &str = "    | ";

/// The swarm context the daemon puts before each line when asked for details.
const NODE_KEY: &str = "com.docker.swarm.node.id";
const SERVICE_KEY: &str = "com.docker.swarm.service.id";
const TASK_KEY: &str = "com.docker.swarm.task.id";

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Do not map IDs to Names in output
    #[arg(long)]
    pub no_resolve: bool,
    /// Do not include task IDs in output
    #[arg(long)]
    pub no_task_ids: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Do not neatly format logs
    #[arg(long)]
    pub raw: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42
    /// minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(value_name = "SERVICE|TASK")]
    pub target: String,
}

/// `docker service logs`: a service's log if `target` names one, else a task's.
pub async fn service_logs(client: &Client, args: LogsArgs) -> Result<()> {
    let target = encode(&args.target);
    let (collection, tty, padding) = match client.get(&format!("/services/{target}")).await {
        Ok(service) => {
            let tty = service
                .pointer("/Spec/TaskTemplate/ContainerSpec/TTY")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            // Slots are padded to the width of the replica count.
            let padding = service
                .pointer("/Spec/Mode/Replicated/Replicas")
                .and_then(Value::as_u64)
                .map_or(1, digits);
            ("services", tty, padding)
        }
        Err(err) if is_not_found(&err) => match client.get(&format!("/tasks/{target}")).await {
            Ok(task) => {
                let tty = task
                    .pointer("/Spec/ContainerSpec/TTY")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                ("tasks", tty, digits(slot(&task)))
            }
            Err(err) if is_not_found(&err) => {
                bail!("no such task or service: {}", args.target)
            }
            Err(err) => return Err(err),
        },
        Err(err) => return Err(err),
    };
    // A TTY's log is one raw stream, without the context a prefix needs.
    if tty && !args.raw {
        bail!("tty service logs only supported with --raw");
    }

    let mut query = Query::new().push("stdout", "1").push("stderr", "1");
    if let Some(since) = args.since.as_deref().filter(|s| !s.is_empty()) {
        let since = since_timestamp(since, Local::now()).context("invalid value for \"since\"")?;
        query = query.push("since", since);
    }
    if args.timestamps {
        query = query.push("timestamps", "1");
    }
    // The prefix is made of the details, so they are asked for unless the output is raw.
    if args.details || !args.raw {
        query = query.push("details", "1");
    }
    if args.follow {
        query = query.push("follow", "1");
    }
    query = query.push("tail", args.tail.clone());
    let mut answer = client
        .get_stream(&query.to_path(&format!("/{collection}/{target}/logs")))
        .await?;

    if tty {
        while let Some(chunk) = answer.chunk().await? {
            write_to(Output::Stdout, &chunk)?;
        }
        return Ok(());
    }
    let mut formatter = (!args.raw).then(|| Formatter::new(&args, padding));
    let mut buf = BytesMut::new();
    while let Some(chunk) = answer.chunk().await? {
        buf.extend_from_slice(&chunk);
        while let Some((kind, payload)) = take_frame(&mut buf) {
            let output = match kind {
                STDIN | STDOUT => Output::Stdout,
                STDERR => Output::Stderr,
                SYSTEMERR => bail!(
                    "error from daemon in stream: {}",
                    String::from_utf8_lossy(&payload)
                ),
                other => bail!("Unrecognized input header: {other}"),
            };
            let line = match formatter.as_mut() {
                Some(f) => f.line(client, &payload).await?,
                None => payload.to_vec(),
            };
            write_to(output, &line)?;
        }
    }
    Ok(())
}

/// Takes one whole frame (8-byte header, then the payload) off the front of `buf`.
fn take_frame(buf: &mut BytesMut) -> Option<(u8, Bytes)> {
    if buf.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let kind = buf[0];
    buf.advance(8);
    Some((kind, buf.split_to(len).freeze()))
}

#[derive(Debug, Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

/// Writes one line as soon as it is known; a reader that has gone away ends the process like
/// SIGPIPE would.
fn write_to(output: Output, bytes: &[u8]) -> Result<()> {
    let result = match output {
        Output::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Output::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(bytes).and_then(|()| err.flush())
        }
    };
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        other => other.context("cannot write the logs"),
    }
}

fn slot(task: &Value) -> u64 {
    task.get("Slot").and_then(Value::as_u64).unwrap_or(0)
}

/// The number of decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.to_string().len()
}

/// The task a line came from, as the details name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LogContext {
    node_id: String,
    service_id: String,
    task_id: String,
}

/// Turns the daemon's lines (`[TIMESTAMP ]DETAILS MESSAGE`) into docker's
/// (`[TIMESTAMP ]NAME.SLOT.TASK@NODE    | [DETAILS ]MESSAGE`), looking up each name once.
struct Formatter {
    timestamps: bool,
    details: bool,
    no_resolve: bool,
    no_task_ids: bool,
    no_trunc: bool,
    /// Width of the widest slot number, to line up the separators.
    padding: usize,
    names: HashMap<(&'static str, String), String>,
    prefixes: HashMap<LogContext, String>,
}

impl Formatter {
    fn new(args: &LogsArgs, padding: usize) -> Self {
        Self {
            timestamps: args.timestamps,
            details: args.details,
            no_resolve: args.no_resolve,
            no_task_ids: args.no_task_ids,
            no_trunc: args.no_trunc,
            padding,
            names: HashMap::new(),
            prefixes: HashMap::new(),
        }
    }

    async fn line(&mut self, client: &Client, payload: &[u8]) -> Result<Vec<u8>> {
        let parts = if self.timestamps { 3 } else { 2 };
        let split: Vec<&[u8]> = payload.splitn(parts, |b| *b == b' ').collect();
        if split.len() != parts {
            bail!(
                "invalid context in log message: {}",
                String::from_utf8_lossy(payload)
            );
        }
        let (timestamp, details, message) = match split.as_slice() {
            [ts, details, message] => (Some(*ts), *details, *message),
            [details, message] => (None, *details, *message),
            _ => unreachable!("split into {parts} parts"),
        };
        let mut details = parse_details(&String::from_utf8_lossy(details))?;
        let context = take_context(&mut details)?;
        let prefix = self.prefix(client, &context).await?;

        let mut out = Vec::with_capacity(payload.len() + prefix.len() + 16);
        if let Some(ts) = timestamp {
            out.extend_from_slice(ts);
            out.push(b' ');
        }
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(SEPARATOR.as_bytes());
        if self.details {
            let mut pairs: Vec<String> = details.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            out.extend_from_slice(pairs.join(",").as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(message);
        Ok(out)
    }

    /// `NAME.SLOT[.TASK]@NODE` and the padding after it.
    async fn prefix(&mut self, client: &Client, context: &LogContext) -> Result<String> {
        if let Some(prefix) = self.prefixes.get(context) {
            return Ok(prefix.clone());
        }
        let node = self.resolve(client, "nodes", &context.node_id).await;
        let service = self.resolve(client, "services", &context.service_id).await;
        let task = client
            .get(&format!("/tasks/{}", encode(&context.task_id)))
            .await?;
        let slot = slot(&task);
        let mut name = format!("{service}.{slot}");
        if !self.no_task_ids {
            let id = str_at(&task, &["ID"]);
            if self.no_trunc {
                name = format!("{name}.{id}");
            } else {
                name = format!("{name}.{}", table::truncate_id(id));
            }
        }
        let padding = " ".repeat(self.padding.saturating_sub(digits(slot)));
        let prefix = format!("{name}@{node}{padding}");
        self.prefixes.insert(context.clone(), prefix.clone());
        Ok(prefix)
    }

    /// A node's or service's name for its ID, as docker's ID resolver finds it: the ID itself
    /// when asked not to resolve or when the lookup fails.
    async fn resolve(&mut self, client: &Client, collection: &'static str, id: &str) -> String {
        if self.no_resolve {
            return id.to_string();
        }
        let key = (collection, id.to_string());
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name = match client.get(&format!("/{collection}/{}", encode(id))).await {
            Ok(object) if collection == "nodes" => [
                str_at(&object, &["Spec", "Name"]),
                str_at(&object, &["Description", "Hostname"]),
            ]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or(id)
            .to_string(),
            Ok(object) => str_at(&object, &["Spec", "Name"]).to_string(),
            Err(_) => id.to_string(),
        };
        self.names.insert(key, name.clone());
        name
    }
}

/// Docker's log details, `k=v,k=v` with query-escaped keys and values.
fn parse_details(details: &str) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for pair in details.split(',') {
        let (k, v) = pair.split_once('=').context("invalid details format")?;
        map.insert(query_unescape(k)?, query_unescape(v)?);
    }
    Ok(map)
}

/// Takes the swarm context out of the details; what remains is for `--details`.
fn take_context(details: &mut HashMap<String, String>) -> Result<LogContext> {
    let mut take = |key: &str, what: &str| {
        details
            .remove(key)
            .with_context(|| format!("missing {what} id in details: {details:?}"))
    };
    Ok(LogContext {
        node_id: take(NODE_KEY, "node")?,
        service_id: take(SERVICE_KEY, "service")?,
        task_id: take(TASK_KEY, "task")?,
    })
}

/// Go's `url.QueryUnescape`: `%XX` escapes and `+` for a space.
fn query_unescape(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .with_context(|| format!("invalid URL escape {:?}", &s[i..]))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The `since` the API takes (Unix seconds, with nanoseconds after a dot) for a `--since`
/// value, as docker's `GetTimestamp` reads it: a Go duration before `now`, an RFC 3339 time or
/// a shorter form of one (a missing zone is `now`'s), or Unix seconds passed on as they are.
fn since_timestamp(value: &str, now: DateTime<Local>) -> Result<String> {
    if value != "0" {
        if let Some(nanos) = signed_duration(value) {
            let then = now - chrono::Duration::nanoseconds(nanos);
            return Ok(then.timestamp().to_string());
        }
    }
    match parse_time(value, *now.offset()) {
        Some(t) => Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        )),
        // With a dash it was meant as a date.
        None if value.contains('-') => {
            bail!("parsing time {value:?}: not a time like \"2013-01-02T13:23:37Z\"")
        }
        None if is_unix_timestamp(value) => Ok(value.to_string()),
        None => bail!("failed to parse value as time or duration: {value:?}"),
    }
}

/// Go's `time.ParseDuration`, sign included, in nanoseconds.
fn signed_duration(value: &str) -> Option<i64> {
    match value.strip_prefix('-') {
        Some(rest) if !rest.starts_with(['-', '+']) => {
            super::opts::parse_duration(rest).ok().map(|n| -n)
        }
        Some(_) => None,
        None => super::opts::parse_duration(value).ok(),
    }
}

/// `SECONDS[.NANOS]`, what the API takes as it is.
fn is_unix_timestamp(value: &str) -> bool {
    let (secs, nanos) = value.split_once('.').unwrap_or((value, ""));
    let secs = secs.strip_prefix('-').unwrap_or(secs);
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !secs.is_empty() && all_digits(secs) && all_digits(nanos) && nanos.len() <= 9
}

/// `YYYY-MM-DD[THH[:MM[:SS[.frac]]]][Z|±hh:mm]`; without a zone, in `local`.
fn parse_time(value: &str, local: FixedOffset) -> Option<DateTime<FixedOffset>> {
    let date = NaiveDate::parse_from_str(value.get(..10)?, "%Y-%m-%d").ok()?;
    let rest = &value[10..];
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(zone_at);
    let offset = match zone {
        "" => local,
        "Z" | "z" => FixedOffset::east_opt(0)?,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
            FixedOffset::east_opt(sign * (h * 3600 + m * 60))?
        }
    };
    let time = match time {
        "" => NaiveTime::MIN,
        t => {
            let t = t.strip_prefix('T')?;
            let full = match t.matches(':').count() {
                0 => format!("{t}:00:00"),
                1 => format!("{t}:00"),
                _ => t.to_string(),
            };
            NaiveTime::parse_from_str(&full, "%H:%M:%S%.f").ok()?
        }
    };
    offset
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .single()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_are_taken_whole_across_chunks() {
        let mut all = frame(STDOUT, b"one\n");
        all.extend(frame(STDERR, b"two\n"));
        let mut buf = BytesMut::from(&all[..10]);
        assert_eq!(take_frame(&mut buf), None);
        buf.extend_from_slice(&all[10..]);
        assert_eq!(
            take_frame(&mut buf),
            Some((STDOUT, Bytes::from_static(b"one\n")))
        );
        assert_eq!(
            take_frame(&mut buf),
            Some((STDERR, Bytes::from_static(b"two\n")))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn details_give_the_context_and_keep_the_rest() {
        let mut details = parse_details(&format!(
            "{NODE_KEY}=n1,{SERVICE_KEY}=s1,{TASK_KEY}=t1,extra=a%2Cb+c"
        ))
        .unwrap();
        let context = take_context(&mut details).unwrap();
        assert_eq!(
            context,
            LogContext {
                node_id: "n1".into(),
                service_id: "s1".into(),
                task_id: "t1".into()
            }
        );
        assert_eq!(details.get("extra").map(String::as_str), Some("a,b c"));
        assert!(parse_details("nonsense").is_err());
        assert!(take_context(&mut HashMap::new()).is_err());
    }

    #[test]
    fn since_reads_durations_times_and_unix_seconds_like_docker() {
        let now = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2024, 1, 1)
                    .unwrap()
                    .and_hms_opt(12, 0, 0)
                    .unwrap(),
            )
            .unwrap();
        let at = |s: &str| since_timestamp(s, now).unwrap();
        assert_eq!(at("10m"), (now.timestamp() - 600).to_string());
        assert_eq!(at("-1h"), (now.timestamp() + 3600).to_string());
        assert_eq!(at("2013-01-02T13:23:37Z"), "1357133017.000000000");
        assert_eq!(at("2013-01-02T13:23:37.5+01:00"), "1357129417.500000000");
        assert_eq!(at("2013-01-02T13:23:37-01:00"), "1357136617.000000000");
        assert_eq!(at("2013-01-02Z"), "1357084800.000000000");
        assert_eq!(at("1700000000.5"), "1700000000.5");
        assert_eq!(at("0"), "0");
        let local = now.offset().local_minus_utc() as i64;
        assert_eq!(
            at("2013-01-02T13"),
            format!("{}.000000000", 1357131600 - local)
        );
        assert_eq!(
            at("2013-01-02"),
            format!("{}.000000000", 1357084800 - local)
        );
        assert!(since_timestamp("yesterday", now).is_err());
        assert!(since_timestamp("2013-13-02", now).is_err());
    }
}
