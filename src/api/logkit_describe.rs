//! The routes logkit's web UI and clients use to learn which plugins a node has and how to
//! configure them (`/logkit/{reader,parser,sender,transformer}/{usages,options,tooltips}`,
//! `parser/samplelogs`, `metric/keys`, `cleaner/options`, `errorcode`), in logkit's shape and
//! describing lograft's own readers, parsers, senders and transforms, with lograft's texts.

use axum::response::Response;
use serde_json::{Value, json};

use super::logkit::ok;

/// One option in logkit's form description shape.
struct Opt {
    key: &'static str,
    description: &'static str,
    default: &'static str,
    choices: &'static [&'static str],
    required: bool,
    advance: bool,
    tooltip: &'static str,
}

const fn opt(key: &'static str, description: &'static str, default: &'static str) -> Opt {
    Opt {
        key,
        description,
        default,
        choices: &[],
        required: false,
        advance: false,
        tooltip: "",
    }
}

impl Opt {
    const fn required(mut self) -> Opt {
        self.required = true;
        self
    }
    const fn advanced(mut self) -> Opt {
        self.advance = true;
        self
    }
    const fn choose(mut self, choices: &'static [&'static str]) -> Opt {
        self.choices = choices;
        self
    }
    const fn tip(mut self, tooltip: &'static str) -> Opt {
        self.tooltip = tooltip;
        self
    }

    fn to_json(&self, typed: bool) -> Value {
        let choose = !self.choices.is_empty();
        let mut value = json!({
            "KeyName": self.key,
            "ChooseOnly": choose,
            "Element": if choose { "radio" } else { "" },
            "ChooseOptions": if choose { json!(self.choices) } else { Value::Null },
            "Default": self.default,
            "DefaultNoUse": false,
            "Description": self.description,
            "CheckRegex": "",
            "style": "",
            "required": self.required,
            "placeholder": "",
            "Secret": false,
            "advance": self.advance,
            "muti_default_source": false,
        });
        if !self.tooltip.is_empty() {
            value["tooltip"] = json!(self.tooltip);
        }
        if typed {
            value["Type"] = json!("string");
        }
        value
    }
}

const READ_FROM: Opt =
    opt("read_from", "where a new file is read from", "oldest").choose(&["oldest", "newest"]);
const ENCODING: Opt =
    opt("encoding", "character encoding of the files", "utf-8").advanced().tip(
        "utf-8, gbk, gb18030, shift_jis, big5, euc-kr, windows-1252...; invalid bytes are replaced and counted",
    );
const HEAD_PATTERN: Opt = opt("head_pattern", "regex that starts a multiline record", "")
    .advanced()
    .tip("lines that do not match are joined to the record before them (stack traces)");

