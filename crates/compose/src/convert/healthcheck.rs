//! A service's `healthcheck:` → the container's `HealthConfig`, as docker converts it: a
//! string test runs in a shell (`CMD-SHELL`), `disable: true` is the `NONE` test.

use shoal_types::swarm::HealthConfig;

use super::read::{field, fields, opt_bool, opt_duration, opt_integer, strings};
use crate::yaml::{Node, Value};
use crate::Error;

pub(super) fn healthcheck(node: Option<&Node>, what: &str) -> Result<Option<HealthConfig>, Error> {
    let Some(node) = node else {
        return Ok(None);
    };
    let hw = format!("{what}.healthcheck");
    let e = fields(
        node,
        &hw,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
    )?;
    let test = match field(e, "test") {
        None => Vec::new(),
        Some(t) => match &t.value {
            Value::Scalar { text, .. } => vec!["CMD-SHELL".to_string(), text.clone()],
            _ => strings(t, &format!("{hw}.test"), false)?,
        },
    };
    if opt_bool(e, "disable", &hw)?.unwrap_or(false) {
        if !test.is_empty() {
            return Err(Error::at(
                &node.pos,
                format!("{hw}: test and disable can't be set at the same time"),
            ));
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    Ok(Some(HealthConfig {
        test,
        interval: opt_duration(e, "interval", &hw)?.unwrap_or(0),
        timeout: opt_duration(e, "timeout", &hw)?.unwrap_or(0),
        start_period: opt_duration(e, "start_period", &hw)?.unwrap_or(0),
        start_interval: opt_duration(e, "start_interval", &hw)?.unwrap_or(0),
        retries: opt_integer(e, "retries", &hw)?.unwrap_or(0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{message, node};

    fn check(text: &str) -> Result<Option<HealthConfig>, Error> {
        healthcheck(Some(&node(text)), "services.web")
    }

    #[test]
    fn a_string_test_runs_in_a_shell_and_a_list_is_kept() {
        let h = check("{test: curl -f x, interval: 1s, timeout: 2s, retries: 3, start_period: 4s, start_interval: 5s}")
            .unwrap()
            .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f x"]);
        assert_eq!(
            (
                h.interval,
                h.timeout,
                h.retries,
                h.start_period,
                h.start_interval
            ),
            (
                1_000_000_000,
                2_000_000_000,
                3,
                4_000_000_000,
                5_000_000_000
            )
        );
        let h = check("{test: [CMD, true]}").unwrap().unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!(healthcheck(None, "services.web").unwrap(), None);
    }

    #[test]
    fn disable_is_the_none_test_and_cannot_come_with_a_test() {
        assert_eq!(check("{disable: true}").unwrap().unwrap().test, ["NONE"]);
        assert_eq!(
            message(check("{disable: true, test: x}")),
            "t.yml:1:4: services.web.healthcheck: test and disable can't be set at the same time"
        );
        assert_eq!(
            message(check("{interval: soon}")),
            "t.yml:1:15: services.web.healthcheck.interval: invalid duration \"soon\" (expected e.g. 10s, 1m30s, 500ms)"
        );
    }
}
