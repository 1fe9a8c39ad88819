//! `ts` in `[from, to)`, answered from time bounds instead of a scan of every value.
//!
//! Logs arrive roughly in time order, so a segment covers a stretch of time and, inside it, a
//! block of consecutive documents covers a shorter one. tantivy's own fast-field range scans
//! the whole column of every segment the range cuts (a 1 h range over a merged day partition
//! read a million values to find forty thousand). Here:
//!
//! * a segment whose time bounds (the column's min and max) lie inside the range matches
//!   whole, and one that misses it matches nothing — no value is read;
//! * otherwise the segment is cut into blocks of [`BLOCK_DOCS`] documents whose own bounds are
//!   computed once per segment (segments never change; [`BlockBounds`] caches them): blocks
//!   inside match whole, blocks outside are skipped, and only the values of the blocks at the
//!   edges are read.
//!
//! The answer is exact whatever the order of the documents; order only decides how many
//! blocks are edges. Counts of whole segments need no document visit at all
//! ([`TimeRangeWeight::count`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tantivy::index::SegmentId;
use tantivy::query::{
    EmptyScorer, EnableScoring, Exclude, Explanation, Query, Scorer, Weight, intersect_scorers,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

/// Documents per block of the per-segment time bounds.
pub const BLOCK_DOCS: u32 = 1024;
/// Segments whose block bounds are kept (16 bytes per block: a 10 M-document segment takes
/// 160 KB); the cache is emptied when it grows past this, and refilled on demand.
const CACHED_SEGMENTS: usize = 4096;

/// `field` (a date fast field) in `[from, to)`, micros since the epoch.
#[derive(Clone, Debug)]
pub struct TimeRange {
    field: &'static str,
    from: i64,
    to: i64,
}

impl TimeRange {
    pub fn new(field: &'static str, from: i64, to: i64) -> TimeRange {
        TimeRange { field, from, to }
    }
}

impl Query for TimeRange {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(TimeRangeWeight {
            range: self.clone(),
        }))
    }
}

/// Min and max value of every block of [`BLOCK_DOCS`] documents of a segment, by segment
/// id (segments never change): time bounds here, sort-key bounds for newest-first pages
/// (`newest`).
pub(super) struct BlockBounds<T> {
    segments: Mutex<HashMap<(SegmentId, &'static str), Arc<Vec<(T, T)>>>>,
}

impl<T> Default for BlockBounds<T> {
    fn default() -> Self {
        BlockBounds {
            segments: Mutex::default(),
        }
    }
}

fn time_bounds() -> &'static BlockBounds<i64> {
    static BOUNDS: OnceLock<BlockBounds<i64>> = OnceLock::new();
    BOUNDS.get_or_init(BlockBounds::default)
}

impl<T: Copy + Ord + Bounded> BlockBounds<T> {
    /// The bounds of `reader`'s blocks; `values(doc, push)` pushes a document's values. A block
    /// without a value has `(T::MAX, T::MIN)`.
    pub(super) fn of(
        &self,
        reader: &SegmentReader,
        field: &'static str,
        values: impl Fn(DocId, &mut dyn FnMut(T)),
    ) -> Arc<Vec<(T, T)>> {
        let id = (reader.segment_id(), field);
        if let Some(bounds) = self.segments.lock().expect("bounds lock").get(&id) {
            return bounds.clone();
        }
        let max_doc = reader.max_doc();
        let mut bounds = Vec::with_capacity(max_doc.div_ceil(BLOCK_DOCS) as usize);
        let mut start = 0;
        while start < max_doc {
            let end = (start + BLOCK_DOCS).min(max_doc);
            let mut low = T::MAX;
            let mut high = T::MIN;
            for doc in start..end {
                values(doc, &mut |value| {
                    low = low.min(value);
                    high = high.max(value);
                });
            }
            bounds.push((low, high));
            start = end;
        }
        let bounds = Arc::new(bounds);
        let mut segments = self.segments.lock().expect("bounds lock");
        if segments.len() >= CACHED_SEGMENTS {
            segments.clear();
        }
        segments.insert(id, bounds.clone());
        bounds
    }
}

