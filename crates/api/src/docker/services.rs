//! `/services`: list (with `status`), inspect (with `insertDefaults`), create, update, remove
//! (logs are in `logs`).

use super::*;
use shoal_manager::controlapi::NewRegistryAuth;
use shoal_types::registry::RegistryAuth;

/// Task counts of every service, in one pass over the tasks.
pub(super) fn task_counts(state: &ClusterState) -> HashMap<&str, (u64, u64, u64)> {
    let mut counts: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for t in state.tasks.iter() {
        let c = counts.entry(t.service_id.as_str()).or_default();
        if t.status.state == TaskState::Running {
            c.0 += 1;
        }
        if t.status.state == TaskState::Complete {
            c.1 += 1;
        }
        if t.desired_state == TaskState::Running {
            c.2 += 1;
        }
    }
    counts
}

pub(super) fn service_status(
    counts: &HashMap<&str, (u64, u64, u64)>,
    s: &Service,
) -> ServiceStatus {
    let (running, completed, desired_running) =
        counts.get(s.id.as_str()).copied().unwrap_or_default();
    let desired = if let Some(r) = &s.spec.mode.replicated {
        r.replicas.unwrap_or(1)
    } else if let Some(j) = &s.spec.mode.replicated_job {
        j.max_concurrent.unwrap_or(1)
    } else {
        desired_running
    };
    ServiceStatus {
        running_tasks: running,
        desired_tasks: desired,
        completed_tasks: completed,
    }
}

/// A JSON answer serialized straight from the state, without copying the objects.
pub(super) fn json_bytes(bytes: Vec<u8>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

pub(super) async fn service_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Response> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::SERVICE_FILTERS)?;
    for m in f.get("mode") {
        if m != "replicated" && m != "global" && m != "replicated-job" && m != "global-job" {
            return Err(HttpError::bad_request(format!(
                "Invalid filter: 'mode'='{m}'"
            )));
        }
    }
    let with_status = q.flag("status");
    let m = d.manager()?;
    let state = m.replica().read();
    let counts = if with_status {
        task_counts(&state)
    } else {
        HashMap::new()
    };
    let mut out = Vec::with_capacity(state.services.len() * 384);
    out.push(b'[');
    let mut first = true;
    for s in state.services.iter().filter(|s| {
        f.match_id_prefix(&s.id)
            && f.match_name_prefix(&s.spec.name)
            && f.match_labels("label", &s.spec.labels)
            && f.match_exact("mode", s.spec.mode.name())
            && f.match_exact("runtime", s.spec.task_template.runtime_name())
    }) {
        if !first {
            out.push(b',');
        }
        first = false;
        let written = if with_status {
            let mut s = s.clone();
            s.service_status = Some(service_status(&counts, &s));
            serde_json::to_writer(&mut out, &s)
        } else {
            serde_json::to_writer(&mut out, s)
        };
        written.map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    }
    out.push(b']');
    Ok(json_bytes(out))
}

/// `insertDefaults=true` (what `docker service inspect` asks for) shows Swarm's defaults in the
/// spec, like Docker does; the stored spec keeps only what the user set.
pub(super) async fn service_inspect(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Service>> {
    let q = Query::parse(q.as_deref())?;
    let m = d.manager()?;
    let state = m.replica().read();
    let mut s = state.services.resolve(&id)?.clone();
    if q.flag("insertDefaults") {
        s.spec = s.spec.with_defaults();
    }
    Ok(Json(s))
}

/// The credentials of `X-Registry-Auth` (`--with-registry-auth`): `None` without the header,
/// `Some(None)` for a header that carries none.
fn registry_auth(headers: &HeaderMap) -> HttpResult<Option<Option<RegistryAuth>>> {
    let Some(value) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| HttpError::bad_request("invalid X-Registry-Auth header: not ASCII"))?;
    if value.is_empty() {
        return Ok(None);
    }
    RegistryAuth::from_header(value)
        .map(Some)
        .map_err(|e| HttpError::bad_request(e.to_string()))
}

/// The credentials an update leaves the service with: those sent, else as `registryAuthFrom`
/// says (Docker's rule).
fn new_registry_auth(
    sent: Option<Option<RegistryAuth>>,
    from: Option<&str>,
) -> HttpResult<NewRegistryAuth> {
    Ok(match (sent, from) {
        (Some(given), _) => NewRegistryAuth::Given(given),
        (None, None | Some("") | Some("spec")) => NewRegistryAuth::FromSpec,
        (None, Some("previous-spec")) => NewRegistryAuth::FromPreviousSpec,
        (None, Some(other)) => {
            return Err(HttpError::bad_request(format!(
                "unsupported registryAuthFrom value {other:?}: use spec or previous-spec"
            )))
        }
    })
}

pub(super) async fn service_create(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<swarm::ServiceCreateResponse>)> {
    let spec: ServiceSpec = json(&body)?;
    let auth = registry_auth(&headers)?.flatten();
    let (id, warnings) = d.manager()?.create_service(spec, auth).await?;
    Ok((
        StatusCode::CREATED,
        Json(swarm::ServiceCreateResponse { id, warnings }),
    ))
}

pub(super) async fn service_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Json<swarm::ServiceUpdateResponse>> {
    let q = Query::parse(q.as_deref())?;
    let auth = new_registry_auth(registry_auth(&headers)?, q.get("registryAuthFrom"))?;
    let version = q.version("service")?;
    let rollback = match q.get("rollback") {
        None | Some("") => false,
        Some("previous") => true,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "unrecognized rollback option {other}"
            )))
        }
    };
    let spec: ServiceSpec = if rollback {
        json_or_default(&body)?
    } else {
        json(&body)?
    };
    let warnings = d
        .manager()?
        .update_service(&id, version, spec, rollback, auth)
        .await?;
    Ok(Json(swarm::ServiceUpdateResponse { warnings }))
}

pub(super) async fn service_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_service(&id).await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_credentials_win_else_registry_auth_from_decides() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("X-Registry-Auth", HeaderValue::from_str(v).unwrap());
            h
        };
        let sent = registry_auth(&headers("eyJ1c2VybmFtZSI6InUifQ==")).unwrap();
        let NewRegistryAuth::Given(Some(a)) =
            new_registry_auth(sent, Some("previous-spec")).unwrap()
        else {
            panic!("the sent credentials");
        };
        assert_eq!(a.username, "u");
        // `{}`: a header without credentials clears them.
        let sent = registry_auth(&headers("e30=")).unwrap();
        assert_eq!(
            new_registry_auth(sent, None).unwrap(),
            NewRegistryAuth::Given(None)
        );
        assert_eq!(registry_auth(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            new_registry_auth(None, None).unwrap(),
            NewRegistryAuth::FromSpec
        );
        assert_eq!(
            new_registry_auth(None, Some("spec")).unwrap(),
            NewRegistryAuth::FromSpec
        );
        assert_eq!(
            new_registry_auth(None, Some("previous-spec")).unwrap(),
            NewRegistryAuth::FromPreviousSpec
        );
        let e = new_registry_auth(None, Some("elsewhere")).unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("registryAuthFrom"), "{}", e.1);
        let e = registry_auth(&headers("not base64!")).unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.starts_with("invalid X-Registry-Auth header"), "{}", e.1);
    }
}
