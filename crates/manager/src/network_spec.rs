//! What a network create request may ask for. shoal's overlay networks honour the subnet,
//! gateway, IP range, MTU, `--internal`, `--attachable`, labels and IPAM options; everything
//! else Docker's overlay driver would accept is refused here with the reason, never stored and
//! ignored.

use crate::error::ApiError;
use shoal_store::Cidr;
use shoal_types::network::NetworkCreateRequest;
use std::net::Ipv4Addr;

/// The driver option that sets the MTU of the network's container interfaces.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// An ingress network (`docker network create --ingress`) names the routing mesh. shoal's mesh
/// forwards published ports from node to node over TCP, never through the ingress overlay, so
/// what would only shape that overlay's traffic (its subnet, range, gateway, MTU) is refused
/// rather than stored and ignored; its name, labels and the network itself are taken.
fn check_ingress(req: &NetworkCreateRequest) -> Result<(), ApiError> {
    let addressed = req.ipam.as_ref().is_some_and(|i| {
        i.config
            .iter()
            .any(|c| !c.subnet.is_empty() || !c.ip_range.is_empty() || !c.gateway.is_empty())
    });
    let what = if addressed {
        "--subnet, --ip-range or --gateway"
    } else if req.options.contains_key(MTU_OPTION) {
        "an MTU (--opt com.docker.network.driver.mtu)"
    } else {
        return Ok(());
    };
    Err(ApiError::invalid(format!(
        "ingress network {}: {what} would change nothing: shoal's routing mesh carries published ports between nodes over TCP, not over the ingress network (create it without them; see docs/compat.md)",
        req.name
    )))
}

pub fn check_network_options(req: &NetworkCreateRequest) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::invalid(m));
    if req.enable_ipv6 == Some(true) {
        return invalid("IPv6 is not supported on shoal overlay networks yet (drop --ipv6)".into());
    }
    if req.enable_ipv4 == Some(false) {
        return invalid("an overlay network needs IPv4 (shoal has no IPv6-only networks)".into());
    }
    if req.config_only || req.config_from.is_some() {
        return invalid(
            "config-only networks (--config-only, --config-from) are not supported by shoal".into(),
        );
    }
    for (k, v) in &req.options {
        match k.as_str() {
            "encrypted" => {
                return invalid(
                    "encrypted overlay networks are not supported: this kernel has neither IPsec nor WireGuard, and shoal does not create an unencrypted network in their place (drop --opt encrypted)"
                        .into(),
                )
            }
            MTU_OPTION => {
                if !v.parse::<u32>().is_ok_and(|m| (576..=9000).contains(&m)) {
                    return invalid(format!("invalid MTU {v:?}: give a number between 576 and 9000"));
                }
            }
            "com.docker.network.driver.overlay.vxlanid_list" => {
                return invalid("the VXLAN ID of a shoal network is allocated by the cluster and cannot be chosen".into())
            }
            other => {
                return invalid(format!(
                    "network option {other:?} is not supported by shoal's overlay driver (supported: {MTU_OPTION})"
                ))
            }
        }
    }
    if req.ingress {
        check_ingress(req)?;
    }
    let Some(ipam) = &req.ipam else { return Ok(()) };
    if !ipam.driver.is_empty() && ipam.driver != "default" {
        return invalid(format!(
            "IPAM driver {:?} is not supported: shoal's managers allocate every address (use the default driver)",
            ipam.driver
        ));
    }
    if ipam.config.len() > 1 {
        return invalid("a shoal network has one subnet: give at most one --subnet".into());
    }
    for c in &ipam.config {
        if c.subnet.is_empty() {
            if !c.ip_range.is_empty() || !c.gateway.is_empty() {
                return invalid("--ip-range and --gateway need a --subnet".into());
            }
            continue;
        }
        let subnet = Cidr::parse(&c.subnet)
            .filter(|_| c.subnet.contains('.'))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "invalid subnet {:?}: expected an IPv4 CIDR such as 10.10.0.0/24",
                    c.subnet
                ))
            })?;
        if subnet.prefix > 29 {
            return invalid(format!(
                "subnet {} is too small: use a /29 or larger",
                c.subnet
            ));
        }
        if !c.ip_range.is_empty() {
            let range = Cidr::parse(&c.ip_range)
                .ok_or_else(|| ApiError::invalid(format!("invalid ip range {:?}", c.ip_range)))?;
            if !subnet.contains(range.base) || !subnet.contains(range.last()) {
                return invalid(format!(
                    "ip range {} is not inside subnet {}",
                    c.ip_range, c.subnet
                ));
            }
        }
        if !c.gateway.is_empty() {
            let gw: Ipv4Addr = c
                .gateway
                .parse()
                .map_err(|_| ApiError::invalid(format!("invalid gateway {:?}", c.gateway)))?;
            if !subnet.contains(u32::from(gw)) {
                return invalid(format!(
                    "gateway {} is not inside subnet {}",
                    c.gateway, c.subnet
                ));
            }
        }
        if !c.aux_address.is_empty() {
            return invalid(
                "auxiliary addresses (--aux-address) are not supported by shoal".into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::network::{IPAMConfig, IPAM};

    fn ingress(subnet: &str, mtu: Option<&str>) -> NetworkCreateRequest {
        NetworkCreateRequest {
            name: "mesh".into(),
            ingress: true,
            ipam: (!subnet.is_empty()).then(|| IPAM {
                config: vec![IPAMConfig {
                    subnet: subnet.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            options: mtu
                .map(|m| [(MTU_OPTION.to_string(), m.to_string())].into())
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn an_ingress_network_takes_no_addressing_it_would_not_use() {
        assert!(check_network_options(&ingress("", None)).is_ok());
        let err = check_network_options(&ingress("10.11.0.0/16", None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ingress network mesh: --subnet"), "{err}");
        let err = check_network_options(&ingress("", Some("1400")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("an MTU"), "{err}");
        // Not an ingress network: a subnet is the network's own.
        let mut plain = ingress("10.11.0.0/16", Some("1400"));
        plain.ingress = false;
        assert!(check_network_options(&plain).is_ok());
    }
}
