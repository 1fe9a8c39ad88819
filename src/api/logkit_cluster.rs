//! logkit's cluster API (seed 000) as logkit 1.5.6 answers it: `/logkit/cluster/...` with the
//! `tag` and `url` filters, logkit's envelope and error codes (400 when no slave matches or the
//! request is wrong, 503 when a change failed on a slave, with each slave's error).
//!
//! Who is a master and who a slave is each node's `[compat.logkit] role`: `master` nodes answer
//! as masters and take no runners from cluster pushes, `slave` nodes are listed as slaves and
//! answer as logkit slaves do (`ismaster` false, no slaves of their own), `both` (the default)
//! is both. The slaves are the cluster's lograft nodes that are not masters, and the logkit
//! slaves that registered (`POST /logkit/cluster/register`, kept in the replicated store under
//! `compat/logkit/slaves/` with their `last_touch`): a fleet can move from logkit to lograft
//! one node at a time.
//!
//! For lograft nodes a change is a Raft write (a config applied to a tag is written for every
//! matching node in one entry; each node then reconciles its runners and refuses what its
//! allowlist does not permit). For logkit slaves it is logkit's per-node API, called on the
//! slave's URL; a registration is accepted only for a URL inside `compat.logkit.anonymous_from`,
//! so registering cannot make lograft send requests anywhere else.
//!
//! lograft adds `name` (the lograft node's name) to the entries of lograft nodes in `slaves`,
//! `status` and `configs`; logkit's clients ignore fields they do not know.
//!
//! Differences on purpose: `DELETE /logkit/cluster/slaves` forgets registered logkit slaves and
//! removes lost lograft nodes, but keeps live lograft nodes (removing one for good is
//! `lograft cluster remove`).

use std::time::Duration;

use axum::Extension;
use axum::extract::{MatchedPath, Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::logkit::{Lk, answer, config_map, done, logkit_body, logkit_view, ok, status_map};
use super::runners::keep_masked_secrets;
use super::{ApiError, AppState, CLUSTER_SECRET_HEADER};
use crate::auth::Principal;
use crate::cluster::Op;
use crate::collect::{Allowlist, RunnerConfig, runner_key};
use crate::config::LogkitRole;

/// Where registered logkit slaves are kept: `compat/logkit/slaves/<url>`.
const REGISTRY: &str = "compat/logkit/slaves/";

/// Registered logkit slaves at most (each is a Raft entry, written at every registration).
const MAX_REGISTERED: usize = 1000;

/// How long a call to a slave may take.
const SLAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// logkit's slave filters: empty means any.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    url: String,
}

impl Filter {
    fn matches(&self, slave: &Slave) -> bool {
        (self.tag.is_empty() || slave.tag == self.tag)
            && (self.url.is_empty()
                || slave.url.trim_end_matches('/') == self.url.trim_end_matches('/'))
    }

    /// logkit's answer when no slave matches.
    fn none_match(&self, code: &'static str) -> Lk {
        Lk::bad(
            code,
            format!(
                "the slaves(tag = '{}', url = '{}') is not found",
                self.tag, self.url
            ),
        )
    }

    fn describe(&self) -> String {
        format!("tag={:?} url={:?}", self.tag, self.url)
    }
}

/// A registered logkit slave, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registered {
    url: String,
    tag: String,
    last_touch: String,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A lograft node, by name.
    Member(String),
    /// A logkit slave that registered.
    Logkit,
}

#[derive(Debug, Clone)]
struct Slave {
    url: String,
    tag: String,
    status: &'static str,
    last_touch: String,
    kind: Kind,
}

