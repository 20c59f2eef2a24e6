//! The service name server: one per overlay network per node, listening on port 53 at an
//! address of that network inside the network's namespace. It answers containers' queries
//! for service names, their aliases, `tasks.NAME` and task container names from the
//! cluster's view held in memory, and forwards every other name to the host's upstream
//! servers, as Docker Swarm's embedded resolver does (moby libnetwork `resolver.go`,
//! `Sandbox.ResolveName`); where this module departs from Docker, the item says so.
//!
//! This module owns the lookup tables ([`Names`]), the wire handling ([`NameServer`]) and the
//! forwarding ([`Upstream`]). It does not learn names from the managers, create namespaces or
//! decide which networks get a server: the daemon does, and hands it sockets and a [`View`].
//!
//! - `names`: records → lookup tables, and which names a client may see.
//! - `server`: the UDP and TCP loops and the answers.
//! - `upstream`: forwarding, and the host's resolv.conf.
//! - `netns`: binding the sockets inside a network's namespace.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

mod names;
mod netns;
mod server;
mod upstream;

#[cfg(test)]
mod test_support;

pub use names::{EndpointMode, EndpointRecord, Names, NetworkRecords, ServiceRecord};
pub use netns::bind_in_netns;
pub(crate) use server::Transport;
pub use server::{NameServer, TTL};
pub use upstream::{parse_resolv_conf, read_resolv_conf, Upstream};

/// The current view, as each name server reads it: a watch channel rather than an
/// `RwLock`, because the daemon swaps the whole view with one `send_replace` that every
/// server sees, and the guard `borrow()` returns is not `Send`, so no task can hold it
/// across an `.await` by mistake — a query only clones the `Arc` out of it.
pub type View = watch::Receiver<Arc<Names>>;

/// A channel holding `names`: keep the sender to swap views, clone the receiver per server.
pub fn view(names: Names) -> (watch::Sender<Arc<Names>>, View) {
    watch::channel(Arc::new(names))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network namespace {path}: cannot open it ({source}); was the network removed?")]
    OpenNetns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network namespace {path}: cannot enter it ({source}); the daemon needs CAP_SYS_ADMIN and a network namespace file")]
    EnterNetns {
        path: PathBuf,
        source: nix::errno::Errno,
    },
    #[error("network namespace {path}: cannot bind the name server's {proto} socket on {addr} ({source}); is another process on that port?")]
    Bind {
        path: PathBuf,
        proto: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("network namespace {path}: the thread binding the name server's sockets there failed{}", source.as_ref().map(|e| format!(" to start ({e})")).unwrap_or_default())]
    NetnsThread {
        path: PathBuf,
        source: Option<std::io::Error>,
    },
    #[error("name server for network `{network}`: started outside a tokio runtime; spawn it from within one")]
    NoRuntime { network: String },
    #[error("name server for network `{network}`: cannot use its sockets ({source})")]
    Sockets {
        network: String,
        source: std::io::Error,
    },
    #[error("cannot read upstream name servers from {path}: {source}")]
    ResolvConf {
        path: PathBuf,
        source: std::io::Error,
    },
}
