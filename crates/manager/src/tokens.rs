//! Join tokens, Swarm style: `SWMTKN-1-<digest>-<secret>`. The digest part identifies the
//! cluster's root of trust (so a joining node can pin it once mutual TLS lands); the secret
//! part differs between the worker and the manager token and is what admits a node.
//!
//! The replicated state keeps them sealed with the data key ([`seal`]), so a copied Raft
//! database or snapshot (under autolock: a stolen disk) does not hand its reader a way in.

use crate::keys::{DataKey, KeyError};
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

/// Marks a token sealed with the data key in the replicated state.
const SEALED_PREFIX: &str = "sealed:";

/// The tokens as the replicated state keeps them: each sealed with the data key.
pub fn seal(k: &DataKey, t: &JoinTokens) -> JoinTokens {
    let one = |token: &str| format!("{SEALED_PREFIX}{}", hex::encode(k.seal(token.as_bytes())));
    JoinTokens {
        worker: one(&t.worker),
        manager: one(&t.manager),
    }
}

/// The tokens of the replicated state, opened. Tokens a state of an earlier version kept in
/// clear are taken as they are (the next rotation or root change seals them).
pub fn open(k: &DataKey, t: &JoinTokens) -> Result<JoinTokens, KeyError> {
    let one = |stored: &str| -> Result<String, KeyError> {
        let Some(hex) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(KeyError::Open)?;
        String::from_utf8(k.open(&bytes)?).map_err(|_| KeyError::Open)
    };
    Ok(JoinTokens {
        worker: one(&t.worker)?,
        manager: one(&t.manager)?,
    })
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
    fn sealed_tokens_open_with_the_data_key_only_and_clear_ones_are_taken_as_they_are() {
        let k = DataKey::generate();
        let t = generate(b"root");
        let sealed = seal(&k, &t);
        assert!(!sealed.worker.contains(&t.worker[20..]), "{sealed:?}");
        assert!(!sealed.manager.contains(&t.manager[20..]));
        let opened = open(&k, &sealed).unwrap();
        assert_eq!(
            (opened.worker, opened.manager),
            (t.worker.clone(), t.manager.clone())
        );
        assert!(open(&DataKey::generate(), &sealed).is_err());
        let mut odd = sealed.clone();
        odd.worker.push('a');
        assert!(open(&k, &odd).is_err(), "odd hex");
        let legacy = open(&k, &t).unwrap();
        assert_eq!(legacy.worker, t.worker);
    }

    proptest::proptest! {
        /// Whatever the state holds where a token should be, opening it never panics.
        #[test]
        fn any_stored_token_opens_or_is_refused(s in "sealed:\\PC{0,80}|\\PC{0,80}") {
            let k = DataKey::generate();
            let stored = JoinTokens { worker: s.clone(), manager: s };
            let _ = open(&k, &stored);
        }
    }

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
