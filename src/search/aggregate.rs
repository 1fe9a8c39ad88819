//! Aggregations over the matches of a query: top values of a field, numeric stats, and the
//! fields present. Top values and stats use tantivy's aggregation module on fast fields, one
//! partial result per day partition, merged exactly as tantivy merges shards.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::tokenizer::TokenizerManager;

use super::{QueryBuilder, SearchError, SearchParams, resolve_range};
use crate::index::IndexStore;

/// Fields whose values can be aggregated, besides `fields.<name>`.
const KEYWORD_FIELDS: [&str; 4] = ["level", "runner", "node", "path"];

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AggParams {
    pub field: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Top values only: how many. Default 10, at most 1000.
    pub size: Option<usize>,
    /// Leave out the audit trail: set by the API for non-admins, never from the query string.
    #[serde(skip)]
    pub hide_audit: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopValue {
    pub value: Value,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopResponse {
    pub field: String,
    pub values: Vec<TopValue>,
    /// Matching documents with another value than the ones listed.
    pub other: u64,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsResponse {
    pub field: String,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub avg: Option<f64>,
    pub sum: Option<f64>,
    /// `"50"`, `"90"`, `"99"` → value.
    pub percentiles: BTreeMap<String, Option<f64>>,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    /// `keyword`, `text`, `number`, `bool`, `date`, `object` or `array`.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Share of the sampled documents that have the field.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldsResponse {
    pub sampled: usize,
    pub fields: Vec<FieldInfo>,
    pub took_ms: u64,
}

/// The aggregatable path of a user-facing field name, or a 400 naming the allowed ones.
fn field_path(field: Option<&str>) -> Result<String, SearchError> {
    let field = field.map(str::trim).unwrap_or("");
    let valid_json = field
        .strip_prefix("fields.")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(['"', '\\']));
    if KEYWORD_FIELDS.contains(&field) || valid_json {
        return Ok(field.to_string());
    }
    Err(SearchError::BadParam {
        param: "field",
        value: field.to_string(),
        reason: format!("use one of {} or fields.<name>", KEYWORD_FIELDS.join(", ")),
    })
}

/// Run one aggregation request over every partition the range touches and merge the results.
fn aggregate(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
    request: Value,
) -> Result<Value, SearchError> {
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    let query = builder.in_range(
        builder.parse(params.q.as_deref().unwrap_or(""))?,
        from,
        to,
        params.hide_audit,
    );
    let aggregations: Aggregations =
        serde_json::from_value(request).map_err(|err| SearchError::BadParam {
            param: "field",
            value: String::new(),
            reason: err.to_string(),
        })?;
    let limits = || AggregationLimitsGuard::new(Some(256 * 1024 * 1024), Some(65_000));
    let mut merged: Option<IntermediateAggregationResults> = None;
    for partition in store.overlapping(from, to) {
        let collector = DistributedAggregationCollector::from_aggs(
            aggregations.clone(),
            AggContextParams::new(limits(), TokenizerManager::default()),
        );
        let partial = partition
            .reader
            .searcher()
            .search(query.as_ref(), &collector)?;
        match &mut merged {
            Some(total) => total.merge_fruits(partial)?,
            None => merged = Some(partial),
        }
    }
    let Some(merged) = merged else {
        return Ok(Value::Null);
    };
    let results = merged.into_final_result(aggregations, limits())?;
    Ok(serde_json::to_value(results).unwrap_or(Value::Null))
}

pub fn top(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<TopResponse, SearchError> {
    let started = Instant::now();
    let field = field_path(params.field.as_deref())?;
    let size = params.size.unwrap_or(10).clamp(1, 1000);
    let request = json!({"top": {"terms": {"field": field, "size": size, "segment_size": (size * 10).max(100)}}});
    let results = aggregate(store, builder, params, request)?;
    let values = results["top"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|bucket| TopValue {
            value: bucket["key"].clone(),
            count: bucket["doc_count"].as_u64().unwrap_or(0),
        })
        .collect();
    Ok(TopResponse {
        field,
        values,
        other: results["top"]["sum_other_doc_count"].as_u64().unwrap_or(0),
        took_ms: started.elapsed().as_millis() as u64,
    })
}

pub fn stats(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<StatsResponse, SearchError> {
    let started = Instant::now();
    let field = field_path(params.field.as_deref())?;
    let request = json!({
        "stats": {"stats": {"field": field}},
        "percentiles": {"percentiles": {"field": field, "percents": [50.0, 90.0, 99.0], "keyed": true}}
    });
    let results = aggregate(store, builder, params, request)?;
    let stats = &results["stats"];
    let percentiles = ["50", "90", "99"]
        .iter()
        .map(|p| {
            let value = results["percentiles"]["values"][format!("{p}.0")].as_f64();
            (p.to_string(), value)
        })
        .collect();
    Ok(StatsResponse {
        field,
        count: stats["count"].as_u64().unwrap_or(0),
        min: stats["min"].as_f64(),
        max: stats["max"].as_f64(),
        avg: stats["avg"].as_f64(),
        sum: stats["sum"].as_f64(),
        percentiles,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Fields present in the newest matches (a sample of up to 1000), with their types and how
/// common they are.
pub fn fields(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<FieldsResponse, SearchError> {
    let started = Instant::now();
    let sample = super::search(
        store,
        builder,
        &SearchParams {
            q: params.q.clone(),
            from: params.from.clone(),
            to: params.to.clone(),
            limit: Some(1000),
            cursor: None,
            hide_audit: params.hide_audit,
        },
    )?;
    let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut note = |name: String, kind: &str| {
        let entry = seen.entry(name).or_insert_with(|| (kind.to_string(), 0));
        entry.1 += 1;
    };
    for hit in &sample.hits {
        note("message".into(), "text");
        note("runner".into(), "keyword");
        note("node".into(), "keyword");
        if !hit.path.is_empty() {
            note("path".into(), "keyword");
        }
        if !hit.level.is_empty() {
            note("level".into(), "keyword");
        }
        if let Value::Object(map) = &hit.fields {
            let mut stack: Vec<(String, &Value)> = map
                .iter()
                .map(|(k, v)| (format!("fields.{k}"), v))
                .collect();
            while let Some((name, value)) = stack.pop() {
                match value {
                    Value::Object(inner) => {
                        stack.extend(inner.iter().map(|(k, v)| (format!("{name}.{k}"), v)))
                    }
                    Value::Number(_) => note(name, "number"),
                    Value::Bool(_) => note(name, "bool"),
                    Value::Array(_) => note(name, "array"),
                    Value::String(_) => note(name, "keyword"),
                    Value::Null => {}
                }
            }
        }
    }
    let sampled = sample.hits.len();
    let mut fields: Vec<FieldInfo> = seen
        .into_iter()
        .map(|(name, (field_type, count))| FieldInfo {
            name,
            field_type,
            share: if sampled == 0 {
                0.0
            } else {
                count as f64 / sampled as f64
            },
        })
        .collect();
    fields.sort_by(|a, b| {
        b.share
            .total_cmp(&a.share)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(FieldsResponse {
        sampled,
        fields,
        took_ms: started.elapsed().as_millis() as u64,
    })
}
