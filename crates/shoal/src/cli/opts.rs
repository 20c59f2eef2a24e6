//! Parsers for the values of command-line flags, with the docker CLI's syntax and defaults:
//! durations (`10s`), sizes (`100M`), CPUs (`0.5`), `--publish`, `--secret`/`--config`
//! references and `K=V` lists. Pure functions; the commands decide what to do with the results.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Go's `time.ParseDuration` (as docker's duration flags use it), in nanoseconds. Negative
/// durations are refused.
pub fn parse_duration(s: &str) -> Result<i64> {
    let original = s;
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    anyhow::ensure!(
        !s.starts_with('-'),
        "duration cannot be negative: {original:?}"
    );
    anyhow::ensure!(!s.is_empty(), "invalid duration {original:?}");
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .with_context(|| format!("invalid duration {original:?}: missing unit"))?;
        anyhow::ensure!(number_len > 0, "invalid duration {original:?}");
        let number: f64 = rest[..number_len]
            .parse()
            .with_context(|| format!("invalid duration {original:?}"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => bail!(
                "invalid duration {original:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)"
            ),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    anyhow::ensure!(
        total < i64::MAX as f64,
        "invalid duration {original:?}: too large"
    );
    Ok(total.round() as i64)
}

/// go-units `RAMInBytes`: a number with an optional binary suffix (`b`, `k`, `m`, `g`, `t`,
/// `p`, optionally followed by `b`/`ib`), e.g. `100M` → 104857600.
pub fn parse_memory(s: &str) -> Result<i64> {
    let original = s;
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("invalid size: {original:?}"))?;
    let suffix = suffix.trim_start().to_lowercase();
    let unit = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => bail!("invalid size: {original:?}"),
    };
    Ok((number * multiplier) as i64)
}

/// Docker's `NanoCPUs`: a decimal number of CPUs, exact to the nanosecond (`0.5` → 500000000).
pub fn parse_nano_cpus(s: &str) -> Result<i64> {
    let original = s;
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let valid = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    anyhow::ensure!(
        valid(whole) && valid(frac) && !(whole.is_empty() && frac.is_empty()),
        "invalid argument {original:?} for CPUs: not a number"
    );
    let frac = frac.trim_end_matches('0');
    anyhow::ensure!(
        frac.len() <= 9,
        "invalid argument {original:?} for CPUs: value is too precise"
    );
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().context("CPU count too large")?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse()?
    };
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .with_context(|| format!("invalid argument {original:?} for CPUs: too large"))
}

/// One `--publish` value, in the short (`[PUBLISHED:]TARGET[/PROTO]`, ranges allowed) or long
/// (`published=8080,target=80,protocol=udp,mode=host`) syntax, as swarm `PortConfig`s.
pub fn parse_publish(s: &str) -> Result<Vec<Value>> {
    if s.contains('=') {
        return parse_publish_long(s).map(|p| vec![p]);
    }
    let (spec, proto) = match s.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_lowercase()),
        None => (s, "tcp".to_string()),
    };
    anyhow::ensure!(
        matches!(proto.as_str(), "tcp" | "udp" | "sctp"),
        "invalid proto: {proto}"
    );
    let parts: Vec<&str> = spec.split(':').collect();
    let (published, target) = match parts.as_slice() {
        [target] => (None, *target),
        [published, target] => (Some(*published), *target),
        [_ip, _, _] => bail!("hostip is not supported"),
        _ => bail!("invalid port format for --publish: {s}"),
    };
    let (t_start, t_end) =
        parse_port_range(target).with_context(|| format!("invalid containerPort: {target}"))?;
    let ports = match published.filter(|p| !p.is_empty()) {
        None => (t_start..=t_end)
            .map(|t| port_config(&proto, t, None, "ingress"))
            .collect(),
        Some(published) => {
            let (p_start, p_end) = parse_port_range(published)
                .with_context(|| format!("invalid hostPort: {published}"))?;
            let targets = t_end - t_start + 1;
            let publisheds = p_end - p_start + 1;
            if targets == publisheds {
                (0..targets)
                    .map(|i| port_config(&proto, t_start + i, Some(p_start + i), "ingress"))
                    .collect()
            } else if targets == 1 {
                // Docker maps a range of published ports onto one target port.
                (p_start..=p_end)
                    .map(|p| port_config(&proto, t_start, Some(p), "ingress"))
                    .collect()
            } else {
                bail!("invalid ranges specified for container and host Ports: {target} and {published}")
            }
        }
    };
    Ok(ports)
}

