//! Search: the query model, time parsing, and local execution over the day partitions.
//!
//! A query is tantivy's Lucene-like syntax over `message` by default, with `level:`, `runner:`,
//! `path:`, `node:`, `flags:` and `fields.<name>:`; terms are ANDed unless `OR` is written.
//! The time range is applied as a fast-field range on `ts` and only partitions that overlap it
//! are opened. Hits come newest first (by the `sort` fast field); the cursor of a page is the
//! sort key of its last hit, so pages stay stable while new data arrives.

pub mod aggregate;
pub mod backend;
pub mod cluster;
pub mod local;
pub mod merge;
pub mod remote;
pub mod sketch;
mod time;

use std::ops::Bound;
use std::time::Instant;

use chrono::{DateTime as ChronoDateTime, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, HistogramCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::Value;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

pub use time::{auto_interval, format_interval, parse_interval, parse_time};

use crate::index::{Fields, IndexStore, Partition, schema};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;
pub use crate::record::END_OF_TIME;
/// At most this many histogram buckets.
pub const MAX_BUCKETS: i64 = 2000;
/// Longest query text accepted (bytes). Long lists of IDs fit; a query is not a data upload.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest nesting accepted: groups `(...)` plus chained `NOT`s. The query grammar, the
/// rewrites below and tantivy's query building all recurse once per level, so this bound is
/// what keeps any query from exhausting a thread's stack (3000 levels aborted the process).
pub const MAX_QUERY_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query {query:?}: {reason}")]
    BadQuery { query: String, reason: String },
    #[error("invalid {param} {value:?}: {reason}")]
    BadParam {
        param: &'static str,
        value: String,
        reason: String,
    },
    /// Another node refused the request, with its message.
    #[error("{0}")]
    Refused(String),
    /// What the request names does not exist (a hit another node does not hold).
    #[error("{0}")]
    NotFound(String),
    /// No backend could answer (every node failed, or this one is too busy).
    #[error("{0}")]
    Unavailable(String),
    /// The engine failed (its own error as the source).
    #[error("search failed: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(err: tantivy::TantivyError) -> Self {
        SearchError::Internal(Box::new(err))
    }
}

