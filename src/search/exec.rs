//! Searching this node's day partitions: pages of hits with sort keys, context around a
//! hit, lines indexed after a sequence (live tail), histograms.

use std::ops::Bound;
use std::time::Instant;

use tantivy::collector::{Count, HistogramCollector, TopDocs};
use tantivy::columnar::{Column, StrColumn};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Field, Value};
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

    let mut loaders: Vec<HitLoader> = partitions
        .iter()
        .zip(&searchers)
        .map(|(partition, searcher)| HitLoader::new(partition, searcher, &store.fields))
        .collect();
    let mut hits = Vec::with_capacity(candidates.len());
    for (_, index, address) in &candidates {
        hits.push(loaders[*index].load(*address)?);
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
    let hit = HitLoader::new(&partition, &searcher, fields).load(address)?;
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
            let mut loader = HitLoader::new(&partition, &searcher, fields);
            for (seq, address) in searcher.search(&query, &top)? {
                found.push((seq.unwrap_or(0), loader.load(address)?));
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
        let mut loader = HitLoader::new(&partition, &searcher, &store.fields);
        for (seq, address) in searcher.search(&query, &top)? {
            found.push((seq.unwrap_or(0), loader.load(address)?));
        }
    }
    found.sort_by_key(|(seq, _)| *seq);
    found.truncate(limit);
    Ok(found)
}

/// Reads hits out of one partition's searcher. The columns of each segment are opened once,
/// on the first hit read from it.
///
/// Where a line came from (`node`, `runner`, `path`, `level`, `stream`, `offset`) is kept in
/// fast columns only: every document repeats it, and in the doc store it made a quarter of the
/// compressed bytes. Partitions written before that change stored it; their schema says so and
/// it is read from the doc store there.
struct HitLoader<'a> {
    partition: &'a Partition,
    searcher: &'a Searcher,
    fields: &'a Fields,
    segments: Vec<Option<SegmentColumns>>,
}

/// The columns a hit is read from, in one segment. `None`: the field is read from the doc store
/// (a partition that stored it), or the segment holds no value of it.
struct SegmentColumns {
    ts: Column<DateTime>,
    seq: Column<u64>,
    node: Option<StrColumn>,
    runner: Option<StrColumn>,
    path: Option<StrColumn>,
    level: Option<StrColumn>,
    stream: Option<StrColumn>,
    offset: Option<Column<u64>>,
}

impl<'a> HitLoader<'a> {
    fn new(partition: &'a Partition, searcher: &'a Searcher, fields: &'a Fields) -> Self {
        HitLoader {
            partition,
            searcher,
            fields,
            segments: (0..searcher.segment_readers().len())
                .map(|_| None)
                .collect(),
        }
    }

    fn columns(&mut self, segment_ord: u32) -> Result<&SegmentColumns, SearchError> {
        let slot = &mut self.segments[segment_ord as usize];
        if slot.is_none() {
            let fast = self.searcher.segment_reader(segment_ord).fast_fields();
            let schema = self.searcher.schema();
            let stored = |field: Field| schema.get_field_entry(field).is_stored();
            let str_column = |field: Field, name: &str| -> Result<Option<StrColumn>, SearchError> {
                Ok(if stored(field) { None } else { fast.str(name)? })
            };
            let f = self.fields;
            *slot = Some(SegmentColumns {
                ts: fast.date("ts")?,
                seq: fast.u64("seq")?,
                node: str_column(f.node, "node")?,
                runner: str_column(f.runner, "runner")?,
                path: str_column(f.path, "path")?,
                level: str_column(f.level, "level")?,
                stream: str_column(f.stream, "stream")?,
                offset: if stored(f.offset) {
                    None
                } else {
                    Some(fast.u64("offset")?)
                },
            });
        }
        Ok(slot.as_ref().expect("filled above"))
    }

