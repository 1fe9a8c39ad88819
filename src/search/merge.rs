//! Merging the answers of several nodes into one (search across the cluster). Pure functions:
//! the network part is `api::fanout`.
//!
//! * **Hits**: ordered newest first by sort key, ties between nodes broken by node name (a
//!   node's own sort keys are unique). A cursor is the position of the last hit returned:
//!   `<sort>@<node>`, or `<sort>` alone when one node was asked (the single-node cursor).
//!   Each node is asked for the hits after the cursor in that order, so pages never skip or
//!   repeat a hit, even when two nodes have hits with the same sort key across a page boundary.
//! * **Histograms**: buckets are aligned on multiples of the interval since the epoch on every
//!   node, so counts of the same bucket add up. Nodes choose their interval from the range of
//!   their own data; the merged interval is the one a single node holding all the data would
//!   choose, and a node whose interval does not divide it is asked again with it.
//! * **Top values**: see [`merge_top`].
//! * **Fields**: the union of each node's sample; shares weighted by sample sizes.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::aggregate::{FieldInfo, FieldsResponse, TopValue};
use super::{Hit, SearchError, auto_interval, parse_cursor};

/// One node's page of hits, newest first, with their sort keys.
#[derive(Debug, Clone)]
pub struct NodePage {
    pub node: String,
    pub total: u64,
    pub hits: Vec<(u64, Hit)>,
}

/// A position in the merged order of hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: u64,
    /// The node of the last hit returned; `None` for a single-node cursor (every hit with this
    /// sort key was returned).
    pub node: Option<String>,
}

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, SearchError> {
        match text.split_once('@') {
            Some((sort, node)) if !node.is_empty() => Ok(Cursor {
                sort: parse_cursor(sort).map_err(|_| bad_cursor(text))?,
                node: Some(node.to_string()),
            }),
            Some(_) => Err(bad_cursor(text)),
            None => Ok(Cursor {
                sort: parse_cursor(text)?,
                node: None,
            }),
        }
    }

    /// `<sort>@<node>`, or `<sort>` without the node.
    pub fn format(&self, with_node: bool) -> String {
        match &self.node {
            Some(node) if with_node => format!("{}@{node}", self.sort),
            _ => self.sort.to_string(),
        }
    }

    /// The node-local cursor for `node`: it returns hits with a sort key below it. Hits with
    /// the cursor's own sort key come after the cursor only on nodes ordered after its node.
    pub fn bound_for(&self, node: &str) -> u64 {
        match &self.node {
            Some(last) if node > last.as_str() => self.sort.saturating_add(1),
            _ => self.sort,
        }
    }
}

fn bad_cursor(text: &str) -> SearchError {
    SearchError::BadParam {
        param: "cursor",
        value: text.to_string(),
        reason: "not a cursor returned by a previous page".into(),
    }
}

#[derive(Debug, Clone)]
pub struct MergedPage {
    /// Sum of the nodes' totals.
    pub total: u64,
    pub hits: Vec<Hit>,
    /// Set when the page is full (there may be more).
    pub cursor: Option<Cursor>,
}

/// The first `limit` hits of all pages in the merged order (each page holds its node's first
/// `limit` hits after the cursor, so nothing is missing).
pub fn merge_pages(pages: Vec<NodePage>, limit: usize) -> MergedPage {
    let total = pages.iter().map(|p| p.total).sum();
    let mut all: Vec<(u64, String, Hit)> = pages
        .into_iter()
        .flat_map(|page| {
            let node = page.node;
            page.hits
                .into_iter()
                .map(move |(sort, hit)| (sort, node.clone(), hit))
        })
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let full = all.len() >= limit;
    all.truncate(limit);
    let cursor = all.last().filter(|_| full).map(|(sort, node, _)| Cursor {
        sort: *sort,
        node: Some(node.clone()),
    });
    MergedPage {
        total,
        hits: all.into_iter().map(|(_, _, hit)| hit).collect(),
        cursor,
    }
}

