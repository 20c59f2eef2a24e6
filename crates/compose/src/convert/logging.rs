//! A service's `logging:` → the tasks' log driver (`TaskSpec.LogDriver`): a driver name and
//! its options, passed to the engine as they are.

use shoal_types::swarm::Driver;

use super::read::{fields, opt_string_map, text_or_empty};
use crate::yaml::Node;
use crate::Error;

/// The log driver of service `what` (`services.NAME`), when it has a `logging:`.
pub(super) fn log_driver(node: Option<&Node>, what: &str) -> Result<Option<Driver>, Error> {
    let Some(n) = node else {
        return Ok(None);
    };
    let lw = format!("{what}.logging");
    let le = fields(n, &lw, &["driver", "options"])?;
    Ok(Some(Driver {
        name: text_or_empty(le, "driver", &lw)?,
        options: opt_string_map(le, "options", &lw)?.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    #[test]
    fn the_driver_and_its_options_pass_as_written() {
        let d = log_driver(
            Some(&node("{driver: json-file, options: {max-size: 10m}}")),
            "s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.name, "json-file");
        assert_eq!(d.options["max-size"], "10m");
        assert_eq!(log_driver(None, "s").unwrap(), None);
        assert_eq!(
            message(log_driver(Some(&node("{drivr: x}")), "s")),
            "t.yml:1:5: unknown key \"drivr\" in s.logging (expected one of: driver, options)"
        );
    }
}
