//! What the name server's tests share: a view of three networks, a server on loopback that
//! answers from it, a small DNS client and fake upstream servers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::names::{EndpointMode, EndpointRecord, NetworkRecords, ServiceRecord};
use super::{NameServer, Names, Upstream};

/// A client whose container is on `front` and `back`; on loopback so tests can send from it.
pub const CLIENT_BOTH: IpAddr = IpAddr::V4(CLIENT_BOTH_ON_FRONT);
/// A client whose container is on `front` only.
pub const CLIENT_FRONT_ONLY: IpAddr = IpAddr::V4(CLIENT_FRONT_ONLY_ON_FRONT);
/// An address no endpoint has: sees the network the query arrived on.
pub const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

const CLIENT_BOTH_ON_FRONT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CLIENT_BOTH_ON_BACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const CLIENT_FRONT_ONLY_ON_FRONT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ips<const N: usize>(list: [&str; N]) -> Vec<Ipv4Addr> {
    list.into_iter().map(ip).collect()
}

fn vip(name: &str, vip: &str, tasks: Vec<Ipv4Addr>) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        mode: EndpointMode::Vip,
        vip: Some(ip(vip)),
        task_ips: tasks,
        ..ServiceRecord::default()
    }
}

fn dnsrr(name: &str, tasks: Vec<Ipv4Addr>) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        mode: EndpointMode::Dnsrr,
        task_ips: tasks,
        ..ServiceRecord::default()
    }
}

fn endpoint(ip: Ipv4Addr, name: &str, attachments: &[(&str, Ipv4Addr)]) -> EndpointRecord {
    EndpointRecord {
        ip,
        names: vec![name.into()],
        attachments: attachments
            .iter()
            .map(|(id, ip)| (id.to_string(), *ip))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Networks `front` (web with alias www, api in dnsrr, idle without tasks), `back` (db, and
/// web again with another VIP) and `secret` (vault), with clients as the constants say.
pub fn fixture() -> Names {
    let front = NetworkRecords {
        id: "n-front".into(),
        name: "front".into(),
        services: vec![
            ServiceRecord {
                aliases: vec!["www".into()],
                ..vip("web", "10.0.1.2", ips(["10.0.1.3", "10.0.1.4"]))
            },
            dnsrr("api", ips(["10.0.1.5", "10.0.1.6", "10.0.1.7"])),
            dnsrr("idle", Vec::new()),
        ],
        endpoints: vec![
            endpoint(ip("10.0.1.3"), "web.1.t1", &[]),
            endpoint(ip("10.0.1.4"), "web.2.t2", &[]),
            endpoint(
                CLIENT_BOTH_ON_FRONT,
                "client.1.c1",
                &[("n-back", CLIENT_BOTH_ON_BACK)],
            ),
            endpoint(CLIENT_FRONT_ONLY_ON_FRONT, "lonely.1.l1", &[]),
        ],
    };
    let back = NetworkRecords {
        id: "n-back".into(),
        name: "back".into(),
        services: vec![
            vip("db", "10.0.2.2", ips(["10.0.2.3"])),
            vip("web", "10.0.2.9", ips(["10.0.2.10"])),
        ],
        endpoints: vec![endpoint(
            CLIENT_BOTH_ON_BACK,
            "client.1.c1",
            &[("n-front", CLIENT_BOTH_ON_FRONT)],
        )],
    };
    let secret = NetworkRecords {
        id: "n-secret".into(),
        name: "secret".into(),
        services: vec![vip("vault", "10.0.3.2", ips(["10.0.3.3"]))],
        endpoints: Vec::new(),
    };
    Names::new([front, back, secret])
}

/// A name server for network `front` on 127.0.0.1, answering from [`fixture`].
pub struct Harness {
    pub server: NameServer,
    pub view: watch::Sender<Arc<Names>>,
}

impl Harness {
    pub fn new(upstream: Upstream) -> Self {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (view, receiver) = super::view(fixture());
        let server = NameServer::spawn("n-front", udp, tcp, receiver, upstream).unwrap();
        Self { server, view }
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.server.udp_addr()
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.server.tcp_addr()
    }

    pub async fn udp(&self, name: &str, query_type: RecordType) -> Message {
        self.udp_from(UNKNOWN_CLIENT, name, query_type).await
    }

    pub async fn udp_from(&self, client: IpAddr, name: &str, query_type: RecordType) -> Message {
        exchange_udp(self.udp_addr(), client, &query_message(name, query_type)).await
    }

    pub async fn tcp(&self, name: &str, query_type: RecordType) -> Message {
        let (server, query) = (self.tcp_addr(), query_message(name, query_type));
        tokio::task::spawn_blocking(move || blocking_exchange_tcp(server, &query))
            .await
            .unwrap()
    }
}

pub fn query_message(name: &str, query_type: RecordType) -> Message {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), query_type));
    query
}

