//! A service's `deploy.resources` → the tasks' resource limits and reservations (CPUs in
//! nano-CPUs, memory in bytes, pids, generic resources), as docker converts them.

use shoal_types::swarm::{
    DiscreteGenericResource, GenericResource, Limit, ResourceRequirements, Resources,
};

use super::read::{field, fields, opt_integer, size, text, text_or_empty, Entries};
use crate::yaml::Node;
use crate::{units, Error};

pub(super) fn resources(node: Option<&Node>, dw: &str) -> Result<ResourceRequirements, Error> {
    let mut out = ResourceRequirements::default();
    let Some(node) = node else {
        return Ok(out);
    };
    let rw = format!("{dw}.resources");
    let e = fields(node, &rw, &["limits", "reservations"])?;
    let cpus = |e: Entries<'_>, w: &str| -> Result<i64, Error> {
        match field(e, "cpus") {
            None => Ok(0),
            Some(n) => {
                let t = text(n, &format!("{w}.cpus"))?;
                units::parse_cpus(&t).map_err(|m| Error::at(&n.pos, format!("{w}.cpus: {m}")))
            }
        }
    };
    let memory = |e: Entries<'_>, w: &str| -> Result<i64, Error> {
        field(e, "memory")
            .map(|n| size(n, &format!("{w}.memory")))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    if let Some(l) = field(e, "limits") {
        let lw = format!("{rw}.limits");
        let le = fields(l, &lw, &["cpus", "memory", "pids"])?;
        out.limits = Some(Limit {
            nano_cpus: cpus(le, &lw)?,
            memory_bytes: memory(le, &lw)?,
            pids: opt_integer(le, "pids", &lw)?.unwrap_or(0),
        });
    }
    if let Some(r) = field(e, "reservations") {
        let lw = format!("{rw}.reservations");
        let le = fields(r, &lw, &["cpus", "memory", "generic_resources", "devices"])?;
        let mut generic = Vec::new();
        if let Some(g) = field(le, "generic_resources") {
            for item in g.as_seq().ok_or_else(|| {
                Error::at(&g.pos, format!("{lw}.generic_resources must be a list"))
            })? {
                let ge = fields(
                    item,
                    &format!("{lw}.generic_resources"),
                    &["discrete_resource_spec"],
                )?;
                let mut resource = GenericResource::default();
                if let Some(d) = field(ge, "discrete_resource_spec") {
                    let dw2 = format!("{lw}.generic_resources.discrete_resource_spec");
                    let de = fields(d, &dw2, &["kind", "value"])?;
                    resource.discrete_resource_spec = Some(DiscreteGenericResource {
                        kind: text_or_empty(de, "kind", &dw2)?,
                        value: opt_integer(de, "value", &dw2)?.unwrap_or(0),
                    });
                }
                generic.push(resource);
            }
        }
        out.reservations = Some(Resources {
            nano_cpus: cpus(le, &lw)?,
            memory_bytes: memory(le, &lw)?,
            generic_resources: generic,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    const DW: &str = "services.web.deploy";

    #[test]
    fn limits_and_reservations_convert_to_nano_cpus_and_bytes() {
        let r = resources(
            Some(&node("{limits: {cpus: \"2\", memory: 1G, pids: 50}, reservations: {cpus: \"0.1\", memory: 10M, generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]}}")),
            DW,
        )
        .unwrap();
        let l = r.limits.unwrap();
        assert_eq!(
            (l.nano_cpus, l.memory_bytes, l.pids),
            (2_000_000_000, 1 << 30, 50)
        );
        let res = r.reservations.unwrap();
        assert_eq!((res.nano_cpus, res.memory_bytes), (100_000_000, 10 << 20));
        let g = res.generic_resources[0]
            .discrete_resource_spec
            .as_ref()
            .unwrap();
        assert_eq!((g.kind.as_str(), g.value), ("gpu", 2));
        assert_eq!(
            resources(None, DW).unwrap(),
            ResourceRequirements::default()
        );
    }

    #[test]
    fn bad_amounts_are_refused_at_their_position() {
        assert_eq!(
            message(resources(Some(&node("{limits: {memory: lots}}")), DW)),
            "t.yml:1:22: services.web.deploy.resources.limits.memory: invalid size \"lots\" (expected e.g. 512M, 1g, 1024)"
        );
        assert!(
            message(resources(Some(&node("{limits: {cpus: many}}")), DW))
                .starts_with("t.yml:1:20: services.web.deploy.resources.limits.cpus: ")
        );
        assert_eq!(
            message(resources(Some(&node("{reservations: {generic_resources: x}}")), DW)),
            "t.yml:1:39: services.web.deploy.resources.reservations.generic_resources must be a list"
        );
    }
}