/// A segment's time bounds as a whole: whether it has the field, its lowest and highest
/// value, and whether every document has one.
#[derive(Clone, Copy)]
struct Summary {
    present: bool,
    low: i64,
    high: i64,
    full: bool,
}

/// [`Summary`] of a segment, read once (opening a column costs more than the rest of a
/// search of a rare term).
fn summary(reader: &SegmentReader, field: &'static str) -> tantivy::Result<Summary> {
    static SUMMARIES: OnceLock<Mutex<HashMap<(SegmentId, &'static str), Summary>>> =
        OnceLock::new();
    let summaries = SUMMARIES.get_or_init(Mutex::default);
    let key = (reader.segment_id(), field);
    if let Some(summary) = summaries.lock().expect("summaries lock").get(&key) {
        return Ok(*summary);
    }
    let summary = match reader
        .fast_fields()
        .column_opt::<tantivy::DateTime>(field)?
    {
        Some(column) => Summary {
            present: true,
            low: column.min_value().into_timestamp_micros(),
            high: column.max_value().into_timestamp_micros(),
            full: column.index.get_cardinality() == tantivy::columnar::Cardinality::Full,
        },
        None => Summary {
            present: false,
            low: 0,
            high: 0,
            full: false,
        },
    };
    let mut summaries = summaries.lock().expect("summaries lock");
    if summaries.len() >= CACHED_SEGMENTS {
        summaries.clear();
    }
    summaries.insert(key, summary);
    Ok(summary)
}

/// The extremes of a bounds value type.
pub(super) trait Bounded {
    const MIN: Self;
    const MAX: Self;
}

impl Bounded for i64 {
    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;
}

impl Bounded for u64 {
    const MIN: u64 = u64::MIN;
    const MAX: u64 = u64::MAX;
}

/// Which documents of a segment match.
enum Matches {
    None,
    All,
    /// Sorted, disjoint, non-empty `[start, end)` runs of document ids.
    Runs(Vec<(DocId, DocId)>),
}

pub struct TimeRangeWeight {
    range: TimeRange,
}

impl TimeRangeWeight {
    fn inside(&self, micros: i64) -> bool {
        self.range.from <= micros && micros < self.range.to
    }

    fn matches(&self, reader: &SegmentReader) -> tantivy::Result<Matches> {
        let Summary {
            present,
            low,
            high,
            full,
        } = summary(reader, self.range.field)?;
        if !present || self.range.from >= self.range.to || reader.max_doc() == 0 {
            return Ok(Matches::None);
        }
        if high < self.range.from || low >= self.range.to {
            return Ok(Matches::None);
        }
        if full && self.inside(low) && self.inside(high) {
            return Ok(Matches::All);
        }
        let column = reader
            .fast_fields()
            .column_opt::<tantivy::DateTime>(self.range.field)?
            .expect("the summary saw the column");
        let bounds = time_bounds().of(reader, self.range.field, |doc, push| {
            for value in column.values_for_doc(doc) {
                push(value.into_timestamp_micros());
            }
        });
        let mut runs: Vec<(DocId, DocId)> = Vec::new();
        let mut push = |start: DocId, end: DocId| match runs.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => runs.push((start, end)),
        };
        for (block, &(low, high)) in bounds.iter().enumerate() {
            let start = block as DocId * BLOCK_DOCS;
            let end = (start + BLOCK_DOCS).min(reader.max_doc());
            if low > high || high < self.range.from || low >= self.range.to {
                continue; // no value, or every value outside
            }
            if full && self.inside(low) && self.inside(high) {
                push(start, end);
                continue;
            }
            for doc in start..end {
                if column
                    .values_for_doc(doc)
                    .any(|value| self.inside(value.into_timestamp_micros()))
                {
                    push(doc, doc + 1);
                }
            }
        }
        Ok(if runs.is_empty() {
            Matches::None
        } else {
            Matches::Runs(runs)
        })
    }
}