/// Parameters of `GET /api/v1/search` (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// Leave out the audit trail (runner `_audit`): set by the API for non-admins, never
    /// from the query string.
    #[serde(skip)]
    pub hide_audit: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistogramParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `30s`, `5m`, `1h`, `1d`; chosen from the range when absent.
    pub interval: Option<String>,
    /// Leave out the audit trail (runner `_audit`): set by the API for non-admins, never
    /// from the query string.
    #[serde(skip)]
    pub hide_audit: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    /// `<day>/<seq>`: unique on this node.
    pub id: String,
    pub ts: String,
    pub node: String,
    pub runner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub fields: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The file stream the line came from (`/api/v1/context` follows it through rotations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Matches in the whole time range (not only this page).
    pub total: u64,
    pub hits: Vec<Hit>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub from: String,
    pub to: String,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub ts: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramResponse {
    pub interval: String,
    pub total: u64,
    pub buckets: Vec<Bucket>,
    pub took_ms: u64,
}

/// Turns query text into a tantivy query. Shared by every partition (same schema).
pub struct QueryBuilder {
    parser: QueryParser,
    pub(crate) fields: Fields,
}

impl Default for QueryBuilder {
    fn default() -> Self {
        let (schema, fields) = schema();
        let tokenizers = TokenizerManager::default();
        tokenizers.register(
            crate::index::tokenizer::MESSAGE_TOKENIZER,
            crate::index::tokenizer::message_analyzer(),
        );
        let mut parser = QueryParser::new(schema, vec![fields.message], tokenizers);
        parser.set_conjunction_by_default();
        // Wildcards are rewritten to regexes; `field:/regex/` is allowed as well.
        parser.allow_regexes();
        QueryBuilder { parser, fields }
    }
}

impl QueryBuilder {
    /// Parse `q` (empty or `*` matches everything).
    pub fn parse(&self, q: &str) -> Result<Box<dyn Query>, SearchError> {
        let q = q.trim();
        if q.is_empty() || q == "*" {
            return Ok(Box::new(AllQuery));
        }
        check_query_size(q)?;
        // Wildcards (`ap*`, `err?r`) become regular expressions over the field's terms.
        if let Ok(ast) = tantivy::query_grammar::parse_query(q) {
            let (ast, expanded) = expand_wildcards(ast);
            if expanded {
                let query = self
                    .parser
                    .build_query_from_user_input_ast(ast)
                    .map_err(|err| SearchError::BadQuery {
                        query: q.to_string(),
                        reason: format!(
                            "{err} (wildcards work on message, level, runner, node and path)"
                        ),
                    })?;
                return Ok(complete_negations(query));
            }
        }
        let query = self.parser.parse_query(q).map_err(|err| {
            // The strict parser only says "syntax error"; the lenient one says where.
            let located = matches!(err, tantivy::query::QueryParserError::SyntaxError(_))
                .then(|| self.parser.parse_query_lenient(q).1.into_iter().next())
                .flatten();
            SearchError::BadQuery {
                query: q.to_string(),
                reason: located.unwrap_or(err).to_string(),
            }
        })?;
        Ok(complete_negations(query))
    }

    fn time_range(&self, from: i64, to: i64) -> Box<dyn Query> {
        Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_date(
                self.fields.ts,
                DateTime::from_timestamp_micros(from),
            )),
            Bound::Excluded(Term::from_field_date(
                self.fields.ts,
                DateTime::from_timestamp_micros(to),
            )),
        ))
    }

    /// `query` restricted to `[from, to)`. A match-all query becomes the bare time range, which
    /// tantivy answers from the `ts` fast field alone.
    pub(crate) fn in_range(
        &self,
        query: Box<dyn Query>,
        from: i64,
        to: i64,
        hide_audit: bool,
    ) -> Box<dyn Query> {
        if hide_audit {
            let audit: Box<dyn Query> = Box::new(tantivy::query::TermQuery::new(
                Term::from_field_text(self.fields.runner, crate::record::AUDIT_RUNNER),
                tantivy::schema::IndexRecordOption::Basic,
            ));
            return Box::new(BooleanQuery::new(vec![
                (Occur::Must, self.in_range(query, from, to, false)),
                (Occur::MustNot, audit),
            ]));
        }
        if unboxed(query.as_ref()).downcast_ref::<AllQuery>().is_some() {
            return self.time_range(from, to);
        }
        Box::new(BooleanQuery::new(vec![
            (Occur::Must, query),
            (Occur::Must, self.time_range(from, to)),
        ]))
    }

    fn before_cursor(&self, sort: u64) -> Box<dyn Query> {
        Box::new(RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_u64(self.fields.sort, sort)),
        ))
    }
}

/// Refuse queries over [`MAX_QUERY_BYTES`] or nested deeper than [`MAX_QUERY_DEPTH`], before
/// anything recursive sees them.
pub fn check_query_size(q: &str) -> Result<(), SearchError> {
    let refuse = |reason: String| SearchError::BadQuery {
        query: q.chars().take(200).collect(),
        reason,
    };
    if q.len() > MAX_QUERY_BYTES {
        return Err(refuse(format!(
            "the query is {} bytes long; at most {MAX_QUERY_BYTES} are allowed",
            q.len()
        )));
    }
    let depth = query_depth(q);
    if depth > MAX_QUERY_DEPTH {
        return Err(refuse(format!(
            "the query nests {depth} levels deep (groups and NOTs); at most {MAX_QUERY_DEPTH} are allowed"
        )));
    }
    Ok(())
}

