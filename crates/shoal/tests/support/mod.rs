//! Test support: real `shoal daemon` processes on loopback, driven by the real `docker` CLI
//! and by raw HTTP on their unix sockets. Shared by every integration test.

#![allow(dead_code)]

pub mod lab;
pub mod leftovers;
#[path = "../../../agent/tests/support/registry.rs"]
pub mod registry;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod services;
// Not every test file uses them.
#[allow(unused_imports)]
pub use services::{manager_with_engine, running_containers, running_containers_on};

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A UDP port for a test cluster's VXLAN traffic that nothing on the machine is bound to
/// now, in the range the docker CLI takes (1024-49151).
pub fn data_path_port() -> u16 {
    use std::net::UdpSocket;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let seed = std::process::id() as u64 ^ nanos;
    let mut p = 20000 + (seed.wrapping_mul(2654435761) % 20000) as u16;
    loop {
        if UdpSocket::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
        p = if p >= 40000 { 20000 } else { p + 1 };
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// One `shoal daemon` process with its own data dir, socket and node-to-node port.
pub struct Daemon {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The Docker Engine socket the daemon describes (none by default).
    engine: Option<PathBuf>,
    /// Where the routing mesh listens for ingress-mode published ports (`127.0.0.1` unless
    /// a test gives each node its own loopback address).
    mesh_ip: String,
    /// The IP of the node-to-node address (`127.0.0.1` unless the node runs in a lab host).
    listen_ip: String,
    /// A command that runs `shoal daemon` elsewhere (`netlab.sh exec hN` for a lab host);
    /// empty: on this machine.
    prefix: Vec<String>,
    /// The node ID once the node is in a swarm, for cleaning up its containers even after
    /// the daemon was killed.
    swarm_node: std::sync::Mutex<Option<String>>,
    /// More `shoal daemon` flags (`--node-heartbeat 10s`).
    extra_args: Vec<String>,
    child: Option<Child>,
}

/// The local Docker Engine, which `.ci/run` (scripts/ensure-docker.sh) starts.
pub const ENGINE_SOCKET: &str = "/var/run/docker.sock";

impl Daemon {
    /// Starts a standalone node with the fast timing profile and waits for its API.
    pub fn start(name: &str) -> Daemon {
        Self::start_with(name, None)
    }

    /// Starts a node that uses the local Docker Engine at `engine`.
    pub fn start_with_engine(name: &str, engine: &str) -> Daemon {
        Self::start_with(name, Some(PathBuf::from(engine)))
    }

    /// Starts a node with the engine whose routing mesh listens on `mesh_ip` (a loopback
    /// address), so that two nodes can both listen on the same published port.
    pub fn start_with_engine_mesh_ip(name: &str, engine: &str, mesh_ip: &str) -> Daemon {
        Self::start_on(name, Some(PathBuf::from(engine)), mesh_ip)
    }

    fn start_with(name: &str, engine: Option<PathBuf>) -> Daemon {
        Self::start_on(name, engine, "127.0.0.1")
    }

    /// Starts a standalone node as [`Daemon::start`] with more `shoal daemon` flags.
    pub fn start_with_flags(name: &str, flags: &[&str]) -> Daemon {
        Self::start_full(name, None, "127.0.0.1", flags)
    }

    fn start_on(name: &str, engine: Option<PathBuf>, mesh_ip: &str) -> Daemon {
        Self::start_full(name, engine, mesh_ip, &[])
    }

    fn start_full(name: &str, engine: Option<PathBuf>, mesh_ip: &str, flags: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shoal-{name}-"))
            .tempdir()
            .expect("cannot create a temp dir");
        let mut d = Daemon {
            name: name.to_string(),
            dir,
            port: free_port(),
            engine,
            mesh_ip: mesh_ip.to_string(),
            listen_ip: "127.0.0.1".to_string(),
            prefix: Vec::new(),
            swarm_node: std::sync::Mutex::new(None),
            extra_args: flags.iter().map(|f| f.to_string()).collect(),
            child: None,
        };
        d.spawn();
        d
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("shoal.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// `IP:PORT`, the node-to-node address (IP `127.0.0.1` unless in a lab host).
    pub fn addr(&self) -> String {
        format!("{}:{}", self.listen_ip, self.port)
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("cannot open the daemon log");
        let mut cmd = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(SHOAL);
                c
            }
            None => Command::new(SHOAL),
        };
        let child = cmd
            .arg("daemon")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-addr")
            .arg(self.addr())
            .arg("--timing")
            .arg("fast")
            .arg("--engine-socket")
            .arg(
                self.engine
                    .clone()
                    .unwrap_or_else(|| self.dir.path().join("no-engine.sock")),
            )
            .arg("--mesh-listen-ip")
            .arg(&self.mesh_ip)
            // Nodes of several test clusters share the machine's engine: each serves its
            // own network plugin there.
            .arg("--network-plugin")
            .arg(format!("shoal-test-{}", self.port))
            .arg("-H")
            .arg(self.host())
            .args(&self.extra_args)
            .env("SHOAL_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("cannot start shoal daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .http("GET", "/_ping", None)
                .map(|r| r.0 == 200)
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{}: the daemon did not answer on {}\n{}",
            self.name,
            self.host(),
            self.log()
        );
    }

    /// The daemon's secrets directory on tmpfs, once its agent chose one.
    pub fn secrets_dir(&self) -> Option<PathBuf> {
        let name = std::fs::read_to_string(self.data_dir().join("secrets-dir")).ok()?;
        let name = name.trim();
        (name.starts_with("shoal-secrets-") && !name.contains('/'))
            .then(|| Path::new("/dev/shm").join(name))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again on the same data dir and address.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .expect("cannot run docker")
    }

    /// Runs the docker CLI with `input` on its standard input (`docker swarm unlock`).
    pub fn docker_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run docker");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("docker did not finish")
    }

    /// Runs docker and returns stdout, failing the test with stderr when it fails.
    ///
    /// `docker node update/promote/demote` read the node and send its version back; a node
    /// object also changes by itself (its status, description or certificate), and then the
    /// managers refuse the write as out of sequence, as Swarm's do. A user runs it again, and
    /// so do the tests: they are about what the command does, not about that race.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let node_write = args.first() == Some(&"node")
            && matches!(args.get(1), Some(&("update" | "promote" | "demote")));
        let mut out = self.docker(args);
        for _ in 0..10 {
            if !node_write
                || out.status.success()
                || !String::from_utf8_lossy(&out.stderr).contains("update out of sequence")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            out = self.docker(args);
        }
        assert!(
            out.status.success(),
            "{}: docker {} failed:\nstdout: {}\nstderr: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs docker, expects it to fail, and returns stderr.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            !out.status.success(),
            "{}: docker {} should have failed but printed:\n{}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs docker (expecting success) and parses what it prints as JSON (`inspect`, `--format json`).
    pub fn docker_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.docker_ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!(
                "{}: docker {} printed no JSON ({e}):\n{out}",
                self.name,
                args.join(" ")
            )
        })
    }

    /// `docker <kind> inspect <name>`: the one object it prints.
    pub fn inspect(&self, kind: &str, name: &str) -> serde_json::Value {
        let v = self.docker_json(&[kind, "inspect", name]);
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("{kind} inspect {name}: not an array: {v}"));
        assert_eq!(
            arr.len(),
            1,
            "{kind} inspect {name} printed {} objects",
            arr.len()
        );
        arr[0].clone()
    }

    /// Runs shoal's own CLI against this daemon.
    pub fn shoal(&self, args: &[&str]) -> Output {
        Command::new(SHOAL)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run shoal")
    }

    /// `shoal` with more environment (`DOCKER_CONFIG`).
    pub fn shoal_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(SHOAL)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run shoal")
    }

    pub fn shoal_ok(&self, args: &[&str]) -> String {
        let out = self.shoal(args);
        assert!(
            out.status.success(),
            "{}: shoal {} failed:\nstdout: {}\nstderr: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One raw HTTP/1.0 request on the unix socket: (status, body).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, String)> {
        raw_http(&self.socket(), method, path, body)
    }

    /// The node ID, from `GET /info`.
    pub fn node_id(&self) -> String {
        self.docker_ok(&["info", "--format", "{{.Swarm.NodeID}}"])
            .trim()
            .to_string()
    }

    /// `docker swarm init` on this node, with a data path (VXLAN) port of its own, so that
    /// test clusters on one machine do not share VXLAN sockets.
    pub fn init(&self) -> String {
        self.init_with(&[])
    }

    /// `docker swarm init` as [`Daemon::init`] with more flags (`--autolock`, …); what it printed.
    pub fn init_with(&self, extra: &[&str]) -> String {
        let port = data_path_port().to_string();
        let addr = self.addr();
        let mut args = vec![
            "swarm",
            "init",
            "--data-path-port",
            &port,
            "--advertise-addr",
            &addr,
            "--listen-addr",
            &addr,
        ];
        args.extend_from_slice(extra);
        let out = self.docker_ok(&args);
        self.remember_node();
        out
    }

    fn remember_node(&self) {
        if self.engine.is_some() {
            let id = self.node_id();
            *self.swarm_node.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
        }
    }

    /// Joins the cluster of `manager` with the given role's token.
    pub fn join(&self, manager: &Daemon, role: &str) {
        let token = manager.docker_ok(&["swarm", "join-token", "-q", role]);
        self.docker_ok(&[
            "swarm",
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            &self.addr(),
            "--listen-addr",
            &self.addr(),
            &manager.addr(),
        ]);
        self.remember_node();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The containers this node's agent started go with it.
        let node_id = self
            .swarm_node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.kill9();
        // Its containers and the engine networks of its network plugin (a lab host's engine
        // goes with the lab).
        let plugin = format!("shoal-test-{}", self.port);
        if self.prefix.is_empty() {
            if self.engine.is_some() {
                leftovers::remove(&plugin, node_id.as_deref());
            } else {
                let _ = std::fs::remove_file(format!("/run/docker/plugins/{plugin}.sock"));
            }
        }
        // The daemon's secrets directory on tmpfs, and the tmpfs it mounts there while tasks
        // have secrets (a killed daemon leaves it mounted).
        if let Some(dir) = self.secrets_dir() {
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(&dir)
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs the docker CLI against the local Docker Engine itself.
pub fn engine(args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{ENGINE_SOCKET}"))
        .args(args)
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run docker")
}

/// Like [`engine`], failing the test when the command fails.
pub fn engine_ok(args: &[&str]) -> String {
    let out = engine(args);
    assert!(
        out.status.success(),
        "docker -H {ENGINE_SOCKET} {args:?} failed (the tests need a Docker Engine; scripts/ensure-docker.sh starts one): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Force-removes the engine's containers that carry `label`.
pub fn remove_containers(label: &str) {
    let ids = engine(&["ps", "-aq", "--filter", &format!("label={label}")]);
    let ids = String::from_utf8_lossy(&ids.stdout);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let _ = engine(&args);
    }
}

/// The test image: `FROM scratch` with a static busybox (Debian's busybox-static), tagged
/// `shoal-test/busybox:latest`, and the example stack's images; `scripts/test-images.sh`
/// builds what the engine lacks (once per test process).
pub const TEST_IMAGE: &str = "shoal-test/busybox:latest";

pub fn test_image() -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/test-images.sh"
        ))
        .env_remove("DOCKER_HOST")
        .output()
        .expect("cannot run scripts/test-images.sh");
        assert!(
            out.status.success(),
            "scripts/test-images.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    TEST_IMAGE
}

pub fn raw_http(
    sock: &Path,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, String)> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or(b"");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: shoal\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    // A server may answer (413) and close before a large body is sent: write the body from
    // another thread while this one reads the answer, and take a reset that comes after the
    // answer as its end.
    let mut w = s.try_clone()?;
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !buf.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A client certificate for raw calls to node ports: a node's own (from its `node.json`) or
/// one made for a test.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Daemon {
    /// This node's certificate and key, as it keeps them (a manager's key opened with its
    /// data key, which opens without autolock).
    pub fn client_cert(&self) -> ClientCert {
        let files = shoal_manager::identity::Files::new(&self.data_dir());
        let _ = files.load_keys();
        let identity = files
            .load_identity()
            .expect("node.json")
            .expect("an identity");
        let cert = identity.cert.expect("a certificate");
        assert!(!cert.key_pem.is_empty(), "the node's key does not open");
        ClientCert {
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
        }
    }
}

/// A new private key and a CSR for it (PEM), as a joining node makes them.
pub fn new_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    (key.serialize_pem(), csr)
}

