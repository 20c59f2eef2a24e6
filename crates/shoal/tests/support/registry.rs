//! A stand-in registry on 127.0.0.1 (engines allow plain HTTP to loopback registries): it
//! answers every request 401 with a Basic challenge until one carries credentials, then 404
//! ("no such manifest"), and keeps every `Authorization` header it got. Enough to see what
//! credentials an engine's pull presents; it serves no image.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct FakeRegistry {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut auth = None;
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("authorization") {
                                auth = Some(v.trim().to_string());
                            }
                        }
                        line.clear();
                    }
                    let answer = match auth {
                        Some(a) => {
                            record.lock().unwrap().push(a);
                            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                             Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                        }
                        None => {
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\
                             Content-Type: application/json\r\nContent-Length: 2\r\n\
                             Connection: close\r\n\r\n{}"
                        }
                    };
                    let _ = conn.write_all(answer.as_bytes());
                });
            }
        });
        FakeRegistry { port, seen }
    }

    /// Every `Authorization` header received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}
