//! Executions: deploy/update, start and stop of a deployment, one at a time cluster-wide.
//!
//! The request returns at once; the work runs in a task on the node that took the request,
//! which holds the lease [`super::LEASE`] and renews it between steps. Each step appends a
//! line to the execution's log in the store. Every node watches the last execution: one that
//! is not over while its lease has expired (its node died) is taken over and failed, with the
//! reason in its log, so an execution is never left running.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{
    DeployError, Deployment, EXECUTIONS_PREFIX, LAST_KEY, LEASE, Placement, State, owned_key,
    owner_tag,
};
use crate::cluster::{ConfigStore, Membership, Op, StoreError};

/// What an execution does (seed 002's `executeType`: 0 start, 1 stop, 2 deploy/update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Start,
    Stop,
    Deployupdate,
}

impl Kind {
    pub fn from_execute_type(value: &Value) -> Result<Kind, DeployError> {
        let number = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match number {
            Some(0) => Ok(Kind::Start),
            Some(1) => Ok(Kind::Stop),
            Some(2) => Ok(Kind::Deployupdate),
            _ => Err(DeployError::Invalid(format!(
                "executeType: {value} is not 0 (start), 1 (stop) or 2 (deploy/update)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Stop => "stop",
            Kind::Deployupdate => "deployupdate",
        }
    }

    fn action(self) -> super::Action {
        match self {
            Kind::Start => super::Action::Start,
            Kind::Stop => super::Action::Stop,
            Kind::Deployupdate => super::Action::Deploy,
        }
    }

    fn outcome(self, success: bool) -> State {
        match (self, success) {
            (Kind::Start, true) => State::Startsuccess,
            (Kind::Start, false) => State::Startfailure,
            (Kind::Stop, true) => State::Stopsuccess,
            (Kind::Stop, false) => State::Stopfailure,
            (Kind::Deployupdate, true) => State::Deploysuccess,
            (Kind::Deployupdate, false) => State::Deployfailure,
        }
    }
}

/// The last execution of a deployment, kept in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Execution {
    pub deployment: String,
    pub kind: Kind,
    /// The lease holder running it: `<node>:<nonce>`.
    pub holder: String,
    pub started_unix_ms: u64,
    pub over: bool,
    pub success: bool,
    pub log: Vec<String>,
}

impl Execution {
    /// Seed 002's `executeResultSignal` result.
    pub fn signal(&self) -> Value {
        json!({"singnalType": self.kind.as_str(), "success": self.success, "over": self.over})
    }
}

/// How long the executing node's lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long start and stop wait for every node to report its runners.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn log_line(node: &str, message: &str) -> String {
    format!(
        "{} node {node} | {message}",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f")
    )
}

/// What a node answers to `/internal/v1/deploy/probe`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// Per runner config checked: `None` when this node takes it, else why not.
    #[serde(default)]
    pub refused: BTreeMap<String, String>,
    /// Per runner config checked: the files it would read now (file runners; at most 100).
    #[serde(default)]
    pub files: BTreeMap<String, Vec<String>>,
    /// The state of each runner asked about (`absent` when the node has none of that name).
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    pub version: String,
}

/// The deployment machinery of one node.
pub struct Deployer {
    pub store: Arc<dyn ConfigStore>,
    pub membership: Arc<dyn Membership>,
    pub client: reqwest::Client,
    pub secret: crate::auth::ClusterSecret,
    /// `[deploy] one_started`: at most one deployment started at a time (seed 002).
    pub one_started: bool,
}

impl Deployer {
    fn node(&self) -> String {
        self.membership.name().to_string()
    }

