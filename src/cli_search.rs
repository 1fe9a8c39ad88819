//! `lograft search` and `lograft tail`: the query API from a terminal.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::search::{Hit, SearchResponse};

/// Which node to ask, and with what credentials.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// Node to ask. Default: the node on this machine (its config and local token are read).
    #[arg(long, env = "LOGRAFT_URL")]
    pub url: Option<String>,
    /// API token (`lograft token create`).
    #[arg(long, env = "LOGRAFT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA to verify an https:// node against (besides the system roots).
    #[arg(long, env = "LOGRAFT_CA")]
    pub ca: Option<PathBuf>,
    /// Where the local token was read or looked for (added to a 401).
    #[arg(skip)]
    pub token_hint: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// Query, e.g. `error AND runner:nginx` (empty: everything).
    #[arg(default_value = "")]
    pub query: String,
    /// Start of the time range: RFC 3339, a date, or relative (`-15m`, `now-1d`).
    #[arg(long, allow_hyphen_values = true, default_value = "-15m")]
    pub from: String,
    /// End of the time range (default: now and later).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Maximum hits (or top values) to print.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the top values of a field instead of hits (`level`, `fields.host`, ...).
    #[arg(long, value_name = "FIELD", conflicts_with_all = ["histogram", "fields"])]
    pub top: Option<String>,
    /// Print counts over time instead of hits.
    #[arg(long, conflicts_with = "fields")]
    pub histogram: bool,
    /// Bucket width for --histogram (`1m`, `1h`; chosen from the range when absent).
    #[arg(long, requires = "histogram")]
    pub interval: Option<String>,
    /// Print the fields present in the matches, with their types and share.
    #[arg(long)]
    pub fields: bool,
    /// Print the API response as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Query the new lines must match (empty: every line).
    #[arg(default_value = "")]
    pub query: String,
    /// Print each hit as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub remote: Remote,
}

impl Remote {
    /// With no `--url`, the node on this machine and its local token.
    fn resolve(&mut self) {
        self.token_hint = crate::cli_local::fill(&mut self.url, &mut self.token, &mut self.ca);
    }

    /// The server's error, with where the local token came from when it was refused.
    fn failure(&self, status: reqwest::StatusCode, message: &str) -> anyhow::Error {
        match (&self.token_hint, status) {
            (Some(hint), reqwest::StatusCode::UNAUTHORIZED) => {
                anyhow::anyhow!("{status}: {message} ({hint})")
            }
            _ => anyhow::anyhow!("{status}: {message}"),
        }
    }

    fn url(&self) -> &str {
        self.url.as_deref().unwrap_or("http://127.0.0.1:7700")
    }