/// Every slave, lograft nodes first (by name), then registered logkit slaves (by URL).
fn all_slaves(state: &AppState) -> Result<Vec<Slave>, ApiError> {
    if state.config.logkit.role == LogkitRole::Slave {
        return Ok(Vec::new());
    }
    let views = state.membership.view()?;
    let mut slaves: Vec<Slave> = state
        .membership
        .nodes()?
        .into_iter()
        .filter(|n| n.labels.get("logkit_role").map(String::as_str) != Some("master"))
        .map(|n| {
            let view = views.iter().find(|v| v.id == n.name);
            Slave {
                url: n.url.clone(),
                tag: n.tag.clone(),
                status: view.map_or("lost", |v| v.status),
                last_touch: view
                    .and_then(|v| v.last_heartbeat.clone())
                    .unwrap_or_default(),
                kind: Kind::Member(n.name),
            }
        })
        .collect();
    let cluster = &state.config.cluster;
    for entry in state.store.list(REGISTRY)? {
        let Ok(registered) = serde_json::from_str::<Registered>(&entry.value) else {
            continue;
        };
        let age = chrono::DateTime::parse_from_rfc3339(&registered.last_touch)
            .map(|t| chrono::Utc::now().signed_duration_since(t))
            .ok()
            .and_then(|d| d.to_std().ok())
            .unwrap_or(Duration::MAX);
        let status = if age < cluster.bad_after {
            "ok"
        } else if age < cluster.lost_after {
            "bad"
        } else {
            "lost"
        };
        slaves.push(Slave {
            url: registered.url,
            tag: registered.tag,
            status,
            last_touch: registered.last_touch,
            kind: Kind::Logkit,
        });
    }
    Ok(slaves)
}

fn matching(state: &AppState, filter: &Filter, code: &'static str) -> Result<Vec<Slave>, Lk> {
    Ok(all_slaves(state)
        .map_err(|e| Lk::from_api(code, e))?
        .into_iter()
        .filter(|s| filter.matches(s))
        .collect())
}

/// At least one slave must match a change.
fn targets(state: &AppState, filter: &Filter, code: &'static str) -> Result<Vec<Slave>, Lk> {
    let slaves = matching(state, filter, code)?;
    if slaves.is_empty() {
        return Err(filter.none_match(code));
    }
    Ok(slaves)
}

/// A change that failed on some slaves: 503, with each slave's error.
fn failed_on(code: &'static str, failures: Vec<String>) -> Lk {
    Lk {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        code,
        message: failures.join("; "),
    }
}

/// Call a logkit slave's per-node API; its `data` on `L200`, else its message.
async fn call_logkit(
    state: &AppState,
    method: reqwest::Method,
    url: &str,
    path: &str,
    body: Option<String>,
) -> Result<Value, String> {
    let mut request = state
        .peers
        .client
        .request(method, format!("{}{path}", url.trim_end_matches('/')))
        .timeout(SLAVE_TIMEOUT);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::search::remote::describe(&e)))?;
    let status = response.status();
    let value: Value = response
        .json()
        .await
        .map_err(|e| format!("{url}: HTTP {status}, not logkit's answer: {e}"))?;
    if value["code"] == "L200" {
        Ok(value.get("data").cloned().unwrap_or(Value::Null))
    } else {
        Err(format!(
            "{url}: {} {}",
            value["code"].as_str().unwrap_or(""),
            value["message"].as_str().unwrap_or("")
        ))
    }
}

/// Ask a lograft node for what `path` (an `/internal/v1/logkit/...` route) answers.
async fn call_member(state: &AppState, url: &str, path: &str) -> Result<Value, String> {
    let response = state
        .peers
        .client
        .get(format!("{url}{path}"))
        .header(CLUSTER_SECRET_HEADER, state.peers.secret.reveal())
        .timeout(SLAVE_TIMEOUT)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| crate::search::remote::describe(&e))?;
    response
        .json::<Value>()
        .await
        .map_err(|e| crate::search::remote::describe(&e))
}

pub async fn ping() -> Response {
    done()
}

pub async fn is_master(State(state): State<AppState>) -> Response {
    ok(Value::Bool(match state.config.logkit.role {
        LogkitRole::Master => true,
        LogkitRole::Slave => false,
        LogkitRole::Both => state.membership.is_voter(),
    }))
}

#[derive(Deserialize)]
struct RegisterBody {
    url: String,
    #[serde(default)]
    tag: String,
}

