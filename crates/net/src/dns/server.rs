//! One network's name server: reads queries from its UDP socket and TCP listener, answers
//! ours from the current [`Names`] and hands the rest to the [`Upstream`].
//!
//! Answers come from memory on the receiving task, with no lock held past taking the
//! current view's `Arc`. Only forwarded queries get their own task, so a slow upstream server
//! holds up nobody else. Every task belongs to the server's handle: dropping it (or
//! [`NameServer::abort`]) stops them all and closes the sockets.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rand::seq::SliceRandom;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

use super::{Error, Names, Upstream, View};

/// Docker's embedded resolver gives its own records this TTL (`respTTL`). Task IPs change
/// faster than that, but container resolvers (glibc, musl) do not cache, and matching Docker
/// keeps applications that do cache behaving as they do on Docker.
pub const TTL: u32 = 600;

/// The largest UDP answer we build, whatever the client's EDNS size: the DNS Flag Day 2020
/// size, which fits an overlay's MTU without fragments. Bigger answers are truncated and
/// the client asks again over TCP.
const MAX_UDP_PAYLOAD: u16 = 1232;
/// Without EDNS a UDP answer must fit in 512 bytes (RFC 1035).
const MIN_UDP_PAYLOAD: u16 = 512;
/// Forwarded queries in flight per server, as Docker's `maxConcurrent`; past it, REFUSED.
const MAX_FORWARDS: usize = 1024;
/// Open TCP connections per server; past it, new ones are closed at once.
const MAX_CONNECTIONS: usize = 256;
/// A TCP connection with no complete query (or whose client reads no answer) for this long
/// is closed (RFC 7766 suggests seconds; miekg/dns, under Docker, waits 8 s).
const TCP_IDLE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

/// A running name server for one network. Dropping it stops the server.
#[derive(Debug)]
pub struct NameServer {
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tasks: Vec<AbortHandle>,
}

/// What every task of one server shares.
struct Shared {
    network: String,
    view: View,
    upstream: Upstream,
    forwards: Arc<Semaphore>,
}

impl NameServer {
    /// Serves network `network_id` on sockets the caller bound (in the network's namespace,
    /// see [`super::bind_in_netns`]), answering from whatever `view` holds at each query.
    /// Must be called from within a tokio runtime, which runs the server.
    pub fn spawn(
        network_id: impl Into<String>,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        view: View,
        upstream: Upstream,
    ) -> Result<Self, Error> {
        let network = network_id.into();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Error::NoRuntime { network });
        };
        let to_tokio = |source: io::Error| Error::Sockets {
            network: network.clone(),
            source,
        };
        let (udp_addr, tcp_addr) = (udp.local_addr(), tcp.local_addr());
        let (udp_addr, tcp_addr) = (udp_addr.map_err(to_tokio)?, tcp_addr.map_err(to_tokio)?);
        // tokio requires nonblocking sockets; the caller may have bound them either way.
        udp.set_nonblocking(true).map_err(to_tokio)?;
        tcp.set_nonblocking(true).map_err(to_tokio)?;
        let _entered = runtime.enter();
        let udp = UdpSocket::from_std(udp).map_err(to_tokio)?;
        let tcp = TcpListener::from_std(tcp).map_err(to_tokio)?;

        let shared = Arc::new(Shared {
            network,
            view,
            upstream,
            forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        });
        let udp_task = runtime.spawn(serve_udp(Arc::new(udp), shared.clone()));
        let tcp_task = runtime.spawn(serve_tcp(tcp, shared));
        Ok(Self {
            udp_addr,
            tcp_addr,
            tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()],
        })
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Stops the server: its tasks, in-flight forwarded queries included, end at their next
    /// await point and the sockets close with them.
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.abort();
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    // Forwarded queries live in this set, so aborting this task drops (aborts) them too.
    let mut forwards = JoinSet::new();
    let mut buf = vec![0; u16::MAX as usize];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buf) => received,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let (len, client) = match received {
            Ok(received) => received,
            Err(error) => {
                // Errors on an unconnected UDP socket are transient (e.g. ENOMEM); a pause
                // keeps a persistent one from spinning a core.
                tracing::debug!(network = %shared.network, %error, "name server could not receive");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let packet = &buf[..len];
        let reply = match handle(&shared, client.ip(), packet, Transport::Udp) {
            Handled::Reply(reply) => reply,
            Handled::Ignore => continue,
            Handled::Forward(query) => match forward_permit(&shared, &query, Transport::Udp) {
                Ok(permit) => {
                    let (socket, shared, packet) =
                        (socket.clone(), shared.clone(), packet.to_vec());
                    forwards.spawn(async move {
                        let reply = forward(&shared, &query, &packet, Transport::Udp).await;
                        drop(permit);
                        send_udp(&socket, &reply, client).await;
                    });
                    continue;
                }
                Err(reply) => reply,
            },
        };
        send_udp(&socket, &reply, client).await;
    }
}

