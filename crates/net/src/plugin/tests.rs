//! The plugin over real HTTP on a unix socket in a temporary folder, against the recording
//! driver. Request bodies are written as the 20.10 engine sends them: Go's encoder (field
//! order of the structs, a trailing newline, `null` for nil maps) and no `Content-Type`.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::recorder::{Call, Recorder};
use super::*;

const NETWORK_ID: &str = "5c1fd0f2b2e6a0d4c3b9e8f7a6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3";
const ENDPOINT_ID: &str = "e0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f";

struct Plugin {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    driver: Arc<Recorder>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start() -> Plugin {
    start_with(PluginConfig::default()).await
}

async fn start_with(config: PluginConfig) -> Plugin {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugins").join("shoal.sock");
    let listener = bind(&socket).unwrap();
    let driver = Arc::new(Recorder::new());
    let server = tokio::spawn(serve_with(listener, driver.clone(), config));
    Plugin {
        _dir: dir,
        socket,
        driver,
        server,
    }
}

/// What came back from one call.
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

/// Posts `body` to `/call` the way the engine's plugin client does.
async fn post_raw(socket: &Path, method: &str, call: &str, body: &str) -> Answer {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(format!("/{call}"))
        .header(http::header::HOST, "plugin.moby.localhost")
        .header(
            http::header::ACCEPT,
            "application/vnd.docker.plugins.v1.2+json",
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    Answer {
        status,
        content_type,
        body,
    }
}

async fn post(socket: &Path, call: &str, body: &str) -> Answer {
    post_raw(socket, "POST", call, body).await
}

/// Posts and expects a 200 with the plugin content type; returns the JSON answer.
async fn ok(socket: &Path, call: &str, body: &str) -> Value {
    let a = post(socket, call, body).await;
    assert_eq!(a.status, 200, "{call} answered {}", a.body);
    assert_eq!(a.content_type, "application/vnd.docker.plugins.v1.2+json");
    a.body
}

#[tokio::test]
async fn activation_says_the_plugin_is_a_network_driver_and_an_ipam_driver() {
    let p = start().await;
    // The engine activates with an empty body.
    let body = ok(&p.socket, "Plugin.Activate", "").await;
    assert_eq!(body, json!({"Implements": ["NetworkDriver", "IpamDriver"]}));
}

#[tokio::test]
async fn network_capabilities_are_local_scope_with_global_connectivity() {
    let p = start().await;
    let body = ok(&p.socket, "NetworkDriver.GetCapabilities", "").await;
    assert_eq!(
        body,
        json!({"Scope": "local", "ConnectivityScope": "global"})
    );
}

#[tokio::test]
async fn ipam_capabilities_and_address_spaces_come_from_the_config() {
    let mut config = PluginConfig::default();
    config.address_spaces.local_default_address_space = "here".into();
    config.ipam.requires_request_replay = true;
    let p = start_with(config).await;
    let caps = ok(&p.socket, "IpamDriver.GetCapabilities", "").await;
    assert_eq!(
        caps,
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": true})
    );
    let spaces = ok(&p.socket, "IpamDriver.GetDefaultAddressSpaces", "").await;
    assert_eq!(
        spaces,
        json!({"LocalDefaultAddressSpace": "here", "GlobalDefaultAddressSpace": "shoal"})
    );
    assert!(
        p.driver.calls().is_empty(),
        "the handshake never reaches the driver"
    );
}

#[tokio::test]
async fn create_network_hands_the_driver_options_pools_and_the_internal_flag() {
    let p = start().await;
    // `docker network create -d shoal --ipam-driver shoal --subnet 10.99.7.0/24
    //  --aux-address router=10.99.7.250 -o foo=bar --internal NAME`
    let body = format!(
        r#"{{"NetworkID":"{NETWORK_ID}","Options":{{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{"foo":"bar"}},"com.docker.network.internal":true}},"IPv4Data":[{{"AddressSpace":"shoal-local","AuxAddresses":{{"router":"10.99.7.250/24"}},"Gateway":"10.99.7.1/24","Pool":"10.99.7.0/24"}}],"IPv6Data":[]}}
"#
    );
    assert_eq!(
        ok(&p.socket, "NetworkDriver.CreateNetwork", &body).await,
        json!({})
    );
    let [Call::CreateNetwork(req)] = &p.driver.calls()[..] else {
        panic!("{:?}", p.driver.calls());
    };
    assert_eq!(req.network_id, NETWORK_ID);
    assert_eq!(
        req.generic_options(),
        [("foo".to_string(), "bar".to_string())].into()
    );
    assert!(req.internal());
    assert!(!req.enable_ipv6());
    assert_eq!(
        req.ipv4_data,
        vec![IpamData {
            address_space: "shoal-local".into(),
            pool: "10.99.7.0/24".into(),
            gateway: "10.99.7.1/24".into(),
            aux_addresses: [("router".to_string(), "10.99.7.250/24".to_string())].into(),
        }]
    );
    assert!(req.ipv6_data.is_empty());
}

#[tokio::test]
async fn nulls_and_unknown_fields_in_a_request_read_as_defaults() {
    let p = start().await;
    // Go writes nil maps and slices as null; a newer engine adds fields.
    let body = format!(
        r#"{{"NetworkID":"{NETWORK_ID}","Options":null,"IPv4Data":[{{"AddressSpace":"s","Pool":"10.1.0.0/16","AuxAddresses":null}}],"IPv6Data":null,"SomethingNew":{{"x":1}}}}"#
    );
    ok(&p.socket, "NetworkDriver.CreateNetwork", &body).await;
    let [Call::CreateNetwork(req)] = &p.driver.calls()[..] else {
        panic!("{:?}", p.driver.calls());
    };
    assert!(req.options.is_empty());
    assert!(req.generic_options().is_empty());
    assert!(!req.internal());
    assert_eq!(req.ipv4_data[0].gateway, "");
    assert!(req.ipv6_data.is_empty());
}

#[tokio::test]
async fn an_endpoint_is_created_joined_left_and_deleted_with_the_fields_dockerd_sends() {
    let p = start().await;
    let s = &p.socket;

    // `docker run -p 18080:80 --network NAME ...`: the ports come along on the container's
    // first network only.
    let ports = r#"{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":18080,"HostPortEnd":18080}]}"#;
    let create = format!(
        r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}","Interface":{{"Address":"10.99.7.2/24","AddressIPv6":"","MacAddress":""}},"Options":{ports}}}
"#
    );
    // Nothing to add to what libnetwork already has: no Interface in the answer.
    assert_eq!(
        ok(s, "NetworkDriver.CreateEndpoint", &create).await,
        json!({})
    );

    let join = format!(
        r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}","SandboxKey":"/var/run/docker/netns/6b985864fafe","Options":{ports}}}
"#
    );
    assert_eq!(
        ok(s, "NetworkDriver.Join", &join).await,
        json!({"InterfaceName": {"SrcName": "shte0a1b2c3c", "DstPrefix": "eth"}}),
        "no Gateway: the engine routes other traffic through docker_gwbridge"
    );
    let info = format!(r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}"}}"#);
    assert_eq!(
        ok(s, "NetworkDriver.EndpointOperInfo", &info).await,
        json!({"Value": {"shoal.recorder": true}})
    );
    let pair = format!(r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}"}}"#);
    assert_eq!(ok(s, "NetworkDriver.Leave", &pair).await, json!({}));
    assert_eq!(
        ok(s, "NetworkDriver.DeleteEndpoint", &pair).await,
        json!({})
    );
    let net = format!(r#"{{"NetworkID":"{NETWORK_ID}"}}"#);
    assert_eq!(ok(s, "NetworkDriver.DeleteNetwork", &net).await, json!({}));

    let calls = p.driver.calls();
    assert_eq!(
        p.driver.names(),
        [
            "CreateEndpoint",
            "Join",
            "EndpointOperInfo",
            "Leave",
            "DeleteEndpoint",
            "DeleteNetwork"
        ]
    );
    let Call::CreateEndpoint(c) = &calls[0] else {
        unreachable!()
    };
    assert_eq!(c.network_id, NETWORK_ID);
    assert_eq!(c.endpoint_id, ENDPOINT_ID);
    assert_eq!(c.interface.address, "10.99.7.2/24");
    assert!(c.interface.mac_address.is_empty());
    assert!(c
        .options
        .contains_key("com.docker.network.endpoint.exposedports"));
    let Call::Join(j) = &calls[1] else {
        unreachable!()
    };
    assert_eq!(j.sandbox_key, "/var/run/docker/netns/6b985864fafe");
    assert_eq!(
        j.options["com.docker.network.portmap"][0]["HostPort"],
        18080
    );
    let Call::Leave(l) = &calls[3] else {
        unreachable!()
    };
    assert_eq!(
        (l.network_id.as_str(), l.endpoint_id.as_str()),
        (NETWORK_ID, ENDPOINT_ID)
    );
    let Call::DeleteNetwork(d) = &calls[5] else {
        unreachable!()
    };
    assert_eq!(d.network_id, NETWORK_ID);
}

#[tokio::test]
async fn join_answers_carry_gateways_and_static_routes_in_libnetwork_form() {
    let answer = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "vethabc".into(),
            dst_prefix: "eth".into(),
            dst_name: String::new(),
        }),
        gateway: "10.0.1.1".into(),
        gateway_ipv6: String::new(),
        static_routes: vec![
            StaticRoute {
                destination: "10.0.0.0/8".into(),
                route_type: RouteType::NextHop,
                next_hop: "10.0.1.254".into(),
            },
            StaticRoute {
                destination: "192.168.5.0/24".into(),
                route_type: RouteType::Connected,
                next_hop: String::new(),
            },
        ],
        disable_gateway_service: true,
    };
    let wire = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        wire,
        json!({
            "InterfaceName": {"SrcName": "vethabc", "DstPrefix": "eth"},
            "Gateway": "10.0.1.1",
            "StaticRoutes": [
                {"Destination": "10.0.0.0/8", "RouteType": 0, "NextHop": "10.0.1.254"},
                {"Destination": "192.168.5.0/24", "RouteType": 1}
            ],
            "DisableGatewayService": true
        })
    );
    assert_eq!(
        serde_json::from_value::<JoinResponse>(wire).unwrap(),
        answer
    );
    assert!(serde_json::from_value::<StaticRoute>(json!({"RouteType": 7})).is_err());
}

