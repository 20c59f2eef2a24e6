//! Join tokens, Swarm style: `SWMTKN-1-<digest>-<secret>`. The digest part identifies the
//! cluster's root of trust (so a joining node can pin it once mutual TLS lands); the secret
//! part differs between the worker and the manager token and is what admits a node.

use rand::RngCore;
use sha2::{Digest, Sha256};
use shoal_types::swarm::JoinTokens;

fn base36(bytes: &[u8], width: usize) -> String {
    // Big-endian bytes to base 36 by repeated division.
    let mut digits = bytes.to_vec();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem = 0u32;
        for d in digits.iter_mut() {
            let cur = rem * 256 + *d as u32;
            *d = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(std::char::from_digit(rem, 36).unwrap_or('0'));
    }
    while out.len() < width {
        out.push('0');
    }
    out.reverse();
    out.into_iter().collect()
}

/// The digest part for a cluster whose root secret is `root`.
pub fn digest(root: &[u8]) -> String {
    base36(&Sha256::digest(root), 50)
}

fn secret() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    base36(&b, 25)
}

pub fn token(digest: &str) -> String {
    format!("SWMTKN-1-{digest}-{}", secret())
}

pub fn generate(root: &[u8]) -> JoinTokens {
    let d = digest(root);
    JoinTokens {
        worker: token(&d),
        manager: token(&d),
    }
}

/// The digest part of a token, if it is well formed.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("SWMTKN-1-")?;
    let (d, s) = rest.split_once('-')?;
    (d.len() == 50 && s.len() == 25).then_some((d, s))
}

/// Whether a presented token (or any secret) equals the expected one, compared in time that
/// does not depend on where they differ.
pub fn matches(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_swarm_shape_and_differ_by_role() {
        let t = generate(b"root");
        assert!(t.worker.starts_with("SWMTKN-1-"));
        assert_eq!(t.worker.len(), "SWMTKN-1-".len() + 50 + 1 + 25);
        assert_ne!(t.worker, t.manager);
        let (dw, _) = parse(&t.worker).unwrap();
        let (dm, _) = parse(&t.manager).unwrap();
        assert_eq!(dw, dm);
        assert!(parse("SWMTKN-1-abc").is_none());
    }

    #[test]
    fn tokens_match_only_themselves() {
        let t = generate(b"root");
        assert!(matches(&t.worker, &t.worker));
        assert!(!matches(&t.manager, &t.worker));
        assert!(!matches(&t.worker[..t.worker.len() - 1], &t.worker));
        assert!(!matches("", ""));
    }
}
