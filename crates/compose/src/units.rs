//! The value syntaxes of a Compose file, parsed the way the docker CLI parses them: Go
//! durations (`1m30s`), sizes (`100M`, binary multiples), CPU counts (`0.5`), short port specs
//! (`[ip:][published:]target[/proto]`, with ranges) and short volume specs
//! (`[source:]target[:options]`). Errors are plain text; the caller adds the position.

use shoal_types::swarm::{PortConfig, PortConfigProtocol, PublishMode};

/// A Go `time.ParseDuration` string in nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?} (expected e.g. 10s, 1m30s, 500ms)");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(format!("duration {s:?} is too long"));
    }
    let nanos = total.round() as i64;
    Ok(if neg { -nanos } else { nanos })
}

/// A size like docker's `units.RAMInBytes`: `100M`, `1.5g`, `512kb`, `1024` (bytes); the
/// multiples are binary.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size {s:?} (expected e.g. 512M, 1g, 1024)");
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(num_len);
    if number.is_empty() {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let suffix = suffix.trim_start().to_ascii_lowercase();
    let suffix = suffix.strip_suffix('b').unwrap_or(&suffix);
    let suffix = suffix.strip_suffix('i').unwrap_or(suffix);
    let multiple: f64 = match suffix {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = value * multiple;
    if bytes > i64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as i64)
}

/// A CPU count (`0.5`, `2`) in billionths of a CPU, as `docker service create --limit-cpu`.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid number of CPUs {s:?} (expected e.g. 0.5 or 2)");
    let t = s.trim();
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > 9 {
        return Err(format!("value {s:?} is too precise"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut nanos_frac = 0i64;
    if !frac_trimmed.is_empty() {
        let padded = format!("{frac_trimmed:0<9}");
        nanos_frac = padded.parse().map_err(|_| bad())?;
    }
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos_frac))
        .ok_or_else(bad)
}

fn parse_port(s: &str) -> Result<u32, String> {
    s.parse::<u16>()
        .map(u32::from)
        .map_err(|_| format!("invalid port {s:?}"))
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(s)?;
            Ok((p, p))
        }
    }
}

pub fn parse_protocol(s: &str) -> Result<PortConfigProtocol, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(PortConfigProtocol::Tcp),
        "udp" => Ok(PortConfigProtocol::Udp),
        "sctp" => Ok(PortConfigProtocol::Sctp),
        _ => Err(format!(
            "invalid protocol {s:?} (expected tcp, udp or sctp)"
        )),
    }
}

/// A short port spec, expanded like `docker service create -p`: every port published
/// through the routing mesh, sorted by target port (as text) and protocol. A host IP is
/// dropped (returned as the second value, for docker's warning).
pub fn parse_port_spec(spec: &str) -> Result<Vec<PortConfig>, String> {
    Ok(parse_port_spec_with_ip(spec)?.0)
}

pub fn parse_port_spec_with_ip(spec: &str) -> Result<(Vec<PortConfig>, Option<String>), String> {
    let (raw, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    let protocol = parse_protocol(proto)?;
    // An IPv6 host address is written in brackets: [::1]:80:80.
    let (ip, rest) = if let Some(after) = raw.strip_prefix('[') {
        let (ip, rest) = after
            .split_once(']')
            .ok_or_else(|| format!("invalid port spec {spec:?}"))?;
        (ip.to_string(), rest.strip_prefix(':').unwrap_or(rest))
    } else {
        (String::new(), raw)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip.is_empty(), parts.as_slice()) {
        (true, [c]) => (String::new(), "", *c),
        (true, [h, c]) => (String::new(), *h, *c),
        (true, [ip, h, c]) => (ip.to_string(), *h, *c),
        (false, [h, c]) => (ip, *h, *c),
        _ => return Err(format!("invalid port spec {spec:?}")),
    };
    if container.is_empty() {
        return Err(format!("no port specified in {spec:?}"));
    }
    let (c_start, c_end) = parse_range(container)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host)?)
    };
    let mut ports = Vec::new();
    let mk = |target: u32, published: u32| PortConfig {
        name: String::new(),
        protocol,
        target_port: target,
        published_port: published,
        publish_mode: PublishMode::Ingress,
    };
    match host_range {
        None => {
            for target in c_start..=c_end {
                ports.push(mk(target, 0));
            }
        }
        Some((h_start, h_end)) if h_end - h_start == c_end - c_start => {
            for (i, target) in (c_start..=c_end).enumerate() {
                ports.push(mk(target, h_start + i as u32));
            }
        }
        Some((h_start, h_end)) if c_start == c_end => {
            for published in h_start..=h_end {
                ports.push(mk(c_start, published));
            }
        }
        Some(_) => {
            return Err(format!(
                "invalid ranges specified for container and host ports in {spec:?}"
            ))
        }
    }
    // nat.ParsePortSpecs keys ports by "PORT/proto" and the loader sorts those keys as text.
    ports.sort_by_key(|p| format!("{}/{}", p.target_port, proto_name(&p.protocol)));
    let dropped_ip = (!ip.is_empty() && ip != "0.0.0.0" && ip != "::").then_some(ip);
    Ok((ports, dropped_ip))
}