    /// Ask `node` about runner configs (`check`) and runner states (`states`).
    pub async fn probe(
        &self,
        node: &str,
        check: &[Value],
        states: &[String],
    ) -> Result<ProbeAnswer, String> {
        let record = self
            .membership
            .nodes()
            .map_err(|err| err.to_string())?
            .into_iter()
            .find(|n| n.name == node)
            .ok_or_else(|| format!("node {node} is not a member"))?;
        let response = self
            .client
            .post(format!("{}/internal/v1/deploy/probe", record.url))
            .header(crate::wire::CLUSTER_SECRET_HEADER, self.secret.reveal())
            .json(&json!({"check": check, "states": states}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|err| format!("cannot reach node {node}: {err}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|err| err.to_string())?;
        if !status.is_success() {
            return Err(format!("node {node} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|err| format!("node {node}'s answer: {err}"))
    }

    /// Take the execution lease under a new holder name (`<node>:<nonce>`, so two executions
    /// on one node are told apart); `None` while someone else holds it.
    async fn take_lease(&self) -> Result<Option<String>, DeployError> {
        let holder = format!("{}:{}", self.node(), super::new_id());
        Ok(self
            .store
            .acquire_lease(LEASE, &holder, LEASE_TTL)
            .await?
            .map(|_| holder))
    }

    /// The last execution (cluster-wide), if any.
    pub fn last(&self) -> Result<Option<Execution>, DeployError> {
        let Some(id) = self.store.get(LAST_KEY)? else {
            return Ok(None);
        };
        self.execution(&id.value)
    }

    pub fn execution(&self, deployment: &str) -> Result<Option<Execution>, DeployError> {
        Ok(self
            .store
            .get(&format!("{EXECUTIONS_PREFIX}{deployment}"))?
            .and_then(|entry| serde_json::from_str(&entry.value).ok()))
    }

    /// Refuse while an execution runs anywhere (seed 002: one action at a time).
    pub fn ensure_idle(&self) -> Result<(), DeployError> {
        if let Some(running) = self.last()?
            && !running.over
        {
            return Err(DeployError::Refused(format!(
                "an execution runs: {} of deployment {} (since {}); wait until it is over",
                running.kind.as_str(),
                running.deployment,
                chrono::DateTime::from_timestamp_millis(running.started_unix_ms as i64)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Start an execution of `kind` on deployment `id`: checked, recorded, then run in the
    /// background. Returns once it is recorded.
    pub async fn execute(self: &Arc<Self>, id: &str, kind: Kind) -> Result<(), DeployError> {
        self.store.read_barrier().await?;
        self.ensure_idle()?;
        let (deployment, _) = super::load(&*self.store, id)?;
        super::check(deployment.state(), kind.action())?;
        if kind == Kind::Start && self.one_started {
            let started: Vec<String> = super::list(&*self.store)?
                .into_iter()
                .filter(|d| d.id != id && d.state() == State::Startsuccess)
                .map(|d| format!("{} ({})", d.name, d.id))
                .collect();
            if !started.is_empty() {
                return Err(DeployError::Refused(format!(
                    "deployment {} is started: only one deployment may run at a time ([deploy] one_started); stop it first",
                    started.join(", ")
                )));
            }
        }
        let Some(holder) = self.take_lease().await? else {
            return Err(DeployError::Refused(
                "another execution is starting on another node; try again when it is over".into(),
            ));
        };
        let execution = Execution {
            deployment: id.to_string(),
            kind,
            holder: holder.clone(),
            started_unix_ms: now_ms(),
            over: false,
            success: false,
            log: vec![log_line(
                &self.node(),
                &format!(
                    "{} of deployment {} ({}) begins",
                    kind.as_str(),
                    deployment.name,
                    id
                ),
            )],
        };
        let ops = vec![
            Op::Put {
                key: format!("{EXECUTIONS_PREFIX}{id}"),
                value: serde_json::to_string(&execution).expect("json"),
                expected: None,
            },
            Op::Put {
                key: LAST_KEY.into(),
                value: id.to_string(),
                expected: None,
            },
        ];
        if let Err(err) = self.store.txn(ops).await {
            let _ = self.store.release_lease(LEASE, &holder).await;
            return Err(err.into());
        }
        let this = self.clone();
        tokio::spawn(async move { this.run(execution).await });
        Ok(())
    }

    async fn run(self: Arc<Self>, mut execution: Execution) {
        let id = execution.deployment.clone();
        let outcome = match execution.kind {
            Kind::Deployupdate => self.deploy(&mut execution).await,
            Kind::Start => self.settle(&mut execution, false).await,
            Kind::Stop => self.settle(&mut execution, true).await,
        };
        let success = match outcome {
            Ok(()) => true,
            Err(reason) => {
                self.append(&mut execution, &self.node(), &format!("failed: {reason}"))
                    .await;
                false
            }
        };
        if let Err(err) = self.finish(&mut execution, success).await {
            warn!(deployment = %id, error = %err, "could not record the end of an execution");
        }
        let _ = self.store.release_lease(LEASE, &execution.holder).await;
        info!(deployment = %id, kind = execution.kind.as_str(), success, "deployment execution over");
    }

    /// Append a log line (and renew the lease).
    async fn append(&self, execution: &mut Execution, node: &str, message: &str) {
        execution.log.push(log_line(node, message));
        let _ = self
            .store
            .acquire_lease(LEASE, &execution.holder, LEASE_TTL)
            .await;
        let _ = self
            .store
            .put(
                &format!("{EXECUTIONS_PREFIX}{}", execution.deployment),
                serde_json::to_string(&execution).expect("json"),
                None,
            )
            .await;
    }

    /// The execution is over: its outcome and the deployment's new state in one write.
    async fn finish(&self, execution: &mut Execution, success: bool) -> Result<(), DeployError> {
        execution.over = true;
        execution.success = success;
        let (mut deployment, revision) = super::load(&*self.store, &execution.deployment)?;
        deployment.status = Some(execution.kind.outcome(success));
        let line = log_line(
            &self.node(),
            &format!(
                "{} {}: deployment is {}",
                execution.kind.as_str(),
                if success { "succeeded" } else { "failed" },
                deployment.state().as_str()
            ),
        );
        execution.log.push(line);
        let ops = vec![
            Op::Put {
                key: format!("{}{}", super::DEPLOYMENTS_PREFIX, deployment.id),
                value: serde_json::to_string(&deployment).expect("json"),
                expected: Some(revision),
            },
            Op::Put {
                key: format!("{EXECUTIONS_PREFIX}{}", execution.deployment),
                value: serde_json::to_string(&execution).expect("json"),
                expected: None,
            },
        ];
        self.store.txn(ops).await?.into_result()?;
        Ok(())
    }

    /// Deploy/update: check every role on every target node, then write every runner that
    /// changed (stopped), the ownership marks and the removals in one transaction.
    async fn deploy(&self, execution: &mut Execution) -> Result<(), String> {
        let (mut deployment, revision) =
            super::load(&*self.store, &execution.deployment).map_err(|e| e.to_string())?;
        super::validate_roles(&deployment).map_err(|e| e.to_string())?;
        let nodes = self.membership.nodes().map_err(|e| e.to_string())?;
        let placement = super::placement(&deployment, &nodes).map_err(|e| e.to_string())?;
        let minimum = super::parse_version(&deployment.base.version);
        let mut problems = Vec::new();
        for (node, runners) in &placement {
            let status = self.membership.status_of(node);
            if status == "lost" {
                problems.push(format!("node {node} is lost"));
                continue;
            }
            let bodies: Vec<Value> = runners.values().cloned().collect();
            match self.probe(node, &bodies, &[]).await {
                Ok(answer) => {
                    if let (Some(minimum), Some(version)) =
                        (&minimum, super::parse_version(&answer.version))
                        && version < *minimum
                    {
                        problems.push(format!(
                            "node {node} runs lograft {} and base.version asks for {}",
                            answer.version, deployment.base.version
                        ));
                    }
                    for (runner, reason) in &answer.refused {
                        problems.push(format!("node {node} refuses runner {runner}: {reason}"));
                    }
                    for (runner, files) in &answer.files {
                        self.append(
                            execution,
                            node,
                            &format!(
                                "runner {runner}: matches {} file(s) now{}",
                                files.len(),
                                if files.is_empty() {
                                    String::new()
                                } else {
                                    format!(": {}", files.join(", "))
                                }
                            ),
                        )
                        .await;
                    }
                }
                Err(reason) => problems.push(reason),
            }
        }
        // Runners of the same name that this deployment does not own are never overwritten.
        for (node, runners) in &placement {
            for runner in runners.keys() {
                let key = crate::collect::runner_key(node, runner);
                let exists = self.store.get(&key).map_err(|e| e.to_string())?.is_some();
                let owner = self
                    .store
                    .get(&owned_key(node, runner))
                    .map_err(|e| e.to_string())?
                    .map(|e| e.value);
                let ours = owner
                    .as_deref()
                    .is_some_and(|o| o.starts_with(&format!("deployment:{}@", deployment.id)));
                if exists && !ours {
                    problems.push(format!(
                        "node {node} has a runner {runner} that this deployment does not own ({}); rename the role or remove that runner",
                        owner.unwrap_or_else(|| "made by hand".into())
                    ));
                }
            }
        }
        if !problems.is_empty() {
            for problem in &problems {
                self.append(execution, &self.node(), problem).await;
            }
            return Err(format!(
                "{} problem(s); nothing was written",
                problems.len()
            ));
        }
        let diff = super::diff(&deployment.deployed, &placement);
        let mut ops = Vec::new();
        let owner = owner_tag(&deployment);
        for (node, runners) in &placement {
            for (runner, body) in runners {
                let unchanged = deployment
                    .deployed
                    .get(node)
                    .and_then(|old| old.get(runner))
                    == Some(body);
                if unchanged {
                    continue;
                }
                let mut stored = body.clone();
                stored["stopped"] = Value::Bool(true);
                ops.push(Op::Put {
                    key: crate::collect::runner_key(node, runner),
                    value: stored.to_string(),
                    expected: None,
                });
                ops.push(Op::Put {
                    key: owned_key(node, runner),
                    value: owner.clone(),
                    expected: None,
                });
            }
        }
        for (node, runners) in &diff.removed {
            for runner in runners {
                ops.extend(removal(node, runner));
            }
        }
        deployment.deployed = placement.clone();
        deployment.deployed_revision = Some(deployment.revision);
        ops.push(Op::Put {
            key: format!("{}{}", super::DEPLOYMENTS_PREFIX, deployment.id),
            value: serde_json::to_string(&deployment).expect("json"),
            expected: Some(revision),
        });
        self.store
            .txn(ops)
            .await
            .and_then(|r| r.into_result())
            .map_err(|e| format!("writing the runners: {e}"))?;
        for (what, per_node) in [
            ("added", &diff.added),
            ("changed", &diff.changed),
            ("removed", &diff.removed),
            ("unchanged", &diff.unchanged),
        ] {
            for (node, runners) in per_node {
                for runner in runners {
                    self.append(execution, node, &format!("runner {runner}: {what}"))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// Start (`stop` false) or stop the deployment's runners, and wait until every target
    /// reports them so. A start that does not get there stops what did start.
    async fn settle(&self, execution: &mut Execution, stop: bool) -> Result<(), String> {
        let (deployment, _) =
            super::load(&*self.store, &execution.deployment).map_err(|e| e.to_string())?;
        self.set_stopped(&deployment.deployed, stop).await?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut pending: BTreeMap<String, String> = BTreeMap::new();
        let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
        loop {
            pending.clear();
            for (node, runners) in &deployment.deployed {
                let names: Vec<String> = runners.keys().cloned().collect();
                match self.probe(node, &[], &names).await {
                    Ok(answer) => {
                        for name in &names {
                            let state = answer
                                .states
                                .get(name)
                                .cloned()
                                .unwrap_or_else(|| "absent".into());
                            let done = if stop {
                                state == "stopped" || state == "absent"
                            } else {
                                !matches!(
                                    state.as_str(),
                                    "stopped" | "absent" | "starting" | "refused" | "error"
                                )
                            };
                            if done {
                                if reported.insert((node.clone(), name.clone())) {
                                    self.append(
                                        execution,
                                        node,
                                        &format!("runner {name}: {state}"),
                                    )
                                    .await;
                                }
                            } else {
                                pending.insert(format!("{node}/{name}"), state);
                            }
                        }
                    }
                    Err(reason) => {
                        for name in &names {
                            pending.insert(format!("{node}/{name}"), reason.clone());
                        }
                    }
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what: Vec<String> = pending
                    .iter()
                    .map(|(runner, state)| format!("{runner} is {state}"))
                    .collect();
                if !stop {
                    let _ = self.set_stopped(&deployment.deployed, true).await;
                    self.append(execution, &self.node(), "stopped what did start")
                        .await;
                }
                return Err(format!(
                    "not every runner got there within {} s: {}",
                    SETTLE_TIMEOUT.as_secs(),
                    what.join("; ")
                ));
            }
            let _ = self
                .store
                .acquire_lease(LEASE, &execution.holder, LEASE_TTL)
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Write every deployed runner with `stopped` in one transaction.
    async fn set_stopped(&self, deployed: &Placement, stopped: bool) -> Result<(), String> {
        let mut ops = Vec::new();
        for (node, runners) in deployed {
            for (runner, body) in runners {
                let mut stored = body.clone();
                stored["stopped"] = Value::Bool(stopped);
                ops.push(Op::Put {
                    key: crate::collect::runner_key(node, runner),
                    value: stored.to_string(),
                    expected: None,
                });
            }
        }
        self.store
            .txn(ops)
            .await
            .and_then(|r| r.into_result())
            .map(|_| ())
            .map_err(|e| format!("writing the runners: {e}"))
    }

    /// Delete a deployment: its runners go with it (one transaction).
    pub async fn delete(&self, id: &str) -> Result<(), DeployError> {
        self.store.read_barrier().await?;
        self.ensure_idle()?;
        let (deployment, revision) = super::load(&*self.store, id)?;
        super::check(deployment.state(), super::Action::Delete)?;
        let mut ops = Vec::new();
        for (node, runners) in &deployment.deployed {
            for runner in runners.keys() {
                ops.extend(removal(node, runner));
            }
        }
        ops.push(Op::Delete {
            key: format!("{}{id}", super::DEPLOYMENTS_PREFIX),
            expected: Some(revision),
        });
        ops.push(Op::Delete {
            key: format!("{EXECUTIONS_PREFIX}{id}"),
            expected: None,
        });
        self.store.txn(ops).await?.into_result()?;
        Ok(())
    }

    /// Create (no id) or change a deployment: edit in `cancel`, `stopsuccess` or
    /// `deployfailure` (back to `prepare`), or cancel (a body with `status: "cancel"`).
    /// Returns the stored deployment.
    pub async fn save(&self, mut incoming: Deployment) -> Result<Deployment, DeployError> {
        self.store.read_barrier().await?;
        self.ensure_idle()?;
        super::validate_roles(&incoming)?;
        let nodes = self.membership.nodes()?;
        super::placement(&incoming, &nodes)?;
        if incoming.id.is_empty() {
            incoming.id = super::new_id();
            incoming.status = Some(State::Prepare);
            incoming.revision = 1;
            let key = format!("{}{}", super::DEPLOYMENTS_PREFIX, incoming.id);
            self.store
                .put(
                    &key,
                    serde_json::to_string(&incoming).expect("json"),
                    Some(0),
                )
                .await?;
            return Ok(incoming);
        }
        let (current, revision) = super::load(&*self.store, &incoming.id)?;
        // The page sends the whole JSON back: `status: "cancel"` is a cancel unless the
        // deployment is cancelled already (then it is the edit that cancel allows).
        let next = if incoming.status == Some(State::Cancel) && current.state() != State::Cancel {
            super::check(current.state(), super::Action::Cancel)?;
            Deployment {
                status: Some(State::Cancel),
                ..current
            }
        } else {
            super::check(current.state(), super::Action::Edit)?;
            keep_masked(&mut incoming, &current);
            Deployment {
                status: Some(State::Prepare),
                revision: current.revision + 1,
                deployed: current.deployed,
                deployed_revision: current.deployed_revision,
                ..incoming
            }
        };
        let key = format!("{}{}", super::DEPLOYMENTS_PREFIX, next.id);
        self.store
            .put(
                &key,
                serde_json::to_string(&next).expect("json"),
                Some(revision),
            )
            .await
            .map_err(|err| match err {
                StoreError::Conflict { .. } => {
                    DeployError::Refused("the deployment changed meanwhile; read it again".into())
                }
                other => other.into(),
            })?;
        Ok(next)
    }

    /// Every node, every few seconds: an execution that is not over while nobody holds its
    /// lease (its node died) is failed here, so it never stays running.
    pub async fn watch_executions(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3)) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(err) = self.take_over().await {
                warn!(error = %err, "checking for an abandoned deployment execution");
            }
        }
    }

    async fn take_over(&self) -> Result<(), DeployError> {
        let Some(mut execution) = self.last()? else {
            return Ok(());
        };
        if execution.over {
            return Ok(());
        }
        let Some(holder) = self.take_lease().await? else {
            return Ok(()); // its node is alive and renewing
        };
        // Read again under the lease: it may have ended meanwhile.
        let Some(current) = self.execution(&execution.deployment)? else {
            let _ = self.store.release_lease(LEASE, &holder).await;
            return Ok(());
        };
        if current.over {
            let _ = self.store.release_lease(LEASE, &holder).await;
            return Ok(());
        }
        execution = current;
        let gone = execution
            .holder
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let previous = std::mem::replace(&mut execution.holder, holder.clone());
        warn!(deployment = %execution.deployment, previous, "taking over an execution whose node stopped renewing its lease");
        self.append(
            &mut execution,
            &self.node(),
            &format!(
                "node {gone}, which ran this execution, stopped; node {} takes it over",
                self.node()
            ),
        )
        .await;
        if execution.kind == Kind::Start
            && let Ok((deployment, _)) = super::load(&*self.store, &execution.deployment)
        {
            let _ = self.set_stopped(&deployment.deployed, true).await;
            self.append(&mut execution, &self.node(), "stopped what did start")
                .await;
        }
        self.append(
            &mut execution,
            &self.node(),
            "failed: its node stopped before it was over",
        )
        .await;
        self.finish(&mut execution, false).await?;
        let _ = self.store.release_lease(LEASE, &holder).await;
        Ok(())
    }
}

/// A deployed runner and its ownership mark, deleted.
fn removal(node: &str, runner: &str) -> [Op; 2] {
    [
        Op::Delete {
            key: crate::collect::runner_key(node, runner),
            expected: None,
        },
        Op::Delete {
            key: owned_key(node, runner),
            expected: None,
        },
    ]
}

/// Secrets read back masked and sent back so keep their stored values.
fn keep_masked(incoming: &mut Deployment, current: &Deployment) {
    for role in &mut incoming.roles {
        if let Some(old) = current.roles.iter().find(|r| r.role_name == role.role_name) {
            crate::collect::config::keep_masked_secrets(&mut role.role_body, &old.role_body);
        }
    }
}
