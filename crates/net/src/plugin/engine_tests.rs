//! The plugin against the machine's real Docker Engine, through the `docker` command line: a
//! network created, containers run on it, one stopped, the network removed. Skips, saying
//! why, where there is no engine or no root. Prints every call the engine made, in order.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::recorder::{Call, Recorder};
use super::*;

const DOCKER_HOST: &str = "unix:///var/run/docker.sock";
const BUSYBOX: &str = "shoal-test/busybox:latest";
/// Built by this test from the host's own `ip` and `sleep` when the busybox image cannot be
/// had (its script needs Debian's archive).
const HOST_TOOLS: &str = "shoal-test/plugin-host-tools:latest";

/// Runs a command to completion, stdout on success, stdout and stderr on failure.
async fn run(program: &str, args: &[&str], limit: Duration) -> Result<String, String> {
    let what = format!("{program} {}", args.join(" "));
    let out = tokio::time::timeout(
        limit,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("`{what}` did not finish within {limit:?}"))?
    .map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{what}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn docker(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-H", DOCKER_HOST];
    all.extend_from_slice(args);
    run("docker", &all, Duration::from_secs(120)).await
}

/// Why this machine cannot run the test, if it cannot.
async fn why_not_here() -> Option<String> {
    // /proc/self belongs to the process's effective user.
    match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() == 0 => {}
        Ok(m) => {
            return Some(format!(
                "not root (uid {}): veths and /run/docker/plugins need root",
                m.uid()
            ))
        }
        Err(e) => return Some(format!("cannot tell the user: {e}")),
    }
    if let Err(e) = run("ip", &["-V"], Duration::from_secs(10)).await {
        return Some(format!("no `ip` command: {e}"));
    }
    if let Err(e) = run(
        "docker",
        &[
            "-H",
            DOCKER_HOST,
            "version",
            "--format",
            "{{.Server.Version}}",
        ],
        Duration::from_secs(20),
    )
    .await
    {
        return Some(format!(
            "the Docker Engine at {DOCKER_HOST} does not answer: {e}"
        ));
    }
    None
}

/// An image with `ip` and `sleep`: the project's busybox image (built by its script if
/// missing), else one made here of the host's own binaries and their libraries.
async fn test_image() -> Result<String, String> {
    if docker(&["image", "inspect", BUSYBOX]).await.is_ok() {
        return Ok(BUSYBOX.into());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-images.sh");
    match run(script, &[], Duration::from_secs(300)).await {
        Ok(_) => return Ok(BUSYBOX.into()),
        Err(e) => eprintln!("engine test: no {BUSYBOX} ({e}); using the host's tools"),
    }
    if docker(&["image", "inspect", HOST_TOOLS]).await.is_ok() {
        return Ok(HOST_TOOLS.into());
    }
    let mut files = std::collections::BTreeSet::new();
    for tool in ["ip", "sleep"] {
        let path = run(
            "sh",
            &["-c", &format!("command -v {tool}")],
            Duration::from_secs(10),
        )
        .await?
        .trim()
        .to_string();
        let libs = run("ldd", &[&path], Duration::from_secs(10)).await?;
        files.extend(
            libs.split_whitespace()
                .filter(|w| w.starts_with('/'))
                .map(str::to_string),
        );
        files.insert(path);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tar = dir.path().join("rootfs.tar");
    let tar = tar.to_str().unwrap();
    // -h: store what symlinks (merged /usr, versioned libraries) point to.
    let mut args = vec!["-chf", tar, "-C", "/"];
    let relative: Vec<&str> = files.iter().map(|f| f.trim_start_matches('/')).collect();
    args.extend(relative);
    run("tar", &args, Duration::from_secs(60)).await?;
    docker(&["import", tar, HOST_TOOLS]).await?;
    Ok(HOST_TOOLS.into())
}

/// Removes what the test made, whatever happened. Runs while the plugin still serves: the
/// engine needs it to remove the network.
struct Cleanup {
    network: String,
    label: String,
    socket: PathBuf,
    driver: Arc<Recorder>,
    server: tokio::task::AbortHandle,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let docker = |args: &[&str]| {
            std::process::Command::new("docker")
                .arg("-H")
                .arg(DOCKER_HOST)
                .args(args)
                .output()
        };
        if let Ok(out) = docker(&["ps", "-aq", "--filter", &format!("label={}", self.label)]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker(&["rm", "-f", id]);
            }
        }
        let _ = docker(&["network", "rm", &self.network]);
        for veth in self.driver.live_veths() {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &veth])
                .output();
        }
        self.server.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The calls' names, less `EndpointOperInfo`, which the engine sends zero to two times after