/// Pick the next hit of a k-way merge: the index of the buffer whose head comes first
/// (highest sort key, then lowest node name). Buffers are `(node, sort key of the head)`.
pub fn next_in_order<'a>(heads: impl IntoIterator<Item = (&'a str, Option<u64>)>) -> Option<usize> {
    let mut best: Option<(usize, &str, u64)> = None;
    for (index, (node, head)) in heads.into_iter().enumerate() {
        let Some(sort) = head else { continue };
        let better = match best {
            None => true,
            Some((_, best_node, best_sort)) => {
                sort > best_sort || (sort == best_sort && node < best_node)
            }
        };
        if better {
            best = Some((index, node, sort));
        }
    }
    best.map(|(index, _, _)| index)
}

/// One node's histogram: its interval and its buckets (start in micros, count).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPart {
    pub interval: i64,
    pub buckets: Vec<(i64, u64)>,
}

/// The interval of the merged histogram: `requested` if given, else the interval a single node
/// would choose over the union of the nodes' ranges (never finer than any node's).
pub fn merged_interval(parts: &[HistogramPart], requested: Option<i64>) -> Option<i64> {
    if let Some(interval) = requested {
        return Some(interval);
    }
    let start = parts
        .iter()
        .filter_map(|p| p.buckets.first())
        .map(|b| b.0)
        .min()?;
    let end = parts
        .iter()
        .filter_map(|p| p.buckets.last().map(|b| b.0 + p.interval))
        .max()?;
    let finest = parts.iter().map(|p| p.interval).max().unwrap_or(1);
    Some(auto_interval(end - start).max(finest))
}

/// Whether a part can be re-bucketed into `interval` (its buckets nest in the merged ones).
pub fn nests(part: &HistogramPart, interval: i64) -> bool {
    part.interval > 0 && interval % part.interval == 0
}

/// Sum the parts into buckets of `interval` (every part must [`nests`]), contiguous from the
/// first bucket to the last, empty buckets included.
pub fn merge_histograms(parts: &[HistogramPart], interval: i64) -> Vec<(i64, u64)> {
    let mut sums: BTreeMap<i64, u64> = BTreeMap::new();
    for part in parts {
        debug_assert!(nests(part, interval));
        for (start, count) in &part.buckets {
            *sums
                .entry(start.div_euclid(interval) * interval)
                .or_default() += count;
        }
    }
    let (Some(first), Some(last)) = (
        sums.keys().next().copied(),
        sums.keys().next_back().copied(),
    ) else {
        return Vec::new();
    };
    (0..=(last - first) / interval)
        .map(|i| {
            let start = first + i * interval;
            (start, sums.get(&start).copied().unwrap_or(0))
        })
        .collect()
}

/// A value as one key: numbers by their normalized value (`200.0` is `200`), like the index.
pub fn canonical(value: &Value) -> Value {
    if let Value::Number(number) = value
        && number.as_i64().is_none()
        && number.as_u64().is_none()
        && let Some(float) = number.as_f64()
        && float.fract() == 0.0
        && float >= i64::MIN as f64
        && float <= i64::MAX as f64
    {
        return Value::from(float as i64);
    }
    value.clone()
}

fn key_of(value: &Value) -> String {
    canonical(value).to_string()
}

/// One node's answer for top values: its top list (longer than asked for, so candidates the
/// others list are likely on it too), the count of every other value, and tantivy's error bound
/// on its listed counts.
#[derive(Debug, Clone)]
pub struct TopPart {
    pub node: String,
    pub values: Vec<TopValue>,
    pub other: u64,
    pub bound: u64,
}

/// The candidates: every value some node listed, each once, in first-listed order.
pub fn top_candidates(parts: &[TopPart]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    let mut candidates = Vec::new();
    for part in parts {
        for value in &part.values {
            if seen.insert(key_of(&value.value)) {
                candidates.push(canonical(&value.value));
            }
        }
    }
    candidates
}

/// The candidates (indices) whose count `part` must be asked for exactly: none when it listed
/// every value it has (`other == 0`: its counts are complete and exact); the ones it did not
/// list when its listed counts are exact (`bound == 0`); all of them otherwise.
pub fn counts_needed(part: &TopPart, candidates: &[Value]) -> Vec<usize> {
    if part.other == 0 {
        return Vec::new();
    }
    let listed: std::collections::HashSet<String> =
        part.values.iter().map(|v| key_of(&v.value)).collect();
    (0..candidates.len())
        .filter(|&i| part.bound > 0 || !listed.contains(&key_of(&candidates[i])))
        .collect()
}