async fn send_udp(socket: &UdpSocket, reply: &[u8], client: SocketAddr) {
    if let Err(error) = socket.send_to(reply, client).await {
        tracing::debug!(%client, %error, "name server could not send an answer");
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and the like: wait for connections to close rather than spin.
                tracing::debug!(network = %shared.network, %error, "name server could not accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!(network = %shared.network, %client, "too many DNS connections; closing a new one");
            continue;
        };
        tasks.spawn(serve_connection(stream, client, shared.clone(), permit));
    }
}

/// Answers the queries of one TCP connection. Queries may be pipelined (RFC 7766): local
/// answers are written at once, forwarded ones whenever the upstream answers.
async fn serve_connection(
    stream: TcpStream,
    client: SocketAddr,
    shared: Arc<Shared>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (replies, mut outbox) = mpsc::channel::<Vec<u8>>(32);
    let read = async move {
        let mut forwards = JoinSet::new();
        while let Ok(Ok(Some(packet))) =
            tokio::time::timeout(TCP_IDLE, read_frame(&mut reader)).await
        {
            while forwards.try_join_next().is_some() {}
            let reply = match handle(&shared, client.ip(), &packet, Transport::Tcp) {
                Handled::Reply(reply) => reply,
                Handled::Ignore => continue,
                Handled::Forward(query) => match forward_permit(&shared, &query, Transport::Tcp) {
                    Ok(permit) => {
                        let (shared, replies) = (shared.clone(), replies.clone());
                        forwards.spawn(async move {
                            let reply = forward(&shared, &query, &packet, Transport::Tcp).await;
                            drop(permit);
                            replies.send(reply).await.ok();
                        });
                        continue;
                    }
                    Err(reply) => reply,
                },
            };
            if replies.send(reply).await.is_err() {
                break;
            }
        }
        // The client may have sent its last query and half-closed: still answer it.
        while forwards.join_next().await.is_some() {}
    };
    let write = async move {
        while let Some(reply) = outbox.recv().await {
            // A client that stops reading must not pin the connection forever.
            let written = tokio::time::timeout(TCP_IDLE, write_frame(&mut writer, &reply)).await;
            if !matches!(written, Ok(Ok(()))) {
                break;
            }
        }
        writer.shutdown().await.ok();
    };
    tokio::join!(read, write);
}

/// Reads one length-prefixed DNS message; `None` at a clean end of stream.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Vec<u8>>> {
    let len = match reader.read_u16().await {
        Ok(len) => len,
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut packet = vec![0; usize::from(len)];
    reader.read_exact(&mut packet).await?;
    Ok(Some(packet))
}

/// Writes one DNS message with its length prefix, in one write so it leaves in one segment.
pub(crate) async fn write_frame(
    writer: &mut (impl AsyncWrite + Unpin),
    packet: &[u8],
) -> io::Result<()> {
    let len = u16::try_from(packet.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "DNS message over 64 KiB"))?;
    let mut frame = Vec::with_capacity(packet.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(packet);
    writer.write_all(&frame).await
}

/// A forwarding slot, or the REFUSED answer Docker gives when too many are in flight.
fn forward_permit(
    shared: &Shared,
    query: &Message,
    transport: Transport,
) -> Result<tokio::sync::OwnedSemaphorePermit, Vec<u8>> {
    shared.forwards.clone().try_acquire_owned().map_err(|_| {
        tracing::debug!(network = %shared.network, "too many forwarded queries in flight; refusing");
        failure(query, ResponseCode::Refused, transport)
    })
}

/// The upstream's answer to `packet`, or SERVFAIL when there is none.
async fn forward(shared: &Shared, query: &Message, packet: &[u8], transport: Transport) -> Vec<u8> {
    let answer = shared
        .upstream
        .forward(transport, packet, query.metadata.id)
        .await;
    answer.unwrap_or_else(|| failure(query, ResponseCode::ServFail, transport))
}

fn failure(query: &Message, rcode: ResponseCode, transport: Transport) -> Vec<u8> {
    encode(response(query, rcode, Vec::new()), transport).unwrap_or_default()
}