/// An upper bound of the query grammar's recursion: open groups plus the run of `NOT`s in
/// front of the current operand. Quoted phrases and escaped characters do not count.
fn query_depth(q: &str) -> usize {
    let mut max = 0usize;
    let mut groups = 0usize;
    let mut nots = 0usize;
    let mut in_quote = false;
    let mut word = String::new();
    let mut chars = q.chars();
    let end_word = |word: &mut String, nots: &mut usize| {
        if !word.is_empty() {
            if word == "NOT" {
                *nots += 1;
            } else {
                *nots = 0;
            }
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '\\' => {
                chars.next();
                word.push('x');
            }
            '"' => {
                end_word(&mut word, &mut nots);
                nots = 0;
                in_quote = true;
            }
            '(' => {
                end_word(&mut word, &mut nots);
                groups += 1;
            }
            ')' => {
                end_word(&mut word, &mut nots);
                groups = groups.saturating_sub(1);
                nots = 0;
            }
            c if c.is_whitespace() => end_word(&mut word, &mut nots),
            c => word.push(c),
        }
        max = max.max(groups + nots);
    }
    end_word(&mut word, &mut nots);
    max.max(groups + nots)
}

/// Turn unquoted literals containing `*` or `?` into regex leaves (`ap*` → `/ap.*/`). Terms of
/// the default field are lowercased first, as the message tokenizer does. Returns whether any
/// literal was rewritten.
fn expand_wildcards(
    ast: tantivy::query_grammar::UserInputAst,
) -> (tantivy::query_grammar::UserInputAst, bool) {
    use tantivy::query_grammar::{Delimiter, UserInputAst, UserInputLeaf};
    match ast {
        UserInputAst::Clause(clauses) => {
            let mut any = false;
            let clauses = clauses
                .into_iter()
                .map(|(occur, sub)| {
                    let (sub, expanded) = expand_wildcards(sub);
                    any |= expanded;
                    (occur, sub)
                })
                .collect();
            (UserInputAst::Clause(clauses), any)
        }
        UserInputAst::Boost(inner, boost) => {
            let (inner, expanded) = expand_wildcards(*inner);
            (UserInputAst::Boost(Box::new(inner), boost), expanded)
        }
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Literal(literal)
                if literal.delimiter == Delimiter::None
                    && literal.phrase.contains(['*', '?'])
                    && literal.phrase.chars().any(|c| c != '*' && c != '?') =>
            {
                let text = if literal.field_name.is_none() {
                    literal.phrase.to_lowercase()
                } else {
                    literal.phrase.clone()
                };
                let mut pattern = String::new();
                for c in text.chars() {
                    match c {
                        '*' => pattern.push_str(".*"),
                        '?' => pattern.push('.'),
                        c if "\\.+()|[]{}^$#&-~\"".contains(c) => {
                            pattern.push('\\');
                            pattern.push(c);
                        }
                        c => pattern.push(c),
                    }
                }
                (
                    UserInputAst::Leaf(Box::new(UserInputLeaf::Regex {
                        // Regexes need a field: the default field is `message`.
                        field: literal.field_name.or_else(|| Some("message".to_string())),
                        pattern,
                    })),
                    true,
                )
            }
            other => (UserInputAst::Leaf(Box::new(other)), false),
        },
    }
}

/// The query inside any number of `Box<dyn Query>` layers (the parser boxes boxes).
fn unboxed(mut query: &dyn Query) -> &dyn Query {
    while let Some(inner) = query.downcast_ref::<Box<dyn Query>>() {
        query = inner.as_ref();
    }
    query
}

/// tantivy parses `a AND NOT b` as `+a +(-b)`, and a group of only exclusions matches
/// nothing. Give every such group an "all documents" clause, so it means "everything except",
/// as operators expect from Lucene and Kibana.
fn complete_negations(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(boolean) = unboxed(query.as_ref()).downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = boolean
        .clauses()
        .iter()
        .map(|(occur, sub)| (*occur, complete_negations(sub.box_clone())))
        .collect();
    if clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    Box::new(BooleanQuery::new(clauses))
}

