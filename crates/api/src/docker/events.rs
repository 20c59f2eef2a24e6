//! `GET /events` (`docker events`): the cluster's events, as the managers' replicas derive them
//! (`shoal_store::changes`, kept by `shoal_raft::journal`), merged with the container events of
//! this node's tasks from its own engine, as Docker's daemon merges its swarm and local
//! events. One JSON message per line; `since` replays what is kept, `until` ends the stream.
//!
//! This module parses, selects and frames; what an event says is decided where it is made.

use super::*;
use futures::stream::{BoxStream, StreamExt};
use shoal_agent::Engine;
use shoal_types::events::{self as ev, Message};
use tokio::sync::{broadcast, mpsc};

/// Lines that wait for a slow client before the sources pause.
const BACKLOG: usize = 256;

/// What a request asks for.
struct Selection {
    filters: Filters,
    since: Option<i64>,
    until: Option<i64>,
}

impl Selection {
    fn parse(raw: Option<&str>) -> HttpResult<Selection> {
        let q = Query::parse(raw)?;
        let filters = match q.get("filters") {
            Some(s) if !s.is_empty() => {
                Filters::parse(s).map_err(|e| HttpError::bad_request(e.to_string()))?
            }
            _ => Filters::new(),
        };
        ev::validate(&filters).map_err(|e| HttpError::bad_request(e.to_string()))?;
        let time = |key: &str| -> HttpResult<Option<i64>> {
            match q.get(key).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => ev::parse_time(v).map(Some).map_err(HttpError::bad_request),
            }
        };
        let (since, until) = (time("since")?, time("until")?);
        if let (Some(s), Some(u)) = (since, until) {
            if u < s {
                return Err(HttpError::bad_request(format!(
                    "`since` time ({}) cannot be after `until` time ({})",
                    q.get("since").unwrap_or_default(),
                    q.get("until").unwrap_or_default()
                )));
            }
        }
        Ok(Selection {
            filters,
            since,
            until,
        })
    }

    /// Docker's replay (moby `daemon/events` `loadBufferedEvents`): nothing unless `since` or
    /// `until` is given; then what is kept from `since` up to `until`.
    fn replay(&self, kept: Vec<Message>) -> Vec<Message> {
        if self.since.is_none() && self.until.is_none() {
            return Vec::new();
        }
        let since = self.since.unwrap_or(0);
        kept.into_iter()
            .filter(|m| m.time_nano >= since && self.until.is_none_or(|u| m.time_nano <= u))
            .filter(|m| ev::matches(&self.filters, m))
            .collect()
    }

    fn passes(&self, m: &Message) -> bool {
        self.until.is_none_or(|u| m.time_nano <= u) && ev::matches(&self.filters, m)
    }
}

/// The engine's time parameter: seconds and nanoseconds.
fn engine_time(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn line(m: &Message) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

pub(super) async fn events(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Response> {
    let sel = Selection::parse(q.as_deref())?;
    let now = now_nanos();
    let only_past = sel.until.is_some_and(|u| u < now);

    // The cluster's side: managers only, as in Docker (a worker has no replica).
    let (kept, live) = match d.role() {
        Role::Manager(m) => {
            let (kept, rx) = m.replica().journal().subscribe();
            (kept, Some(rx))
        }
        _ => (Vec::new(), None),
    };
    let mut past = sel.replay(kept);

    // The engine's side: container events of this node's tasks. Its own replay is read to
    // its end first (`until` now at the latest), so that both replays go out in time order.
    let engine = d
        .node_id()
        .map(|id| (Engine::new(&d.config().engine_socket), id));
    let mut engine_live = None;
    if let Some((engine, id)) = &engine {
        if sel.since.is_some() || sel.until.is_some() {
            let until = sel.until.map_or(now, |u| u.min(now));
            let since = sel.since.map(engine_time).unwrap_or_else(|| "0".into());
            if let Ok(stream) = engine.task_events(id, Some(since), Some(engine_time(until))) {
                let replayed: Vec<Message> =
                    stream.filter_map(|r| async move { r.ok() }).collect().await;
                past.extend(replayed.into_iter().filter(|m| sel.passes(m)));
            }
        }
        if !only_past {
            // From just after what was replayed (or from now), until the requested end.
            let since = engine_time(now.saturating_add(1));
            engine_live = engine
                .task_events(id, Some(since), sel.until.map(engine_time))
                .ok();
        }
    }
    past.sort_by_key(|m| m.time_nano);

    let (tx, rx) = mpsc::channel::<Bytes>(BACKLOG);
    let header: BoxStream<'static, Bytes> =
        futures::stream::iter(past.iter().map(line).collect::<Vec<_>>()).boxed();
    if !only_past {
        tokio::spawn(follow(sel, live, engine_live, tx));
    } else {
        drop(tx);
    }
    let body = header.chain(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (b, rx))
    }));
    let body = axum::body::Body::from_stream(body.map(Ok::<_, std::convert::Infallible>));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// What the next wait brought.
enum Got {
    Event(Box<Message>),
    Nothing,
    ClusterClosed,
    EngineEnded,
    ClientGone,
}

/// Sends the live events of both sources until `until`, or until the client goes away.
async fn follow(
    sel: Selection,
    mut cluster: Option<broadcast::Receiver<Message>>,
    mut engine: Option<BoxStream<'static, Result<Message, shoal_agent::EngineError>>>,
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = sel.until.map(|u| {
        let wait = u.saturating_sub(now_nanos()).max(0);
        tokio::time::Instant::now() + std::time::Duration::from_nanos(wait.unsigned_abs())
    });
    loop {
        let next = async {
            tokio::select! {
                r = async { cluster.as_mut().expect("guarded").recv().await }, if cluster.is_some() => match r {
                    Ok(m) => Got::Event(Box::new(m)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "an events stream fell behind and missed cluster events");
                        Got::Nothing
                    }
                    Err(broadcast::error::RecvError::Closed) => Got::ClusterClosed,
                },
                r = async { engine.as_mut().expect("guarded").next().await }, if engine.is_some() => match r {
                    Some(Ok(m)) => Got::Event(Box::new(m)),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "the engine's event stream ended");
                        Got::EngineEnded
                    }
                    None => Got::EngineEnded,
                },
                _ = tx.closed() => Got::ClientGone,
            }
        };
        let got = match deadline {
            Some(at) => match tokio::time::timeout_at(at, next).await {
                Ok(got) => got,
                Err(_) => return,
            },
            None => next.await,
        };
        match got {
            Got::Event(m) => {
                if sel.passes(&m) && tx.send(line(&m)).await.is_err() {
                    return;
                }
            }
            Got::Nothing => {}
            Got::ClusterClosed => cluster = None,
            Got::EngineEnded => engine = None,
            Got::ClientGone => return,
        }
    }
}