#[tokio::test]
async fn ipam_hands_out_a_pool_a_gateway_and_addresses_then_takes_them_back() {
    let p = start().await;
    let s = &p.socket;
    let pool = ok(
        s,
        "IpamDriver.RequestPool",
        r#"{"AddressSpace":"shoal-local","Pool":"10.99.7.0/24","SubPool":"","Options":{},"V6":false}
"#,
    )
    .await;
    assert_eq!(
        pool,
        json!({"PoolID": "shoal-local/10.99.7.0/24", "Pool": "10.99.7.0/24"})
    );
    let gateway = ok(
        s,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"shoal-local/10.99.7.0/24","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}
"#,
    )
    .await;
    assert_eq!(gateway, json!({"Address": "10.99.7.1/24"}));
    // An endpoint address: Go's nil Options map arrives as null.
    let any = ok(
        s,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"shoal-local/10.99.7.0/24","Address":"","Options":null}
"#,
    )
    .await;
    assert_eq!(any, json!({"Address": "10.99.7.2/24"}));
    // `docker run --ip 10.99.7.7`: the address comes plain.
    let chosen = ok(
        s,
        "IpamDriver.RequestAddress",
        r#"{"PoolID":"shoal-local/10.99.7.0/24","Address":"10.99.7.7","Options":{}}
"#,
    )
    .await;
    assert_eq!(chosen, json!({"Address": "10.99.7.7/24"}));
    ok(
        s,
        "IpamDriver.ReleaseAddress",
        r#"{"PoolID":"shoal-local/10.99.7.0/24","Address":"10.99.7.2"}"#,
    )
    .await;
    ok(
        s,
        "IpamDriver.ReleasePool",
        r#"{"PoolID":"shoal-local/10.99.7.0/24"}"#,
    )
    .await;

    let calls = p.driver.calls();
    let Call::RequestPool(rp) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(
        (rp.address_space.as_str(), rp.pool.as_str(), rp.v6),
        ("shoal-local", "10.99.7.0/24", false)
    );
    let Call::RequestAddress(gw) = &calls[1] else {
        panic!("{calls:?}")
    };
    assert!(gw.is_gateway());
    let Call::RequestAddress(ep) = &calls[2] else {
        panic!("{calls:?}")
    };
    assert!(!ep.is_gateway() && ep.address.is_empty());
    let Call::RequestAddress(fixed) = &calls[3] else {
        panic!("{calls:?}")
    };
    assert_eq!(fixed.address, "10.99.7.7");
    assert_eq!(
        calls[4],
        Call::ReleaseAddress(ReleaseAddressRequest {
            pool_id: "shoal-local/10.99.7.0/24".into(),
            address: "10.99.7.2".into(),
        })
    );
    assert_eq!(
        calls[5],
        Call::ReleasePool(ReleasePoolRequest {
            pool_id: "shoal-local/10.99.7.0/24".into()
        })
    );
}

