//! Mutual TLS between nodes: the rustls configurations a node uses as client and as server,
//! built from its certificate, and what a peer's certificate says about it.
//!
//! This module owns building those configurations, checking a peer's chain against the
//! cluster's root CA (or, while joining, against the CA digest the join token pins) and
//! reading the node ID (CN), role (OU) and cluster ID (O) from a certificate, as Swarm puts
//! them there. It does not issue certificates (the manager's `ca` does) and does not decide
//! what a peer may call (the manager's `Daemon::authorize` does).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use rustls::{ClientConfig, ServerConfig};

/// The OU of a manager's certificate.
pub const MANAGER_OU: &str = "swarm-manager";
/// The OU of a worker's certificate.
pub const WORKER_OU: &str = "swarm-worker";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM text of this node's certificate files does not hold what it should.
    #[error("this node's {what} is unreadable: {msg}")]
    Pem { what: &'static str, msg: String },
    #[error("cannot build the node's TLS configuration: {0}")]
    Config(String),
}

/// A node's own certificate, its private key (made on the node, never sent) and the
/// cluster's root CA certificate, all PEM.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeCert(..)")
    }
}

/// The role a certificate's OU names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    Manager,
    Worker,
}

/// What a peer's certificate (checked against the cluster's CA) says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub node_id: String,
    pub role: PeerRole,
    pub cluster_id: String,
}

/// The provider every configuration uses (ring: nothing to build beyond Rust and C).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The first certificate of a PEM text, DER.
pub fn cert_der(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "certificate",
        msg: e.to_string(),
    })
}

/// Every certificate of a PEM text, DER, in order: a node's certificate and what it presents
/// after it (the intermediate a root rotation adds).
pub fn cert_chain(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "certificate",
            msg: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certificate",
            msg: "no certificate in it".into(),
        });
    }
    Ok(chain)
}

/// Node ID, role and cluster ID from a certificate's subject; `None` when it has no CN, an
/// OU that names no role, or no O (or is no certificate at all).
pub fn peer_identity(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let node_id = first(&mut subject.iter_common_name())?;
    let role = match first(&mut subject.iter_organizational_unit())?.as_str() {
        MANAGER_OU => PeerRole::Manager,
        WORKER_OU => PeerRole::Worker,
        _ => return None,
    };
    let cluster_id = first(&mut subject.iter_organization())?;
    Some(PeerIdentity {
        node_id,
        role,
        cluster_id,
    })
}

/// The configurations of a node that holds its certificate.
pub struct TlsConfigs {
    pub client: Arc<ClientConfig>,
    pub server: Arc<ServerConfig>,
}

/// Client and server configurations from a node's certificate: both present it (with what
/// follows it in `cert_pem`, and the root, after it), both take only peers whose chain ends at
/// the cluster's root. During a root rotation `cert_pem` holds, after a certificate the new
/// root issued, the new root cross-signed by the current one: peers that trust only the
/// current root take it through that intermediate, peers that trust the new root directly. The server
/// also lets a client without a certificate finish the handshake, for the join route only:
/// every other route refuses a call without a peer certificate.
pub fn configs(cert: &NodeCert) -> Result<TlsConfigs, TlsError> {
    let provider = provider();
    let ca = cert_der(&cert.ca_pem)?;
    let mut chain = cert_chain(&cert.cert_pem)?;
    chain.push(ca.clone());
    let key =
        PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| TlsError::Pem {
            what: "private key",
            msg: e.to_string(),
        })?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| TlsError::Config(format!("the root CA: {e}")))?;
    let roots = Arc::new(roots);
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let server_verifier =
        WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ClusterServerVerifier {
            inner: server_verifier,
        }))
        .with_client_auth_cert(chain.clone(), key.clone_key())
        .map_err(config)?;
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)
        .map_err(config)?;
    Ok(TlsConfigs {
        client: Arc::new(client),
        server: Arc::new(server),
    })
}

/// Says whether a DER certificate is the root CA a join token pins.
pub type CaPin = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// The client configuration of a node that joins: it has no certificate yet, and trusts a
/// manager only if the chain the manager presents holds a CA certificate that `pin` accepts
/// (the digest in the join token) and the manager's certificate was issued by it.
pub fn join_client(pin: CaPin) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier { pin, provider }))
        .with_no_client_auth();
    Ok(Arc::new(client))
}

/// The names a node certificate is valid for (besides its node ID): its role.
fn role_names() -> Vec<ServerName<'static>> {
    [MANAGER_OU, WORKER_OU]
        .into_iter()
        .filter_map(|n| ServerName::try_from(n).ok())
        .collect()
}

/// Checks a node's certificate chain against the cluster's root. Nodes are reached by
/// address and their certificates name their role, not an address: the chain and the role
/// name are checked here, the node's identity by the routes that care (`authorize`).
#[derive(Debug)]
struct ClusterServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

fn verify_as_node(
    inner: &WebPkiServerVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    ocsp: &[u8],
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let mut last = None;
    for name in role_names() {
        match inner.verify_server_cert(end_entity, intermediates, &name, ocsp, now) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(rustls::Error::General("no role name".into())))
}

impl ServerCertVerifier for ClusterServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verify_as_node(&self.inner, end_entity, intermediates, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a joining node trusts: the CA certificate in the manager's chain whose digest the
/// join token pins, and only that.
struct PinnedCaVerifier {
    pin: CaPin,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for PinnedCaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinnedCaVerifier")
    }
}

/// The message a joining node gets when the manager's CA is not the one its token names.
pub const CA_MISMATCH: &str =
    "the manager's root CA does not match the digest in the join token (wrong token, or not this swarm's manager)";

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| (self.pin)(c.as_ref()))
            .ok_or_else(|| rustls::Error::General(CA_MISMATCH.into()))?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned root CA: {e}")))?;
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verify_as_node(&inner, end_entity, intermediates, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