impl Weight for TimeRangeWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let runs = match self.matches(reader)? {
            Matches::None => Vec::new(),
            Matches::All => vec![(0, reader.max_doc())],
            Matches::Runs(runs) => runs,
        };
        Ok(Box::new(RunScorer::new(runs, boost)))
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        Ok(match self.matches(reader)? {
            Matches::None => 0,
            Matches::All => reader.num_docs(),
            Matches::Runs(runs) => match reader.alive_bitset() {
                None => runs.iter().map(|(start, end)| end - start).sum(),
                Some(alive) => runs
                    .iter()
                    .flat_map(|&(start, end)| start..end)
                    .filter(|&doc| alive.is_alive(doc))
                    .count() as u32,
            },
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} is not in the time range"
            )));
        }
        Ok(Explanation::new("TimeRange", 1.0))
    }
}

/// `inner` restricted to a time range, less the documents of `except` (the audit trail when
/// it is hidden). In a segment that lies inside the range, `inner` runs alone, so its own
/// shortcuts hold: a term's count is its document frequency, match-all's the segment's size.
#[derive(Debug)]
pub struct InRange {
    inner: Box<dyn Query>,
    range: TimeRange,
    except: Option<Box<dyn Query>>,
}

impl Clone for InRange {
    fn clone(&self) -> InRange {
        InRange {
            inner: self.inner.box_clone(),
            range: self.range.clone(),
            except: self.except.as_ref().map(|except| except.box_clone()),
        }
    }
}

impl InRange {
    pub fn new(inner: Box<dyn Query>, range: TimeRange, except: Option<Box<dyn Query>>) -> InRange {
        InRange {
            inner,
            range,
            except,
        }
    }
}