    fn load(&mut self, address: DocAddress) -> Result<Hit, SearchError> {
        let doc: TantivyDocument = self.searcher.doc(address)?;
        let fields = *self.fields;
        let day = self.partition.day;
        let columns = self.columns(address.segment_ord)?;
        let row = address.doc_id;
        let text = |field: Field, column: &Option<StrColumn>| -> Result<String, SearchError> {
            let mut out = String::new();
            match column {
                Some(column) => {
                    if let Some(ord) = column.ords().first(row) {
                        column
                            .ord_to_str(ord, &mut out)
                            .map_err(tantivy::TantivyError::from)?;
                    }
                }
                None => {
                    if let Some(value) = doc.get_first(field).and_then(|v| v.as_str()) {
                        out.push_str(value);
                    }
                }
            }
            Ok(out)
        };
        let ts = columns
            .ts
            .first(row)
            .map(|dt| format_micros(dt.into_timestamp_micros()))
            .unwrap_or_default();
        let seq = columns.seq.first(row).unwrap_or(0);
        let offset = match &columns.offset {
            Some(column) => column.first(row),
            None => doc.get_first(fields.offset).and_then(|v| v.as_u64()),
        }
        .unwrap_or(0);
        let json = |field: Field| {
            doc.get_first(field).map(|value| {
                serde_json::to_value(tantivy::schema::OwnedValue::from(value)).unwrap_or_default()
            })
        };
        let message = text(fields.message, &None)?;
        let mut json_fields = match doc
            .get_first(fields.fields_stored)
            .and_then(|v| v.as_bytes())
        {
            Some(stored) => {
                crate::index::stored_fields::decode(stored, &message).map_err(|err| {
                    SearchError::Internal(
                        format!(
                            "partition {day}, segment {}, document {}: {err}",
                            address.segment_ord, address.doc_id
                        )
                        .into(),
                    )
                })?
            }
            None => json(fields.fields).unwrap_or(serde_json::Value::Null),
        };
        if let Some(ids) = json(fields.ids) {
            crate::index::identifiers::merge(&mut json_fields, ids);
        }
        Ok(Hit {
            id: format!("{day}/{seq}"),
            ts,
            node: text(fields.node, &columns.node)?,
            runner: text(fields.runner, &columns.runner)?,
            path: text(fields.path, &columns.path)?,
            offset,
            level: text(fields.level, &columns.level)?,
            message,
            fields: json_fields,
            stream: text(fields.stream, &columns.stream)?,
            flags: doc
                .get_all(fields.flags)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::schema::{FieldType, Schema};

    /// The schema partitions had before the source of a line moved to columns: the same fields,
    /// with `node`, `runner`, `path`, `level`, `stream` and `offset` stored.
    fn schema_that_stored_the_source() -> Schema {
        let (current, fields) = crate::index::schema();
        let source = [
            fields.node,
            fields.runner,
            fields.path,
            fields.level,
            fields.stream,
        ];
        let mut builder = Schema::builder();
        for (field, entry) in current.fields() {
            match entry.field_type() {
                FieldType::Str(options) if source.contains(&field) => {
                    builder.add_text_field(entry.name(), options.clone().set_stored());
                }
                _ if field == fields.offset => {
                    builder.add_u64_field(entry.name(), tantivy::schema::STORED);
                }
                _ => {
                    builder.add_field(entry.clone());
                }
            }
        }
        builder.build()
    }

    /// The schema of partitions created before `first_missing` was appended: the fields before
    /// it, with `fields` indexed and stored as it then was.
    fn schema_before(first_missing: tantivy::schema::Field) -> Schema {
        let (current, fields) = crate::index::query_schema();
        let mut builder = Schema::builder();
        for (field, entry) in current.fields() {
            if field.field_id() >= first_missing.field_id() {
                break;
            }
            match entry.field_type() {
                FieldType::JsonObject(options)
                    if field == fields.fields
                        && first_missing.field_id() <= fields.fields_stored.field_id() =>
                {
                    builder.add_json_field(entry.name(), options.clone().set_stored());
                }
                _ => {
                    builder.add_field(entry.clone());
                }
            }
        }
        builder.build()
    }

    /// A store whose 2026-01-14 partition was created before `first_missing` was appended to
    /// the schema (the next day's is created with the current one), a sink on it, and
    /// 2026-01-14T10:00Z in micros.
    fn sink_after_an_old_partition(
        first_missing: tantivy::schema::Field,
    ) -> (
        tempfile::TempDir,
        std::sync::Arc<IndexStore>,
        crate::index::TantivySink,
        i64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let old_ts = chrono::DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
            .unwrap()
            .timestamp_micros();
        let old_dir = dir.path().join("2026-01-14");
        std::fs::create_dir_all(&old_dir).unwrap();
        tantivy::Index::create_in_dir(&old_dir, schema_before(first_missing)).unwrap();
        let (store, _) = IndexStore::open(dir.path(), "n").unwrap();
        let sink = crate::index::TantivySink::new(store.clone(), 64_000_000, 100).unwrap();
        (dir, store, sink, old_ts)
    }

    fn add_lines(
        index: &tantivy::Index,
        fields: &Fields,
        ts: i64,
        seqs: std::ops::RangeInclusive<u64>,
    ) {
        crate::index::tokenizer::register(index);
        let mut writer = index
            .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
            .unwrap();
        for seq in seqs.clone() {
            let ts = ts + seq as i64;
            let mut doc = TantivyDocument::new();
            doc.add_date(fields.ts, DateTime::from_timestamp_micros(ts));
            doc.add_u64(fields.sort, crate::index::sort_key(ts, seq));
            doc.add_u64(fields.seq, seq);
            doc.add_text(fields.node, "web-1");
            doc.add_text(fields.runner, "nginx");
            doc.add_text(fields.path, "/var/log/nginx/access.log");
            doc.add_u64(fields.offset, 100 * seq);
            doc.add_text(fields.level, "error");
            doc.add_text(fields.message, format!("line {seq}"));
            doc.add_text(fields.stream, "nginx/2049:77");
            writer.add_document(doc).unwrap();
        }
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(&crate::index::payload_for(*seqs.end()));
        prepared.commit().unwrap();
    }

    /// A searcher keeps a few decompressed doc store blocks per segment, not tantivy's 100
    /// (25 MiB a segment, resident for as long as nothing is committed), and fetching hits in
    /// time order reads each block once.
    #[test]
    fn fetching_hits_keeps_a_few_doc_store_blocks_and_reads_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = IndexStore::open(dir.path(), "web-1").unwrap();
        let (_, fields) = crate::index::schema();
        let ts = chrono::DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
            .unwrap()
            .timestamp_micros();
        let partition = store.partition(crate::index::day_of(ts)).unwrap();
        let mut writer = partition
            .index
            .writer_with_num_threads::<TantivyDocument>(1, 100_000_000)
            .unwrap();
        let lines = 3000u64;
        let mut stored_bytes = 0usize;
        for seq in 1..=lines {
            let message = format!("line {seq} {}", "payload ".repeat(120));
            stored_bytes += message.len() + 64;
            let mut doc = TantivyDocument::new();
            doc.add_date(fields.ts, DateTime::from_timestamp_micros(ts + seq as i64));
            doc.add_u64(fields.sort, crate::index::sort_key(ts + seq as i64, seq));
            doc.add_u64(fields.seq, seq);
            doc.add_text(fields.message, message);
            writer.add_document(doc).unwrap();
        }
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(&crate::index::payload_for(lines));
        prepared.commit().unwrap();
        partition.reader.reload().unwrap();
        let searcher = partition.reader.searcher();
        assert_eq!(searcher.segment_readers().len(), 1, "one segment of 3 MiB");

        let found = search(
            &store,
            &QueryBuilder::default(),
            &SearchParams {
                q: Some("payload".into()),
                limit: Some(lines as usize),
                ..SearchParams::default()
            },
        )
        .unwrap();
        assert_eq!(found.hits.len() as u64, lines);
        assert!(found.hits[0].message.starts_with(&format!("line {lines} ")));
        let stats = searcher.doc_store_cache_stats();
        let blocks = stored_bytes.div_ceil(crate::index::DOCSTORE_BLOCK_BYTES);
        assert!(
            blocks > crate::index::DOCSTORE_CACHE_BLOCKS,
            "{blocks} blocks"
        );
        assert!(
            stats.num_entries <= crate::index::DOCSTORE_CACHE_BLOCKS,
            "{stats:?}"
        );
        assert!(
            stats.cache_misses <= blocks + 1,
            "{stats:?}, {blocks} blocks"
        );
    }

    /// New partitions keep where a line came from in columns only; partitions written before
    /// kept it in the doc store. Hits, context and the live tail read both the same.
    #[test]
    fn hits_read_the_source_from_columns_and_from_partitions_that_stored_it() {
        let dir = tempfile::tempdir().unwrap();
        let old_ts = chrono::DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
            .unwrap()
            .timestamp_micros();
        let new_ts = old_ts + 86_400_000_000;
        let (_, fields) = crate::index::schema();
        let old_dir = dir.path().join("2026-01-14");
        std::fs::create_dir_all(&old_dir).unwrap();
        let old = tantivy::Index::create_in_dir(&old_dir, schema_that_stored_the_source()).unwrap();
        add_lines(&old, &fields, old_ts, 1..=3);
        drop(old);
        let (store, checkpoint) = IndexStore::open(dir.path(), "web-1").unwrap();
        assert_eq!(checkpoint.seq, 3);
        let new = store.partition(crate::index::day_of(new_ts)).unwrap();
        assert!(!new.index.schema().get_field_entry(fields.path).is_stored());
        add_lines(&new.index, &fields, new_ts, 4..=6);
        for partition in store.all() {
            partition.reader.reload().unwrap();
        }

        let builder = QueryBuilder::default();
        let found = search(
            &store,
            &builder,
            &SearchParams {
                q: Some("runner:nginx AND path:\"/var/log/nginx/access.log\"".into()),
                limit: Some(10),
                ..SearchParams::default()
            },
        )
        .unwrap();
        assert_eq!(found.total, 6);
        let mut seen: Vec<String> = Vec::new();
        for hit in &found.hits {
            let seq: u64 = hit.id.split_once('/').unwrap().1.parse().unwrap();
            assert_eq!(
                (
                    hit.node.as_str(),
                    hit.runner.as_str(),
                    hit.path.as_str(),
                    hit.offset,
                    hit.level.as_str(),
                    hit.stream.as_str(),
                    hit.message.clone()
                ),
                (
                    "web-1",
                    "nginx",
                    "/var/log/nginx/access.log",
                    100 * seq,
                    "error",
                    "nginx/2049:77",
                    format!("line {seq}")
                ),
                "{hit:?}"
            );
            seen.push(hit.id.clone());
        }
        assert_eq!(
            seen,
            [
                "2026-01-15/6",
                "2026-01-15/5",
                "2026-01-15/4",
                "2026-01-14/3",
                "2026-01-14/2",
                "2026-01-14/1"
            ]
        );

        // Context follows the stream read from either place, across the two partitions.
        for id in ["2026-01-14/3", "2026-01-15/4"] {
            let around = context(
                &store,
                &ContextParams {
                    id: Some(id.into()),
                    before: Some(10),
                    after: Some(10),
                },
            )
            .unwrap();
            let lines: Vec<&str> = around.lines.iter().map(|h| h.message.as_str()).collect();
            assert_eq!(
                lines,
                ["line 1", "line 2", "line 3", "line 4", "line 5", "line 6"],
                "{id}"
            );
        }
        let tail = indexed_after(&store, &builder, "level:error", 2, 10, false).unwrap();
        let offsets: Vec<u64> = tail.iter().map(|(_, h)| h.offset).collect();
        assert_eq!(offsets, [300, 400, 500, 600]);
    }

    /// New partitions keep parsed fields in the doc store as ranges of the message
    /// (`index::stored_fields`), older ones as JSON: hits show the same fields from both, and
    /// the new doc store is smaller.
    #[test]
    fn parsed_fields_are_stored_as_ranges_of_the_message_and_read_from_either_layout() {
        use crate::index::Sink;
        let day = 86_400_000_000i64;
        let (_, fields) = crate::index::schema();
        let (_dir, store, mut sink, old_ts) = sink_after_an_old_partition(fields.fields_stored);
        let records: Vec<_> = (0..200u64)
            .map(|i| {
                let line = format!(
                    "10.0.{}.{} - - [14/Jan/2026:10:00:00 +0000] \"GET /item/{i} HTTP/1.1\" {} {} \"-\" \"agent/{}\"",
                    i % 7,
                    i % 250,
                    200 + (i % 3) * 100,
                    i * 13,
                    i % 5
                );
                crate::record::Record {
                    runner: "nginx".into(),
                    fields: serde_json::json!({
                        "remote_addr": format!("10.0.{}.{}", i % 7, i % 250),
                        "request": format!("GET /item/{i} HTTP/1.1"),
                        "request_uri": format!("/item/{i}"),
                        "status": 200 + (i % 3) * 100,
                        "body_bytes_sent": i * 13,
                        "http_user_agent": format!("agent/{}", i % 5),
                        "added": {"by": "a transform", "weight": -1.5 - i as f64},
                    }),
                    ..crate::record::Record::test_line(old_ts + (i % 2) as i64 * day + i as i64, &line)
                }
            })
            .collect();
        for (i, record) in records.iter().enumerate() {
            sink.add(i as u64 + 1, record.clone(), Default::default())
                .unwrap();
        }
        sink.commit(&crate::index::IndexCheckpoint {
            seq: records.len() as u64,
            checkpoints: Vec::new(),
        })
        .unwrap();
        let old = store.partition(crate::index::day_of(old_ts)).unwrap();
        let new = store.partition(crate::index::day_of(old_ts + day)).unwrap();
        assert!(
            old.index
                .schema()
                .get_field_entry(fields.fields)
                .is_stored()
        );
        assert!(
            !new.index
                .schema()
                .get_field_entry(fields.fields)
                .is_stored()
        );
        let store_bytes = |partition: &crate::index::Partition| -> u64 {
            partition.reader.reload().unwrap();
            let searcher = partition.reader.searcher();
            searcher
                .space_usage()
                .unwrap()
                .segments()
                .iter()
                .map(|s| s.store().total().get_bytes())
                .sum()
        };
        // The same number of lines in each, of the same shape: the ranges take less room.
        assert!(
            store_bytes(&new) < store_bytes(&old),
            "{} vs {}",
            store_bytes(&new),
            store_bytes(&old)
        );

        let builder = QueryBuilder::default();
        for q in [
            "*",
            "fields.status:300",
            "fields.request_uri:\"/item/17\"",
            "agent",
        ] {
            let found = search(
                &store,
                &builder,
                &SearchParams {
                    q: Some(q.into()),
                    limit: Some(1000),
                    ..SearchParams::default()
                },
            )
            .unwrap();
            assert!(found.total > 0, "{q}");
            assert_eq!(found.total as usize, found.hits.len(), "{q}");
            for hit in &found.hits {
                let seq: usize = hit.id.split_once('/').unwrap().1.parse().unwrap();
                let record = &records[seq - 1];
                assert_eq!(hit.message, record.message, "{q}");
                assert_eq!(hit.fields, record.fields, "{q} {}", hit.id);
            }
        }
    }

    /// Every hit of `q` (at most 100), checked against the total the search reports.
    fn every_hit(store: &IndexStore, builder: &QueryBuilder, q: &str) -> Vec<Hit> {
        let found = search(
            store,
            builder,
            &SearchParams {
                q: Some(q.into()),
                limit: Some(100),
                ..SearchParams::default()
            },
        )
        .unwrap();
        assert_eq!(found.total as usize, found.hits.len(), "{q}");
        found.hits
    }

    fn app_record(i: u64, ts: i64) -> crate::record::Record {
        let line = crate::record::Record::test_line(ts + i as i64, &format!("request {i}"));
        crate::record::Record {
            runner: "app".into(),
            level: "info".into(),
            fields: serde_json::json!({
                "service": if i.is_multiple_of(2) { "payments" } else { "search" },
                "trace_id": format!("{:032x}", 0xabcdef_u128 * 7919 * (i as u128 + 1)),
                "span": {"id": format!("{:016x}", 1_000_000 + i), "kind": "server"},
                "order": format!("{:019}", 4_000_000_000_000_000 + i),
                "list": [format!("{:032x}", i + 1)],
            }),
            ..line
        }
    }

    /// Identifiers among the parsed fields live in the `ids` column, not in the inverted index;
    /// every way of asking for them answers as before: exact searches (alone, in a conjunction,
    /// negated), hits showing them under `fields`, top values, exact counts, the field list,
    /// and partitions created before the `ids` field.
    #[test]
    fn identifiers_are_searched_in_their_column_and_shown_as_parsed_fields() {
        use crate::index::Sink;
        use crate::search::aggregate::{self, AggParams};
        let day = 86_400_000_000i64;
        // The day before holds a partition created without the `ids` field.
        let (_, fields) = crate::index::schema();
        let (_dir, store, mut sink, old_ts) = sink_after_an_old_partition(fields.ids);
        let records: Vec<_> = (0..40u64)
            .map(|i| app_record(i, old_ts + (i % 2) as i64 * day))
            .collect();
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                sink.add(i as u64 + 1, record.clone(), Default::default())
                    .unwrap(),
                crate::index::Added::Added
            );
        }
        sink.commit(&crate::index::IndexCheckpoint {
            seq: 40,
            checkpoints: Vec::new(),
        })
        .unwrap();

        // In the new partition `fields` is a column, not indexed ([`crate::index::parsed_terms`]).
        let new = store.partition(crate::index::day_of(old_ts + day)).unwrap();
        assert!(
            !new.index
                .schema()
                .get_field_entry(fields.fields)
                .is_indexed()
        );

        let builder = QueryBuilder::default();
        let find = |q: &str| -> Vec<String> {
            let mut messages: Vec<String> = every_hit(&store, &builder, q)
                .into_iter()
                .map(|h| h.message)
                .collect();
            messages.sort();
            messages
        };
        for i in [0u64, 1, 6, 39] {
            let record = &records[i as usize];
            let want = vec![record.message.clone()];
            let trace = record.fields["trace_id"].as_str().unwrap();
            let span = record.fields["span"]["id"].as_str().unwrap();
            let order = record.fields["order"].as_str().unwrap();
            let service = record.fields["service"].as_str().unwrap();
            assert_eq!(find(&format!("fields.trace_id:{trace}")), want, "{i}");
            assert_eq!(find(&format!("fields.trace_id:\"{trace}\"")), want, "{i}");
            assert_eq!(find(&format!("fields.span.id:{span}")), want, "{i}");
            assert_eq!(find(&format!("fields.order:{order}")), want, "{i}");
            assert_eq!(
                find(&format!(
                    "fields.trace_id:{trace} AND fields.service:{service}"
                )),
                want
            );
            assert!(
                find(&format!(
                    "fields.trace_id:{trace} AND NOT fields.service:{service}"
                ))
                .is_empty()
            );
            assert_eq!(
                find(&format!(
                    "fields.service:{service} AND NOT fields.trace_id:{trace}"
                ))
                .len(),
                19
            );
            // Inside an array an identifier stays a term of `fields`.
            let listed = record.fields["list"][0].as_str().unwrap();
            assert_eq!(find(&format!("fields.list:{listed}")), want, "{i}");
        }
        assert!(find("fields.trace_id:00000000000000000000000000000000").is_empty());

        // Hits show them where the line had them.
        let found = search(
            &store,
            &builder,
            &SearchParams {
                limit: Some(100),
                ..SearchParams::default()
            },
        )
        .unwrap();
        assert_eq!(found.hits.len(), 40);
        for hit in &found.hits {
            let i: usize = hit.message["request ".len()..].parse().unwrap();
            assert_eq!(hit.fields, records[i].fields, "{i}");
        }

        // Top values and exact counts, over both partitions.
        let params = |field: &str| AggParams {
            field: Some(field.into()),
            size: Some(100),
            ..AggParams::default()
        };
        let (top, bound) =
            aggregate::top_with_bound(&store, &builder, &params("fields.trace_id")).unwrap();
        assert_eq!((top.values.len(), top.other, bound), (40, 0, 0));
        assert!(top.values.iter().all(|v| v.count == 1));
        let (top, _) =
            aggregate::top_with_bound(&store, &builder, &params("fields.service")).unwrap();
        let counts: Vec<u64> = top.values.iter().map(|v| v.count).collect();
        assert_eq!(counts, [20, 20]);
        let (top, _) = aggregate::top_with_bound(
            &store,
            &builder,
            &AggParams {
                size: Some(3),
                ..params("fields.span.id")
            },
        )
        .unwrap();
        assert_eq!((top.values.len(), top.other), (3, 37));
        let values: Vec<serde_json::Value> = (0..3)
            .map(|i| records[i].fields["trace_id"].clone())
            .chain([serde_json::json!("00000000000000000000000000000000")])
            .collect();
        assert_eq!(
            aggregate::count_values(&store, &builder, &params("fields.trace_id"), &values).unwrap(),
            [1, 1, 1, 0]
        );
        let listed = aggregate::fields(&store, &builder, &params("")).unwrap();
        let info = listed
            .fields
            .iter()
            .find(|f| f.name == "fields.trace_id")
            .unwrap();
        assert_eq!((info.field_type.as_str(), info.share), ("keyword", 1.0));
    }