/// Accepts any server certificate: these clients test what the node port lets in, not whom
/// they talk to.
#[derive(Debug)]
struct AnyServer(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls_pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_client(cert: Option<&ClientCert>) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyServer(provider)));
    let config = match cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![
                    rustls_pki_types::CertificateDer::from_pem_slice(c.cert_pem.as_bytes())
                        .unwrap(),
                ],
                rustls_pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    std::sync::Arc::new(config)
}

/// One exchange with a node port over TLS, presenting `cert` if given: sends `head`, then
/// `body` chunk by chunk from another task while the answer is read (a server may answer and
/// close before a large body is sent), until the server ends the connection or the answer
/// looks whole. Returns the answer and how many body bytes went out; an error when the TLS
/// handshake or the connection failed before any answer.
pub fn tls_exchange(
    addr: &str,
    cert: Option<&ClientCert>,
    head: Vec<u8>,
    body: Box<dyn Iterator<Item = Vec<u8>> + Send>,
) -> Result<(Vec<u8>, u64), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = tls_client(cert);
    let addr = addr.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = rustls_pki_types::ServerName::try_from("swarm-manager").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let (mut r, mut w) = tokio::io::split(tls);
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        let writer = tokio::spawn(async move {
            if w.write_all(&head).await.is_err() {
                return;
            }
            for chunk in body {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
                counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            let _ = w.flush().await;
        });
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let read = async {
            loop {
                match r.read(&mut buf).await {
                    Ok(0) => break Ok(()),
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                    Err(e) if answer.is_empty() => break Err(format!("read: {e}")),
                    Err(_) => break Ok(()),
                }
                if looks_whole(&answer) {
                    break Ok(());
                }
            }
        };
        let read = tokio::time::timeout(Duration::from_secs(60), read)
            .await
            .map_err(|_| "no answer within 60 s".to_string())?;
        writer.abort();
        let _ = writer.await;
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        read.map(|()| (answer, sent))
    })
}

