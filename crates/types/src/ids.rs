//! Object IDs, made like SwarmKit's `identity.NewID`: 128 random bits written in lowercase
//! base 36 and left-padded with `0` to 25 characters. It owns ID shape only; uniqueness inside
//! the cluster is the store's business.

use rand::RngCore;

/// Length of every ID made by [`new_id`].
pub const ID_LEN: usize = 25;

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A fresh random ID, e.g. `"9mnpnzenvg8p8tdbtq4wvbkcz"`.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    base36(u128::from_be_bytes(bytes))
}

/// `n` in lowercase base 36, left-padded with `0` to [`ID_LEN`] characters (2^128 needs 25).
fn base36(mut n: u128) -> String {
    let mut out = [b'0'; ID_LEN];
    let mut i = ID_LEN;
    while n > 0 {
        i -= 1;
        out[i] = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Whether `s` has the shape of an ID made by [`new_id`] (25 characters of `[0-9a-z]`).
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_25_lowercase_base36_characters() {
        for _ in 0..1000 {
            let id = new_id();
            assert_eq!(id.len(), 25, "{id}");
            assert!(is_id(&id), "{id}");
        }
        assert_ne!(new_id(), new_id());
    }

    #[test]
    fn base36_pads_and_covers_the_full_range() {
        assert_eq!(base36(0), "0000000000000000000000000");
        assert_eq!(base36(35), "000000000000000000000000z");
        assert_eq!(base36(u128::MAX), "f5lxx1zz5pnorynqglhzmsp33");
    }
}