/// What to do with one received packet.
#[derive(Debug)]
enum Handled {
    Reply(Vec<u8>),
    /// Not ours: ask the upstream servers (the parsed query, to answer SERVFAIL from).
    Forward(Message),
    Ignore,
}

fn handle(shared: &Shared, client: IpAddr, packet: &[u8], transport: Transport) -> Handled {
    // Take the current view and let go of the channel's lock before doing anything else.
    let names = shared.view.borrow().clone();
    match answer(&names, &shared.network, client, packet, transport) {
        // Nobody to forward to: save a task and answer SERVFAIL right away.
        Handled::Forward(query) if shared.upstream.servers().is_empty() => {
            Handled::Reply(failure(&query, ResponseCode::ServFail, transport))
        }
        handled => handled,
    }
}

/// Answers `packet`, a query from `client` to network `network`'s server, from `names`.
fn answer(
    names: &Names,
    network: &str,
    client: IpAddr,
    packet: &[u8],
    transport: Transport,
) -> Handled {
    let query = match Message::from_vec(packet) {
        Ok(query) => query,
        Err(_) => return malformed(packet),
    };
    if query.metadata.message_type != MessageType::Query {
        // Never answer an answer: two servers could bounce it forever.
        return Handled::Ignore;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(
            response(&query, ResponseCode::NotImp, Vec::new()),
            transport,
        );
    }
    let Some(question) = query.queries.first() else {
        return reply(
            response(&query, ResponseCode::FormErr, Vec::new()),
            transport,
        );
    };
    if question.query_class() != DNSClass::IN {
        return Handled::Forward(query);
    }
    let qname = question.name();
    let answers = match question.query_type() {
        RecordType::A => dotted(qname)
            .and_then(|name| names.lookup(network, client, &name))
            .map(|addrs| {
                let mut addrs = addrs.to_vec();
                addrs.shuffle(&mut rand::thread_rng());
                let a = |ip| Record::from_rdata(qname.clone(), TTL, RData::A(A(ip)));
                addrs.into_iter().map(a).collect()
            }),
        // Ours, but IPv4 only: NOERROR without records, as Docker answers with IPv6 off.
        // MX likewise ("implicit MX", RFC 5321 5.1), as Docker does.
        RecordType::AAAA | RecordType::MX => dotted(qname)
            .and_then(|name| names.lookup(network, client, &name))
            .map(|_| Vec::new()),
        RecordType::PTR => in_addr_arpa(qname)
            .and_then(|ip| names.reverse(network, client, ip))
            .and_then(|host| Name::from_utf8(host).ok())
            .map(|mut host| {
                host.set_fqdn(true);
                vec![Record::from_rdata(
                    qname.clone(),
                    TTL,
                    RData::PTR(PTR(host)),
                )]
            }),
        // SRV, TXT, ...: Docker forwards these too.
        _ => None,
    };
    match answers {
        Some(answers) => reply(response(&query, ResponseCode::NoError, answers), transport),
        None => Handled::Forward(query),
    }
}

/// FORMERR to a packet whose header is a query, silence to anything else.
fn malformed(packet: &[u8]) -> Handled {
    let Ok(header) = Header::read(&mut BinDecoder::new(packet)) else {
        return Handled::Ignore;
    };
    if header.message_type != MessageType::Query {
        return Handled::Ignore;
    }
    let mut formerr = Message::error_msg(header.id, header.op_code, ResponseCode::FormErr);
    formerr.metadata.recursion_desired = header.recursion_desired;
    formerr.metadata.recursion_available = true;
    match formerr.to_vec() {
        Ok(bytes) => Handled::Reply(bytes),
        Err(_) => Handled::Ignore,
    }
}

fn reply(message: Message, transport: Transport) -> Handled {
    match encode(message, transport) {
        Some(bytes) => Handled::Reply(bytes),
        None => Handled::Ignore,
    }
}

/// A reply to `query` echoing its question, flagged like Docker's (recursion available:
/// everything not ours is forwarded), carrying an OPT record if the query did.
fn response(query: &Message, rcode: ResponseCode, answers: Vec<Record>) -> Message {
    let mut message = Message::response(query.metadata.id, query.metadata.op_code);
    message.metadata.recursion_desired = query.metadata.recursion_desired;
    message.metadata.checking_disabled = query.metadata.checking_disabled;
    message.metadata.recursion_available = true;
    message.metadata.response_code = rcode;
    message.queries = query.queries.clone();
    message.answers = answers;
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        message.edns = Some(edns);
    }
    message
}