/// An HTTP answer whose head and (announced) body have arrived.
fn looks_whole(answer: &[u8]) -> bool {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) => answer.len() >= end + 4 + n,
        None => head.starts_with("http/1.1 101"),
    }
}

/// The status of an HTTP answer (0 when there is none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// One POST to a node-to-node address (`IP:PORT`) over TLS, presenting `cert` if given, with
/// an optional bearer credential: (status, whole answer with its head). A refused handshake
/// is status 0 with the error as the answer.
pub fn tls_post(
    addr: &str,
    path: &str,
    cert: Option<&ClientCert>,
    bearer: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    match tls_exchange(addr, cert, head.into_bytes(), Box::new(std::iter::empty())) {
        Ok((answer, _)) => {
            let answer = String::from_utf8_lossy(&answer).into_owned();
            (status_of(&answer), answer)
        }
        Err(e) => (0, e),
    }
}

/// One raw POST to a node port without TLS and without a client certificate: (status, the
/// whole answer). `tcp_post` of old; the node port speaks only TLS, so this gets no HTTP
/// answer.
pub fn plain_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(req.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    (status_of(&out), out)
}

/// Without a certificate: what a node that joins (or a stranger) may send.
pub fn tcp_post(addr: &str, path: &str, bearer: Option<&str>, body: &str) -> (u16, String) {
    tls_post(addr, path, None, bearer, body)
}

