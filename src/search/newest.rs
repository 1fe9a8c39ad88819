//! The newest `limit` matches by sort key (`ts_millis << 22 | seq`), without reading the key
//! of every match.
//!
//! Logs are appended in time order, so the newest documents of a segment sit at its end and
//! its blocks of [`BLOCK_DOCS`](super::time_range::BLOCK_DOCS) documents have rising sort-key
//! bounds. For each segment:
//!
//! 1. the blocks with the highest bounds are read first, each on its own (at most
//!    [`FIRST_BLOCKS`], and only when the query's match estimate says a few blocks should
//!    fill the page): for a query with many matches that fills the page and sets a threshold,
//!    the lowest key on it;
//! 2. the rest of the segment is walked from the start, jumping over the blocks already read
//!    and every block whose highest key is not above the threshold (the threshold rises as
//!    better matches are found).
//!
//! Exact whatever the order of the documents (a block is skipped only when none of its keys
//! can enter the page; a key equal to the lowest on a full page does not enter it, as
//! first-come ties); order only decides how much is skipped. A query with few matches is
//! walked whole, as before. Count the matches with a separate `Count` (it has its own
//! shortcuts): this collector's own per-document path, used when it is part of a tuple of
//! collectors, reads every key.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED};

use super::time_range::{BLOCK_DOCS, BlockBounds};

/// Blocks read first, at most (step 1 of the module doc).
const FIRST_BLOCKS: usize = 8;

/// The field newest-first pages order by.
const SORT_FIELD: &str = "sort";

fn sort_bounds() -> &'static BlockBounds<u64> {
    static BOUNDS: OnceLock<BlockBounds<u64>> = OnceLock::new();
    BOUNDS.get_or_init(BlockBounds::default)
}

/// The `limit` matches with the highest sort keys, highest first; with [`Newest::counting`],
/// also the number of matches, in the same walk.
pub struct Newest {
    limit: usize,
    count: bool,
}

/// How many matched (0 unless counting), and the page.
pub type NewestFruit = (u64, Vec<(u64, DocAddress)>);

impl Newest {
    pub fn with_limit(limit: usize) -> Newest {
        Newest {
            limit: limit.max(1),
            count: false,
        }
    }

    /// Count every match too. For queries whose count has no shortcut (a phrase, a boolean
    /// query): they are walked once, for both; the keys are still read only where they may
    /// enter the page. A term or match-all is better counted by `Count` and paged without.
    pub fn counting(mut self) -> Newest {
        self.count = true;
        self
    }
}

/// The best `limit` (key, doc) seen so far.
struct Page {
    limit: usize,
    heap: BinaryHeap<Reverse<(u64, DocId)>>,
}

impl Page {
    fn new(limit: usize) -> Page {
        Page {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    /// The key a document must beat to enter, once the page is full.
    fn threshold(&self) -> Option<u64> {
        (self.heap.len() >= self.limit).then(|| self.heap.peek().expect("full").0.0)
    }

    fn offer(&mut self, key: u64, doc: DocId) {
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((key, doc)));
        } else if self.threshold().is_some_and(|low| key > low) {
            self.heap.pop();
            self.heap.push(Reverse((key, doc)));
        }
    }

    fn into_sorted(self, segment_ord: SegmentOrdinal) -> Vec<(u64, DocAddress)> {
        let mut hits: Vec<(u64, DocAddress)> = self
            .heap
            .into_iter()
            .map(|Reverse((key, doc))| {
                (
                    key,
                    DocAddress {
                        segment_ord,
                        doc_id: doc,
                    },
                )
            })
            .collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits
    }
}

fn sort_column(reader: &SegmentReader) -> tantivy::Result<Column<u64>> {
    reader.fast_fields().u64(SORT_FIELD)
}

/// Used only inside a tuple of collectors: every match's key is read.
pub struct NewestSegment {
    column: Column<u64>,
    page: Page,
    segment_ord: SegmentOrdinal,
    count: u64,
}