pub async fn exchange_udp(server: SocketAddr, client: IpAddr, query: &Message) -> Message {
    let query = query.clone();
    tokio::task::spawn_blocking(move || blocking_exchange_udp(server, client, &query))
        .await
        .unwrap()
}

/// Blocking, so a test can also run it on a thread that entered another network namespace.
pub fn blocking_exchange_udp(server: SocketAddr, client: IpAddr, query: &Message) -> Message {
    let socket = std::net::UdpSocket::bind((client, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0; 65535];
    let (len, _) = socket.recv_from(&mut buf).expect("an answer within 5 s");
    let answer = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(
        answer.metadata.id, query.metadata.id,
        "the answer carries the query's ID"
    );
    answer
}

pub fn blocking_exchange_tcp(server: SocketAddr, query: &Message) -> Message {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let packet = query.to_vec().unwrap();
    stream
        .write_all(&(packet.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&packet).unwrap();
    let mut len = [0; 2];
    stream.read_exact(&mut len).unwrap();
    let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer).unwrap();
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(
        answer.metadata.id, query.metadata.id,
        "the answer carries the query's ID"
    );
    answer
}

pub fn a_records(message: &Message) -> Vec<Ipv4Addr> {
    let a = |record: &Record| match record.data {
        RData::A(A(ip)) => Some(ip),
        _ => None,
    };
    message.answers.iter().filter_map(a).collect()
}

pub fn sorted_a(message: &Message) -> Vec<Ipv4Addr> {
    let mut ips = a_records(message);
    ips.sort();
    ips
}

pub fn sorted<const N: usize>(list: [&str; N]) -> Vec<Ipv4Addr> {
    let mut ips = ips(list);
    ips.sort();
    ips
}

pub fn ptr_target(message: &Message) -> String {
    match message.answers.as_slice() {
        [record] => match &record.data {
            RData::PTR(ptr) => ptr.0.to_ascii(),
            other => panic!("not a PTR record: {other:?}"),
        },
        answers => panic!("expected one PTR record, got {answers:?}"),
    }
}

/// The answer an upstream server gives to `query`: one A record, `ip`.
fn upstream_answer(query: &Message, ip: Ipv4Addr) -> Vec<u8> {
    let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
    answer.metadata.recursion_desired = query.metadata.recursion_desired;
    answer.metadata.recursion_available = true;
    answer.queries = query.queries.clone();
    let name = query.queries[0].name().clone();
    answer.answers = vec![Record::from_rdata(name, 60, RData::A(A(ip)))];
    answer.to_vec().unwrap()
}

/// An upstream server on 127.0.0.1 answering every UDP query with one A record.
pub struct FakeUdpUpstream {
    pub addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    last_id: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUdpUpstream {
    pub async fn answering(ip: Ipv4Addr) -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let (queries, last_id) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicU32::new(u32::MAX)),
        );
        let (count, last) = (queries.clone(), last_id.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 65535];
            while let Ok((len, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                last.store(u32::from(query.metadata.id), Ordering::SeqCst);
                socket
                    .send_to(&upstream_answer(&query, ip), from)
                    .await
                    .ok();
            }
        });
        Self {
            addr,
            queries,
            last_id,
            task,
        }
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    pub fn last_query_id(&self) -> Option<u16> {
        u16::try_from(self.last_id.load(Ordering::SeqCst)).ok()
    }
}

impl Drop for FakeUdpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An upstream server on 127.0.0.1 answering every TCP query with one A record.
pub struct FakeTcpUpstream {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTcpUpstream {
    pub async fn answering(ip: Ipv4Addr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let Ok(len) = stream.read_u16().await else {
                    continue;
                };
                let mut packet = vec![0; usize::from(len)];
                if stream.read_exact(&mut packet).await.is_err() {
                    continue;
                }
                let Ok(query) = Message::from_vec(&packet) else {
                    continue;
                };
                let answer = upstream_answer(&query, ip);
                stream.write_u16(answer.len() as u16).await.ok();
                stream.write_all(&answer).await.ok();
            }
        });
        Self { addr, task }
    }
}

impl Drop for FakeTcpUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
