//! Reading the YAML nodes of a Compose file as typed values, each error naming the key's
//! path (`services.web.deploy.replicas`) and its `file:line:col`. Shared by every section's
//! conversion; knows nothing of what a key means.

use std::collections::BTreeMap;

use crate::yaml::{Node, Value};
use crate::{units, Error};

pub(super) type Entries<'a> = &'a [(Node, Node)];

pub(super) fn entries<'a>(node: &'a Node, what: &str) -> Result<Entries<'a>, Error> {
    match &node.value {
        Value::Map(e) => Ok(e),
        Value::Null => Ok(&[]),
        _ => Err(Error::at(
            &node.pos,
            format!("{what} must be a mapping, not {}", node.kind()),
        )),
    }
}

/// The entries of a mapping whose keys must all be in `known` (or start with `x-`).
pub(super) fn fields<'a>(node: &'a Node, what: &str, known: &[&str]) -> Result<Entries<'a>, Error> {
    let e = entries(node, what)?;
    for (key, _) in e {
        let k = key.as_str().unwrap_or_default();
        if !known.contains(&k) && !k.starts_with("x-") {
            return Err(Error::at(
                &key.pos,
                format!(
                    "unknown key {k:?} in {what} (expected one of: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(e)
}

pub(super) fn field<'a>(e: Entries<'a>, key: &str) -> Option<&'a Node> {
    e.iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

pub(super) fn text(node: &Node, what: &str) -> Result<String, Error> {
    match &node.value {
        Value::Scalar { text, .. } => Ok(text.clone()),
        _ => Err(Error::at(
            &node.pos,
            format!("{what} must be a string, not {}", node.kind()),
        )),
    }
}

pub(super) fn opt_text(e: Entries<'_>, key: &str, what: &str) -> Result<Option<String>, Error> {
    field(e, key)
        .map(|n| text(n, &format!("{what}.{key}")))
        .transpose()
}

pub(super) fn text_or_empty(e: Entries<'_>, key: &str, what: &str) -> Result<String, Error> {
    Ok(opt_text(e, key, what)?.unwrap_or_default())
}

pub(super) fn boolean(node: &Node, what: &str) -> Result<bool, Error> {
    node.as_bool().ok_or_else(|| {
        Error::at(
            &node.pos,
            format!(
                "{what} must be a boolean (true or false), not {}",
                shown(node)
            ),
        )
    })
}

pub(super) fn opt_bool(e: Entries<'_>, key: &str, what: &str) -> Result<Option<bool>, Error> {
    field(e, key)
        .map(|n| boolean(n, &format!("{what}.{key}")))
        .transpose()
}

pub(super) fn shown(node: &Node) -> String {
    match node.as_str() {
        Some(t) => format!("{t:?}"),
        None => node.kind().to_string(),
    }
}

/// An integer as Go's YAML reads it (`0x1f`, `0o17`, and `017` octal).
pub(super) fn integer(node: &Node, what: &str) -> Result<i64, Error> {
    let bad = || {
        Error::at(
            &node.pos,
            format!("{what} must be an integer, not {}", shown(node)),
        )
    };
    let t = node.as_str().ok_or_else(bad)?.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let parsed = if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16)
    } else if let Some(o) = digits.strip_prefix("0o") {
        i64::from_str_radix(o, 8)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse()
    };
    let v = parsed.map_err(|_| bad())?;
    Ok(if neg { -v } else { v })
}

pub(super) fn unsigned(node: &Node, what: &str) -> Result<u64, Error> {
    let v = integer(node, what)?;
    u64::try_from(v)
        .map_err(|_| Error::at(&node.pos, format!("{what} must not be negative, not {v}")))
}

pub(super) fn opt_unsigned(e: Entries<'_>, key: &str, what: &str) -> Result<Option<u64>, Error> {
    field(e, key)
        .map(|n| unsigned(n, &format!("{what}.{key}")))
        .transpose()
}

/// `key` of `e` as an integer, when set.
pub(super) fn opt_integer(e: Entries<'_>, key: &str, what: &str) -> Result<Option<i64>, Error> {
    field(e, key)
        .map(|n| integer(n, &format!("{what}.{key}")))
        .transpose()
}

pub(super) fn float(node: &Node, what: &str) -> Result<f64, Error> {
    node.as_str()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or_else(|| {
            Error::at(
                &node.pos,
                format!("{what} must be a number, not {}", shown(node)),
            )
        })
}

pub(super) fn duration(node: &Node, what: &str) -> Result<i64, Error> {
    let t = text(node, what)?;
    units::parse_duration(&t).map_err(|e| Error::at(&node.pos, format!("{what}: {e}")))
}

pub(super) fn opt_duration(e: Entries<'_>, key: &str, what: &str) -> Result<Option<i64>, Error> {
    field(e, key)
        .map(|n| duration(n, &format!("{what}.{key}")))
        .transpose()
}

pub(super) fn size(node: &Node, what: &str) -> Result<i64, Error> {
    let t = text(node, what)?;
    units::parse_size(&t).map_err(|e| Error::at(&node.pos, format!("{what}: {e}")))
}

/// A list of strings; `single` also accepts one string.
pub(super) fn strings(node: &Node, what: &str, single: bool) -> Result<Vec<String>, Error> {
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Scalar { text, .. } if single => Ok(vec![text.clone()]),
        Value::Seq(items) => items
            .iter()
            .map(|i| text(i, &format!("{what} entries")))
            .collect(),
        _ => Err(Error::at(
            &node.pos,
            format!(
                "{what} must be a list{}, not {}",
                if single { " or a string" } else { "" },
                node.kind()
            ),
        )),
    }
}