    fn request(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<reqwest::blocking::Response> {
        let client = crate::tls::blocking_client(self.ca.as_deref())?;
        let mut request = client
            .get(format!("{}{path}", self.url().trim_end_matches('/')))
            .query(params);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .with_context(|| format!("cannot reach lograft at {}", self.url()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(body);
            return Err(self.failure(status, &message));
        }
        Ok(response)
    }
}

/// Log text is data: control characters are replaced so a line cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

fn print_hit(out: &mut impl Write, hit: &Hit, colour: bool) -> std::io::Result<()> {
    let level = if hit.level.is_empty() {
        "-"
    } else {
        &hit.level
    };
    let (start, end) = match (colour, level) {
        (true, "error" | "fatal" | "critical") => ("\x1b[31m", "\x1b[0m"),
        (true, "warn" | "warning") => ("\x1b[33m", "\x1b[0m"),
        (true, _) => ("\x1b[2m", "\x1b[0m"),
        _ => ("", ""),
    };
    writeln!(
        out,
        "{start}{} {} {} {level}{end} {}",
        hit.ts,
        printable(&hit.node),
        printable(&hit.runner),
        printable(&hit.message)
    )
}

pub fn search(mut args: SearchArgs) -> anyhow::Result<ExitCode> {
    args.remote.resolve();
    let mut params = vec![("q", args.query.clone()), ("from", args.from.clone())];
    if let Some(to) = &args.to {
        params.push(("to", to.clone()));
    }
    let (path, kind) = if let Some(field) = &args.top {
        params.push(("field", field.clone()));
        params.push(("size", args.limit.to_string()));
        ("/api/v1/top", "top")
    } else if args.histogram {
        if let Some(interval) = &args.interval {
            params.push(("interval", interval.clone()));
        }
        ("/api/v1/histogram", "histogram")
    } else if args.fields {
        ("/api/v1/fields", "fields")
    } else {
        params.push(("limit", args.limit.to_string()));
        ("/api/v1/search", "search")
    };
    let body = args
        .remote
        .request(path, &params)?
        .text()
        .context("reading the response")?;
    let value: Value = serde_json::from_str(&body).context("unexpected response")?;
    warn_partial(&value["nodes"]);
    if args.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    match kind {
        "top" => {
            for entry in value["values"].as_array().into_iter().flatten() {
                let shown = match &entry["value"] {
                    Value::String(s) => printable(s),
                    other => other.to_string(),
                };
                writeln!(out, "{:>10}  {shown}", entry["count"])?;
            }
            writeln!(out, "{:>10}  (other values)", value["other"])?;
        }
        "histogram" => {
            let buckets = value["buckets"].as_array().cloned().unwrap_or_default();
            let max = buckets
                .iter()
                .filter_map(|b| b["count"].as_u64())
                .max()
                .unwrap_or(0)
                .max(1);
            for bucket in &buckets {
                let count = bucket["count"].as_u64().unwrap_or(0);
                let bar = "#".repeat(((count * 50).div_ceil(max)) as usize);
                writeln!(
                    out,
                    "{} {:>9} {bar}",
                    bucket["ts"].as_str().unwrap_or(""),
                    count
                )?;
            }
            writeln!(
                out,
                "-- {} matches, {} buckets",
                value["total"],
                value["interval"].as_str().unwrap_or("")
            )?;
        }
        "fields" => {
            for field in value["fields"].as_array().into_iter().flatten() {
                let share = field["share"].as_f64().unwrap_or(0.0) * 100.0;
                writeln!(
                    out,
                    "{:<40} {:<8} {share:>5.1}%",
                    field["name"].as_str().unwrap_or(""),
                    field["type"].as_str().unwrap_or("")
                )?;
            }
            writeln!(out, "-- from the newest {} matches", value["sampled"])?;
        }
        _ => {
            let result: SearchResponse =
                serde_json::from_value(value).context("unexpected response")?;
            let colour = std::io::stdout().is_terminal();
            for hit in &result.hits {
                print_hit(&mut out, hit, colour)?;
            }
            writeln!(
                out,
                "-- {} of {} matches ({} ms)",
                result.hits.len(),
                result.total,
                result.took_ms
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A search over several nodes that some did not answer: say so on stderr (results are
/// partial).
fn warn_partial(nodes: &Value) {
    for failed in nodes["failed"].as_array().into_iter().flatten() {
        eprintln!(
            "-- partial results: node {} did not answer: {}",
            printable(failed["node"].as_str().unwrap_or("?")),
            printable(failed["error"].as_str().unwrap_or(""))
        );
    }
}

pub fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let mut remote = args.remote;
    remote.resolve();
    // A live stream has no overall deadline.
    let response = {
        let client = crate::tls::blocking_client(remote.ca.as_deref())?;
        let mut request = client
            .get(format!(
                "{}/api/v1/tail",
                remote.url().trim_end_matches('/')
            ))
            .query(&[("q", args.query.as_str())])
            .timeout(std::time::Duration::from_secs(365 * 86_400));
        if let Some(token) = remote.token.take() {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .with_context(|| format!("cannot reach lograft at {}", remote.url()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body: Value = response.json().unwrap_or(Value::Null);
            return Err(remote.failure(status, body["error"]["message"].as_str().unwrap_or("")));
        }
        response
    };
    let colour = std::io::stdout().is_terminal();
    let mut event = String::new();
    for line in BufReader::new(response).lines() {
        let line = line.context("reading the stream")?;
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
            continue;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let mut out = std::io::stdout().lock();
        match event.as_str() {
            "dropped" => writeln!(out, "-- {data} lines skipped: this terminal fell behind")?,
            // Over several nodes: which did not answer, and which stopped or came back.
            "nodes" => warn_partial(&serde_json::from_str(data).unwrap_or(Value::Null)),
            "node_failed" | "node_back" => {
                let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                let node = printable(value["node"].as_str().unwrap_or("?"));
                match value["error"].as_str() {
                    Some(error) => {
                        eprintln!("-- node {node} stopped answering: {}", printable(error))
                    }
                    None => eprintln!("-- node {node} is back"),
                }
            }
            _ if args.json => writeln!(out, "{data}")?,
            _ => {
                if let Ok(hit) = serde_json::from_str::<Hit>(data) {
                    print_hit(&mut out, &hit, colour)?;
                }
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