fn parse_publish_long(s: &str) -> Result<Value> {
    let mut protocol = "tcp".to_string();
    let mut mode = "ingress".to_string();
    let mut target = None;
    let mut published = None;
    for field in s.split(',') {
        let (key, value) = field
            .split_once('=')
            .with_context(|| format!("invalid field {field}"))?;
        let value = value.to_lowercase();
        match key.to_lowercase().as_str() {
            "protocol" => {
                anyhow::ensure!(
                    matches!(value.as_str(), "tcp" | "udp" | "sctp"),
                    "invalid protocol value {value}"
                );
                protocol = value;
            }
            "mode" => {
                anyhow::ensure!(
                    matches!(value.as_str(), "ingress" | "host"),
                    "invalid publish mode value {value}"
                );
                mode = value;
            }
            "target" => target = Some(parse_port(&value)?),
            "published" => published = Some(parse_port(&value)?),
            other => bail!("invalid field key {other}"),
        }
    }
    let target = target
        .filter(|t| *t != 0)
        .context("missing mandatory field \"target\"")?;
    Ok(port_config(&protocol, target, published, &mode))
}

fn port_config(protocol: &str, target: u16, published: Option<u16>, mode: &str) -> Value {
    let mut port = json!({"Protocol": protocol, "TargetPort": target, "PublishMode": mode});
    if let Some(published) = published.filter(|p| *p != 0) {
        port["PublishedPort"] = json!(published);
    }
    port
}

fn parse_port(s: &str) -> Result<u16> {
    s.trim()
        .parse::<u16>()
        .with_context(|| format!("invalid port {s:?}"))
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    match s.split_once('-') {
        Some((start, end)) => {
            let (start, end) = (parse_port(start)?, parse_port(end)?);
            anyhow::ensure!(start <= end, "invalid port range {s:?}");
            Ok((start, end))
        }
        None => {
            let port = parse_port(s)?;
            Ok((port, port))
        }
    }
}

/// Which kind of file reference a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Config,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
}

/// A `--secret`/`--config` reference: `NAME`, or `source=NAME,target=T,uid=U,gid=G,mode=M`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReference {
    pub source: String,
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

impl FileReference {
    pub fn parse(s: &str) -> Result<Self> {
        let mut reference = Self {
            source: String::new(),
            target: String::new(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        };
        if !s.contains('=') && !s.contains(',') {
            reference.source = s.to_string();
            reference.target = s.to_string();
            return Ok(reference);
        }
        for field in s.split(',') {
            let (key, value) = field
                .split_once('=')
                .with_context(|| format!("invalid field '{field}' must be a key=value pair"))?;
            match key.to_lowercase().as_str() {
                "source" | "src" => reference.source = value.to_string(),
                "target" => reference.target = value.to_string(),
                "uid" => reference.uid = value.to_string(),
                "gid" => reference.gid = value.to_string(),
                "mode" => {
                    reference.mode = parse_mode(value)
                        .with_context(|| format!("invalid mode specified: {value:?}"))?
                }
                other => bail!("invalid field in reference: {other}"),
            }
        }
        anyhow::ensure!(!reference.source.is_empty(), "source is required");
        if reference.target.is_empty() {
            reference.target = reference.source.clone();
        }
        Ok(reference)
    }

    /// The `File` part of a swarm secret or config reference.
    pub fn file_json(&self) -> Value {
        json!({"Name": self.target, "UID": self.uid, "GID": self.gid, "Mode": self.mode})
    }
}

/// Go's `strconv.ParseUint(s, 0, 32)`: `0444` is octal, `0x124` hex, `292` decimal.
fn parse_mode(s: &str) -> Result<u32> {
    let s = s.trim();
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16)
    } else if let Some(octal) = s.strip_prefix("0o") {
        u32::from_str_radix(octal, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse()
    };
    Ok(parsed?)
}

/// `K=V` (or a bare `K`, meaning an empty value) list, as docker's `ConvertKVStringsToMap`.
pub fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (item.clone(), String::new()),
        })
        .collect()
}