#[derive(Debug, Clone)]
pub struct MergedTop {
    pub values: Vec<TopValue>,
    /// Matching values other than the listed ones (summed over nodes).
    pub other: u64,
    /// Whether the listed values are provably the `size` most frequent ones over the nodes
    /// that answered (the counts are exact either way).
    pub exact: bool,
}

/// Merge top values exactly for counts.
///
/// Every candidate's count is the sum of its exact count on every node: the node's listed
/// count when that is exact, the count it answered for [`counts_needed`] (`exact[node]`, as
/// `(candidate index, count)`) otherwise, 0 when the node listed all its values and not this
/// one. Candidates are sorted by count (then by value), the first `size` are listed, and
/// `other` is everything else the nodes counted.
///
/// What is not guaranteed is the set: a value that no node listed among its own top values may
/// have a larger total than the last one listed. `exact` says when that cannot happen: a value
/// no node listed has at most, on each node that cut its list with exact counts, the smallest
/// count it listed; if the sum of those bounds does not beat the last listed count, the list is
/// the true top.
pub fn merge_top(
    parts: &[TopPart],
    candidates: &[Value],
    exact: &HashMap<String, Vec<(usize, u64)>>,
    size: usize,
) -> MergedTop {
    let mut counts = vec![0u64; candidates.len()];
    let index: HashMap<String, usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, v)| (key_of(v), i))
        .collect();
    let mut total = 0u64;
    // Unseen values' bound: None when unbounded.
    let mut unseen: Option<u64> = Some(0);
    for part in parts {
        total += part.values.iter().map(|v| v.count).sum::<u64>() + part.other;
        let answered: HashMap<usize, u64> = exact
            .get(&part.node)
            .map(|list| list.iter().copied().collect())
            .unwrap_or_default();
        for value in &part.values {
            if let Some(&i) = index.get(&key_of(&value.value))
                && !answered.contains_key(&i)
            {
                counts[i] += value.count;
            }
        }
        for (i, count) in answered {
            if i < counts.len() {
                counts[i] += count;
            }
        }
        if part.other > 0 {
            unseen = match (unseen, part.bound) {
                (Some(sum), 0) => {
                    Some(sum + part.values.iter().map(|v| v.count).min().unwrap_or(0))
                }
                _ => None,
            };
        }
    }
    let mut ranked: Vec<(u64, String, Value)> = candidates
        .iter()
        .zip(&counts)
        .filter(|(_, count)| **count > 0)
        .map(|(value, count)| (*count, key_of(value), value.clone()))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranked.truncate(size);
    let listed: u64 = ranked.iter().map(|r| r.0).sum();
    let exact = match unseen {
        None => false,
        Some(0) => true,
        Some(bound) => ranked.len() >= size && ranked.last().is_some_and(|r| r.0 >= bound),
    };
    MergedTop {
        values: ranked
            .into_iter()
            .map(|(count, _, value)| TopValue { value, count })
            .collect(),
        other: total.saturating_sub(listed),
        exact,
    }
}