/// (name, usage, tooltip, options)
type Plugin = (&'static str, &'static str, &'static str, Vec<Opt>);

fn readers() -> Vec<Plugin> {
    vec![
        (
            "file",
            "one file (file mode)",
            "follows one file through rotation and truncation",
            vec![
                opt("log_path", "the file to read", "").required(),
                READ_FROM,
                ENCODING,
                HEAD_PATTERN,
            ],
        ),
        (
            "dir",
            "the files of a folder (dir mode)",
            "follows every file of a folder that matches valid_file_pattern",
            vec![
                opt("log_path", "the folder to read", "").required(),
                opt("valid_file_pattern", "which files of the folder", "*"),
                READ_FROM,
                ENCODING,
                HEAD_PATTERN,
            ],
        ),
        (
            "tailx",
            "the files matching a glob (tailx mode)",
            "follows every file matching a glob with *, ?, [..] and **",
            vec![
                opt("log_path", "the glob to read", "").required(),
                READ_FROM,
                ENCODING,
                HEAD_PATTERN,
            ],
        ),
        (
            "http",
            "lines POSTed to /api/v1/ingest/<runner>",
            "each line of the body is one record",
            vec![],
        ),
        (
            "bulk",
            "Elasticsearch _bulk documents for index <runner>",
            "shippers that speak the Elasticsearch bulk API send here",
            vec![],
        ),
        (
            "syslog",
            "syslog over UDP and TCP",
            "RFC 3164 and RFC 5424, octet-counted or newline-framed over TCP",
            vec![opt("listen", "the address to listen on", "0.0.0.0:514").required()],
        ),
    ]
}

fn parsers() -> Vec<Plugin> {
    let timestamp = || {
        vec![
            opt("timestamp_key", "field holding the event time", "").advanced(),
            opt("timezone", "zone of times without one", "UTC").advanced(),
        ]
    };
    let with = |mut first: Vec<Opt>| {
        first.extend(timestamp());
        first
    };
    vec![
        (
            "raw",
            "one record per line, as text",
            "the line is the record's message",
            vec![],
        ),
        (
            "json",
            "JSON objects",
            "ts/time/@timestamp, level and msg/message are recognized; other keys become fields",
            timestamp(),
        ),
        (
            "logfmt",
            "key=value pairs",
            "logfmt lines: key=value key2=\"a value\"",
            timestamp(),
        ),
        (
            "regex",
            "a regex with named groups",
            "each named group becomes a field",
            with(vec![opt("regex", "the pattern", "").required()]),
        ),
        (
            "nginx",
            "nginx access logs",
            "the combined format, or the log_format given",
            vec![opt("nginx_log_format", "nginx's log_format string", "").advanced()],
        ),
        (
            "apache",
            "Apache access logs",
            "the combined format",
            vec![],
        ),
        (
            "syslog",
            "syslog lines",
            "RFC 3164, RFC 5424 and rsyslog's file formats",
            vec![],
        ),
        (
            "csv",
            "CSV lines",
            "columns named and typed by csv_schema",
            with(vec![
                opt("csv_schema", "the columns: \"name type, ...\"", "").required(),
                opt("csv_splitter", "the separator", ","),
            ]),
        ),
    ]
}

fn senders() -> Vec<Plugin> {
    vec![
        (
            "local",
            "this node's index",
            "records are indexed here and searchable on every node",
            vec![],
        ),
        (
            "discard",
            "discard",
            "records are read and counted, then dropped",
            vec![],
        ),
        (
            "file",
            "a local file",
            "each record is appended as a JSON line; the path must be inside collect.write_paths",
            vec![opt("file_send_path", "the file to append to", "").required()],
        ),
    ]
}

fn transformers() -> Vec<Plugin> {
    vec![
        (
            "rename",
            "rename a field",
            "rename key to new_key",
            vec![
                opt("key", "the field", "").required(),
                opt("new_key", "its new name", "").required(),
            ],
        ),
        (
            "drop",
            "remove a field",
            "alias: discard",
            vec![opt("key", "the field", "").required()],
        ),
        (
            "label",
            "add a field with a fixed value",
            "key = value on every record",
            vec![
                opt("key", "the field", "").required(),
                opt("value", "the value", "").required(),
            ],
        ),
        (
            "keep",
            "keep matching records",
            "records whose message matches pattern are kept",
            vec![opt("pattern", "a regex", "").required()],
        ),
        (
            "filter",
            "drop matching records",
            "records whose message matches pattern are dropped (counted)",
            vec![opt("pattern", "a regex", "").required()],
        ),
        (
            "mask",
            "mask text",
            "what matches pattern is replaced in the message and fields",
            vec![
                opt("pattern", "a regex", "").required(),
                opt("replacement", "the replacement", "****"),
            ],
        ),
    ]
}

fn usages(plugins: Vec<Plugin>, sorted: bool) -> Response {
    ok(Value::Array(
        plugins
            .iter()
            .map(|(name, usage, _, _)| json!({"key": name, "value": usage, "sort_key": if sorted { *name } else { "" }}))
            .collect(),
    ))
}

fn tooltips(plugins: Vec<Plugin>, sorted: bool) -> Response {
    ok(Value::Array(
        plugins
            .iter()
            .map(|(name, _, tip, _)| json!({"key": name, "value": tip, "sort_key": if sorted { *name } else { "" }}))
            .collect(),
    ))
}

fn options(plugins: Vec<Plugin>, typed: bool) -> Response {
    ok(Value::Object(
        plugins
            .iter()
            .map(|(name, _, _, opts)| {
                (
                    name.to_string(),
                    Value::Array(opts.iter().map(|o| o.to_json(typed)).collect()),
                )
            })
            .collect(),
    ))
}

pub async fn reader_usages() -> Response {
    usages(readers(), false)
}
pub async fn reader_tooltips() -> Response {
    tooltips(readers(), false)
}
pub async fn reader_options() -> Response {
    options(readers(), false)
}
pub async fn parser_usages() -> Response {
    usages(parsers(), false)
}
pub async fn parser_tooltips() -> Response {
    tooltips(parsers(), false)
}
pub async fn parser_options() -> Response {
    options(parsers(), false)
}
pub async fn sender_usages() -> Response {
    usages(senders(), false)
}
pub async fn sender_tooltips() -> Response {
    tooltips(senders(), false)
}
pub async fn sender_options() -> Response {
    options(senders(), false)
}
pub async fn transformer_usages() -> Response {
    usages(transformers(), true)
}
pub async fn transformer_tooltips() -> Response {
    tooltips(transformers(), true)
}
pub async fn transformer_options() -> Response {
    options(transformers(), true)
}

/// A sample line per parser, for the UI's "try it" box.
pub async fn sample_logs() -> Response {
    ok(json!({
        "raw": "2026-01-15 10:00:05 hello world",
        "json": "{\"ts\":\"2026-01-15T10:00:05Z\",\"level\":\"info\",\"msg\":\"hello\",\"user\":\"ana\"}",
        "logfmt": "ts=2026-01-15T10:00:05Z level=info msg=\"hello\" user=ana",
        "regex": "2026-01-15 10:00:05 [info] hello",
        "nginx": "10.0.0.1 - - [15/Jan/2026:10:00:05 +0000] \"GET /index.html HTTP/1.1\" 200 612 \"-\" \"curl/8.0\"",
        "apache": "10.0.0.1 - - [15/Jan/2026:10:00:05 +0000] \"GET /index.html HTTP/1.1\" 200 612 \"-\" \"curl/8.0\"",
        "syslog": "<34>1 2026-01-15T10:00:05Z host app 1234 ID47 - hello",
        "csv": "a,123,bcd,1.2",
    }))
}

/// logkit's metric readers (cpu, memory, ...) have no counterpart in lograft: none described.
pub async fn metric_keys() -> Response {
    ok(json!({}))
}

/// logkit's cleaner deletes files once read; lograft never deletes the files it reads, so it
/// has no cleaner options.
pub async fn cleaner_options() -> Response {
    ok(json!([]))
}

/// The error codes lograft's logkit API answers with, and what they mean.
pub async fn error_codes() -> Response {
    ok(json!({
        "L200": "success",
        "L1001": "reading a runner config failed",
        "L1002": "adding a runner failed",
        "L1003": "deleting a runner failed",
        "L1004": "starting a runner failed",
        "L1005": "stopping a runner failed",
        "L1006": "resetting a runner failed",
        "L1007": "updating a runner failed",
        "L1201": "parsing the sample failed",
        "L1301": "transforming the sample failed",
        "L2001": "listing the slaves failed",
        "L2002": "reading the slaves' status failed",
        "L2003": "reading the slaves' configs failed",
        "L2004": "accepting a slave's registration failed",
        "L2005": "changing the tag failed",
        "L2006": "adding a runner to the slaves failed",
        "L2007": "deleting a runner from the slaves failed",
        "L2008": "starting a runner on the slaves failed",
        "L2009": "stopping a runner on the slaves failed",
        "L2010": "resetting a runner on the slaves failed",
        "L2011": "updating a runner on the slaves failed",
        "L2012": "removing slaves from the list failed",
        "L2013": "changing the slaves' tag failed",
        "L2014": "reading a runner config of the slaves failed",
    }))
}