/// The resolved time range `[from, to)` in micros; defaults to everything.
pub(crate) fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(i64, i64), SearchError> {
    let now = Utc::now();
    let from = match from.filter(|s| !s.trim().is_empty()) {
        Some(text) => parse_time(text, now).map_err(|reason| SearchError::BadParam {
            param: "from",
            value: text.to_string(),
            reason,
        })?,
        None => 0,
    };
    let to = match to.filter(|s| !s.trim().is_empty()) {
        Some(text) => parse_time(text, now).map_err(|reason| SearchError::BadParam {
            param: "to",
            value: text.to_string(),
            reason,
        })?,
        // Far future: clocks of the machines that wrote the logs may be ahead.
        None => END_OF_TIME,
    };
    let (from, to) = (from.clamp(0, END_OF_TIME), to.clamp(0, END_OF_TIME));
    if to <= from {
        return Err(SearchError::BadParam {
            param: "to",
            value: format_micros(to),
            reason: format!("must be after from ({})", format_micros(from)),
        });
    }
    Ok((from, to))
}

pub fn format_micros(micros: i64) -> String {
    ChronoDateTime::<Utc>::from_timestamp_micros(micros)
        .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

/// Parse a cursor returned by a previous page (the sort key of its last hit).
pub fn parse_cursor(text: &str) -> Result<u64, SearchError> {
    text.parse::<u64>().map_err(|_| SearchError::BadParam {
        param: "cursor",
        value: text.to_string(),
        reason: "not a cursor returned by a previous page".into(),
    })
}

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
        let top = TopDocs::with_limit(limit).order_by_fast_field::<u64>("sort", Order::Desc);
        let (count, top_docs) = if cursor.is_some() {
            let count = searcher.search(base.as_ref(), &Count)?;
            (count, searcher.search(page_query.as_ref(), &top)?)
        } else {
            searcher.search(page_query.as_ref(), &(Count, top))?
        };
        total += count as u64;
        candidates.extend(
            top_docs
                .into_iter()
                .map(|(sort, address)| (sort.unwrap_or(0), index, address)),
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

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContextParams {
    /// A hit's `id` (`<day>/<seq>`).
    pub id: Option<String>,
    pub before: Option<usize>,
    pub after: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextResponse {
    pub id: String,
    /// The lines around the hit from the same file, in file order; the hit included.
    pub lines: Vec<Hit>,
    /// Position of the hit in `lines`.
    pub hit_index: usize,
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

    #[test]
    fn deep_and_long_queries_are_refused_not_parsed() {
        let builder = QueryBuilder::default();
        // 3000 nested groups overflowed the stack and aborted the process.
        for q in [
            format!("{}a{}", "(".repeat(3000), ")".repeat(3000)),
            format!("{}a", "NOT ".repeat(3000)),
            format!("{}a", "(NOT ".repeat(3000)),
            "(".repeat(100_000),
        ] {
            let err = builder.parse(&q).err().expect("refused");
            let text = err.to_string();
            assert!(
                text.contains("levels deep") || text.contains("bytes long"),
                "{text}"
            );
            assert!(
                text.len() < 600,
                "the error quotes only the start: {}",
                text.len()
            );
        }
        let long = "a ".repeat(MAX_QUERY_BYTES);
        assert!(
            builder
                .parse(&long)
                .err()
                .unwrap()
                .to_string()
                .contains("bytes long")
        );
        // Within the limits, depth is fine and quoted parentheses do not count.
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_QUERY_DEPTH),
            ")".repeat(MAX_QUERY_DEPTH)
        );
        builder.parse(&ok).expect("32 levels parse");
        builder
            .parse(&format!("\"{}\" AND b", "(".repeat(500)))
            .expect("parentheses in a phrase are text");
        builder
            .parse("a AND NOT b AND NOT c AND NOT d")
            .expect("separate NOTs");
    }

    #[test]
    fn and_not_means_except() {
        let builder = QueryBuilder::default();
        let query = format!("{:?}", builder.parse("searchtest AND NOT alpha").unwrap());
        assert!(query.contains("AllQuery"), "{query}");
        // A match-all query restricted to a range is the bare range (fast-field only).
        let ranged = builder.in_range(builder.parse("*").unwrap(), 0, 10, false);
        assert!(
            ranged.as_ref().downcast_ref::<RangeQuery>().is_some(),
            "{ranged:?}"
        );
    }
}
