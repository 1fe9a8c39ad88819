//! Aggregations over the matches of a query: top values of a field, numeric stats, and the
//! fields present. Top values and stats use tantivy's aggregation module on fast fields, one
//! partial result per day partition, merged exactly as tantivy merges shards.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tantivy::Term;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::Count;
use tantivy::columnar::NumericalValue;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TokenizerManager;

use super::sketch::{Sketch, StatsPart};
use super::{QueryBuilder, SearchError, SearchParams, resolve_range};
use crate::index::{Fields, IndexStore};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The most common fields, at most [`MAX_FIELDS`].
    pub fields: Vec<FieldInfo>,
    /// How many more fields the sample has (at least): left out of `fields`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more: usize,
    pub took_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The most fields a `fields` answer lists (1 M distinct keys made a 58 MB answer that froze
/// the UI); the rest are counted in `more`.
pub const MAX_FIELDS: usize = 500;
/// Distinct field names tracked while sampling; names beyond are only counted.
const MAX_TRACKED_FIELDS: usize = 10 * MAX_FIELDS;

/// Keep the first [`MAX_FIELDS`] of `fields` (sorted), counting the rest in `more`.
pub fn cap_fields(fields: &mut Vec<FieldInfo>, more: &mut usize) {
    if fields.len() > MAX_FIELDS {
        *more += fields.len() - MAX_FIELDS;
        fields.truncate(MAX_FIELDS);
    }
}

/// The aggregatable path of a user-facing field name, or a 400 naming the allowed ones.
pub fn field_path(field: Option<&str>) -> Result<String, SearchError> {
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

/// Run one aggregation request over every partition the range touches and merge the partial
/// results (`None` when no partition overlaps the range).
fn aggregate_partial(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
    request: Value,
) -> Result<(Aggregations, Option<IntermediateAggregationResults>), SearchError> {
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    let query = builder.in_range(
        builder.parse(params.q.as_deref().unwrap_or(""))?,
        from,
        to,
        params.hide_audit,
    );
    let aggregations = parse_request(request)?;
    let mut merged: Option<IntermediateAggregationResults> = None;
    for partition in store.overlapping(from, to) {
        super::check_cancelled()?;
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
    Ok((aggregations, merged))
}

fn parse_request(request: Value) -> Result<Aggregations, SearchError> {
    serde_json::from_value(request).map_err(|err| SearchError::BadParam {
        param: "field",
        value: String::new(),
        reason: err.to_string(),
    })
}

fn limits() -> AggregationLimitsGuard {
    AggregationLimitsGuard::new(Some(256 * 1024 * 1024), Some(65_000))
}

/// The final result of merged partial results, as JSON (`Null` when there are none).
fn finalize(
    aggregations: Aggregations,
    partials: impl IntoIterator<Item = IntermediateAggregationResults>,
) -> Result<Value, SearchError> {
    let mut merged: Option<IntermediateAggregationResults> = None;
    for partial in partials {
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

/// Run one aggregation request over every partition the range touches and merge the results.
fn aggregate(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
    request: Value,
) -> Result<Value, SearchError> {
    let (aggregations, partial) = aggregate_partial(store, builder, params, request)?;
    finalize(aggregations, partial)
}

pub fn top(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<TopResponse, SearchError> {
    top_with_bound(store, builder, params).map(|(top, _)| top)
}

/// [`top`], with tantivy's upper bound of the error on the counts listed: 0 when every listed
/// count is exact (no segment had to leave terms out before the partial results were merged).
pub fn top_with_bound(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<(TopResponse, u64), SearchError> {
    let started = Instant::now();
    let field = field_path(params.field.as_deref())?;
    let size = params.size.unwrap_or(10).clamp(1, MAX_TOP);
    let terms = |field: &str| {
        json!({"terms": {
            "field": field, "size": size, "segment_size": (size * 10).max(100),
            "show_term_doc_count_error": true,
        }})
    };
    // Identifiers among the parsed fields are kept apart (`ids`, see `index::identifiers`):
    // their top values are listed from there too, and the two lists merged.
    let mut request = json!({"top": terms(&field)});
    if let Some(path) = field.strip_prefix("fields.") {
        request["top_ids"] = terms(&format!("ids.{path}"));
    }
    let results = aggregate(store, builder, params, request)?;
    let mut values: Vec<TopValue> = Vec::new();
    let mut other = 0;
    let mut bound = 0;
    for name in ["top", "top_ids"] {
        let result = &results[name];
        for bucket in result["buckets"].as_array().into_iter().flatten() {
            let count = bucket["doc_count"].as_u64().unwrap_or(0);
            match values.iter_mut().find(|v| v.value == bucket["key"]) {
                Some(listed) => listed.count += count,
                None => values.push(TopValue {
                    value: bucket["key"].clone(),
                    count,
                }),
            }
        }
        other += result["sum_other_doc_count"].as_u64().unwrap_or(0);
        bound += result["doc_count_error_upper_bound"].as_u64().unwrap_or(0);
    }
    // Most common first, ties in the order listed (each list is already in tantivy's order).
    values.sort_by_key(|v| std::cmp::Reverse(v.count));
    if values.len() > size {
        other += values[size..].iter().map(|v| v.count).sum::<u64>();
        values.truncate(size);
    }
    Ok((
        TopResponse {
            field,
            values,
            other,
            took_ms: started.elapsed().as_millis() as u64,
        },
        bound,
    ))
}

/// The most values `top` lists.
pub const MAX_TOP: usize = 1000;

/// The exact number of matching documents with each of `values` in `params.field` (top values
/// across nodes: the counts of candidate values, exactly). Values are compared as the index
/// stores them: text exactly, numbers by their normalized numeric value (`200` and `200.0` are
/// one value), and `0`/`1` also count `false`/`true` (top values list booleans as 0 and 1).
pub fn count_values(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
    values: &[Value],
) -> Result<Vec<u64>, SearchError> {
    let field = field_path(params.field.as_deref())?;
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    let base = builder.in_range(
        builder.parse(params.q.as_deref().unwrap_or(""))?,
        from,
        to,
        params.hide_audit,
    );
    let partitions = store.overlapping(from, to);
    let searchers: Vec<_> = partitions.iter().map(|p| p.reader.searcher()).collect();
    let mut counts = Vec::with_capacity(values.len());
    for value in values {
        let terms = value_terms(&builder.fields, &field, value);
        if terms.is_empty() {
            counts.push(0);
            continue;
        }
        let matches_value: Box<dyn Query> = Box::new(BooleanQuery::new(
            terms
                .into_iter()
                .map(|term| {
                    let query: Box<dyn Query> =
                        super::query::parsed_field_query(&term, &builder.fields).unwrap_or_else(
                            || Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                        );
                    (Occur::Should, query)
                })
                .collect(),
        ));
        let query = BooleanQuery::new(vec![
            (Occur::Must, base.box_clone()),
            (Occur::Must, matches_value),
        ]);
        let mut count = 0u64;
        for searcher in &searchers {
            super::check_cancelled()?;
            count += searcher.search(&query, &Count)? as u64;
        }
        counts.push(count);
    }
    Ok(counts)
}

/// The index terms a value of `field` (as `top` lists it) is stored as.
fn value_terms(fields: &Fields, field: &str, value: &Value) -> Vec<Term> {
    let keyword = match field {
        "level" => Some(fields.level),
        "runner" => Some(fields.runner),
        "node" => Some(fields.node),
        "path" => Some(fields.path),
        _ => None,
    };
    if let Some(keyword) = keyword {
        return match value {
            Value::String(text) => vec![Term::from_field_text(keyword, text)],
            _ => Vec::new(),
        };
    }
    let Some(path) = field.strip_prefix("fields.") else {
        return Vec::new();
    };
    let json = || Term::from_field_json_path(fields.fields, path, false);
    let mut terms = Vec::new();
    match value {
        Value::String(text) => {
            let mut term = json();
            term.append_type_and_str(text);
            terms.push(term);
        }
        Value::Bool(flag) => {
            let mut term = json();
            term.append_type_and_fast_value(*flag);
            terms.push(term);
        }
        Value::Number(number) => {
            let numerical = if let Some(int) = number.as_i64() {
                NumericalValue::I64(int)
            } else if let Some(unsigned) = number.as_u64() {
                NumericalValue::U64(unsigned)
            } else {
                NumericalValue::F64(number.as_f64().unwrap_or(f64::NAN))
            };
            let mut term = json();
            match numerical.normalize() {
                NumericalValue::I64(int) => {
                    term.append_type_and_fast_value(int);
                    if int == 0 || int == 1 {
                        let mut flag = json();
                        flag.append_type_and_fast_value(int == 1);
                        terms.push(flag);
                    }
                }
                NumericalValue::U64(unsigned) => term.append_type_and_fast_value(unsigned),
                NumericalValue::F64(float) if float.is_finite() => {
                    term.append_type_and_fast_value(float)
                }
                NumericalValue::F64(_) => return terms,
            }
            terms.push(term);
        }
        _ => {}
    }
    terms
}

fn stats_request(field: &str) -> Value {
    json!({
        "stats": {"stats": {"field": field}},
        "percentiles": {"percentiles": {"field": field, "percents": [50.0, 90.0, 99.0], "keyed": true}}
    })
}

pub fn stats(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<StatsResponse, SearchError> {
    let started = Instant::now();
    let (field, part) = stats_part(store, builder, params)?;
    let mut response = StatsPart::merge(&field, part.into_iter().collect());
    response.took_ms = started.elapsed().as_millis() as u64;
    Ok(response)
}

/// This node's part of [`stats`] in our wire form ([`StatsPart`]): count, sum, min and max
/// as tantivy finishes them, and tantivy's percentile sketch converted to ours; `None` when no
/// document has a value.
pub fn stats_part(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &AggParams,
) -> Result<(String, Option<StatsPart>), SearchError> {
    let field = field_path(params.field.as_deref())?;
    let (_, partial) = aggregate_partial(store, builder, params, stats_request(&field))?;
    let Some(partial) = partial else {
        return Ok((field, None));
    };
    let sketch = serde_json::to_value(&partial)
        .ok()
        .and_then(|json| sketch_from_tantivy(&json["aggs_res"]["percentiles"]));
    let finished = stats_merged(&field, [partial])?;
    if finished.count == 0 {
        return Ok((field, None));
    }
    let part = StatsPart {
        count: finished.count,
        sum: finished.sum.unwrap_or(0.0),
        min: finished.min.unwrap_or(0.0),
        max: finished.max.unwrap_or(0.0),
        sketch,
        percentiles: finished.percentiles,
    };
    Ok((field, Some(part)))
}

/// tantivy's partial percentiles (a `sketches-ddsketch` DDSketch as JSON) in our form.
fn sketch_from_tantivy(percentiles: &Value) -> Option<Sketch> {
    let sketch = &percentiles["Metric"]["Percentiles"]["sketch"];
    let buckets = |store: &Value| -> Option<Vec<(i32, u64)>> {
        let offset = store["offset"].as_i64()?;
        let bins = store["bins"].as_array()?;
        Some(
            bins.iter()
                .enumerate()
                .filter_map(|(i, count)| {
                    let count = count.as_u64()?;
                    (count > 0).then(|| ((i as i64 + offset) as i32, count))
                })
                .collect(),
        )
    };
    Some(Sketch {
        gamma: sketch["config"]["gamma"].as_f64()?,
        gamma_ln: sketch["config"]["gamma_ln"].as_f64()?,
        zero: sketch["zero_count"].as_u64()?,
        positive: buckets(&sketch["store"])?,
        negative: buckets(&sketch["negative_store"])?,
    })
}

/// The stats of merged tantivy partial results (`took_ms` left at 0).
fn stats_merged(
    field: &str,
    partials: impl IntoIterator<Item = IntermediateAggregationResults>,
) -> Result<StatsResponse, SearchError> {
    let results = finalize(parse_request(stats_request(field))?, partials)?;
    let stats = &results["stats"];
    let percentiles = ["50", "90", "99"]
        .iter()
        .map(|p| {
            let value = results["percentiles"]["values"][format!("{p}.0")].as_f64();
            (p.to_string(), value)
        })
        .collect();
    Ok(StatsResponse {
        field: field.to_string(),
        count: stats["count"].as_u64().unwrap_or(0),
        min: stats["min"].as_f64(),
        max: stats["max"].as_f64(),
        avg: stats["avg"].as_f64(),
        sum: stats["sum"].as_f64(),
        percentiles,
        took_ms: 0,
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
    let mut untracked: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut note = |name: String, kind: &str| {
        if seen.len() >= MAX_TRACKED_FIELDS && !seen.contains_key(&name) {
            // Only counted (by a hash of the name), so the work stays bounded.
            untracked.insert(xxhash_rust::xxh3::xxh3_64(name.as_bytes()));
            return;
        }
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
    let mut more = untracked.len();
    cap_fields(&mut fields, &mut more);
    Ok(FieldsResponse {
        sampled,
        fields,
        more,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::OwnedValue;
    use tantivy::{DateTime, TantivyDocument};

    /// A store with one partition holding `docs` (JSON `fields` per document), committed in
    /// `segments` commits so segments can cut their term lists.
    fn store_with(
        docs: &[Value],
        segments: usize,
    ) -> (tempfile::TempDir, std::sync::Arc<IndexStore>) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = IndexStore::open(dir.path(), "n").unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339("2026-01-15T10:00:00Z")
            .unwrap()
            .timestamp_micros();
        let partition = store.partition(crate::index::day_of(ts)).unwrap();
        let mut writer = partition
            .index
            .writer_with_num_threads(1, 15_000_000)
            .unwrap();
        let per_commit = docs.len().div_ceil(segments.max(1));
        for (i, fields) in docs.iter().enumerate() {
            let seq = i as u64 + 1;
            let mut doc = TantivyDocument::new();
            doc.add_date(
                store.fields.ts,
                DateTime::from_timestamp_micros(ts + i as i64),
            );
            doc.add_u64(
                store.fields.sort,
                crate::index::sort_key(ts + i as i64, seq),
            );
            doc.add_u64(store.fields.seq, seq);
            doc.add_text(store.fields.node, "n");
            doc.add_text(store.fields.runner, "app");
            let message = format!("line {seq}");
            // As the sink writes them: in columns, the values the message cannot find in
            // `fields_terms`, stored as `fields_stored`.
            doc.add_bytes(
                store.fields.fields_stored,
                &crate::index::stored_fields::encode(fields, &message),
            );
            doc.add_text(store.fields.message, &message);
            doc.add_field_value(store.fields.fields, &OwnedValue::from(fields.clone()));
            if let Some(terms) =
                crate::index::parsed_terms::terms(&OwnedValue::from(fields.clone()), &message)
            {
                doc.add_field_value(store.fields.fields_terms, &terms);
            }
            writer.add_document(doc).unwrap();
            if (i + 1) % per_commit == 0 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        partition.reader.reload().unwrap();
        (dir, store)
    }

    fn params(field: &str, size: Option<usize>) -> AggParams {
        AggParams {
            field: Some(field.into()),
            size,
            ..Default::default()
        }
    }

    #[test]
    fn counts_of_given_values_are_exact_for_text_numbers_and_booleans() {
        let mut docs = Vec::new();
        for i in 0..60u64 {
            docs.push(
                json!({"host": format!("h{}", i % 7), "status": 200 + (i % 3) * 100,
                             "ratio": (i % 4) as f64 / 2.0, "ok": i % 5 == 0}),
            );
        }
        let (_dir, store) = store_with(&docs, 3);
        let builder = QueryBuilder::default();
        let count = |field: &str, value: Value| {
            count_values(&store, &builder, &params(field, None), &[value]).unwrap()[0]
        };
        let expect = |f: &dyn Fn(&Value) -> bool| docs.iter().filter(|d| f(d)).count() as u64;
        assert_eq!(
            count("fields.host", json!("h3")),
            expect(&|d| d["host"] == "h3")
        );
        assert_eq!(
            count("fields.status", json!(300)),
            expect(&|d| d["status"] == 300)
        );
        assert_eq!(
            count("fields.status", json!(300.0)),
            expect(&|d| d["status"] == 300)
        );
        assert_eq!(
            count("fields.ratio", json!(1.5)),
            expect(&|d| d["ratio"] == 1.5)
        );
        assert_eq!(
            count("fields.ratio", json!(1)),
            expect(&|d| d["ratio"] == 1.0)
        );
        assert_eq!(
            count("fields.ok", json!(true)),
            expect(&|d| d["ok"] == true)
        );
        assert_eq!(count("fields.host", json!("nope")), 0);
        assert_eq!(count("runner", json!("app")), 60);
        assert_eq!(count("runner", json!(1)), 0);
        // The values top lists are the values counted.
        let (top, _) = top_with_bound(&store, &builder, &params("fields.ok", Some(5))).unwrap();
        for value in &top.values {
            assert_eq!(
                count("fields.ok", value.value.clone()),
                value.count,
                "{top:?}"
            );
        }
    }

    #[test]
    fn top_reports_whether_its_counts_are_exact() {
        // Many values spread over segments: segment lists are cut, counts may be short.
        let docs: Vec<Value> = (0..3000u64)
            .map(|i| json!({"user": format!("u{}", (i * 7919) % 400)}))
            .collect();
        let (_dir, store) = store_with(&docs, 6);
        let builder = QueryBuilder::default();
        let (top, bound) =
            top_with_bound(&store, &builder, &params("fields.user", Some(5))).unwrap();
        let listed: u64 = top.values.iter().map(|v| v.count).sum();
        assert_eq!(
            listed + top.other,
            3000,
            "listed and other account for every value"
        );
        if bound == 0 {
            for value in &top.values {
                let exact = count_values(
                    &store,
                    &builder,
                    &params("fields.user", None),
                    std::slice::from_ref(&value.value),
                )
                .unwrap()[0];
                assert_eq!(exact, value.count);
            }
        }
    }

    /// See: issue "No input stops the appliance", item 16 (1 M distinct keys: a 58 MB answer).
    #[test]
    fn fields_are_capped_with_a_count_of_the_rest() {
        let docs: Vec<Value> = (0..200)
            .map(|i| {
                let map: serde_json::Map<String, Value> =
                    (0..40).map(|k| (format!("k{i}_{k}"), json!(k))).collect();
                Value::Object(map)
            })
            .collect();
        let (_dir, store) = store_with(&docs, 1);
        let answer = fields(&store, &QueryBuilder::default(), &params("", None)).unwrap();
        assert_eq!(answer.fields.len(), MAX_FIELDS);
        // 8000 distinct fields plus message, runner, node: all accounted for.
        assert_eq!(answer.fields.len() + answer.more, 8003);
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["more"], 8003 - MAX_FIELDS);
    }

    #[test]
    fn stats_parts_survive_json_and_merge_like_one_index() {
        let docs_a: Vec<Value> = (0..100u64)
            .map(|i| json!({"ms": i as f64 - 20.0}))
            .collect();
        let docs_b: Vec<Value> = (100..300u64)
            .map(|i| json!({"ms": i as f64 * 1.5}))
            .collect();
        let all: Vec<Value> = docs_a.iter().chain(&docs_b).cloned().collect();
        let builder = QueryBuilder::default();
        let p = params("fields.ms", None);
        let (_da, a) = store_with(&docs_a, 2);
        let (_db, b) = store_with(&docs_b, 1);
        let (_dall, one) = store_with(&all, 1);
        let through_json = |store: &IndexStore| {
            let (_, part) = stats_part(store, &builder, &p).unwrap();
            let text = serde_json::to_string(&part.unwrap()).unwrap();
            serde_json::from_str::<StatsPart>(&text).unwrap()
        };
        let merged = StatsPart::merge("fields.ms", vec![through_json(&a), through_json(&b)]);
        let single = stats(&one, &builder, &p).unwrap();
        assert_eq!(merged.count, 300);
        assert_eq!(merged.min, Some(-20.0));
        assert_eq!(merged.max, Some(448.5));
        assert_eq!(merged.sum, single.sum);
        assert_eq!(merged.avg, single.avg);
        // The sketches merge exactly: the same percentiles as one index holding everything.
        assert_eq!(merged.percentiles, single.percentiles);
        // And our sketch answers as tantivy's own percentiles do.
        let (_, part) = stats_part(&one, &builder, &p).unwrap();
        let part = part.unwrap();
        let ours = StatsPart::merge("fields.ms", vec![part.clone()]).percentiles;
        assert_eq!(ours, part.percentiles);
        assert!(ours["50"].is_some());
        // No values: no part to send.
        let (_de, empty) = store_with(&[], 1);
        let (_, part) = stats_part(&empty, &builder, &p).unwrap();
        assert!(part.is_none());
    }
}
