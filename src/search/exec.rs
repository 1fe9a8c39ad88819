//! Searching this node's day partitions: pages of hits with sort keys, context around a
//! hit, lines indexed after a sequence (live tail), histograms.

use std::ops::Bound;
use std::time::Instant;

use tantivy::collector::{Count, HistogramCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::Value;
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

use super::*;
use crate::index::{Fields, IndexStore, Partition};

/// Run a search on this node's partitions.
pub fn search(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &SearchParams,
) -> Result<SearchResponse, SearchError> {
    search_keyed(store, builder, params).map(|(response, _)| response)
}

/// [`search`], with the sort key of every hit (parallel to `hits`): what merging pages from
/// several nodes orders by.
pub fn search_keyed(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &SearchParams,
) -> Result<(SearchResponse, Vec<u64>), SearchError> {
    let started = Instant::now();
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let cursor = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(text) => Some(parse_cursor(text)?),
        None => None,
    };
    let user_query = builder.parse(params.q.as_deref().unwrap_or(""))?;
    let count_apart = QueryBuilder::is_match_all(user_query.as_ref())
        || QueryBuilder::is_term(user_query.as_ref());
    let base = builder.in_range(user_query, from, to, params.hide_audit);
    let page_query: Box<dyn Query> = match cursor {
        Some(sort) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, base.box_clone()),
            (Occur::Must, builder.before_cursor(sort)),
        ])),
        None => base.box_clone(),
    };

    let mut total = 0u64;
    // (sort key, partition, address), merged across partitions.
    let mut candidates: Vec<(u64, usize, DocAddress)> = Vec::new();
    let partitions = store.overlapping(from, to);
    // One searcher per partition for the whole request: doc addresses are only valid in the
    // searcher that produced them (a commit or merge in between would renumber them).
    let searchers: Vec<Searcher> = partitions.iter().map(|p| p.reader.searcher()).collect();
    for (index, searcher) in searchers.iter().enumerate() {
        check_cancelled()?;
        // A term or everything is counted without a walk (`InRange`) and paged on its own,
        // skipping blocks that cannot hold a newer match (`newest`); any other query is walked
        // once, for its count and its page. A cursor pages another query than the count.
        let newest = super::newest::Newest::with_limit(limit);
        let (count, top_docs) = if count_apart || cursor.is_some() {
            let count = searcher.search(base.as_ref(), &Count)? as u64;
            (count, searcher.search(page_query.as_ref(), &newest)?.1)
        } else {
            searcher.search(page_query.as_ref(), &newest.counting())?
        };
        total += count;
        candidates.extend(
            top_docs
                .into_iter()
                .map(|(sort, address)| (sort, index, address)),
        );
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.truncate(limit);

    let mut hits = Vec::with_capacity(candidates.len());
    for (_, index, address) in &candidates {
        hits.push(load_hit(
            &partitions[*index],
            &searchers[*index],
            &store.fields,
            *address,
        )?);
    }
    let next_cursor = (candidates.len() == limit)
        .then(|| candidates.last().map(|(sort, _, _)| sort.to_string()))
        .flatten();
    metrics::counter!(crate::metrics::SEARCH_REQUESTS, "kind" => "search").increment(1);
    let keys = candidates.iter().map(|(sort, _, _)| *sort).collect();
    Ok((
        SearchResponse {
            total,
            hits,
            cursor: next_cursor,
            from: format_micros(from),
            to: format_micros(to),
            took_ms: started.elapsed().as_millis() as u64,
        },
        keys,
    ))
}