impl SegmentCollector for NewestSegment {
    type Fruit = NewestFruit;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        if let Some(key) = self.column.first(doc) {
            self.page.offer(key, doc);
        }
    }

    fn harvest(self) -> Self::Fruit {
        (self.count, self.page.into_sorted(self.segment_ord))
    }
}

impl Collector for Newest {
    type Fruit = NewestFruit;
    type Child = NewestSegment;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NewestSegment> {
        Ok(NewestSegment {
            column: sort_column(reader)?,
            page: Page::new(self.limit),
            segment_ord,
            count: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<NewestFruit>) -> tantivy::Result<NewestFruit> {
        let count = segments.iter().map(|(count, _)| count).sum();
        let mut hits: Vec<(u64, DocAddress)> =
            segments.into_iter().flat_map(|(_, hits)| hits).collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(self.limit);
        Ok((count, hits))
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<NewestFruit> {
        let max_doc = reader.max_doc();
        let mut scorer = weight.scorer(reader, 1.0)?;
        if max_doc == 0 || scorer.doc() == TERMINATED {
            // Most segments hold no match of a rare term: nothing more is opened.
            return Ok((0, Vec::new()));
        }
        let column = sort_column(reader)?;
        let bounds = sort_bounds().of(reader, SORT_FIELD, |doc, push| {
            for value in column.values_for_doc(doc) {
                push(value);
            }
        });
        let alive = reader.alive_bitset();
        let mut page = Page::new(self.limit);
        let take = |page: &mut Page, doc: DocId| {
            if alive.is_none_or(|bits| bits.is_alive(doc))
                && let Some(key) = column.first(doc)
            {
                page.offer(key, doc);
            }
        };
        let blocks = bounds.len();
        let block_end = |block: usize| ((block as DocId + 1) * BLOCK_DOCS).min(max_doc);
        // Whether a block may hold a document that enters the page now.
        let may_enter = |page: &Page, block: usize| {
            let (low, high) = bounds[block];
            low <= high && page.threshold().is_none_or(|threshold| high > threshold)
        };
        let mut visited = vec![false; blocks];
        // 1. The blocks with the highest keys, each on its own, while they may enter the page
        //    and the query is dense enough that a few of them should fill it.
        let needed =
            (self.limit as u64 * blocks as u64).div_ceil(u64::from(scorer.size_hint()).max(1));
        if needed <= FIRST_BLOCKS as u64 {
            for _ in 0..FIRST_BLOCKS {
                let Some(block) = (0..blocks)
                    .filter(|&block| !visited[block] && may_enter(&page, block))
                    .max_by_key(|&block| (bounds[block].1, block))
                else {
                    break;
                };
                visited[block] = true;
                let start = block as DocId * BLOCK_DOCS;
                let mut doc = scorer.doc();
                if doc > start {
                    // This scorer went past the block: a new one starts before it.
                    scorer = weight.scorer(reader, 1.0)?;
                    doc = scorer.doc();
                }
                if doc < start {
                    doc = scorer.seek(start);
                }
                while doc < block_end(block) {
                    take(&mut page, doc);
                    doc = scorer.advance();
                }
            }
            scorer = weight.scorer(reader, 1.0)?;
        }
        // 2. Everything else from the start, jumping over the blocks already read and those
        //    that cannot enter the page; when counting, every match is visited (and counted)
        //    but keys are read only where they may enter.
        let mut count = 0u64;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            let block = (doc / BLOCK_DOCS) as usize;
            if self.count {
                count += u64::from(alive.is_none_or(|bits| bits.is_alive(doc)));
                if !visited[block] && may_enter(&page, block) {
                    take(&mut page, doc);
                }
                doc = scorer.advance();
                continue;
            }
            if visited[block] || !may_enter(&page, block) {
                match (block + 1..blocks).find(|&next| !visited[next] && may_enter(&page, next)) {
                    Some(next) => doc = scorer.seek(next as DocId * BLOCK_DOCS),
                    None => break,
                }
                continue;
            }
            take(&mut page, doc);
            doc = scorer.advance();
        }
        Ok((count, page.into_sorted(segment_ord)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::TopDocs;
    use tantivy::query::{AllQuery, Query, TermQuery};
    use tantivy::schema::{FAST, IndexRecordOption, STRING, Schema};
    use tantivy::{Index, IndexWriter, Order, TantivyDocument, Term};

    /// The same page as tantivy's top-by-fast-field, for keys in order, shuffled, in order
    /// with a few out of place, with deletes; for dense and sparse queries and many limits.
    #[test]
    fn pages_are_those_of_tantivys_top_docs() {
        let mut builder = Schema::builder();
        let sort = builder.add_u64_field(SORT_FIELD, FAST);
        let word = builder.add_text_field("word", STRING);
        let index = Index::create_in_ram(builder.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
        let mut random = crate::testutil::xorshift(0x2545_f491_4f6c_dd1du64);
        let mut key = 0u64;
        // Segments: in order; shuffled; in order with a few out of place; in order (with a
        // late match); two interleaved runs in order one after the other, as a merge of two
        // writer threads' segments leaves them.
        for segment in 0..5u64 {
            for i in 0..6000u64 {
                key += 1;
                let value = match segment {
                    1 => random() % 1_000_000,
                    2 if i % 997 == 0 => random() % 1_000_000,
                    4 => 100_000 + (i % 3000) * 6 + i / 3000 * 3,
                    _ => key * 3,
                };
                let mut doc = TantivyDocument::new();
                doc.add_u64(sort, value);
                let text = if random() % 500 == 0 {
                    "rare"
                } else {
                    ["a", "b"][(i % 2) as usize]
                };
                doc.add_text(word, text);
                writer.add_document(doc).unwrap();
            }
            writer.commit().unwrap();
        }
        writer.delete_term(Term::from_field_text(word, "b"));
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let queries: Vec<Box<dyn Query>> = vec![
            Box::new(AllQuery),
            Box::new(TermQuery::new(
                Term::from_field_text(word, "a"),
                IndexRecordOption::Basic,
            )),
            Box::new(TermQuery::new(
                Term::from_field_text(word, "rare"),
                IndexRecordOption::Basic,
            )),
            Box::new(TermQuery::new(
                Term::from_field_text(word, "late"),
                IndexRecordOption::Basic,
            )),
        ];
        for query in &queries {
            for limit in [1, 2, 10, 100, 1000, 5000, 30_000] {
                let theirs: Vec<(u64, DocAddress)> = searcher
                    .search(
                        query.as_ref(),
                        &TopDocs::with_limit(limit)
                            .order_by_fast_field::<u64>(SORT_FIELD, Order::Desc),
                    )
                    .unwrap()
                    .into_iter()
                    .map(|(key, address)| (key.unwrap(), address))
                    .collect();
                let keys =
                    |hits: &[(u64, DocAddress)]| hits.iter().map(|h| h.0).collect::<Vec<_>>();
                let (_, ours) = searcher
                    .search(query.as_ref(), &Newest::with_limit(limit))
                    .unwrap();
                assert_eq!(keys(&ours), keys(&theirs), "{query:?}, limit {limit}");
                // Counting in the same walk: the same page, and every match counted.
                let (counted, counted_page) = searcher
                    .search(query.as_ref(), &Newest::with_limit(limit).counting())
                    .unwrap();
                let count = searcher
                    .search(query.as_ref(), &tantivy::collector::Count)
                    .unwrap();
                assert_eq!(counted, count as u64, "{query:?}, limit {limit}, count");
                assert_eq!(
                    keys(&counted_page),
                    keys(&theirs),
                    "{query:?}, limit {limit}, counting"
                );
                // Inside a tuple (every key read), the same page.
                let (_, (_, tupled)) = searcher
                    .search(
                        query.as_ref(),
                        &(tantivy::collector::Count, Newest::with_limit(limit)),
                    )
                    .unwrap();
                assert_eq!(
                    keys(&tupled),
                    keys(&theirs),
                    "{query:?}, limit {limit}, tupled"
                );
            }
        }
    }
}