impl Query for InRange {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let except = match &self.except {
            Some(except) => Some(except.weight(match scoring.searcher() {
                Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
                None => EnableScoring::disabled_from_schema(scoring.schema()),
            })?),
            None => None,
        };
        Ok(Box::new(InRangeWeight {
            inner: self.inner.weight(scoring)?,
            inner_is_all: super::QueryBuilder::is_match_all(self.inner.as_ref()),
            range: TimeRangeWeight {
                range: self.range.clone(),
            },
            except,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a tantivy::Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct InRangeWeight {
    inner: Box<dyn Weight>,
    inner_is_all: bool,
    range: TimeRangeWeight,
    except: Option<Box<dyn Weight>>,
}

impl InRangeWeight {
    /// `inner` in the range, before `except`; `None` when nothing in the segment is in range.
    fn in_range(
        &self,
        reader: &SegmentReader,
        boost: Score,
    ) -> tantivy::Result<Option<Box<dyn Scorer>>> {
        Ok(match self.range.matches(reader)? {
            Matches::None => None,
            Matches::All => Some(self.inner.scorer(reader, boost)?),
            // Everything in the runs: the runs alone, not walked beside a match-all.
            Matches::Runs(runs) if self.inner_is_all => Some(Box::new(RunScorer::new(runs, boost))),
            Matches::Runs(runs) => Some(intersect_scorers(
                vec![
                    self.inner.scorer(reader, boost)?,
                    Box::new(RunScorer::new(runs, 1.0)),
                ],
                reader.num_docs(),
            )),
        })
    }
}

impl Weight for InRangeWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let Some(base) = self.in_range(reader, boost)? else {
            return Ok(Box::new(EmptyScorer));
        };
        let except = match &self.except {
            Some(except) => Some(except.scorer(reader, 1.0)?),
            None => None,
        };
        Ok(match except {
            // Nothing to take away here (the audit trail is rarely in a segment): `inner`'s
            // own scorer, with its fast paths.
            Some(except) if except.doc() == TERMINATED => base,
            Some(except) => Box::new(Exclude::new(base, except)),
            None => base,
        })
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        if let Some(alive) = reader.alive_bitset() {
            return Ok(self.scorer(reader, 1.0)?.count(alive));
        }
        let whole = match self.range.matches(reader)? {
            Matches::None => return Ok(0),
            Matches::All if self.inner_is_all => reader.num_docs(),
            Matches::All => self.inner.count(reader)?,
            Matches::Runs(_) => {
                return Ok(self.scorer(reader, 1.0)?.count_including_deleted());
            }
        };
        // Whole segment in range: what `except` takes away is counted on its own (it is small:
        // the audit trail), by walking both together.
        let excluded = match &self.except {
            Some(except) if except.count(reader)? == 0 => 0,
            Some(except) => intersect_scorers(
                vec![self.inner.scorer(reader, 1.0)?, except.scorer(reader, 1.0)?],
                reader.num_docs(),
            )
            .count_including_deleted(),
            None => 0,
        };
        Ok(whole - excluded)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        self.inner.explain(reader, doc)
    }
}

/// The documents of sorted, disjoint `[start, end)` runs.
struct RunScorer {
    runs: Vec<(DocId, DocId)>,
    run: usize,
    doc: DocId,
    boost: Score,
}

impl RunScorer {
    fn new(runs: Vec<(DocId, DocId)>, boost: Score) -> RunScorer {
        let doc = runs.first().map_or(TERMINATED, |run| run.0);
        RunScorer {
            runs,
            run: 0,
            doc,
            boost,
        }
    }
}

impl DocSet for RunScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.doc += 1;
        if self.doc >= self.runs[self.run].1 {
            self.run += 1;
            self.doc = self.runs.get(self.run).map_or(TERMINATED, |run| run.0);
        }
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        // The first run from here that ends after the target.
        let skip = self.runs[self.run..].partition_point(|run| run.1 <= target);
        self.run += skip;
        self.doc = match self.runs.get(self.run) {
            Some(run) => run.0.max(target),
            None => TERMINATED,
        };
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.runs[self.run.min(self.runs.len())..]
            .iter()
            .map(|(start, end)| end - start)
            .sum()
    }
}