/// Fields over the union of the nodes' samples.
pub fn merge_fields(parts: &[FieldsResponse]) -> FieldsResponse {
    let sampled: usize = parts.iter().map(|p| p.sampled).sum();
    // name → (type, documents with it; per type, for the most common type)
    let mut seen: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for part in parts {
        for field in &part.fields {
            *seen
                .entry(field.name.clone())
                .or_default()
                .entry(field.field_type.clone())
                .or_default() += (field.share * part.sampled as f64).round();
        }
    }
    let mut fields: Vec<FieldInfo> = seen
        .into_iter()
        .map(|(name, types)| {
            let count: f64 = types.values().sum();
            let field_type = types
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(t, _)| t.clone())
                .unwrap_or_default();
            FieldInfo {
                name,
                field_type,
                share: if sampled == 0 {
                    0.0
                } else {
                    count / sampled as f64
                },
            }
        })
        .collect();
    fields.sort_by(|a, b| {
        b.share
            .total_cmp(&a.share)
            .then_with(|| a.name.cmp(&b.name))
    });
    // Each part left some out; after the merge, at least the most any part left out remain.
    let mut more = parts.iter().map(|p| p.more).max().unwrap_or(0);
    super::aggregate::cap_fields(&mut fields, &mut more);
    FieldsResponse {
        sampled,
        fields,
        more,
        took_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hit(node: &str, message: &str) -> Hit {
        serde_json::from_value(json!({
            "id": "2026-01-15/1", "ts": "2026-01-15T10:00:00Z", "node": node,
            "runner": "r", "offset": 0, "message": message
        }))
        .unwrap()
    }

    fn page(node: &str, total: u64, sorts: &[u64]) -> NodePage {
        NodePage {
            node: node.into(),
            total,
            hits: sorts
                .iter()
                .map(|s| (*s, hit(node, &format!("{node}{s}"))))
                .collect(),
        }
    }

    /// What a node answers for a page: its first `limit` hits below its bound.
    fn node_page(node: &str, all: &[u64], cursor: Option<&Cursor>, limit: usize) -> NodePage {
        let bound = cursor.map(|c| c.bound_for(node)).unwrap_or(u64::MAX);
        let mut below: Vec<u64> = all.iter().copied().filter(|s| *s < bound).collect();
        below.sort_by(|a, b| b.cmp(a));
        below.truncate(limit);
        page(node, all.len() as u64, &below)
    }

    #[test]
    fn hits_merge_newest_first_with_ties_by_node() {
        let merged = merge_pages(vec![page("b", 10, &[9, 5, 3]), page("a", 7, &[9, 8, 3])], 4);
        let order: Vec<&str> = merged.hits.iter().map(|h| h.message.as_str()).collect();
        assert_eq!(order, ["a9", "b9", "a8", "b5"]);
        assert_eq!(merged.total, 17);
        assert_eq!(
            merged.cursor,
            Some(Cursor {
                sort: 5,
                node: Some("b".into())
            })
        );
        // A short page has no cursor.
        let last = merge_pages(vec![page("a", 1, &[1]), page("b", 0, &[])], 4);
        assert_eq!(last.hits.len(), 1);
        assert!(last.cursor.is_none());
    }

    #[test]
    fn pagination_across_nodes_returns_every_hit_once_even_with_ties() {
        // Equal sort keys on different nodes, falling on page boundaries.
        let nodes: [(&str, Vec<u64>); 3] = [
            ("a", vec![10, 9, 9, 7, 5, 5, 1]),
            ("b", vec![10, 9, 8, 5, 2]),
            ("c", vec![9, 5, 5, 3]),
        ];
        // Sort keys are unique within a node.
        let nodes: Vec<(&str, Vec<u64>)> = nodes
            .into_iter()
            .map(|(n, mut s)| {
                s.dedup();
                (n, s)
            })
            .collect();
        let expected: usize = nodes.iter().map(|(_, s)| s.len()).sum();
        for limit in 1..=5 {
            let mut cursor: Option<Cursor> = None;
            let mut seen: Vec<String> = Vec::new();
            loop {
                let pages = nodes
                    .iter()
                    .map(|(n, all)| node_page(n, all, cursor.as_ref(), limit))
                    .collect();
                let merged = merge_pages(pages, limit);
                seen.extend(merged.hits.iter().map(|h| h.message.clone()));
                // The cursor survives its text form.
                match merged.cursor {
                    Some(next) => cursor = Some(Cursor::parse(&next.format(true)).unwrap()),
                    None => break,
                }
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                seen.len(),
                "limit {limit}: duplicates in {seen:?}"
            );
            assert_eq!(seen.len(), expected, "limit {limit}: {seen:?}");
        }
    }

    #[test]
    fn cursors_parse_both_forms() {
        assert_eq!(
            Cursor::parse("42").unwrap(),
            Cursor {
                sort: 42,
                node: None
            }
        );
        let with_node = Cursor::parse("42@web-1").unwrap();
        assert_eq!(with_node.bound_for("web-0"), 42);
        assert_eq!(with_node.bound_for("web-1"), 42);
        assert_eq!(with_node.bound_for("web-2"), 43);
        assert_eq!(with_node.format(false), "42");
        assert!(Cursor::parse("x@a").is_err());
        assert!(Cursor::parse("42@").is_err());
        assert!(Cursor::parse("").is_err());
    }

    #[test]
    fn k_way_merge_picks_newest_then_node() {
        assert_eq!(
            next_in_order([("b", Some(5)), ("a", Some(5)), ("c", Some(4))]),
            Some(1)
        );
        assert_eq!(next_in_order([("a", None), ("b", Some(1))]), Some(1));
        assert_eq!(next_in_order([("a", None)]), None);
    }

    #[test]
    fn histograms_sum_by_bucket_and_rebucket_finer_nodes() {
        const M: i64 = 60_000_000;
        let a = HistogramPart {
            interval: M,
            buckets: vec![(0, 1), (M, 2), (2 * M, 3)],
        };
        let b = HistogramPart {
            interval: M,
            buckets: vec![(2 * M, 10), (3 * M, 0), (4 * M, 4)],
        };
        assert_eq!(merged_interval(&[a.clone(), b.clone()], None), Some(M));
        assert_eq!(
            merge_histograms(&[a.clone(), b.clone()], M),
            vec![(0, 1), (M, 2), (2 * M, 13), (3 * M, 0), (4 * M, 4)]
        );
        // A gap between two nodes' ranges is filled with empty buckets.
        let far = HistogramPart {
            interval: M,
            buckets: vec![(7 * M, 5)],
        };
        assert_eq!(
            merge_histograms(&[a.clone(), far], M),
            vec![
                (0, 1),
                (M, 2),
                (2 * M, 3),
                (3 * M, 0),
                (4 * M, 0),
                (5 * M, 0),
                (6 * M, 0),
                (7 * M, 5)
            ]
        );
        // A node with a coarser interval sets the merged one; finer ones are summed into it.
        let coarse = HistogramPart {
            interval: 5 * M,
            buckets: vec![(5 * M, 7)],
        };
        let interval = merged_interval(&[a.clone(), coarse.clone()], None).unwrap();
        assert_eq!(interval, 5 * M);
        assert!(nests(&a, interval) && nests(&coarse, interval));
        assert_eq!(
            merge_histograms(&[a, coarse], interval),
            vec![(0, 6), (5 * M, 7)]
        );
        // Intervals that do not nest (7 days into 30) must be asked again.
        let week = HistogramPart {
            interval: 7 * 86_400_000_000,
            buckets: vec![],
        };
        assert!(!nests(&week, 30 * 86_400_000_000));
        assert_eq!(merged_interval(&[], None), None);
        assert_eq!(merged_interval(&[], Some(M)), Some(M));
    }

    fn top(node: &str, values: &[(&str, u64)], other: u64, bound: u64) -> TopPart {
        TopPart {
            node: node.into(),
            values: values
                .iter()
                .map(|(v, c)| TopValue {
                    value: json!(v),
                    count: *c,
                })
                .collect(),
            other,
            bound,
        }
    }

    fn listed(merged: &MergedTop) -> Vec<(String, u64)> {
        merged
            .values
            .iter()
            .map(|v| (v.value.as_str().unwrap().to_string(), v.count))
            .collect()
    }

    #[test]
    fn top_counts_are_exact_sums_over_nodes() {
        // True counts: a: x=100 y=10 z=3 w=2; b: z=45 w=44 x=1.
        let parts = [
            top("a", &[("x", 100), ("y", 10)], 5, 0),
            top("b", &[("z", 45), ("w", 44)], 1, 0),
        ];
        let candidates = top_candidates(&parts);
        assert_eq!(
            candidates,
            vec![json!("x"), json!("y"), json!("z"), json!("w")]
        );
        // Both cut their lists with exact counts: asked only for what they did not list.
        assert_eq!(counts_needed(&parts[0], &candidates), vec![2, 3]);
        assert_eq!(counts_needed(&parts[1], &candidates), vec![0, 1]);
        let exact: HashMap<String, Vec<(usize, u64)>> = [
            ("a".to_string(), vec![(2, 3), (3, 2)]),
            ("b".to_string(), vec![(0, 1), (1, 0)]),
        ]
        .into();
        let merged = merge_top(&parts, &candidates, &exact, 1);
        assert_eq!(listed(&merged), [("x".into(), 101)]);
        // Everything counted (115 + 90) minus what is listed.
        assert_eq!(merged.other, 205 - 101);
        // A value no node listed has at most 10 + 44 over the two nodes: fewer than 101.
        assert!(merged.exact);
        let merged = merge_top(&parts, &candidates, &exact, 3);
        assert_eq!(
            listed(&merged),
            [("x".into(), 101), ("z".into(), 48), ("w".into(), 46)]
        );
        assert_eq!(merged.other, 205 - 195);
        // 46 is below that bound of 54: not provable.
        assert!(!merged.exact);
    }

    #[test]
    fn top_complete_nodes_need_no_second_phase_and_inexact_counts_are_replaced() {
        let parts = [
            top("a", &[("x", 3), ("y", 1)], 0, 0),
            // b's listed counts are not exact (bound 2): all candidates are asked again.
            top("b", &[("y", 4)], 9, 2),
        ];
        let candidates = top_candidates(&parts);
        assert!(counts_needed(&parts[0], &candidates).is_empty());
        assert_eq!(counts_needed(&parts[1], &candidates), vec![0, 1]);
        let exact: HashMap<String, Vec<(usize, u64)>> =
            [("b".to_string(), vec![(0, 2), (1, 6)])].into();
        let merged = merge_top(&parts, &candidates, &exact, 5);
        assert_eq!(listed(&merged), [("y".into(), 7), ("x".into(), 5)]);
        assert_eq!(merged.other, 4 + 13 - 12);
        assert!(!merged.exact, "b's unlisted values are unbounded");
        // Only complete nodes: exact, and nothing is other.
        let merged = merge_top(&parts[..1], &candidates, &HashMap::new(), 5);
        assert_eq!(listed(&merged), [("x".into(), 3), ("y".into(), 1)]);
        assert_eq!(merged.other, 0);
        assert!(merged.exact);
    }

    #[test]
    fn top_numbers_are_one_value_whatever_their_form() {
        let parts = [
            TopPart {
                node: "a".into(),
                values: vec![TopValue {
                    value: json!(200.0),
                    count: 2,
                }],
                other: 0,
                bound: 0,
            },
            TopPart {
                node: "b".into(),
                values: vec![TopValue {
                    value: json!(200),
                    count: 3,
                }],
                other: 0,
                bound: 0,
            },
        ];
        let candidates = top_candidates(&parts);
        assert_eq!(candidates, vec![json!(200)]);
        let merged = merge_top(&parts, &candidates, &HashMap::new(), 10);
        assert_eq!(merged.values[0].count, 5);
        assert_eq!(merged.values[0].value, json!(200));
    }

    #[test]
    fn fields_are_weighted_by_sample_size() {
        let part = |sampled: usize, fields: &[(&str, &str, f64)]| FieldsResponse {
            sampled,
            fields: fields
                .iter()
                .map(|(n, t, s)| FieldInfo {
                    name: n.to_string(),
                    field_type: t.to_string(),
                    share: *s,
                })
                .collect(),
            more: 0,
            took_ms: 1,
        };
        let merged = merge_fields(&[
            part(
                100,
                &[("message", "text", 1.0), ("fields.a", "number", 0.5)],
            ),
            part(
                300,
                &[("message", "text", 1.0), ("fields.b", "keyword", 0.1)],
            ),
        ]);
        assert_eq!(merged.sampled, 400);
        let got: Vec<(&str, f64)> = merged
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.share))
            .collect();
        assert_eq!(
            got,
            [("message", 1.0), ("fields.a", 0.125), ("fields.b", 0.075)]
        );
        assert_eq!(merge_fields(&[]).sampled, 0);
    }
}
