//! Transforms (logkit's `transforms[]`), applied in order to each parsed record before it is
//! queued: rename, drop or add (`label`) a field, keep only or drop lines matching a regex, and
//! mask a regex in the message and string fields (redact secrets before they are indexed).
//!
//! ```json
//! "transforms": [
//!   {"type": "rename", "key": "usr", "new_key": "user"},
//!   {"type": "drop", "key": "password"},
//!   {"type": "label", "key": "env", "value": "prod"},
//!   {"type": "keep", "pattern": "ERROR|WARN"},
//!   {"type": "filter", "pattern": "healthcheck"},
//!   {"type": "mask", "pattern": "card=\\d+", "replacement": "card=****"}
//! ]
//! ```
//! Lines removed by `keep`/`filter` are counted (`lines_filtered`), never silently lost.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::Record;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransformConfig {
    Rename {
        key: String,
        new_key: String,
    },
    #[serde(alias = "discard")]
    Drop {
        key: String,
    },
    Label {
        key: String,
        value: Value,
    },
    Keep {
        pattern: String,
    },
    Filter {
        pattern: String,
    },
    Mask {
        pattern: String,
        #[serde(default = "default_mask")]
        replacement: String,
    },
}

fn default_mask() -> String {
    "****".to_string()
}

enum Step {
    Rename(String, String),
    Drop(String),
    Label(String, Value),
    Keep(Regex),
    Filter(Regex),
    Mask(Regex, String),
}

/// The compiled transforms of one runner.
pub struct Transforms(Vec<Step>);

impl Transforms {
    /// Compile; the error names the transform and what is wrong.
    pub fn new(configs: &[TransformConfig]) -> Result<Transforms, String> {
        let regex = |index: usize, pattern: &str| {
            super::parse::compile_regex(&format!("transforms[{index}].pattern"), pattern)
        };
        let steps = configs
            .iter()
            .enumerate()
            .map(|(index, config)| {
                Ok(match config {
                    TransformConfig::Rename { key, new_key } => {
                        Step::Rename(key.clone(), new_key.clone())
                    }
                    TransformConfig::Drop { key } => Step::Drop(key.clone()),
                    TransformConfig::Label { key, value } => {
                        Step::Label(key.clone(), value.clone())
                    }
                    TransformConfig::Keep { pattern } => Step::Keep(regex(index, pattern)?),
                    TransformConfig::Filter { pattern } => Step::Filter(regex(index, pattern)?),
                    TransformConfig::Mask {
                        pattern,
                        replacement,
                    } => Step::Mask(regex(index, pattern)?, replacement.clone()),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Transforms(steps))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Apply to a record; `None` when a `keep`/`filter` removed it.
    pub fn apply(&self, mut record: Record) -> Option<Record> {
        for step in &self.0 {
            match step {
                Step::Rename(key, new_key) => {
                    if let Some(value) = fields(&mut record).remove(key) {
                        fields(&mut record).insert(new_key.clone(), value);
                    }
                }
                Step::Drop(key) => {
                    fields(&mut record).remove(key);
                }
                Step::Label(key, value) => {
                    fields(&mut record).insert(key.clone(), value.clone());
                }
                Step::Keep(regex) => {
                    if !regex.is_match(&record.message) {
                        return None;
                    }
                }
                Step::Filter(regex) => {
                    if regex.is_match(&record.message) {
                        return None;
                    }
                }
                Step::Mask(regex, replacement) => {
                    record.message = regex
                        .replace_all(&record.message, replacement.as_str())
                        .into_owned();
                    if let Value::Object(map) = &mut record.fields {
                        mask_strings(map, regex, replacement);
                    }
                }
            }
        }
        if record.fields.as_object().is_some_and(Map::is_empty) {
            record.fields = Value::Null;
        }
        Some(record)
    }
}

fn fields(record: &mut Record) -> &mut Map<String, Value> {
    if !record.fields.is_object() {
        record.fields = Value::Object(Map::new());
    }
    record.fields.as_object_mut().expect("just made an object")
}

fn mask_strings(map: &mut Map<String, Value>, regex: &Regex, replacement: &str) {
    for value in map.values_mut() {
        match value {
            Value::String(text) => *text = regex.replace_all(text, replacement).into_owned(),
            Value::Object(inner) => mask_strings(inner, regex, replacement),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str, fields: Value) -> Record {
        Record {
            ts: 0,
            runner: "r".into(),
            path: String::new(),
            offset: 0,
            level: String::new(),
            message: message.into(),
            fields,
            truncated: false,
            parse_error: false,
            stream: String::new(),
        }
    }

    fn transforms(json: &str) -> Transforms {
        Transforms::new(&serde_json::from_str::<Vec<TransformConfig>>(json).unwrap()).unwrap()
    }

    #[test]
    fn rename_drop_label_and_mask() {
        let t = transforms(
            r#"[{"type":"rename","key":"usr","new_key":"user"},{"type":"discard","key":"password"},
                {"type":"label","key":"env","value":"prod"},
                {"type":"mask","pattern":"card=\\d+","replacement":"card=****"}]"#,
        );
        let out = t
            .apply(record(
                "paid with card=4111111111111111",
                serde_json::json!({"usr":"bob","password":"hunter2","note":"card=4242"}),
            ))
            .unwrap();
        assert_eq!(out.message, "paid with card=****");
        assert_eq!(
            out.fields,
            serde_json::json!({"user":"bob","env":"prod","note":"card=****"})
        );
    }

    #[test]
    fn keep_and_filter() {
        let t = transforms(
            r#"[{"type":"keep","pattern":"ERROR|WARN"},{"type":"filter","pattern":"healthcheck"}]"#,
        );
        assert!(t.apply(record("INFO all good", Value::Null)).is_none());
        assert!(
            t.apply(record("ERROR healthcheck failed", Value::Null))
                .is_none()
        );
        assert!(t.apply(record("ERROR disk full", Value::Null)).is_some());
    }

    #[test]
    fn bad_transforms_name_the_problem() {
        let bad =
            serde_json::from_str::<Vec<TransformConfig>>(r#"[{"type":"keep","pattern":"(x"}]"#)
                .unwrap();
        assert!(
            Transforms::new(&bad)
                .err()
                .unwrap()
                .contains("transforms[0].pattern")
        );
        assert!(serde_json::from_str::<Vec<TransformConfig>>(r#"[{"type":"explode"}]"#).is_err());
    }
}