/// `key` of `e` as a list of strings (see [`strings`]), when set.
pub(super) fn opt_strings(
    e: Entries<'_>,
    key: &str,
    what: &str,
    single: bool,
) -> Result<Option<Vec<String>>, Error> {
    field(e, key)
        .map(|n| strings(n, &format!("{what}.{key}"), single))
        .transpose()
}

/// A mapping of strings (after the merge's normalisation of lists).
pub(super) fn string_map(node: &Node, what: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (k, v) in entries(node, what)? {
        let key = k.as_str().unwrap_or_default().to_string();
        let value = match &v.value {
            Value::Null => String::new(),
            Value::Scalar { text, .. } => text.clone(),
            _ => {
                return Err(Error::at(
                    &v.pos,
                    format!("{what}.{key} must be a string, not {}", v.kind()),
                ))
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// `key` of `e` as a mapping of strings (see [`string_map`]), when set.
pub(super) fn opt_string_map(
    e: Entries<'_>,
    key: &str,
    what: &str,
) -> Result<Option<BTreeMap<String, String>>, Error> {
    field(e, key)
        .map(|n| string_map(n, &format!("{what}.{key}")))
        .transpose()
}

/// `external: true`, or the deprecated `external: {name: x}`; returns (external, name).
pub(super) fn external(node: Option<&Node>, what: &str) -> Result<(bool, Option<String>), Error> {
    let Some(node) = node else {
        return Ok((false, None));
    };
    if node.as_map().is_some() {
        let e = fields(node, &format!("{what}.external"), &["name"])?;
        return Ok((true, opt_text(e, "name", &format!("{what}.external"))?));
    }
    Ok((boolean(node, &format!("{what}.external"))?, None))
}

/// The cluster name of the external object declared at `key` (a network, volume, config or secret
/// — a `kind`): the deprecated `external.name`, else its `name:`, else its key. Both names
/// set is refused, as docker does.
pub(super) fn external_name(
    kind: &str,
    key: &Node,
    external_name: Option<String>,
    name: Option<String>,
) -> Result<String, Error> {
    let key_name = key.as_str().unwrap_or_default();
    if external_name.is_some() && name.is_some() {
        return Err(Error::at(
            &key.pos,
            format!("{kind} {key_name}: {kind}.external.name and {kind}.name conflict; only use {kind}.name"),
        ));
    }
    Ok(external_name
        .or(name)
        .unwrap_or_else(|| key_name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    #[test]
    fn integers_read_like_go_yaml_with_hex_and_both_octal_forms() {
        for (text, want) in [
            ("10", 10),
            ("-017", -15),
            ("0o17", 15),
            ("0x1f", 31),
            ("+3", 3),
            ("1_000", 1000),
            ("0", 0),
        ] {
            assert_eq!(integer(&node(text), "n").unwrap(), want, "{text}");
        }
        assert_eq!(
            message(integer(&node("ten"), "a.b")),
            "t.yml:1:4: a.b must be an integer, not \"ten\""
        );
        assert_eq!(
            message(integer(&node("[1]"), "a.b")),
            "t.yml:1:4: a.b must be an integer, not a sequence"
        );
        assert_eq!(
            message(unsigned(&node("-1"), "a.b")),
            "t.yml:1:4: a.b must not be negative, not -1"
        );
    }

    #[test]
    fn booleans_take_the_three_yaml_spellings_only() {
        for (text, want) in [("true", true), ("True", true), ("FALSE", false)] {
            assert_eq!(boolean(&node(text), "b").unwrap(), want);
        }
        assert_eq!(
            message(boolean(&node("yes"), "b")),
            "t.yml:1:4: b must be a boolean (true or false), not \"yes\""
        );
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_expected_ones_and_x_keys_pass() {
        let n = node("{a: 1, x-mine: 2}");
        assert_eq!(fields(&n, "s", &["a"]).unwrap().len(), 2);
        assert_eq!(
            message(fields(&node("{a: 1, b: 2}"), "s", &["a", "c"])),
            "t.yml:1:11: unknown key \"b\" in s (expected one of: a, c)"
        );
        assert_eq!(
            message(entries(&node("[a]"), "s")),
            "t.yml:1:4: s must be a mapping, not a sequence"
        );
        assert!(entries(&node("~"), "s").unwrap().is_empty());
    }

    #[test]
    fn a_null_field_counts_as_absent() {
        let n = node("{a: ~, b: x}");
        let e = entries(&n, "s").unwrap();
        assert!(field(e, "a").is_none());
        assert_eq!(opt_text(e, "b", "s").unwrap().as_deref(), Some("x"));
        assert_eq!(text_or_empty(e, "a", "s").unwrap(), "");
    }

    #[test]
    fn string_lists_accept_a_single_string_only_when_asked() {
        assert_eq!(strings(&node("one"), "l", true).unwrap(), ["one"]);
        assert_eq!(strings(&node("[a, b]"), "l", false).unwrap(), ["a", "b"]);
        assert_eq!(
            message(strings(&node("one"), "l", false)),
            "t.yml:1:4: l must be a list, not a scalar"
        );
        assert_eq!(
            message(strings(&node("{a: b}"), "l", true)),
            "t.yml:1:4: l must be a list or a string, not a mapping"
        );
    }

    #[test]
    fn units_errors_carry_the_path_and_position() {
        assert_eq!(duration(&node("1m30s"), "d").unwrap(), 90_000_000_000);
        assert_eq!(
            message(duration(&node("5"), "d")),
            "t.yml:1:4: d: invalid duration \"5\" (expected e.g. 10s, 1m30s, 500ms)"
        );
        assert_eq!(size(&node("1k"), "s").unwrap(), 1024);
        assert_eq!(float(&node("0.5"), "f").unwrap(), 0.5);
    }

    #[test]
    fn external_is_a_boolean_or_the_deprecated_name_mapping() {
        assert_eq!(external(None, "n").unwrap(), (false, None));
        assert_eq!(external(Some(&node("true")), "n").unwrap(), (true, None));
        assert_eq!(
            external(Some(&node("{name: real}")), "n").unwrap(),
            (true, Some("real".to_string()))
        );
        assert_eq!(
            message(external(Some(&node("{id: x}")), "n")),
            "t.yml:1:5: unknown key \"id\" in n.external (expected one of: name)"
        );
    }

    #[test]
    fn an_external_object_is_named_by_external_name_then_name_then_its_key() {
        let key = node("web");
        assert_eq!(
            external_name("network", &key, Some("a".into()), None).unwrap(),
            "a"
        );
        assert_eq!(
            external_name("network", &key, None, Some("b".into())).unwrap(),
            "b"
        );
        assert_eq!(external_name("network", &key, None, None).unwrap(), "web");
        assert_eq!(
            message(external_name("secret", &key, Some("a".into()), Some("b".into()))),
            "t.yml:1:4: secret web: secret.external.name and secret.name conflict; only use secret.name"
        );
    }
}