/// The lines read just before and after a hit from the same file (the same stream, so across
/// renames and truncations), in the order they were read.
pub fn context(store: &IndexStore, params: &ContextParams) -> Result<ContextResponse, SearchError> {
    let id = params.id.clone().unwrap_or_default();
    let bad_id = |reason: &str| SearchError::BadParam {
        param: "id",
        value: id.clone(),
        reason: reason.to_string(),
    };
    let (day, seq) = id
        .split_once('/')
        .and_then(|(day, seq)| {
            Some((
                chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?,
                seq.parse::<u64>().ok()?,
            ))
        })
        .ok_or_else(|| bad_id("expected the id of a hit, like 2026-01-15/4711"))?;
    let fields = &store.fields;
    let seq_is = |lower: Bound<u64>, upper: Bound<u64>| -> Box<dyn Query> {
        Box::new(RangeQuery::new(
            lower.map(|s| Term::from_field_u64(fields.seq, s)),
            upper.map(|s| Term::from_field_u64(fields.seq, s)),
        ))
    };
    let partition = store
        .all()
        .into_iter()
        .find(|p| p.day == day)
        .ok_or_else(|| bad_id("no such hit (its day is not in the index)"))?;
    let searcher = partition.reader.searcher();
    let address = searcher
        .search(
            seq_is(Bound::Included(seq), Bound::Included(seq)).as_ref(),
            &TopDocs::with_limit(1).order_by_score(),
        )?
        .first()
        .map(|(_, address)| *address)
        .ok_or_else(|| bad_id("no such hit"))?;
    let hit = load_hit(&partition, &searcher, fields, address)?;
    if hit.stream.is_empty() {
        return Err(bad_id(
            "this line did not come from a file, so it has no context",
        ));
    }
    let same_stream: Box<dyn Query> = Box::new(tantivy::query::TermQuery::new(
        Term::from_field_text(fields.stream, &hit.stream),
        tantivy::schema::IndexRecordOption::Basic,
    ));
    let neighbours = |range: Box<dyn Query>,
                      count: usize,
                      order: Order|
     -> Result<Vec<(u64, Hit)>, SearchError> {
        let query = BooleanQuery::new(vec![
            (Occur::Must, same_stream.box_clone()),
            (Occur::Must, range),
        ]);
        let mut found = Vec::new();
        for partition in store.all() {
            let searcher = partition.reader.searcher();
            let top = TopDocs::with_limit(count.max(1)).order_by_fast_field::<u64>("seq", order);
            for (seq, address) in searcher.search(&query, &top)? {
                found.push((
                    seq.unwrap_or(0),
                    load_hit(&partition, &searcher, fields, address)?,
                ));
            }
        }
        Ok(found)
    };
    let before_count = params.before.unwrap_or(50).min(1000);
    let after_count = params.after.unwrap_or(50).min(1000);
    let mut before = neighbours(
        seq_is(Bound::Unbounded, Bound::Excluded(seq)),
        before_count,
        Order::Desc,
    )?;
    before.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    before.truncate(before_count);
    before.reverse();
    let mut after = neighbours(
        seq_is(Bound::Excluded(seq), Bound::Unbounded),
        after_count,
        Order::Asc,
    )?;
    after.sort_by_key(|(s, _)| *s);
    after.truncate(after_count);
    let hit_index = before.len();
    let lines = before
        .into_iter()
        .map(|(_, h)| h)
        .chain(std::iter::once(hit))
        .chain(after.into_iter().map(|(_, h)| h))
        .collect();
    Ok(ContextResponse {
        id,
        lines,
        hit_index,
    })
}

/// Matches of `q` indexed after sequence `after_seq`, oldest first (live tail). Returns the
/// hits with their sequence numbers.
pub fn indexed_after(
    store: &IndexStore,
    builder: &QueryBuilder,
    q: &str,
    after_seq: u64,
    limit: usize,
    hide_audit: bool,
) -> Result<Vec<(u64, Hit)>, SearchError> {
    let query = BooleanQuery::new(vec![
        (
            Occur::Must,
            builder.in_range(builder.parse(q)?, 0, END_OF_TIME, hide_audit),
        ),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Excluded(Term::from_field_u64(builder.fields.seq, after_seq)),
                Bound::Unbounded,
            )),
        ),
    ]);
    let mut found: Vec<(u64, Hit)> = Vec::new();
    for partition in store.all() {
        let searcher = partition.reader.searcher();
        let top = TopDocs::with_limit(limit).order_by_fast_field::<u64>("seq", Order::Asc);
        for (seq, address) in searcher.search(&query, &top)? {
            found.push((
                seq.unwrap_or(0),
                load_hit(&partition, &searcher, &store.fields, address)?,
            ));
        }
    }
    found.sort_by_key(|(seq, _)| *seq);
    found.truncate(limit);
    Ok(found)
}