/// `text` with every run of whitespace made one space, for matching aligned CLI tables and
/// `--pretty` output without depending on column widths.
pub fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a command printed on stdout, as text.
pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed on stderr, as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines of `text` that contain `needle`, whitespace squashed.
pub fn rows_with(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(squash)
        .collect()
}

/// Polls `f` until it returns Some, or panics after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Three managers on loopback, joined and all reachable.
pub fn three_managers() -> Vec<Daemon> {
    let a = Daemon::start("m1");
    a.init();
    let b = Daemon::start("m2");
    b.join(&a, "manager");
    let c = Daemon::start("m3");
    c.join(&a, "manager");
    let nodes = vec![a, b, c];
    eventually(Duration::from_secs(20), "three reachable managers", || {
        let out = nodes[0].docker(&["node", "ls", "--format", "{{.ManagerStatus}}"]);
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        let ok = s
            .lines()
            .filter(|l| *l == "Leader" || *l == "Reachable")
            .count()
            == 3;
        ok.then_some(())
    });
    nodes
}

/// Which of `nodes` (alive ones) is the leader now, by asking them.
pub fn leader_index(nodes: &[Daemon], alive: &[bool]) -> Option<usize> {
    for (i, n) in nodes.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        let (status, body) = n.http("GET", "/nodes", None).ok()?;
        if status != 200 {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let leader_id = v.as_array()?.iter().find_map(|n| {
            (n["ManagerStatus"]["Leader"] == serde_json::Value::Bool(true))
                .then(|| n["ID"].as_str().unwrap_or_default().to_string())
        })?;
        for (j, m) in nodes.iter().enumerate() {
            if !alive[j] {
                continue;
            }
            let Ok((_, b)) = m.http("GET", "/info", None) else {
                continue;
            };
            let Ok(info) = serde_json::from_str::<serde_json::Value>(&b) else {
                continue;
            };
            if info["Swarm"]["NodeID"].as_str() == Some(leader_id.as_str()) {
                return Some(j);
            }
        }
    }
    None
}

/// Every regular file below `dir` (links and other special files are not followed or listed):
/// for searching a data dir for what must not be on disk.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}