    /// A JSON line as the app writes it, and its parsed fields plus one the line does not hold
    /// (`env`, as a transform would add).
    fn json_line_record(i: u64, ts: i64) -> crate::record::Record {
        let service = if i.is_multiple_of(3) {
            "payments"
        } else {
            "search"
        };
        // Other lines mention `payments` in another field: the column check keeps them out.
        let note = if i % 3 == 1 { "calls payments" } else { "ok" };
        let status = if i.is_multiple_of(4) { 500 } else { 200 };
        let trace = format!("{:032x}", 0x5eed_u128 * 7919 * (i as u128 + 1));
        let message = format!(
            r#"{{"service":"{service}","path":"/api/v2/users/{n}","status":{status},"trace_id":"{trace}","note":"{note}","user":"-","city":"数据库","at":"2026-01-14T10:00:00Z"}}"#,
            n = i % 5
        );
        let mut fields: serde_json::Value = serde_json::from_str(&message).unwrap();
        fields["env"] = serde_json::json!(if i.is_multiple_of(2) { "prod" } else { "test" });
        crate::record::Record {
            runner: "app".into(),
            fields,
            ..crate::record::Record::test_line(ts + i as i64, &message)
        }
    }

    /// New partitions keep parsed fields as columns and find a value through the message's
    /// words, checked on the column; values the message cannot vouch for are terms of
    /// `fields_terms`. Every kind of field query answers exactly as on a partition that indexes
    /// `fields` (the day before), which the same queries search at once.
    #[test]
    fn parsed_values_are_found_through_the_message_and_checked_on_their_column() {
        use crate::index::Sink;
        let day = 86_400_000_000i64;
        let (_, fields) = crate::index::schema();
        let (_dir, store, mut sink, old_ts) = sink_after_an_old_partition(fields.fields_terms);
        let records: Vec<_> = (0..60u64)
            .map(|i| json_line_record(i, old_ts + (i % 2) as i64 * day))
            .collect();
        for (i, record) in records.iter().enumerate() {
            sink.add(i as u64 + 1, record.clone(), Default::default())
                .unwrap();
        }
        sink.commit(&crate::index::IndexCheckpoint {
            seq: 60,
            checkpoints: Vec::new(),
        })
        .unwrap();

        // The new partition's terms: only what the message cannot find.
        let new = store.partition(crate::index::day_of(old_ts + day)).unwrap();
        let schema = new.index.schema();
        assert!(!schema.get_field_entry(fields.fields).is_indexed());
        let mut keys = std::collections::BTreeSet::new();
        for segment in new.reader.searcher().segment_readers() {
            let inverted = segment.inverted_index(fields.fields_terms).unwrap();
            let mut stream = inverted.terms().stream().unwrap();
            while stream.advance() {
                let key = String::from_utf8_lossy(stream.key()).to_string();
                keys.insert(key.split('\0').next().unwrap().to_string());
            }
        }
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            ["at", "city", "env", "status"],
            "a time (tantivy keeps it as a date), CJK, a value not in the line, numbers"
        );