#[tokio::test]
async fn swarm_discovery_and_connectivity_calls_reach_the_driver() {
    let p = start().await;
    let s = &p.socket;
    let allocated = ok(
        s,
        "NetworkDriver.AllocateNetwork",
        &format!(
            r#"{{"NetworkID":"{NETWORK_ID}","Options":{{"com.docker.network.driver.overlay.vxlanid_list":"4097"}},"IPv4Data":[{{"AddressSpace":"GlobalDefault","Gateway":"10.0.1.1/24","Pool":"10.0.1.0/24"}}],"IPv6Data":null}}"#
        ),
    )
    .await;
    assert_eq!(allocated, json!({"Options": {}}));
    ok(
        s,
        "NetworkDriver.FreeNetwork",
        &format!(r#"{{"NetworkID":"{NETWORK_ID}"}}"#),
    )
    .await;
    let node = r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"192.0.2.7","BindAddress":"0.0.0.0","Self":false}}"#;
    ok(s, "NetworkDriver.DiscoverNew", node).await;
    ok(s, "NetworkDriver.DiscoverDelete", node).await;
    ok(
        s,
        "NetworkDriver.ProgramExternalConnectivity",
        &format!(
            r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}","Options":{{"com.docker.network.portmap":[{{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}}]}}}}"#
        ),
    )
    .await;
    ok(
        s,
        "NetworkDriver.RevokeExternalConnectivity",
        &format!(r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}"}}"#),
    )
    .await;
    let calls = p.driver.calls();
    assert_eq!(
        p.driver.names(),
        [
            "AllocateNetwork",
            "FreeNetwork",
            "DiscoverNew",
            "DiscoverDelete",
            "ProgramExternalConnectivity",
            "RevokeExternalConnectivity"
        ]
    );
    let Call::AllocateNetwork(a) = &calls[0] else {
        unreachable!()
    };
    assert_eq!(
        a.options["com.docker.network.driver.overlay.vxlanid_list"],
        "4097"
    );
    assert_eq!(a.ipv4_data[0].pool, "10.0.1.0/24");
    let Call::DiscoverNew(d) = &calls[2] else {
        unreachable!()
    };
    assert_eq!(d.discovery_type, 1);
    assert_eq!(d.discovery_data["Address"], "192.0.2.7");
    let Call::ProgramExternalConnectivity(x) = &calls[4] else {
        unreachable!()
    };
    assert_eq!(x.options["com.docker.network.portmap"][0]["HostPort"], 8080);
}

