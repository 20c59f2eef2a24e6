//! Three managers lose their leader to kill -9, twenty times in a row: each time the two
//! survivors elect a new leader and commit a write. openraft 0.9 draws election timeouts once
//! per process, which can split votes forever; this test catches that.

mod support;

use std::time::Duration;
use support::{eventually, leader_index, three_managers};

#[test]
fn killing_the_leader_twenty_times_always_elects_a_new_one_that_commits() {
    let mut nodes = three_managers();
    let mut alive = vec![true; 3];
    let ids: Vec<String> = nodes.iter().map(|n| n.node_id()).collect();
    for round in 0..20 {
        let old = eventually(Duration::from_secs(30), "a leader", || {
            leader_index(&nodes, &alive)
        });
        nodes[old].kill9();
        alive[old] = false;
        let new = eventually(
            Duration::from_secs(30),
            "a new leader among the survivors",
            || leader_index(&nodes, &alive).filter(|i| *i != old),
        );
        assert!(alive[new]);
        if round == 0 {
            // The new leader reports the dead manager as down and unreachable.
            let dead = &ids[old];
            eventually(
                Duration::from_secs(30),
                "the dead manager shown Unreachable",
                || {
                    let out = nodes[new].docker(&[
                        "node",
                        "ls",
                        "--format",
                        "{{.ID}} {{.Status}} {{.ManagerStatus}}",
                    ]);
                    let s = String::from_utf8_lossy(&out.stdout).to_string();
                    s.lines()
                        .any(|l| l.starts_with(dead.as_str()) && l.ends_with("Down Unreachable"))
                        .then_some(())
                },
            );
        }
        // A write commits on the survivors (through either of them).
        let survivor = (0..3).find(|i| alive[*i] && *i != new).unwrap_or(new);
        let label = format!("round={round}");
        let id = nodes[survivor].node_id();
        eventually(Duration::from_secs(30), "a committed write", || {
            let out = nodes[survivor].docker(&["node", "update", "--label-add", &label, &id]);
            out.status.success().then_some(())
        });
        let labels =
            nodes[new].docker_ok(&["node", "inspect", "--format", "{{json .Spec.Labels}}", &id]);
        assert!(
            labels.contains(&format!("\"round\":\"{round}\"")),
            "round {round}: {labels}"
        );
        // The old leader comes back as a follower and catches up.
        nodes[old].restart();
        alive[old] = true;
        eventually(
            Duration::from_secs(30),
            "the restarted manager to catch up",
            || {
                let l = nodes[old].docker(&[
                    "node",
                    "inspect",
                    "--format",
                    "{{json .Spec.Labels}}",
                    &id,
                ]);
                String::from_utf8_lossy(&l.stdout)
                    .contains(&format!("\"round\":\"{round}\""))
                    .then_some(())
            },
        );
    }
}