/// Encodes `message`, dropping answers and setting TC until it fits what the client can
/// take over UDP.
fn encode(mut message: Message, transport: Transport) -> Option<Vec<u8>> {
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => {
            let asked = message
                .edns
                .as_ref()
                .map_or(MIN_UDP_PAYLOAD, Edns::max_payload);
            usize::from(asked.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD))
        }
    };
    let full = message.to_vec().ok()?;
    if full.len() <= limit || message.answers.is_empty() {
        return Some(full);
    }
    // Every answer to one question has the same size: measure it, keep what fits.
    let answers = std::mem::take(&mut message.answers);
    let base = message.to_vec().ok()?.len();
    let per_answer = (full.len() - base).div_ceil(answers.len());
    let fit = limit.saturating_sub(base) / per_answer.max(1);
    message.answers = answers;
    message.answers.truncate(fit);
    message.metadata.truncation = true;
    loop {
        let bytes = message.to_vec().ok()?;
        if bytes.len() <= limit || message.answers.pop().is_none() {
            return Some(bytes);
        }
    }
}

/// A query name as text (`web.front`), or `None` if it cannot be one of ours.
fn dotted(name: &Name) -> Option<String> {
    let mut dotted = String::with_capacity(name.len());
    for label in name.iter() {
        let label = std::str::from_utf8(label).ok()?;
        if label.contains('.') {
            return None;
        }
        if !dotted.is_empty() {
            dotted.push('.');
        }
        dotted.push_str(label);
    }
    Some(dotted)
}

