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