/// a `Join`, as it pleases.
fn sequence(calls: &[Call]) -> Vec<&'static str> {
    calls
        .iter()
        .map(Call::name)
        .filter(|n| *n != "EndpointOperInfo")
        .collect()
}

fn show(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| format!("  {c:?}\n"))
        .collect::<String>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_engine_creates_runs_stops_and_removes_a_network_through_the_plugin() {
    if let Some(reason) = why_not_here().await {
        eprintln!("skipping the engine test: {reason}");
        return;
    }
    let image = test_image().await.expect("no image to run");
    let pid = std::process::id();
    let name = format!("shoaltest-{pid}");
    let x = pid % 200 + 20;
    let subnet = format!("10.99.{x}.0/24");
    let driver = Arc::new(Recorder::with_veths());
    let socket = socket_path(&name);
    let listener = bind(&socket).expect("cannot bind the plugin socket");
    let server = tokio::spawn(serve(listener, driver.clone()));
    let _cleanup = Cleanup {
        network: name.clone(),
        label: format!("shoaltest={pid}"),
        socket: socket.clone(),
        driver: driver.clone(),
        server: server.abort_handle(),
    };
    let label = format!("shoaltest={pid}");

    // --- a driver's error, as the person at the command line sees it ---
    let create = [
        "network",
        "create",
        "-d",
        &name,
        "--ipam-driver",
        &name,
        "--subnet",
        &subnet,
        "-o",
        "foo=bar",
        "--internal",
        "--label",
        "team=net",
        &name,
    ];
    for call in ["RequestPool", "CreateNetwork"] {
        let message = format!("shoal test: {call} refused on purpose");
        driver.fail(call, &message);
        let err = docker(&create).await.unwrap_err();
        println!("docker network create, {call} failing:\n  {err}");
        assert!(err.contains(&message), "{err}");
        driver.clear_failures();
    }

    // --- docker network create ---
    let mark = driver.calls().len();
    docker(&create).await.unwrap();
    let created = driver.calls()[mark..].to_vec();
    println!("docker network create:\n{}", show(&created));
    assert_eq!(
        sequence(&created),
        ["RequestPool", "RequestAddress", "CreateNetwork"]
    );
    let [Call::RequestPool(pool), Call::RequestAddress(gateway), Call::CreateNetwork(net)] =
        &created[..]
    else {
        unreachable!()
    };
    assert_eq!(pool.pool, subnet);
    let pool_id = gateway.pool_id.clone();
    assert!(
        gateway.is_gateway() && gateway.address.is_empty(),
        "{gateway:?}"
    );
    // `--label` stays with the engine.
    assert!(!format!("{net:?}").contains("team"), "{net:?}");
    assert_eq!(net.generic_options(), [("foo".into(), "bar".into())].into());
    assert!(net.internal(), "{net:?}");
    assert_eq!(net.ipv4_data[0].pool, subnet);
    assert_eq!(net.ipv4_data[0].gateway, format!("10.99.{x}.1/24"));

    // --- a container on it, address chosen by our IPAM ---
    let mark = driver.calls().len();
    let out = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "--network",
        &name,
        &image,
        "ip",
        "addr",
    ])
    .await
    .unwrap();
    let ran = driver.calls()[mark..].to_vec();
    println!("docker run --rm ... ip addr:\n{}", show(&ran));
    println!("the container saw:\n{out}");
    assert_eq!(
        sequence(&ran),
        [
            "RequestAddress",
            "CreateEndpoint",
            "Join",
            "Leave",
            "DeleteEndpoint",
            "ReleaseAddress"
        ]
    );
    let Some(Call::CreateEndpoint(ep)) = ran.iter().find(|c| matches!(c, Call::CreateEndpoint(_)))
    else {
        panic!("no CreateEndpoint:\n{}", show(&ran));
    };
    assert_eq!(ep.interface.address, format!("10.99.{x}.2/24"));
    assert!(
        out.contains(&format!("inet 10.99.{x}.2/24")),
        "the container did not see 10.99.{x}.2/24:\n{out}"
    );
    let Some(Call::Join(join)) = ran.iter().find(|c| matches!(c, Call::Join(_))) else {
        panic!("no Join:\n{}", show(&ran));
    };
    assert!(
        join.sandbox_key.starts_with("/var/run/docker/netns/"),
        "{join:?}"
    );

    // --- a container asking for its address ---
    let mark = driver.calls().len();
    let fixed = format!("10.99.{x}.7");
    let out = docker(&[
        "run",
        "--rm",
        "--label",
        &label,
        "--network",
        &name,
        "--ip",
        &fixed,
        &image,
        "ip",
        "addr",
    ])
    .await
    .unwrap();
    let ran = driver.calls()[mark..].to_vec();
    println!("docker run --rm --ip {fixed} ... ip addr:\n{}", show(&ran));
    assert!(
        ran.iter()
            .any(|c| matches!(c, Call::RequestAddress(r) if r.address == fixed)),
        "the engine did not ask for {fixed}:\n{}",
        show(&ran)
    );
    assert!(out.contains(&format!("inet {fixed}/24")), "{out}");

    // --- a container stopped, then removed ---
    let mark = driver.calls().len();
    let id = docker(&[
        "run",
        "-d",
        "--label",
        &label,
        "--network",
        &name,
        &image,
        "sleep",
        "300",
    ])
    .await
    .unwrap();
    let id = id.trim();
    let started = driver.calls().len();
    println!(
        "docker run -d ... sleep:\n{}",
        show(&driver.calls()[mark..started])
    );
    docker(&["stop", "-t", "1", id]).await.unwrap();
    let stopped = driver.calls().len();
    let on_stop = driver.calls()[started..stopped].to_vec();
    println!("docker stop:\n{}", show(&on_stop));
    docker(&["rm", id]).await.unwrap();
    let on_rm = driver.calls()[stopped..].to_vec();
    println!("docker rm:\n{}", show(&on_rm));
    // Stopping gives the endpoint and its address back; removing the container is then
    // nothing to the plugin.
    assert_eq!(
        sequence(&on_stop),
        ["Leave", "DeleteEndpoint", "ReleaseAddress"]
    );
    assert!(on_rm.is_empty(), "{}", show(&on_rm));
    assert!(
        driver.live_veths().is_empty(),
        "veths left: {:?}",
        driver.live_veths()
    );

    // --- docker network rm ---
    let mark = driver.calls().len();
    docker(&["network", "rm", &name]).await.unwrap();
    let removed = driver.calls()[mark..].to_vec();
    println!("docker network rm:\n{}", show(&removed));
    // The IPAM gets its addresses and pool back before the driver hears of it.
    assert_eq!(
        sequence(&removed),
        ["ReleaseAddress", "ReleasePool", "DeleteNetwork"]
    );
    assert_eq!(
        removed[0],
        Call::ReleaseAddress(ReleaseAddressRequest {
            pool_id: pool_id.clone(),
            address: format!("10.99.{x}.1"),
        })
    );
}