fn proto_name(p: &PortConfigProtocol) -> &'static str {
    match p {
        PortConfigProtocol::Tcp => "tcp",
        PortConfigProtocol::Udp => "udp",
        PortConfigProtocol::Sctp => "sctp",
    }
}

/// A short volume spec `[source:]target[:options]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// `volume` or `bind`.
    pub kind: &'static str,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub no_copy: bool,
    pub propagation: Option<String>,
    /// Empty sections, too many colons.
    pub error: Option<String>,
}

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// Parses a short volume spec like docker's `loader.ParseVolume`.
pub fn parse_volume_spec(spec: &str) -> VolumeSpec {
    let mut v = VolumeSpec {
        kind: "volume",
        ..Default::default()
    };
    if spec.is_empty() {
        v.error = Some("invalid empty volume spec".into());
        return v;
    }
    if spec.chars().count() <= 2 {
        v.target = spec.to_string();
        return v;
    }
    let parts: Vec<&str> = spec.split(':').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        if part.is_empty() {
            v.error = Some(format!(
                "invalid spec {spec:?}: empty section between colons"
            ));
            break;
        }
        if v.source.is_empty() && last && v.target.is_empty() {
            v.target = part.to_string();
        } else if v.source.is_empty() && v.target.is_empty() {
            v.source = part.to_string();
        } else if v.target.is_empty() {
            v.target = part.to_string();
        } else if !last {
            v.error = Some(format!("invalid spec {spec:?}: too many colons"));
            break;
        } else {
            for option in part.split(',') {
                match option {
                    "ro" => v.read_only = true,
                    "rw" => v.read_only = false,
                    "nocopy" => v.no_copy = true,
                    o if PROPAGATIONS.contains(&o) => v.propagation = Some(o.to_string()),
                    _ => {}
                }
            }
        }
    }
    if v.source.starts_with(['.', '/', '~']) {
        v.kind = "bind";
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go() {
        assert_eq!(parse_duration("10s"), Ok(10_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_are_binary_multiples() {
        assert_eq!(parse_size("100M"), Ok(100 * 1024 * 1024));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512kb"), Ok(512 * 1024));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("10x").is_err());
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus("0.50"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus(".001"), Ok(1_000_000));
        assert!(parse_cpus("0.0000000001").is_err());
        assert!(parse_cpus("half").is_err());
    }

    #[test]
    fn short_ports_expand_like_docker() {
        let p = parse_port_spec("8080:80").unwrap();
        assert_eq!((p[0].published_port, p[0].target_port), (8080, 80));
        let p = parse_port_spec("80").unwrap();
        assert_eq!((p[0].published_port, p[0].target_port), (0, 80));
        let p = parse_port_spec("9000-9001:90-91/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].published_port, 9001);
        assert_eq!(p[1].protocol, PortConfigProtocol::Udp);
        let (p, ip) = parse_port_spec_with_ip("127.0.0.1:8080:80").unwrap();
        assert_eq!(p[0].published_port, 8080);
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));
        assert!(parse_port_spec("80/xyz").is_err());
        assert!(parse_port_spec("99999:80").is_err());
        assert!(parse_port_spec("1:2:3:4").is_err());
    }

    #[test]
    fn short_volumes_parse_like_docker() {
        let v = parse_volume_spec("data:/var/lib/data:ro");
        assert_eq!(
            (v.kind, v.source.as_str(), v.target.as_str(), v.read_only),
            ("volume", "data", "/var/lib/data", true)
        );
        let v = parse_volume_spec("./conf:/etc/conf:rshared");
        assert_eq!(v.kind, "bind");
        assert_eq!(v.propagation.as_deref(), Some("rshared"));
        let v = parse_volume_spec("/anon");
        assert_eq!((v.source.as_str(), v.target.as_str()), ("", "/anon"));
        assert!(parse_volume_spec("a::b").error.is_some());
        assert!(parse_volume_spec("a:b:c:d").error.is_some());
    }
}