/// The IPv4 address of a `d.c.b.a.in-addr.arpa` name.
fn in_addr_arpa(name: &Name) -> Option<std::net::Ipv4Addr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let [d, c, b, a, in_addr, arpa] = labels[..] else {
        return None;
    };
    if !in_addr.eq_ignore_ascii_case(b"in-addr") || !arpa.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    let octet = |label: &[u8]| -> Option<u8> {
        let text = std::str::from_utf8(label).ok()?;
        // `u8::from_str` takes a sign; an address label is digits only.
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse().ok())?
    };
    Some(std::net::Ipv4Addr::new(
        octet(a)?,
        octet(b)?,
        octet(c)?,
        octet(d)?,
    ))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Instant;

    use super::*;
    use crate::dns::names::{NetworkRecords, ServiceRecord};
    use crate::dns::test_support::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn vip_service_answers_its_virtual_ip() {
        let server = Harness::new(Upstream::none());
        let answer = server.udp("web.", RecordType::A).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_records(&answer), vec![ip("10.0.1.2")]);
        assert_eq!(answer.answers[0].ttl, TTL);
    }

    #[tokio::test]
    async fn dnsrr_service_answers_every_running_task_ip_over_udp_and_tcp() {
        let server = Harness::new(Upstream::none());
        let expected = sorted(["10.0.1.5", "10.0.1.6", "10.0.1.7"]);
        let over_udp = server.udp("api.", RecordType::A).await;
        assert_eq!(sorted_a(&over_udp), expected);
        let over_tcp = server.tcp("api.", RecordType::A).await;
        assert_eq!(sorted_a(&over_tcp), expected);
    }

    #[tokio::test]
    async fn dnsrr_answers_come_in_varying_order() {
        let server = Harness::new(Upstream::none());
        let mut orders = std::collections::HashSet::new();
        for _ in 0..40 {
            orders.insert(a_records(&server.udp("api.", RecordType::A).await));
        }
        assert!(orders.len() > 1, "40 answers, always in the same order");
    }

    #[tokio::test]
    async fn tasks_name_answers_every_task_ip_even_for_a_vip_service() {
        let server = Harness::new(Upstream::none());
        let answer = server.udp("tasks.web.", RecordType::A).await;
        assert_eq!(sorted_a(&answer), sorted(["10.0.1.3", "10.0.1.4"]));
    }

    #[tokio::test]
    async fn alias_resolves_like_the_service_name_including_its_tasks_name() {
        let server = Harness::new(Upstream::none());
        let alias = server.udp("www.", RecordType::A).await;
        assert_eq!(a_records(&alias), vec![ip("10.0.1.2")]);
        let tasks = server.udp("tasks.www.", RecordType::A).await;
        assert_eq!(sorted_a(&tasks), sorted(["10.0.1.3", "10.0.1.4"]));
    }

    #[tokio::test]
    async fn name_case_is_ignored_and_echoed_back() {
        let server = Harness::new(Upstream::none());
        let answer = server.udp("Tasks.WEB.", RecordType::A).await;
        assert_eq!(sorted_a(&answer), sorted(["10.0.1.3", "10.0.1.4"]));
        assert_eq!(answer.answers[0].name.to_ascii(), "Tasks.WEB.");
        // Without a trailing dot a Name is relative; on the wire it is the same name.
        let relative = server.udp("web", RecordType::A).await;
        assert_eq!(a_records(&relative), vec![ip("10.0.1.2")]);
    }

    #[tokio::test]
    async fn client_on_two_networks_sees_both_networks_services_with_their_addresses() {
        let server = Harness::new(Upstream::none());
        let db = server.udp_from(CLIENT_BOTH, "db.", RecordType::A).await;
        assert_eq!(a_records(&db), vec![ip("10.0.2.2")]);
        let web = server.udp_from(CLIENT_BOTH, "web.", RecordType::A).await;
        assert_eq!(
            a_records(&web),
            vec![ip("10.0.1.2")],
            "the arrival network's VIP wins"
        );
        let vault = server.udp_from(CLIENT_BOTH, "vault.", RecordType::A).await;
        assert_eq!(vault.metadata.response_code, ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn service_on_a_network_the_client_is_not_on_is_forwarded_like_any_unknown_name() {
        let upstream = FakeUdpUpstream::answering(ip("192.0.2.1")).await;
        let server = Harness::new(Upstream::new([upstream.addr]));
        let db = server
            .udp_from(CLIENT_FRONT_ONLY, "db.", RecordType::A)
            .await;
        assert_eq!(
            a_records(&db),
            vec![ip("192.0.2.1")],
            "the upstream's answer, not ours"
        );
        assert_eq!(upstream.queries(), 1);
    }

    #[tokio::test]
    async fn aaaa_for_a_known_name_is_noerror_without_answers() {
        let server = Harness::new(Upstream::none());
        let answer = server.udp("web.", RecordType::AAAA).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
        assert_eq!(answer.queries[0].query_type(), RecordType::AAAA);
    }

    #[tokio::test]
    async fn ptr_answers_the_task_name_or_the_service_name_on_the_network() {
        let server = Harness::new(Upstream::none());
        let task = server.udp("3.1.0.10.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(ptr_target(&task), "web.1.t1.front.");
        let vip = server.udp("2.1.0.10.IN-ADDR.ARPA.", RecordType::PTR).await;
        assert_eq!(ptr_target(&vip), "web.front.");
        let not_visible = server.udp("2.2.0.10.in-addr.arpa.", RecordType::PTR).await;
        assert_eq!(not_visible.metadata.response_code, ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn unknown_name_is_forwarded_upstream_with_the_client_query_id() {
        let upstream = FakeUdpUpstream::answering(ip("192.0.2.7")).await;
        let server = Harness::new(Upstream::new([upstream.addr]));
        let mut query = query_message("example.com.", RecordType::A);
        query.metadata.id = 0xbeef;
        let answer = exchange_udp(server.udp_addr(), UNKNOWN_CLIENT, &query).await;
        assert_eq!(answer.metadata.id, 0xbeef);
        assert_eq!(a_records(&answer), vec![ip("192.0.2.7")]);
        assert_eq!(
            upstream.last_query_id(),
            Some(0xbeef),
            "forwarded unchanged"
        );
    }

    #[tokio::test]
    async fn tcp_query_for_an_unknown_name_is_forwarded_over_tcp() {
        let upstream = FakeTcpUpstream::answering(ip("192.0.2.8")).await;
        let server = Harness::new(Upstream::new([upstream.addr]));
        let answer = server.tcp("example.org.", RecordType::A).await;
        assert_eq!(a_records(&answer), vec![ip("192.0.2.8")]);
    }

    #[tokio::test]
    async fn unknown_name_without_upstream_is_servfail() {
        let server = Harness::new(Upstream::none());
        let answer = server.udp("example.com.", RecordType::A).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(answer.queries.len(), 1, "the question is echoed");
    }

    #[tokio::test]
    async fn silent_upstream_is_skipped_for_the_next_and_holds_up_no_other_query() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let answering = FakeUdpUpstream::answering(ip("192.0.2.9")).await;
        let upstream = Upstream::new([silent.local_addr().unwrap(), answering.addr])
            .with_timeout(Duration::from_millis(800));
        let server = Harness::new(upstream);

        let slow = tokio::spawn({
            let addr = server.udp_addr();
            async move {
                exchange_udp(
                    addr,
                    UNKNOWN_CLIENT,
                    &query_message("slow.example.", RecordType::A),
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let local = server.udp("web.", RecordType::A).await;
        assert_eq!(a_records(&local), vec![ip("10.0.1.2")]);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );

        let slow = slow.await.unwrap();
        assert_eq!(
            a_records(&slow),
            vec![ip("192.0.2.9")],
            "the second server answered"
        );
    }

    #[tokio::test]
    async fn garbage_does_not_kill_the_server() {
        let server = Harness::new(Upstream::none());
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for garbage in [&b""[..], b"\x01", b"\xff\xff\xff", &[0xab; 700]] {
            socket.send_to(garbage, server.udp_addr()).await.unwrap();
        }
        // A header saying one question follows, and nothing does: FORMERR, same ID.
        let truncated = [0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        socket.send_to(&truncated, server.udp_addr()).await.unwrap();
        let mut buf = [0; 512];
        let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("FORMERR")
            .unwrap();
        let formerr = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(
            (formerr.metadata.id, formerr.metadata.response_code),
            (0x1234, ResponseCode::FormErr)
        );

        let mut tcp = TcpStream::connect(server.tcp_addr()).await.unwrap();
        tcp.write_all(b"\x00\x05hello\x00\x00").await.unwrap();
        drop(tcp);

        let answer = server.udp("web.", RecordType::A).await;
        assert_eq!(a_records(&answer), vec![ip("10.0.1.2")]);
        let answer = server.tcp("web.", RecordType::A).await;
        assert_eq!(a_records(&answer), vec![ip("10.0.1.2")]);
    }

    #[tokio::test]
    async fn view_swap_is_seen_by_the_next_query() {
        let server = Harness::new(Upstream::none());
        let scaled = NetworkRecords {
            id: "n-front".into(),
            name: "front".into(),
            services: vec![ServiceRecord {
                name: "web".into(),
                vip: Some(ip("10.0.1.200")),
                ..ServiceRecord::default()
            }],
            endpoints: Vec::new(),
        };
        server.view.send_replace(Arc::new(Names::new([scaled])));
        let answer = server.udp("web.", RecordType::A).await;
        assert_eq!(a_records(&answer), vec![ip("10.0.1.200")]);
    }

    #[tokio::test]
    async fn large_answer_is_truncated_over_udp_and_whole_over_tcp() {
        let server = Harness::new(Upstream::none());
        let tasks: Vec<Ipv4Addr> = (1..=200).map(|i| Ipv4Addr::new(10, 0, 5, i)).collect();
        let many = NetworkRecords {
            id: "n-front".into(),
            name: "front".into(),
            services: vec![ServiceRecord {
                name: "many".into(),
                task_ips: tasks.clone(),
                ..ServiceRecord::default()
            }],
            endpoints: Vec::new(),
        };
        server.view.send_replace(Arc::new(Names::new([many])));
        let udp = server.udp("tasks.many.", RecordType::A).await;
        assert!(udp.metadata.truncation);
        assert!(
            !udp.answers.is_empty() && udp.answers.len() < 200,
            "{}",
            udp.answers.len()
        );
        let tcp = server.tcp("tasks.many.", RecordType::A).await;
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 200);
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_server_and_frees_its_port() {
        let server = Harness::new(Upstream::none());
        let addr = server.udp_addr();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::net::UdpSocket::bind(addr).is_err() {
            assert!(Instant::now() < deadline, "port {addr} still held");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn spawn_outside_a_runtime_is_an_error_not_a_panic() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (_tx, view) = crate::dns::view(Names::default());
        let error = NameServer::spawn("n-front", udp, tcp, view, Upstream::none()).unwrap_err();
        assert!(error.to_string().contains("n-front"), "{error}");
    }

    #[test]
    fn in_addr_arpa_names_parse_and_others_do_not() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        assert_eq!(
            in_addr_arpa(&name("4.3.2.1.in-addr.arpa.")),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(in_addr_arpa(&name("3.2.1.in-addr.arpa.")), None);
        let signed = Name::from_labels(["+4", "3", "2", "1", "in-addr", "arpa"].map(str::as_bytes));
        assert_eq!(in_addr_arpa(&signed.unwrap()), None);
        assert_eq!(in_addr_arpa(&name("256.3.2.1.in-addr.arpa.")), None);
        assert_eq!(in_addr_arpa(&name("4.3.2.1.ip6.arpa.")), None);
    }
}
