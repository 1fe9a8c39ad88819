//! `lograft user ...` and `lograft token ...`: on a running node through its API, or offline on
//! the data dir of a stopped node.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::auth::{Auth, AuthSettings, Role};
use crate::cli::{ClusterCommand, DeployCommand, Target, TokenCommand, UserCommand};
use crate::cluster::{LocalStore, OfflineStore};
use crate::config::NodeConfig;

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (at least 12 characters; it is echoed): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// A management call, done either way.
enum Via {
    Offline(Arc<Auth>, tokio::runtime::Runtime, Arc<OfflineStore>),
    Online {
        url: String,
        token: String,
        client: reqwest::blocking::Client,
    },
}

impl Via {
    fn open(target: Target) -> anyhow::Result<Via> {
        let offline_config = match (&target.config, &target.data_dir) {
            (Some(path), _) => Some(NodeConfig::load(Some(path))?),
            (None, Some(data_dir)) => Some(NodeConfig {
                data_dir: data_dir.clone(),
                ..NodeConfig::default()
            }),
            (None, None) => None,
        };
        if let Some(config) = offline_config {
            let store = LocalStore::open(&config.store_dir()).with_context(|| {
                format!(
                    "opening the config store of {} (is the node running? then use --url and --token)",
                    config.data_dir.display()
                )
            })?;
            // Changes made offline go through Raft when the node next starts.
            let store = Arc::new(OfflineStore::open(Arc::new(store))?);
            let auth = Arc::new(Auth::new(
                store.clone(),
                AuthSettings {
                    session_ttl: Duration::from_secs(1),
                    login_attempts_per_minute: 1,
                },
            ));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            return Ok(Via::Offline(auth, runtime, store));
        }
        let (mut url, mut token, mut ca) = (target.url, target.token, target.ca);
        let hint = crate::cli_local::fill(&mut url, &mut token, &mut ca);
        let url = url.unwrap_or_else(|| "http://127.0.0.1:7700".to_string());
        let Some(token) = token else {
            let hint = hint.map(|hint| format!(" ({hint})")).unwrap_or_default();
            bail!(
                "give an admin API token with --token (or LOGRAFT_TOKEN), or act offline with --config{hint}"
            );
        };
        Ok(Via::Online {
            url: url.trim_end_matches('/').to_string(),
            token,
            client: crate::tls::blocking_client(ca.as_deref())?,
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let Via::Online { url, token, client } = self else {
            unreachable!("online only")
        };
        let mut request = client
            .request(method, format!("{url}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request
            .send()
            .with_context(|| format!("cannot reach lograft at {url}"))?;
        let status = response.status();
        let text = response.text()?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(text);
            bail!("{status}: {message}");
        }
        Ok(value)
    }
}

fn role(text: &str) -> anyhow::Result<Role> {
    text.parse::<Role>().map_err(anyhow::Error::msg)
}

pub fn user(command: UserCommand, target: Target) -> anyhow::Result<ExitCode> {
    let via = Via::open(target)?;
    match (command, &via) {
        (
            UserCommand::Add {
                name,
                role: role_text,
            },
            Via::Offline(auth, rt, _),
        ) => {
            let role = role(&role_text)?;
            rt.block_on(auth.add_user(&name, role, &read_password()?))?;
            println!("added user {name} ({role})");
        }
        (
            UserCommand::Add {
                name,
                role: role_text,
            },
            Via::Online { .. },
        ) => {
            role(&role_text)?;
            let body = json!({"name": name, "role": role_text, "password": read_password()?});
            via.call(reqwest::Method::POST, "/api/v1/users", Some(body))?;
            println!("added user {name} ({role_text})");
        }
        (UserCommand::Passwd { name }, Via::Offline(auth, rt, _)) => {
            rt.block_on(auth.set_password(&name, &read_password()?))?;
            println!("changed the password of {name}");
        }
        (UserCommand::Passwd { name }, Via::Online { .. }) => {
            let body = json!({"password": read_password()?});
            via.call(
                reqwest::Method::PUT,
                &format!("/api/v1/users/{name}/password"),
                Some(body),
            )?;
            println!("changed the password of {name}");
        }
        (UserCommand::Del { name }, Via::Offline(auth, rt, _)) => {
            rt.block_on(auth.delete_user(&name))?;
            println!("deleted user {name}");
        }
        (UserCommand::Del { name }, Via::Online { .. }) => {
            via.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/users/{name}"),
                None,
            )?;
            println!("deleted user {name}");
        }
        (UserCommand::List, Via::Offline(auth, _, _)) => {
            for (name, role) in auth.users()? {
                println!("{name}\t{role}");
            }
        }
        (UserCommand::List, Via::Online { .. }) => {
            for user in via
                .call(reqwest::Method::GET, "/api/v1/users", None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{}\t{}",
                    user["name"].as_str().unwrap_or(""),
                    user["role"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn token(command: TokenCommand, target: Target) -> anyhow::Result<ExitCode> {
    let via = Via::open(target)?;
    match (command, &via) {
        (
            TokenCommand::Create {
                name,
                role: role_text,
            },
            Via::Offline(auth, rt, _),
        ) => {
            let (_, token) = rt.block_on(auth.create_token(&name, role(&role_text)?))?;
            println!("{token}");
        }
        (
            TokenCommand::Create {
                name,
                role: role_text,
            },
            Via::Online { .. },
        ) => {
            role(&role_text)?;
            let created = via.call(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": name, "role": role_text})),
            )?;
            println!("{}", created["token"].as_str().unwrap_or_default());
        }
        (TokenCommand::List, Via::Offline(auth, _, _)) => {
            for token in auth.tokens()? {
                println!(
                    "{}\t{}\t{}\t{}",
                    token.id, token.name, token.role, token.created
                );
            }
        }
        (TokenCommand::List, Via::Online { .. }) => {
            for token in via
                .call(reqwest::Method::GET, "/api/v1/tokens", None)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{}\t{}\t{}\t{}",
                    token["id"].as_str().unwrap_or(""),
                    token["name"].as_str().unwrap_or(""),
                    token["role"].as_str().unwrap_or(""),
                    token["created"].as_str().unwrap_or("")
                );
            }
        }
        (TokenCommand::Revoke { id }, Via::Offline(auth, rt, _)) => {
            rt.block_on(auth.revoke_token(&id))?;
            println!("revoked token {id}");
        }
        (TokenCommand::Revoke { id }, Via::Online { .. }) => {
            via.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                None,
            )?;
            println!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cluster(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClusterCommand::Token { ttl, uses, target } => {
            let via = Via::open(target)?;
            match &via {
                Via::Offline(_, runtime, store) => {
                    // Kept with the node's offline changes: valid once the node runs.
                    let ttl = match &ttl {
                        Some(text) => crate::config::parse_duration(text)
                            .map_err(|reason| anyhow::anyhow!("--ttl: {reason}"))?,
                        None => crate::cluster::join_token::DEFAULT_TTL,
                    };
                    let minted = runtime.block_on(crate::cluster::join_token::mint(
                        store.as_ref(),
                        "cli:offline",
                        ttl,
                        uses.unwrap_or(1),
                    ))?;
                    println!("{}", minted.token);
                }
                Via::Online { .. } => {
                    let value = via.call(
                        reqwest::Method::POST,
                        "/api/v1/cluster/join-tokens",
                        Some(json!({"ttl": ttl, "uses": uses})),
                    )?;
                    println!("{}", value["token"].as_str().unwrap_or_default());
                }
            }
        }
        ClusterCommand::Tokens { target } => {
            let via = Via::open(target)?;
            let records = match &via {
                Via::Offline(_, _, store) => crate::cluster::join_token::list(store.as_ref())?
                    .iter()
                    .map(crate::cluster::join_token::describe)
                    .collect(),
                Via::Online { .. } => {
                    via.call(reqwest::Method::GET, "/api/v1/cluster/join-tokens", None)?["tokens"]
                        .clone()
                }
            };
            for token in records.as_array().into_iter().flatten() {
                println!(
                    "{}\t{} {}\tuses left {}\tby {}",
                    token["id"].as_str().unwrap_or_default(),
                    if token["expired"] == true {
                        "expired"
                    } else {
                        "expires"
                    },
                    token["expires_at"].as_str().unwrap_or_default(),
                    token["uses_left"],
                    token["created_by"].as_str().unwrap_or_default()
                );
            }
        }
        ClusterCommand::RevokeToken { id, target } => {
            let via = Via::open(target)?;
            match &via {
                Via::Offline(_, runtime, store) => {
                    if !runtime.block_on(crate::cluster::join_token::revoke(store.as_ref(), &id))? {
                        anyhow::bail!("no join token {id:?}");
                    }
                }
                Via::Online { .. } => {
                    via.call(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/cluster/join-tokens/{id}"),
                        None,
                    )?;
                }
            }
            println!("join token {id} revoked");
        }
        ClusterCommand::Join {
            peer,
            token,
            url,
            admin_token,
            ca,
        } => {
            let via = Via::open(Target {
                config: None,
                data_dir: None,
                url,
                token: admin_token,
                ca,
            })?;
            let value = via.call(
                reqwest::Method::POST,
                "/api/v1/cluster/join",
                Some(json!({"peer": peer, "token": token})),
            )?;
            println!(
                "node {} joined the cluster of {peer}",
                value["node"].as_str().unwrap_or_default()
            );
        }
        ClusterCommand::Status { target } => {
            let value =
                online(target)?.call(reqwest::Method::GET, "/api/v1/cluster/nodes", None)?;
            print_nodes(&value);
        }
        ClusterCommand::Leave { target } => {
            online(target)?.call(reqwest::Method::POST, "/api/v1/cluster/leave", None)?;
            println!(
                "this node left the cluster; stop it, or start it on a fresh data dir to begin again"
            );
        }
        ClusterCommand::Remove { node, target } => {
            online(target)?.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/cluster/nodes/{node}"),
                None,
            )?;
            println!("removed {node} from the cluster");
        }
        ClusterCommand::Tag { tag, node, target } => {
            let via = online(target)?;
            let node = match node {
                Some(node) => node,
                None => {
                    let value = via.call(reqwest::Method::GET, "/api/v1/cluster/nodes", None)?;
                    value["self"].as_str().unwrap_or_default().to_string()
                }
            };
            via.call(
                reqwest::Method::PUT,
                &format!("/api/v1/cluster/nodes/{node}/tag"),
                Some(json!({"tag": tag})),
            )?;
            println!("{node} is tagged {tag:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `lograft deploy ...`: through the running node's `/api/v1/deployments`. Executions are
/// waited for, printing the log as it grows; the exit code says whether it succeeded.
pub fn deploy(command: DeployCommand, target: Target) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    let via = online(target)?;
    let read_file = |path: &std::path::Path| -> anyhow::Result<Value> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    };
    // Every item of a paged list (`?page=1, 2, ...` until a page is empty).
    let pages = |path: &str, key: &str| -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        for page in 1.. {
            let answer = via.call(Method::GET, &format!("{path}?page={page}"), None)?;
            let got = answer[key].as_array().cloned().unwrap_or_default();
            if got.is_empty() {
                break;
            }
            items.extend(got);
        }
        Ok(items)
    };
    let run = |id: &str, execute_type: u8| -> anyhow::Result<ExitCode> {
        via.call(
            Method::POST,
            &format!("/api/v1/deployments/{id}/execute"),
            Some(json!({"executeType": execute_type})),
        )?;
        let mut printed = 0usize;
        loop {
            let signal = via.call(
                Method::GET,
                &format!("/api/v1/deployments/{id}/signal"),
                None,
            )?;
            // The whole log, printing what is new.
            let lines = pages(&format!("/api/v1/deployments/{id}/log"), "data")?;
            for line in lines.iter().skip(printed) {
                println!("{}", line.as_str().unwrap_or_default());
            }
            printed = printed.max(lines.len());
            if signal["over"] == true {
                return Ok(if signal["success"] == true {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    match command {
        DeployCommand::List => {
            for d in pages("/api/v1/deployments", "deployments")? {
                println!(
                    "{}  {:<14} {}",
                    d["id"].as_str().unwrap_or_default(),
                    d["status"].as_str().unwrap_or_default(),
                    d["name"].as_str().unwrap_or_default()
                );
            }
        }
        DeployCommand::Show { id } => {
            let value = via.call(Method::GET, &format!("/api/v1/deployments/{id}"), None)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        DeployCommand::Create { file } => {
            let value = via.call(Method::POST, "/api/v1/deployments", Some(read_file(&file)?))?;
            println!("{}", value["id"].as_str().unwrap_or_default());
        }
        DeployCommand::Edit { id, file } => {
            via.call(
                Method::PUT,
                &format!("/api/v1/deployments/{id}"),
                Some(read_file(&file)?),
            )?;
            println!("deployment {id} changed; it is prepare again (deploy it to roll it out)");
        }
        DeployCommand::Plan { id } => {
            let value = via.call(Method::GET, &format!("/api/v1/deployments/{id}/plan"), None)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        DeployCommand::Deploy { id } => return run(&id, 2),
        DeployCommand::Start { id } => return run(&id, 0),
        DeployCommand::Stop { id } => return run(&id, 1),
        DeployCommand::Log { id } => {
            for line in pages(&format!("/api/v1/deployments/{id}/log"), "data")? {
                println!("{}", line.as_str().unwrap_or_default());
            }
        }
        DeployCommand::Delete { id } => {
            via.call(Method::DELETE, &format!("/api/v1/deployments/{id}"), None)?;
            println!("deployment {id} deleted, with the runners it wrote");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Cluster commands other than `token` need the running node.
fn online(target: Target) -> anyhow::Result<Via> {
    if target.config.is_some() || target.data_dir.is_some() {
        bail!(
            "this cluster command needs the running node: use --url (and LOGRAFT_TOKEN); a node joins on its first start with [cluster] join and join_token in its config"
        );
    }
    Via::open(target)
}

fn print_nodes(value: &Value) {
    println!(
        "{:<20} {:<8} {:<7} {:<12} {:<28} {:<9} {:>7}  LAST HEARTBEAT",
        "NODE", "ROLE", "STATUS", "TAG", "URL", "VERSION", "RUNNERS"
    );
    for node in value["nodes"].as_array().into_iter().flatten() {
        let text = |key: &str| node[key].as_str().unwrap_or("-").to_string();
        let marker = if node["self"].as_bool() == Some(true) {
            "*"
        } else {
            ""
        };
        println!(
            "{:<20} {:<8} {:<7} {:<12} {:<28} {:<9} {:>7}  {}",
            format!("{}{marker}", text("id")),
            text("role"),
            text("status"),
            text("tag"),
            text("url"),
            text("version"),
            node["runners"].as_u64().unwrap_or(0),
            text("last_heartbeat"),
        );
    }
}
