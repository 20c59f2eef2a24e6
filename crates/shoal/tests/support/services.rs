//! Services of the test image on a daemon whose tasks run on the local engine, and their
//! containers as the engine shows them. Every test daemon shares the engine, so a service's
//! containers are found by its swarm labels (and by the node's ID when a test runs several
//! nodes there).

use super::{engine_ok, test_image, Daemon, ENGINE_SOCKET};

/// A one-node swarm whose tasks run on the local engine, the test image built.
pub fn manager_with_engine(name: &str) -> Daemon {
    test_image();
    let d = Daemon::start_with_engine(name, ENGINE_SOCKET);
    d.init();
    d
}

impl Daemon {
    /// `docker service create --detach --stop-grace-period 1s --name NAME FLAGS… IMAGE sleep
    /// 100000`: a service of the test image whose tasks sleep until they are stopped (within a
    /// second). What the CLI printed (the service's ID).
    pub fn create_sleeping_service(&self, name: &str, flags: &[&str]) -> String {
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--stop-grace-period",
            "1s",
            "--name",
            name,
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[test_image(), "sleep", "100000"]);
        self.docker_ok(&args)
    }
}

/// The names of the engine's running containers of `service`, sorted.
pub fn running_containers(service: &str) -> Vec<String> {
    running_with(&[format!("label=com.docker.swarm.service.name={service}")])
}

/// The names of the engine's running containers of `service` on one node, sorted.
pub fn running_containers_on(node_id: &str, service: &str) -> Vec<String> {
    running_with(&[
        format!("label=com.docker.swarm.node.id={node_id}"),
        format!("label=com.docker.swarm.service.name={service}"),
    ])
}

fn running_with(filters: &[String]) -> Vec<String> {
    let mut args = vec!["ps", "--filter", "status=running"];
    for f in filters {
        args.extend_from_slice(&["--filter", f.as_str()]);
    }
    args.extend_from_slice(&["--format", "{{.Names}}"]);
    let mut names: Vec<String> = engine_ok(&args).lines().map(str::to_string).collect();
    names.sort();
    names
}