impl Scorer for RunScorer {
    fn score(&mut self) -> Score {
        self.boost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound;
    use tantivy::collector::Count;
    use tantivy::query::{BooleanQuery, Occur, RangeQuery, TermQuery};
    use tantivy::schema::{
        DateOptions, DateTimePrecision, FAST, IndexRecordOption, STRING, Schema,
    };
    use tantivy::{DateTime, Index, IndexWriter, TantivyDocument, Term};

    /// Against tantivy's own range query, on segments in time order, shuffled, with deletes,
    /// for ranges inside, across, at and outside every bound.
    #[test]
    fn counts_and_documents_are_those_of_the_fast_field_range() {
        let mut builder = Schema::builder();
        let ts = builder.add_date_field(
            "ts",
            DateOptions::from(FAST)
                .set_indexed()
                .set_precision(DateTimePrecision::Milliseconds),
        );
        let word = builder.add_text_field("word", STRING);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
        let mut random = crate::testutil::xorshift(0x9e37_79b9_7f4a_7c15u64);
        // Segment 1: in order (one value per millisecond); segment 2: shuffled; segment 3:
        // in order, some deleted.
        for segment in 0..3u64 {
            for i in 0..5000u64 {
                let millis = match segment {
                    1 => random() % 20_000,
                    _ => segment * 10_000 + i,
                };
                let mut doc = TantivyDocument::new();
                doc.add_date(ts, DateTime::from_timestamp_millis(millis as i64));
                doc.add_text(word, ["a", "b", "a", "audit"][(random() % 4) as usize]);
                writer.add_document(doc).unwrap();
            }
            writer.commit().unwrap();
        }
        writer.delete_term(Term::from_field_date(
            ts,
            DateTime::from_timestamp_millis(20_500),
        ));
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        let micros = |ms: i64| ms * 1000;
        let mut ranges = vec![
            (0, 30_000),
            (-5, 0),
            (0, 1),
            (4_999, 5_001),
            (10_000, 15_000),
            (12_345, 12_346),
            (20_000, 25_000),
            (20_500, 20_501),
            (30_000, 40_000),
            (7, 7),
            (9, 3),
        ];
        for _ in 0..40 {
            let a = (random() % 32_000) as i64 - 1000;
            let b = a + (random() % 6_000) as i64;
            ranges.push((a, b));
        }
        for (from, to) in ranges {
            for (from, to) in [
                (micros(from), micros(to)),
                (micros(from) + 1, micros(to) - 1),
            ] {
                let ours = TimeRange::new("ts", from, to);
                let theirs = RangeQuery::new(
                    Bound::Included(Term::from_field_date(
                        ts,
                        DateTime::from_timestamp_micros(from),
                    )),
                    Bound::Excluded(Term::from_field_date(
                        ts,
                        DateTime::from_timestamp_micros(to),
                    )),
                );
                let docs = |query: &dyn Query| {
                    let mut docs = searcher
                        .search(query, &tantivy::collector::DocSetCollector)
                        .unwrap()
                        .into_iter()
                        .collect::<Vec<_>>();
                    docs.sort();
                    docs
                };
                let truth = docs(&theirs);
                assert_eq!(docs(&ours), truth, "documents of [{from}, {to})");
                assert_eq!(
                    searcher.search(&ours, &Count).unwrap(),
                    truth.len(),
                    "count of [{from}, {to})"
                );
                // A term in the range, with and without the audit lines taken out, and
                // everything but the audit lines.
                let term = |text: &str| -> Box<dyn Query> {
                    Box::new(TermQuery::new(
                        Term::from_field_text(word, text),
                        IndexRecordOption::Basic,
                    ))
                };
                for (inner, except) in [
                    (term("a"), None),
                    (term("a"), Some(term("audit"))),
                    (
                        Box::new(tantivy::query::AllQuery) as Box<dyn Query>,
                        Some(term("audit")),
                    ),
                    (term("audit"), Some(term("audit"))),
                ] {
                    let mut clauses = vec![
                        (Occur::Must, inner.box_clone()),
                        (Occur::Must, Box::new(theirs.clone()) as Box<dyn Query>),
                    ];
                    if let Some(except) = &except {
                        clauses.push((Occur::MustNot, except.box_clone()));
                    }
                    let expected = docs(&BooleanQuery::new(clauses));
                    let restricted = InRange::new(inner, ours.clone(), except);
                    assert_eq!(
                        docs(&restricted),
                        expected,
                        "{restricted:?} in [{from}, {to})"
                    );
                    assert_eq!(
                        searcher.search(&restricted, &Count).unwrap(),
                        expected.len(),
                        "count of {restricted:?} in [{from}, {to})"
                    );
                }
            }
        }
    }

    #[test]
    fn seek_lands_on_the_first_match_at_or_after_the_target() {
        let mut scorer = RunScorer::new(vec![(2, 4), (10, 11), (20, 23)], 1.0);
        assert_eq!(scorer.doc(), 2);
        assert_eq!(scorer.seek(3), 3);
        assert_eq!(scorer.seek(4), 10);
        assert_eq!(scorer.advance(), 20);
        assert_eq!(scorer.seek(22), 22);
        assert_eq!(scorer.advance(), TERMINATED);
        assert_eq!(scorer.seek(100), TERMINATED);
        assert_eq!(RunScorer::new(vec![], 1.0).doc(), TERMINATED);
    }
}