/// `kv_map` as a JSON object.
pub fn kv_json(items: &[String]) -> Value {
    Value::Object(
        kv_map(items)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// `--env` values in order, a later `K=…` replacing an earlier one; a bare `K` takes the
/// client's own environment value when there is one (docker's `ValidateEnv`).
pub fn env_list(items: &[String]) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    for item in items {
        let entry = match item.split_once('=') {
            Some(_) => item.clone(),
            None => match std::env::var(item) {
                Ok(value) => format!("{item}={value}"),
                Err(_) => item.clone(),
            },
        };
        let key = env_key(&entry).to_string();
        env.retain(|existing| env_key(existing) != key);
        env.push(entry);
    }
    env
}

/// The variable name of an `K=V` environment entry.
pub fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Adds `:latest` to an image reference without a tag or digest, as docker's client does.
pub fn image_with_tag(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("10s").unwrap(), 10_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("2us").unwrap(), 2_000);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn memory_sizes_are_binary() {
        assert_eq!(parse_memory("100M").unwrap(), 104_857_600);
        assert_eq!(parse_memory("100m").unwrap(), 104_857_600);
        assert_eq!(parse_memory("1g").unwrap(), 1_073_741_824);
        assert_eq!(parse_memory("512MiB").unwrap(), 536_870_912);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("1.5k").unwrap(), 1536);
        assert!(parse_memory("12x").is_err());
        assert!(parse_memory("M").is_err());
    }

    #[test]
    fn cpus_become_exact_nano_cpus() {
        assert_eq!(parse_nano_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_nano_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_nano_cpus(".25").unwrap(), 250_000_000);
        assert_eq!(parse_nano_cpus("0.001").unwrap(), 1_000_000);
        assert!(parse_nano_cpus("0.0000000001").is_err());
        assert!(parse_nano_cpus("abc").is_err());
    }

    #[test]
    fn publish_short_syntax_matches_docker() {
        assert_eq!(
            parse_publish("8080:80/udp").unwrap(),
            vec![
                json!({"Protocol":"udp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"})
            ]
        );
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![
                json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8080,"PublishMode":"ingress"})
            ]
        );
        assert_eq!(
            parse_publish("80").unwrap(),
            vec![json!({"Protocol":"tcp","TargetPort":80,"PublishMode":"ingress"})]
        );
        assert_eq!(parse_publish("8080-8081:80-81").unwrap().len(), 2);
        assert_eq!(
            parse_publish("8080-8081:80").unwrap()[1],
            json!({"Protocol":"tcp","TargetPort":80,"PublishedPort":8081,"PublishMode":"ingress"})
        );
        assert!(parse_publish("1.2.3.4:8080:80").is_err());
        assert!(parse_publish("8080:80/icmp").is_err());
        assert!(parse_publish("99999:80").is_err());
    }

    #[test]
    fn publish_long_syntax_matches_docker() {
        assert_eq!(
            parse_publish("published=8080,target=80,protocol=udp,mode=host").unwrap(),
            vec![
                json!({"Protocol":"udp","TargetPort":80,"PublishedPort":8080,"PublishMode":"host"})
            ]
        );
        assert!(parse_publish("published=8080").is_err());
    }

    #[test]
    fn file_references_default_to_root_readonly() {
        let r = FileReference::parse("db_pass").unwrap();
        assert_eq!(
            r.file_json(),
            json!({"Name":"db_pass","UID":"0","GID":"0","Mode":292})
        );
        let r = FileReference::parse("source=db,target=/etc/db,uid=1000,mode=0400").unwrap();
        assert_eq!(r.source, "db");
        assert_eq!(
            r.file_json(),
            json!({"Name":"/etc/db","UID":"1000","GID":"0","Mode":256})
        );
        assert!(FileReference::parse("target=x").is_err());
    }

    #[test]
    fn env_entries_replace_earlier_ones_with_the_same_key() {
        let env = env_list(&["A=1".into(), "B=2".into(), "A=3".into()]);
        assert_eq!(env, vec!["B=2", "A=3"]);
    }

    #[test]
    fn untagged_images_get_latest() {
        assert_eq!(image_with_tag("nginx"), "nginx:latest");
        assert_eq!(image_with_tag("nginx:1.25"), "nginx:1.25");
        assert_eq!(
            image_with_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(image_with_tag("app@sha256:abc"), "app@sha256:abc");
    }
}
