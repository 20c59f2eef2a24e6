//! The node-to-node port reads no more than a route takes: a 300 MB body is refused with 413
//! when it is announced or as soon as it passes the route's limit, a call without credentials
//! is refused before its body is read, and the daemon's memory does not grow by what was sent.

mod support;

use support::Daemon;

const BODY: u64 = 300 << 20;

/// How a streamed body is framed.
#[derive(Clone, Copy)]
enum Framing {
    /// `Content-Length: 300 MB`.
    Announced,
    /// `Transfer-Encoding: chunked`: the server learns the size only by reading.
    Chunked,
}

/// POSTs a 300 MB body of zeros to `path` (never held in memory: one 64 KiB buffer is sent
/// again and again) while reading the answer. Returns the status and how many body bytes had
/// gone out when the server ended the exchange.
fn post_300mb(
    addr: &str,
    path: &str,
    bearer: Option<&str>,
    framing: Framing,
) -> (u16, u64, String) {
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    let length = match framing {
        Framing::Announced => format!("Content-Length: {BODY}\r\n"),
        Framing::Chunked => "Transfer-Encoding: chunked\r\n".to_string(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n{auth}{length}\r\n"
    );
    // One 64 KiB buffer sent again and again, framed as announced.
    let chunk = vec![0u8; 64 << 10];
    let count = (BODY / chunk.len() as u64) as usize;
    let body: Box<dyn Iterator<Item = Vec<u8>> + Send> = match framing {
        Framing::Announced => Box::new(std::iter::repeat_n(chunk, count)),
        Framing::Chunked => {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            Box::new(
                std::iter::repeat_n(framed, count).chain(std::iter::once(b"0\r\n\r\n".to_vec())),
            )
        }
    };
    let (answer, sent) =
        support::tls_exchange(addr, None, head.into_bytes(), body).expect("an answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    (support::status_of(&answer), sent, answer)
}

/// The daemon's peak resident memory so far, in bytes.
fn peak_rss(d: &Daemon) -> u64 {
    let pid = d.pid().expect("the daemon runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

#[test]
fn a_300_mb_body_is_refused_unread_and_the_daemon_does_not_grow_by_it() {
    let m = Daemon::start("limits");
    m.init();
    let before = peak_rss(&m);

    // Anyone may call join: its body is small, and larger ones are refused.
    for framing in [Framing::Announced, Framing::Chunked] {
        let (status, sent, answer) = post_300mb(&m.addr(), "/internal/join", None, framing);
        assert_eq!(status, 413, "{answer}");
        assert!(answer.contains("larger than"), "{answer}");
        assert!(sent < BODY, "the whole body was taken before the answer");
    }
    // Raft's limit is larger, but a call without the managers' credential is refused before
    // its body is read, and one announced larger than the limit before anything else.
    let (status, sent, answer) =
        post_300mb(&m.addr(), "/internal/raft/append", None, Framing::Chunked);
    assert_eq!(status, 403, "{answer}");
    assert!(sent < BODY, "the whole body was taken before the answer");
    let (status, _, answer) = post_300mb(
        &m.addr(),
        "/internal/raft/append",
        Some("forged"),
        Framing::Announced,
    );
    assert_eq!(status, 413, "{answer}");
    // A node's call names the node in its credential: a forged one is refused unread.
    let (status, sent, answer) = post_300mb(
        &m.addr(),
        "/internal/heartbeat",
        Some("somenode:0000"),
        Framing::Chunked,
    );
    assert_eq!(status, 403, "{answer}");
    assert!(sent < BODY, "the whole body was taken before the answer");

    let grown = peak_rss(&m).saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the daemon's peak memory grew by {} MB",
        grown >> 20
    );
    // The manager serves its cluster as before: a node joins, and is listed.
    let w = Daemon::start("limits-w");
    w.join(&m, "worker");
    let nodes = m.docker_ok(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert_eq!(nodes.lines().count(), 2, "{nodes}");
}