fn load_hit(
    partition: &Partition,
    searcher: &Searcher,
    fields: &Fields,
    address: DocAddress,
) -> Result<Hit, SearchError> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let fast = searcher.segment_reader(address.segment_ord).fast_fields();
    let ts = fast
        .date("ts")?
        .first(address.doc_id)
        .map(|dt| format_micros(dt.into_timestamp_micros()))
        .unwrap_or_default();
    let seq = fast.u64("seq")?.first(address.doc_id).unwrap_or(0);
    let json_fields = doc
        .get_first(fields.fields)
        .map(|value| {
            serde_json::to_value(tantivy::schema::OwnedValue::from(value)).unwrap_or_default()
        })
        .unwrap_or(serde_json::Value::Null);
    Ok(Hit {
        id: format!("{}/{seq}", partition.day),
        ts,
        node: text(fields.node),
        runner: text(fields.runner),
        path: text(fields.path),
        offset: doc
            .get_first(fields.offset)
            .and_then(|v| v.as_u64())
            .unwrap_or(0),
        level: text(fields.level),
        message: text(fields.message),
        fields: json_fields,
        stream: text(fields.stream),
        flags: doc
            .get_all(fields.flags)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    })
}

/// Counts per time bucket, from the `ts` fast field.
pub fn histogram(
    store: &IndexStore,
    builder: &QueryBuilder,
    params: &HistogramParams,
) -> Result<HistogramResponse, SearchError> {
    let started = Instant::now();
    let (mut from, mut to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    // Open-ended ranges are narrowed to the data actually present.
    let partitions = store.overlapping(from, to);
    if let (Some(newest), Some(oldest)) = (partitions.first(), partitions.last()) {
        from = from.max(oldest.time_range().0);
        to = to.min(newest.time_range().1.max(Utc::now().timestamp_micros()));
    } else {
        to = to.min(Utc::now().timestamp_micros());
        from = from.max(to - 3_600_000_000);
    }
    let interval = match params.interval.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => parse_interval(text).map_err(|reason| SearchError::BadParam {
            param: "interval",
            value: text.to_string(),
            reason,
        })?,
        None => time::auto_interval(to - from),
    };
    let start = from.div_euclid(interval) * interval;
    let buckets = ((to - start + interval - 1) / interval).max(1);
    if buckets > MAX_BUCKETS {
        return Err(SearchError::BadParam {
            param: "interval",
            value: time::format_interval(interval),
            reason: format!("gives {buckets} buckets over this range; at most {MAX_BUCKETS}"),
        });
    }
    let query = builder.in_range(
        builder.parse(params.q.as_deref().unwrap_or(""))?,
        from,
        to,
        params.hide_audit,
    );
    let mut counts = vec![0u64; buckets as usize];
    for partition in &partitions {
        check_cancelled()?;
        let collector = HistogramCollector::new(
            "ts".to_string(),
            DateTime::from_timestamp_micros(start),
            // The date fast field's u64 form is in nanoseconds.
            (interval as u64) * 1000,
            buckets as usize,
        );
        let partition_counts = partition.reader.searcher().search(&query, &collector)?;
        for (total, count) in counts.iter_mut().zip(partition_counts) {
            *total += count;
        }
    }
    metrics::counter!(crate::metrics::SEARCH_REQUESTS, "kind" => "histogram").increment(1);
    Ok(HistogramResponse {
        interval: time::format_interval(interval),
        total: counts.iter().sum(),
        buckets: counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| Bucket {
                ts: format_micros(start + i as i64 * interval),
                count,
            })
            .collect(),
        took_ms: started.elapsed().as_millis() as u64,
    })
}
