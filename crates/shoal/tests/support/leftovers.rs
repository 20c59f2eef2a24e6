//! Clean-up after a test daemon that was killed: its containers and the engine networks its
//! network plugin made. With the daemon gone, the engine would retry its plugin for ~15 s on
//! every call that touches them (removing a container, listing volumes, starting dockerd), and
//! they would pile up over test runs. So a stand-in answers at the plugin's socket while they
//! are removed: it activates as a network and IPAM driver and says yes to every request.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Removes the containers labelled with `node_id` and the networks of plugin `plugin`.
pub fn remove(plugin: &str, node_id: Option<&str>) {
    let socket = PathBuf::from(format!("/run/docker/plugins/{plugin}.sock"));
    let networks = super::engine(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("driver={plugin}"),
    ]);
    let networks: Vec<String> = String::from_utf8_lossy(&networks.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let stand_in = StandIn::start(&socket);
    if let Some(id) = node_id {
        super::remove_containers(&format!("com.docker.swarm.node.id={id}"));
    }
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        let _ = super::engine(&args);
    }
    drop(stand_in);
    let _ = std::fs::remove_file(&socket);
}

struct StandIn {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    fn start(socket: &PathBuf) -> Option<StandIn> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).ok()?;
        listener.set_nonblocking(true).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        std::thread::spawn(move || serve(stream));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Some(StandIn {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers every request of one keep-alive connection.
fn serve(stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = match path.as_str() {
            "/Plugin.Activate" => r#"{"Implements":["NetworkDriver","IpamDriver"]}"#,
            "/NetworkDriver.GetCapabilities" => {
                r#"{"Scope":"global","ConnectivityScope":"global"}"#
            }
            _ => "{}",
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
