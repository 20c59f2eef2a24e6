//! Forwarding the names that are not ours to the host's name servers, and finding those in
//! the host's `/etc/resolv.conf`.
//!
//! A forwarded query goes out unchanged from a fresh socket per query: a random source port
//! makes a spoofed answer hard to land, and a connected socket ignores every other sender.
//! Those sockets are opened on the tokio runtime's threads, which stay in the daemon's own
//! network namespace (only [`super::bind_in_netns`]'s short-lived thread enters a network's),
//! so upstream servers are reached like the host reaches them, loopback ones included
//! (e.g. systemd-resolved's 127.0.0.53). This module never recurses or caches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{Error, Transport};

/// Like glibc's `MAXNS`: the resolver of the host itself never looks past three servers.
const MAX_SERVERS: usize = 3;

/// The servers queries for other names are forwarded to, tried in order.
#[derive(Clone, Debug)]
pub struct Upstream {
    servers: Arc<[SocketAddr]>,
    timeout: Duration,
}

impl Upstream {
    /// How long one server has to answer before the next is tried. Docker waits 4 s, but a
    /// client's own resolver gives up after 5 s (glibc's default), so 2 s leaves it time to
    /// hear the second server.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    pub fn new(servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        Self {
            servers: servers.into_iter().collect(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// No upstream: every name that is not ours is answered SERVFAIL.
    pub fn none() -> Self {
        Self::new([])
    }

    /// The `nameserver` lines of a resolv.conf file, usually the host's `/etc/resolv.conf`.
    pub fn from_resolv_conf(path: &Path) -> Result<Self, Error> {
        read_resolv_conf(path).map(Self::new)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Sends `query` (with ID `id`) to each server in turn and returns the first usable
    /// answer, verbatim, so its ID is the client's. Like Docker, a SERVFAIL or REFUSED
    /// answer counts as no answer and the next server is asked. `None` when none answered.
    pub(crate) async fn forward(
        &self,
        transport: Transport,
        query: &[u8],
        id: u16,
    ) -> Option<Vec<u8>> {
        for &server in self.servers.iter() {
            let exchange = async {
                match transport {
                    Transport::Udp => exchange_udp(server, query, id).await,
                    Transport::Tcp => exchange_tcp(server, query, id).await,
                }
            };
            match tokio::time::timeout(self.timeout, exchange).await {
                Ok(Ok((_, rcode @ (ResponseCode::ServFail | ResponseCode::Refused)))) => {
                    tracing::debug!(%server, %rcode, "upstream name server failed the query; trying the next");
                }
                Ok(Ok((answer, _))) => return Some(answer),
                Ok(Err(error)) => {
                    tracing::debug!(%server, %error, "upstream name server unreachable; trying the next");
                }
                Err(_) => {
                    tracing::debug!(%server, timeout = ?self.timeout, "upstream name server did not answer in time; trying the next");
                }
            }
        }
        None
    }
}

async fn exchange_udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
) -> std::io::Result<(Vec<u8>, ResponseCode)> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    // Upstream servers may ignore the client's EDNS size and send more than 512 bytes
    // (Docker relays those too); the client sorts it out.
    let mut buf = vec![0; u16::MAX as usize];
    loop {
        let len = socket.recv(&mut buf).await?;
        if let Some(rcode) = answer_to(&buf[..len], id) {
            buf.truncate(len);
            return Ok((buf, rcode));
        }
    }
}

async fn exchange_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
) -> std::io::Result<(Vec<u8>, ResponseCode)> {
    let mut stream = TcpStream::connect(server).await?;
    super::server::write_frame(&mut stream, query).await?;
    let len = stream.read_u16().await?;
    let mut answer = vec![0; usize::from(len)];
    stream.read_exact(&mut answer).await?;
    stream.shutdown().await.ok();
    match answer_to(&answer, id) {
        Some(rcode) => Ok((answer, rcode)),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not a DNS response to the forwarded query",
        )),
    }
}

/// The answer's response code, if `packet` is a response carrying the query's ID.
fn answer_to(packet: &[u8], id: u16) -> Option<ResponseCode> {
    let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
    (header.id == id && header.message_type == MessageType::Response)
        .then_some(header.response_code)
}

/// Reads the upstream servers of a resolv.conf file; see [`parse_resolv_conf`].
pub fn read_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ResolvConf {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_resolv_conf(&text))
}

/// The `nameserver` addresses of a resolv.conf text, on port 53, at most three as the host's
/// own resolver uses. An IPv6 address with a named zone (`fe80::1%eth0`) is skipped: only a
/// numeric zone can be carried in a socket address without asking the kernel.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => nameserver(addr),
                _ => None,
            }
        })
        .take(MAX_SERVERS)
        .collect()
}

fn nameserver(addr: &str) -> Option<SocketAddr> {
    let (ip, zone) = match addr.split_once('%') {
        Some((ip, zone)) => (ip, Some(zone)),
        None => (addr, None),
    };
    let ip: IpAddr = ip.parse().ok()?;
    match (ip, zone) {
        (ip, None) => Some(SocketAddr::new(ip, 53)),
        (IpAddr::V6(ip), Some(zone)) => {
            let scope = zone.parse().ok()?;
            Some(SocketAddrV6::new(ip, 53, 0, scope).into())
        }
        (IpAddr::V4(_), Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_yields_its_nameservers_on_port_53_in_order() {
        let text = "\
# generated by NetworkManager
search example.com
nameserver 10.0.0.2
; a comment
nameserver   2001:db8::53
options ndots:1
";
        let servers = parse_resolv_conf(text);
        let expected: Vec<SocketAddr> = vec![
            "10.0.0.2:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
        ];
        assert_eq!(servers, expected);
    }

    #[test]
    fn resolv_conf_skips_comments_garbage_and_named_zones_and_keeps_three() {
        let text = "\
#nameserver 10.9.9.9
nameserver not-an-ip
nameserver fe80::1%eth0
nameserver fe80::1%2
nameserver 127.0.0.53
nameserver 10.0.0.3
nameserver 10.0.0.4
";
        let servers = parse_resolv_conf(text);
        assert_eq!(servers.len(), 3);
        assert_eq!(
            servers[0],
            SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2).into()
        );
        assert_eq!(servers[1], "127.0.0.53:53".parse::<SocketAddr>().unwrap());
        assert_eq!(servers[2], "10.0.0.3:53".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn missing_resolv_conf_names_the_file() {
        let error = read_resolv_conf(Path::new("/nonexistent/resolv.conf")).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/resolv.conf"),
            "{error}"
        );
    }
}