/// A driver that implements only what it must, to see the defaults answer.
struct Minimal;

impl Driver for Minimal {
    async fn create_network(&self, _: CreateNetworkRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn delete_network(&self, _: NetworkRef) -> Result<(), PluginError> {
        Ok(())
    }
    async fn create_endpoint(
        &self,
        _: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        Ok(CreateEndpointResponse::default())
    }
    async fn delete_endpoint(&self, _: EndpointRef) -> Result<(), PluginError> {
        Ok(())
    }
    async fn join(&self, _: JoinRequest) -> Result<JoinResponse, PluginError> {
        Ok(JoinResponse::default())
    }
    async fn leave(&self, _: EndpointRef) -> Result<(), PluginError> {
        Ok(())
    }
    async fn request_pool(
        &self,
        _: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        Ok(RequestPoolResponse::default())
    }
    async fn release_pool(&self, _: ReleasePoolRequest) -> Result<(), PluginError> {
        Ok(())
    }
    async fn request_address(
        &self,
        _: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        Ok(RequestAddressResponse::default())
    }
    async fn release_address(&self, _: ReleaseAddressRequest) -> Result<(), PluginError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_driver_with_only_the_required_calls_answers_the_optional_ones_with_success() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("minimal.sock");
    let server = tokio::spawn(serve(bind(&socket).unwrap(), Arc::new(Minimal)));
    let pair = format!(r#"{{"NetworkID":"{NETWORK_ID}","EndpointID":"{ENDPOINT_ID}"}}"#);
    let net = format!(r#"{{"NetworkID":"{NETWORK_ID}"}}"#);
    assert_eq!(
        ok(&socket, "NetworkDriver.EndpointOperInfo", &pair).await,
        json!({"Value": {}})
    );
    assert_eq!(
        ok(&socket, "NetworkDriver.AllocateNetwork", &net).await,
        json!({"Options": {}})
    );
    for call in ["FreeNetwork"] {
        assert_eq!(
            ok(&socket, &format!("NetworkDriver.{call}"), &net).await,
            json!({})
        );
    }
    for call in ["ProgramExternalConnectivity", "RevokeExternalConnectivity"] {
        assert_eq!(
            ok(&socket, &format!("NetworkDriver.{call}"), &pair).await,
            json!({})
        );
    }
    for call in ["DiscoverNew", "DiscoverDelete"] {
        let body = r#"{"DiscoveryType":1,"DiscoveryData":{}}"#;
        assert_eq!(
            ok(&socket, &format!("NetworkDriver.{call}"), body).await,
            json!({})
        );
    }
    server.abort();
}

#[tokio::test]
async fn a_driver_error_reaches_the_engine_as_err_with_a_failure_status() {
    let p = start().await;
    p.driver.fail(
        "CreateNetwork",
        "network `web`: VXLAN ID 4097 is taken on this node",
    );
    let a = post(
        &p.socket,
        "NetworkDriver.CreateNetwork",
        &format!(r#"{{"NetworkID":"{NETWORK_ID}","Options":{{}},"IPv4Data":[],"IPv6Data":[]}}"#),
    )
    .await;
    // The engine's plugin client reads Err on any status but 200 and shows it as
    // "NetworkDriver.CreateNetwork: <Err>"; 404 would mean "not implemented".
    assert_eq!(a.status, 500);
    assert_eq!(a.content_type, "application/vnd.docker.plugins.v1.2+json");
    assert_eq!(
        a.body,
        json!({"Err": "network `web`: VXLAN ID 4097 is taken on this node"})
    );

    // The IPAM client reads the same Err on a non-200 status (on a 200 it would look at
    // `Error`).
    let a = post(
        &p.socket,
        "IpamDriver.ReleasePool",
        r#"{"PoolID":"nobody/10.0.0.0/8"}"#,
    )
    .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.body,
        json!({"Err": "address pool `nobody/10.0.0.0/8` was not handed out by shoal"})
    );
}

#[tokio::test]
async fn a_garbage_body_is_answered_with_err_and_never_reaches_the_driver() {
    let p = start().await;
    for body in ["{not json", "", "null", r#"{"NetworkID": 7}"#, "[1,2]"] {
        let a = post(&p.socket, "NetworkDriver.CreateNetwork", body).await;
        assert_eq!(a.status, 400, "body {body:?} answered {}", a.body);
        let err = a.body["Err"]
            .as_str()
            .unwrap_or_else(|| panic!("{}", a.body));
        assert!(
            err.starts_with("NetworkDriver.CreateNetwork: the request body is not"),
            "{err}"
        );
    }
    let a = post(&p.socket, "IpamDriver.RequestAddress", "\u{1}\u{2}").await;
    assert_eq!(a.status, 400);
    assert!(p.driver.calls().is_empty());
}

#[tokio::test]
async fn an_unknown_call_is_404_which_the_engine_reads_as_not_implemented() {
    let p = start().await;
    let a = post(&p.socket, "NetworkDriver.GwAllocCheck", r#"{"Options":{}}"#).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.body,
        json!({"Err": "NetworkDriver.GwAllocCheck is not implemented by the shoal network plugin"})
    );
    let a = post_raw(&p.socket, "GET", "Plugin.Activate", "").await;
    assert_eq!(a.status, 405);
    assert!(a.body["Err"].is_string());
}

#[tokio::test]
async fn bind_makes_a_socket_only_root_can_use_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/docker/plugins/shoal.sock");
    let _listener = bind(&socket).unwrap();
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let folder = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(folder.permissions().mode() & 0o777, 0o700);
    // Nothing of the private bind folder is left beside the socket.
    let left: Vec<_> = std::fs::read_dir(socket.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["shoal.sock"]);
}

#[tokio::test]
async fn bind_replaces_a_stale_socket_but_not_a_live_one_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shoal.sock");

    // Left by a process that died: bound, then closed without removing the file.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let listener = bind(&socket).unwrap();
    let server = tokio::spawn(serve(listener, Arc::new(Recorder::new())));
    ok(&socket, "Plugin.Activate", "").await;

    let live = bind(&socket).unwrap_err();
    assert_eq!(live.kind(), std::io::ErrorKind::AddrInUse, "{live}");
    // The live socket still answers.
    ok(&socket, "Plugin.Activate", "").await;
    server.abort();

    let file = dir.path().join("precious.sock");
    std::fs::write(&file, "data").unwrap();
    let err = bind(&file).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
}

#[test]
fn socket_paths_are_in_the_engines_plugin_folder() {
    assert_eq!(
        socket_path("shoal"),
        Path::new("/run/docker/plugins/shoal.sock")
    );
}