/// Whether lograft may call `url` as a logkit slave: `http(s)://<ip>:<port>` with the IP inside
/// `compat.logkit.anonymous_from`.
fn registrable(state: &AppState, url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.path().len() > 1
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(format!(
            "url {url:?} must be a logkit slave's address, http://<ip>:<port>"
        ));
    }
    let ip: std::net::IpAddr = parsed
        .host_str()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("url {url:?}: a logkit slave registers with an IP address"))?;
    if !state
        .config
        .logkit
        .anonymous_from
        .iter()
        .any(|net| net.contains(ip))
    {
        return Err(format!(
            "url {url:?} is outside compat.logkit.anonymous_from: this node only calls logkit \
             slaves on networks it trusts"
        ));
    }
    Ok(())
}

/// A logkit slave registers (and re-registers every few seconds) with its URL and tag. A
/// lograft node at that URL gets the tag; any other URL is a logkit slave, recorded with the
/// time it was heard.
pub async fn register(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Response {
    let result = async {
        let RegisterBody { url, tag } = serde_json::from_str(&body)
            .map_err(|e| Lk::bad("L2004", format!("invalid register body: {e}")))?;
        let url = url.trim_end_matches('/').to_string();
        let member = state
            .membership
            .nodes()
            .map_err(|e| Lk::from_api("L2004", e.into()))?
            .into_iter()
            .find(|n| n.url.trim_end_matches('/') == url);
        if let Some(node) = member {
            if node.tag != tag {
                super::cluster::change_tag(&state, &principal.name, &node.name, &tag)
                    .await
                    .map_err(|e| Lk::from_api("L2004", e))?;
            }
            return Ok(done());
        }
        registrable(&state, &url).map_err(|m| Lk::bad("L2004", m))?;
        let key = format!("{REGISTRY}{url}");
        let known = state
            .store
            .list(REGISTRY)
            .map_err(|e| Lk::from_api("L2004", e.into()))?;
        if known.len() >= MAX_REGISTERED && !known.iter().any(|e| e.key == key) {
            return Err(Lk::bad(
                "L2004",
                format!(
                    "{MAX_REGISTERED} logkit slaves are registered already: forget lost ones \
                     with DELETE /logkit/cluster/slaves?url=..."
                ),
            ));
        }
        let record = Registered {
            url: url.clone(),
            tag,
            last_touch: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        state
            .store
            .put(&key, serde_json::to_string(&record).expect("json"), None)
            .await
            .map_err(|e| Lk::from_api("L2004", e.into()))?;
        Ok(done())
    };
    answer(result.await)
}

pub async fn slaves(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    super::cluster::read_barrier_if_possible(&state).await;
    answer((|| {
        let list: Vec<Value> = matching(&state, &filter, "L2001")?
            .iter()
            .map(|s| {
                let mut entry = json!({"url": s.url, "tag": s.tag, "status": s.status, "last_touch": s.last_touch});
                if let Kind::Member(name) = &s.kind {
                    entry["name"] = json!(name);
                }
                entry
            })
            .collect();
        Ok(ok(Value::Array(list)))
    })())
}

/// logkit's meaning: take slaves off the list. A registered logkit slave is forgotten (a live
/// one registers again within seconds); a lost lograft node is removed from the cluster; a
/// live lograft node stays (`lograft cluster remove` removes one for good).
pub async fn delete_slaves(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<Filter>,
) -> Response {
    let result = async {
        let mut failures = Vec::new();
        for slave in targets(&state, &filter, "L2012")? {
            match slave.kind {
                Kind::Logkit => {
                    if let Err(err) = state
                        .store
                        .delete(&format!("{REGISTRY}{}", slave.url))
                        .await
                    {
                        failures.push(format!("{}: {err}", slave.url));
                    }
                }
                Kind::Member(name) if slave.status == "lost" => {
                    if let Err(err) =
                        super::cluster::remove_member(&state, &principal.name, &name).await
                    {
                        failures.push(format!("{name}: {err}"));
                    }
                }
                Kind::Member(name) => {
                    tracing::info!(node = %name, "DELETE /logkit/cluster/slaves keeps a live lograft node (remove it with `lograft cluster remove`)");
                }
            }
        }
        if !failures.is_empty() {
            return Err(failed_on("L2012", failures));
        }
        Ok(done())
    };
    answer(result.await)
}

/// The union of the runner names of the matching slaves.
pub async fn runners(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    super::cluster::read_barrier_if_possible(&state).await;
    let result = async {
        let mut names = std::collections::BTreeSet::new();
        for slave in matching(&state, &filter, "L2001")? {
            match &slave.kind {
                Kind::Member(name) => {
                    let prefix = crate::collect::node_runner_prefix(name);
                    for entry in state
                        .store
                        .list(&prefix)
                        .map_err(|e| Lk::from_api("L2001", e.into()))?
                    {
                        names.insert(entry.key[prefix.len()..].to_string());
                    }
                }
                Kind::Logkit => {
                    if let Ok(Value::Array(list)) = call_logkit(
                        &state,
                        reqwest::Method::GET,
                        &slave.url,
                        "/logkit/runners",
                        None,
                    )
                    .await
                    {
                        names.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
                    }
                }
            }
        }
        Ok(ok(json!(names)))
    };
    answer(result.await)
}

/// What each matching slave answers to a read: `(answer, error)`; `null` and the error when
/// the slave did not answer.
async fn ask_each(
    state: &AppState,
    slaves: Vec<Slave>,
    logkit_path: &'static str,
    internal_path: &'static str,
    own: fn(&AppState) -> Value,
    key: &'static str,
) -> Value {
    let asks = slaves.into_iter().map(|slave| async move {
        let answer = match &slave.kind {
            Kind::Member(name) if *name == state.membership.name() => Ok(own(state)),
            Kind::Member(name) if slave.status == "lost" => {
                Err(format!("node {name} is lost: no heartbeat recently"))
            }
            Kind::Member(_) => call_member(state, &slave.url, internal_path).await,
            Kind::Logkit => {
                call_logkit(state, reqwest::Method::GET, &slave.url, logkit_path, None).await
            }
        };
        let (value, error) = match answer {
            Ok(value) => (value, String::new()),
            Err(error) => (Value::Null, error),
        };
        let mut entry = json!({key: value, "tag": slave.tag, "error": error});
        if let Kind::Member(name) = &slave.kind {
            entry["name"] = json!(name);
        }
        (slave.url.clone(), entry)
    });
    let map: Map<String, Value> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .collect();
    Value::Object(map)
}

/// Each matching slave's runner status, asked of that slave.
pub async fn status(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    let result = async {
        let slaves = matching(&state, &filter, "L2002")?;
        Ok(ok(ask_each(
            &state,
            slaves,
            "/logkit/status",
            "/internal/v1/logkit/status",
            status_map,
            "status",
        )
        .await))
    };
    answer(result.await)
}

/// Node to node: this node's runner status map.
pub async fn internal_status(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(status_map(&state))
}

/// Each matching slave's configs, keyed as that slave keys them.
pub async fn configs(State(state): State<AppState>, Query(filter): Query<Filter>) -> Response {
    super::cluster::read_barrier_if_possible(&state).await;
    let result = async {
        let slaves = matching(&state, &filter, "L2003")?;
        Ok(ok(ask_each(
            &state,
            slaves,
            "/logkit/configs",
            "/internal/v1/logkit/configs",
            |state| config_map(state).unwrap_or(Value::Null),
            "configs",
        )
        .await))
    };
    answer(result.await)
}

/// The config `name` of the first matching slave that has it.
pub async fn config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    super::cluster::read_barrier_if_possible(&state).await;
    let result = async {
        for slave in targets(&state, &filter, "L2014")? {
            match &slave.kind {
                Kind::Member(node) => {
                    let entry = state
                        .store
                        .get(&runner_key(node, &name))
                        .map_err(|e| Lk::from_api("L2014", e.into()))?;
                    if let Some(config) =
                        entry.and_then(|e| serde_json::from_str::<RunnerConfig>(&e.value).ok())
                    {
                        return Ok(ok(logkit_view(&config)));
                    }
                }
                Kind::Logkit => {
                    let path = format!("/logkit/configs/{name}");
                    if let Ok(config) = call_logkit_owned(&state, &slave.url, &path).await {
                        return Ok(ok(config));
                    }
                }
            }
        }
        Err(Lk::bad(
            "L2014",
            format!(
                "no slave matching {} has a runner {name:?}",
                filter.describe()
            ),
        ))
    };
    answer(result.await)
}

async fn call_logkit_owned(state: &AppState, url: &str, path: &str) -> Result<Value, String> {
    call_logkit(state, reqwest::Method::GET, url, path, None).await
}

/// Check a config's shape here; each lograft node checks its own allowlist when it applies it.
async fn validate(body: String, name: String, code: &'static str) -> Result<Value, Lk> {
    let value = logkit_body(&body, &name).map_err(|m| Lk::bad(code, m))?;
    let text = value.to_string();
    let config = super::cpu_bound(move || {
        RunnerConfig::parse(&text, &Allowlist::shape_only()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| Lk::from_api(code, e))?
    .map_err(|m| Lk::bad(code, m))?;
    if config.name.starts_with('_') {
        return Err(Lk::bad(
            code,
            format!("runner names starting with '_' are reserved for lograft ({name:?})"),
        ));
    }
    Ok(value)
}

/// The end of a cluster-wide change: audited, then `L200`, or 503 with the errors of the
/// logkit slaves it failed on (the lograft nodes' part is written by then).
async fn finish(
    state: &AppState,
    principal: &Principal,
    action: &str,
    name: &str,
    filter: &Filter,
    code: &'static str,
    failures: Vec<String>,
) -> Result<Response, Lk> {
    let outcome = if failures.is_empty() { "ok" } else { "partial" };
    state
        .audit
        .record(
            &principal.name,
            &format!("cluster.runner.{action}"),
            &format!("{name} ({})", filter.describe()),
            outcome,
            None,
        )
        .await;
    if !failures.is_empty() {
        return Err(failed_on(code, failures));
    }
    Ok(done())
}

fn split(slaves: Vec<Slave>) -> (Vec<String>, Vec<String>) {
    let mut members = Vec::new();
    let mut logkits = Vec::new();
    for slave in slaves {
        match slave.kind {
            Kind::Member(name) => members.push(name),
            Kind::Logkit => logkits.push(slave.url),
        }
    }
    (members, logkits)
}

/// The same call on each logkit slave; the errors of those that failed.
async fn on_each_logkit(
    state: &AppState,
    urls: &[String],
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
) -> Vec<String> {
    let calls = urls
        .iter()
        .map(|url| call_logkit(state, method.clone(), url, path, body.map(str::to_string)));
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

/// Add runner `name` to every matching slave: the lograft nodes in one Raft entry (refused if
/// any has it), then each logkit slave.
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
    body: String,
) -> Response {
    let result = async {
        let (members, logkits) = split(targets(&state, &filter, "L2006")?);
        let mut value = validate(body, name.clone(), "L2006").await?;
        value["createtime"] = json!(now());
        let config: RunnerConfig =
            serde_json::from_value(value.clone()).map_err(|e| Lk::bad("L2006", e.to_string()))?;
        let json = serde_json::to_string(&config).expect("config serializes");
        let ops: Vec<Op> = members
            .iter()
            .map(|node| Op::Put {
                key: runner_key(node, &name),
                value: json.clone(),
                expected: Some(0),
            })
            .collect();
        if !ops.is_empty() {
            state
                .store
                .txn(ops)
                .await
                .map_err(|e| Lk::from_api("L2006", e.into()))?
                .into_result()
                .map_err(|err| match err {
                    crate::cluster::StoreError::Conflict { key, .. } => failed_on(
                        "L2006",
                        vec![format!("runner {name} already exists ({key})")],
                    ),
                    other => Lk::from_api("L2006", other.into()),
                })?;
        }
        let failures = on_each_logkit(
            &state,
            &logkits,
            reqwest::Method::POST,
            &format!("/logkit/configs/{name}"),
            Some(&value.to_string()),
        )
        .await;
        finish(
            &state, &principal, "create", &name, &filter, "L2006", failures,
        )
        .await
    };
    answer(result.await)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Change runner `name` on every matching lograft node, in one Raft entry: all or none, and
/// refused (503, as logkit's per-slave failure) if a matching node lacks it.
async fn change_each(
    state: &AppState,
    members: &[String],
    name: &str,
    code: &'static str,
    change: impl Fn(RunnerConfig) -> Result<RunnerConfig, Lk>,
) -> Result<(), Lk> {
    let mut ops = Vec::new();
    let mut missing = Vec::new();
    for node in members {
        let key = runner_key(node, name);
        match state
            .store
            .get(&key)
            .map_err(|e| Lk::from_api(code, e.into()))?
        {
            Some(entry) => {
                let old: RunnerConfig = serde_json::from_str(&entry.value)
                    .map_err(|e| Lk::from_api(code, ApiError::Internal(format!("{key}: {e}"))))?;
                let new = change(old)?;
                ops.push(Op::Put {
                    key,
                    value: serde_json::to_string(&new).expect("config serializes"),
                    expected: Some(entry.mod_revision),
                });
            }
            None => missing.push(format!("runner {name} not found on {node}")),
        }
    }
    if !missing.is_empty() {
        return Err(failed_on(code, missing));
    }
    if !ops.is_empty() {
        state
            .store
            .txn(ops)
            .await
            .map_err(|e| Lk::from_api(code, e.into()))?
            .into_result()
            .map_err(|e| failed_on(code, vec![e.to_string()]))?;
    }
    Ok(())
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
    body: String,
) -> Response {
    let result = async {
        let (members, logkits) = split(targets(&state, &filter, "L2011")?);
        let mut value = validate(body, name.clone(), "L2011").await?;
        value["createtime"] = json!(now());
        change_each(&state, &members, &name, "L2011", |old| {
            let mut new = value.clone();
            keep_masked_secrets(&mut new, &serde_json::to_value(&old).unwrap_or_default());
            let mut config: RunnerConfig =
                serde_json::from_value(new.clone()).map_err(|e| Lk::bad("L2011", e.to_string()))?;
            config.carry_state_from(&old, &new);
            Ok(config)
        })
        .await?;
        let failures = on_each_logkit(
            &state,
            &logkits,
            reqwest::Method::PUT,
            &format!("/logkit/configs/{name}"),
            Some(&value.to_string()),
        )
        .await;
        finish(
            &state, &principal, "replace", &name, &filter, "L2011", failures,
        )
        .await
    };
    answer(result.await)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let result = async {
        let (members, logkits) = split(targets(&state, &filter, "L2007")?);
        let mut missing = Vec::new();
        let mut ops = Vec::new();
        for node in &members {
            let key = runner_key(node, &name);
            match state
                .store
                .get(&key)
                .map_err(|e| Lk::from_api("L2007", e.into()))?
            {
                Some(entry) => ops.push(Op::Delete {
                    key,
                    expected: Some(entry.mod_revision),
                }),
                None => missing.push(format!("runner {name} not found on {node}")),
            }
        }
        if !missing.is_empty() {
            return Err(failed_on("L2007", missing));
        }
        if !ops.is_empty() {
            state
                .store
                .txn(ops)
                .await
                .map_err(|e| Lk::from_api("L2007", e.into()))?
                .into_result()
                .map_err(|e| failed_on("L2007", vec![e.to_string()]))?;
        }
        let failures = on_each_logkit(
            &state,
            &logkits,
            reqwest::Method::DELETE,
            &format!("/logkit/configs/{name}"),
            None,
        )
        .await;
        finish(
            &state, &principal, "delete", &name, &filter, "L2007", failures,
        )
        .await
    };
    answer(result.await)
}

/// `start`, `stop` and `reset` (the last segment of the route) on every matching slave.
pub async fn set_state(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    matched: MatchedPath,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let action = matched
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let code = match action.as_str() {
        "start" => "L2008",
        "stop" => "L2009",
        _ => "L2010",
    };
    let result = async {
        let (members, logkits) = split(targets(&state, &filter, code)?);
        change_each(&state, &members, &name, code, |mut config| {
            match action.as_str() {
                "start" => config.stopped = false,
                "stop" => config.stopped = true,
                _ => config.reset_epoch += 1,
            }
            Ok(config)
        })
        .await?;
        let failures = on_each_logkit(
            &state,
            &logkits,
            reqwest::Method::POST,
            &format!("/logkit/configs/{name}/{action}"),
            None,
        )
        .await;
        finish(&state, &principal, &action, &name, &filter, code, failures).await
    };
    answer(result.await)
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
}

/// Master API: set the tag of the matching slaves.
pub async fn slaves_tag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<Filter>,
    body: String,
) -> Response {
    let result = async {
        let TagBody { tag } = serde_json::from_str(&body)
            .map_err(|e| Lk::bad("L2013", format!("invalid body: {e}")))?;
        let mut failures = Vec::new();
        for slave in targets(&state, &filter, "L2013")? {
            match slave.kind {
                Kind::Member(name) => {
                    if let Err(err) =
                        super::cluster::change_tag(&state, &principal.name, &name, &tag).await
                    {
                        failures.push(format!("{name}: {err}"));
                    }
                }
                Kind::Logkit => {
                    let body = json!({"tag": tag}).to_string();
                    if let Err(err) = call_logkit(
                        &state,
                        reqwest::Method::POST,
                        &slave.url,
                        "/logkit/cluster/tag",
                        Some(body),
                    )
                    .await
                    {
                        failures.push(err);
                        continue;
                    }
                    let record = Registered {
                        url: slave.url.clone(),
                        tag: tag.clone(),
                        last_touch: slave.last_touch.clone(),
                    };
                    if let Err(err) = state
                        .store
                        .put(
                            &format!("{REGISTRY}{}", slave.url),
                            serde_json::to_string(&record).expect("json"),
                            None,
                        )
                        .await
                    {
                        failures.push(format!("{}: {err}", slave.url));
                    }
                }
            }
        }
        if !failures.is_empty() {
            return Err(failed_on("L2013", failures));
        }
        Ok(done())
    };
    answer(result.await)
}

/// Slave API: set this node's tag.
pub async fn own_tag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Response {
    let result = async {
        let TagBody { tag } = serde_json::from_str(&body)
            .map_err(|e| Lk::bad("L2005", format!("invalid body: {e}")))?;
        let own_name = state.membership.name().to_string();
        super::cluster::change_tag(&state, &principal.name, &own_name, &tag)
            .await
            .map_err(|e| Lk::from_api("L2005", e))?;
        Ok(done())
    };
    answer(result.await)
}

/// How often a logkit slave registers with its master (logkit's own interval).
const REGISTER_EVERY: Duration = Duration::from_secs(15);

/// `[compat.logkit] master_url`: register with a logkit master as a logkit slave does, at
/// start and every 15 s, with this node's URL and tag, until shutdown. A failed registration
/// is logged and tried again at the next turn.
pub async fn register_with_logkit_master(
    master: String,
    membership: std::sync::Arc<dyn crate::cluster::Membership>,
    client: reqwest::Client,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let tag = membership
            .nodes()
            .ok()
            .and_then(|nodes| nodes.into_iter().find(|n| n.name == membership.name()))
            .map(|n| n.tag)
            .unwrap_or_default();
        let body = json!({"url": membership.url(), "tag": tag});
        let outcome = client
            .post(format!("{master}/logkit/cluster/register"))
            .json(&body)
            .timeout(SLAVE_TIMEOUT)
            .send()
            .await
            .map_err(|e| crate::search::remote::describe(&e))
            .and_then(|r| {
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", r.status()))
                }
            });
        match outcome {
            Ok(()) if failing => {
                tracing::info!(master = %master, "registered with the logkit master again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) if !failing => {
                tracing::warn!(master = %master, error = %error, "registering with the logkit master failed; trying again every 15 s");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(REGISTER_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}
