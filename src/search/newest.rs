//! The newest `limit` matches by sort key (`ts_millis << 22 | seq`), without reading the key
//! of every match.
//!
//! Logs are appended in time order, so the newest documents of a segment sit at its end and
//! its blocks of [`BLOCK_DOCS`](super::time_range::BLOCK_DOCS) documents have rising sort-key
//! bounds. For each segment:
//!
//! 1. the block with the highest bound, and every block after it, is read first: for a
//!    query with many matches that already fills the page and sets a threshold, the lowest
//!    key on it;
//! 2. the rest of the segment is walked from the start, jumping over every block whose
//!    highest key is below the threshold (the threshold rises as better matches are found).
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

/// The field newest-first pages order by.
const SORT_FIELD: &str = "sort";

fn sort_bounds() -> &'static BlockBounds<u64> {
    static BOUNDS: OnceLock<BlockBounds<u64>> = OnceLock::new();
    BOUNDS.get_or_init(BlockBounds::default)
}

/// The `limit` matches with the highest sort keys, highest first.
pub struct Newest {
    limit: usize,
}

impl Newest {
    pub fn with_limit(limit: usize) -> Newest {
        Newest {
            limit: limit.max(1),
        }
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
}

impl SegmentCollector for NewestSegment {
    type Fruit = Vec<(u64, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(key) = self.column.first(doc) {
            self.page.offer(key, doc);
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.page.into_sorted(self.segment_ord)
    }
}

impl Collector for Newest {
    type Fruit = Vec<(u64, DocAddress)>;
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
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        segments: Vec<Vec<(u64, DocAddress)>>,
    ) -> tantivy::Result<Vec<(u64, DocAddress)>> {
        let mut hits: Vec<(u64, DocAddress)> = segments.into_iter().flatten().collect();
        hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.truncate(self.limit);
        Ok(hits)
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<(u64, DocAddress)>> {
        let column = sort_column(reader)?;
        let max_doc = reader.max_doc();
        if max_doc == 0 {
            return Ok(Vec::new());
        }
        let bounds = sort_bounds().of(reader, |doc, push| {
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
        // 1. From the block with the highest key to the end.
        let top_block = bounds
            .iter()
            .enumerate()
            .max_by_key(|(i, (low, high))| (low <= high, *high, *i))
            .map_or(0, |(i, _)| i);
        let tail_start = top_block as DocId * BLOCK_DOCS;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        if doc < tail_start {
            doc = scorer.seek(tail_start);
        }
        while doc != TERMINATED {
            take(&mut page, doc);
            doc = scorer.advance();
        }
        if tail_start == 0 {
            return Ok(page.into_sorted(segment_ord));
        }
        // 2. The rest, skipping the blocks that cannot enter the page.
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        while doc < tail_start {
            let block = (doc / BLOCK_DOCS) as usize;
            if let Some(low) = page.threshold()
                && bounds[block].1 <= low
            {
                let next = bounds[block + 1..top_block]
                    .iter()
                    .position(|&(_, high)| high > low)
                    .map_or(top_block, |i| block + 1 + i);
                if next >= top_block {
                    break;
                }
                doc = scorer.seek(next as DocId * BLOCK_DOCS);
                continue;
            }
            take(&mut page, doc);
            doc = scorer.advance();
        }
        Ok(page.into_sorted(segment_ord))
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
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut key = 0u64;
        for segment in 0..4u64 {
            for i in 0..6000u64 {
                key += 1;
                let value = match segment {
                    1 => random() % 1_000_000,
                    2 if i % 997 == 0 => random() % 1_000_000,
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
                let ours = searcher
                    .search(query.as_ref(), &Newest::with_limit(limit))
                    .unwrap();
                let keys =
                    |hits: &[(u64, DocAddress)]| hits.iter().map(|h| h.0).collect::<Vec<_>>();
                assert_eq!(keys(&ours), keys(&theirs), "{query:?}, limit {limit}");
                // Inside a tuple (every key read), the same page.
                let (_, tupled) = searcher
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