        let builder = QueryBuilder::default();
        let count = |q: &str| every_hit(&store, &builder, q).len();
        let expect = |f: &dyn Fn(&serde_json::Value) -> bool| {
            records.iter().filter(|r| f(&r.fields)).count()
        };
        assert_eq!(
            count("fields.service:payments"),
            expect(&|f| f["service"] == "payments")
        );
        assert_eq!(count("fields.service:payments"), 20);
        assert_eq!(
            count("fields.path:\"/api/v2/users/3\""),
            expect(&|f| f["path"] == "/api/v2/users/3")
        );
        // A prefix of a value is not the value.
        assert_eq!(count("fields.path:\"/api/v2\""), 0);
        assert_eq!(count("fields.note:payments"), 0);
        assert_eq!(
            count("fields.note:\"calls payments\""),
            expect(&|f| f["note"] == "calls payments")
        );
        assert_eq!(count("fields.user:\"-\""), 60, "a value without words");
        assert_eq!(
            count("fields.env:prod"),
            expect(&|f| f["env"] == "prod"),
            "a value the line does not hold"
        );
        assert_eq!(count("fields.city:数据库"), 60, "CJK");
        assert_eq!(count("fields.at:\"2026-01-14T10:00:00Z\""), 60, "a time");
        assert_eq!(count("fields.status:500"), expect(&|f| f["status"] == 500));
        assert_eq!(
            count("fields.status:[400 TO 599]"),
            expect(&|f| f["status"] == 500)
        );
        assert_eq!(
            count("fields.service:payments AND NOT fields.status:500"),
            expect(&|f| f["service"] == "payments" && f["status"] != 500)
        );
        assert_eq!(
            count("runner:app AND NOT fields.service:payments"),
            expect(&|f| f["service"] != "payments")
        );
        for record in [&records[0], &records[7]] {
            let trace = record.fields["trace_id"].as_str().unwrap();
            assert_eq!(count(&format!("fields.trace_id:{trace}")), 1, "{trace}");
        }
        // Case is the value's: the words match `PAYMENTS`, the column does not.
        assert_eq!(count("fields.service:PAYMENTS"), 0);
    }
}
