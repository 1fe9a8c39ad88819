//! Identifiers in parsed fields (trace and span ids, UUIDs, hashes) are kept in a column, not
//! in the inverted index.
//!
//! A trace id is unique to a line or a few: in the inverted index every one is a term of its own
//! (about 40 bytes of term dictionary and postings each, and the work of sorting a million new
//! terms per segment and merging them again), and the `fields` column held it a second time.
//! On the standard app workload that was ~45 % of the index. New partitions put string values
//! that look like identifiers ([`is_identifier`]) in the `ids` field instead: stored and fast,
//! not indexed. A search for one (`fields.trace_id:6187c9…`) reads the column: the value's
//! ordinal in the segment's dictionary, then a scan of the ordinals (about a millisecond per
//! million lines), exact like the term lookup it replaces. Hits, top values and the field list
//! show them under `fields.` as before.
//!
//! The routing depends on the value only, so a query knows where its value is; partitions
//! created before the `ids` field keep identifiers in `fields`, and queries look in both.

use serde_json::{Map, Value};

/// Shortest and longest identifier: 16 hex digits is a 64-bit id (span ids), 128 a SHA-512.
const MIN_IDENTIFIER: usize = 16;
const MAX_IDENTIFIER: usize = 128;

/// Whether a parsed string value is an identifier: 16 to 128 characters, hex digits and dashes
/// only, at least 16 of them digits (`6187c989600fd4e81d9ea19ce58b2dc0`, a UUID, a SHA-1).
pub fn is_identifier(text: &str) -> bool {
    let bytes = text.as_bytes();
    (MIN_IDENTIFIER..=MAX_IDENTIFIER).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-')
        && bytes.iter().filter(|b| b.is_ascii_hexdigit()).count() >= MIN_IDENTIFIER
}

/// Moves the identifiers out of `fields` (an object), keeping their paths: returns the
/// identifiers, or `None` when there are none. Objects left empty by the move are removed;
/// arrays are left whole.
pub fn split(fields: &mut Value) -> Option<Value> {
    let Value::Object(map) = fields else {
        return None;
    };
    let ids = split_map(map);
    (!ids.is_empty()).then_some(Value::Object(ids))
}

fn split_map(map: &mut Map<String, Value>) -> Map<String, Value> {
    let mut ids = Map::new();
    let keys: Vec<String> = map
        .iter()
        .filter(|(_, value)| match value {
            Value::String(text) => is_identifier(text),
            Value::Object(_) => true,
            _ => false,
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in keys {
        match map.get_mut(&key) {
            Some(Value::Object(inner)) => {
                if inner.is_empty() {
                    continue;
                }
                let inner_ids = split_map(inner);
                if inner_ids.is_empty() {
                    continue;
                }
                if inner.is_empty() {
                    map.remove(&key);
                }
                ids.insert(key, Value::Object(inner_ids));
            }
            Some(_) => {
                if let Some(value) = map.remove(&key) {
                    ids.insert(key, value);
                }
            }
            None => {}
        }
    }
    ids
}

/// Puts identifiers split off by [`split`] back into `fields`.
pub fn merge(fields: &mut Value, ids: Value) {
    let Value::Object(ids) = ids else {
        return;
    };
    if !fields.is_object() {
        *fields = Value::Object(Map::new());
    }
    if let Value::Object(map) = fields {
        merge_map(map, ids);
    }
}

fn merge_map(map: &mut Map<String, Value>, ids: Map<String, Value>) {
    for (key, value) in ids {
        match (map.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(inner_ids)) => merge_map(inner, inner_ids),
            (_, value) => {
                map.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_are_long_hex_values() {
        for id in [
            "6187c989600fd4e81d9ea19ce58b2dc0",
            "6187C989600FD4E8",
            "123e4567-e89b-12d3-a456-426614174000",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "1234567890123456789",
        ] {
            assert!(is_identifier(id), "{id}");
        }
        for not in [
            "",
            "payments",
            "6187c989600fd4e",
            "2026-01-15",
            "----------------------------",
            "6187c989600fd4e81d9ea19ce58b2dc0 ",
            "g187c989600fd4e81d9ea19ce58b2dc0",
            &"a".repeat(129),
        ] {
            assert!(!is_identifier(not), "{not}");
        }
    }

    #[test]
    fn split_moves_identifiers_with_their_paths_and_merge_puts_them_back() {
        let original = json!({
            "service": "payments",
            "trace_id": "6187c989600fd4e81d9ea19ce58b2dc0",
            "user_id": 763665,
            "span": {"id": "00f067aa0ba902b7", "parent": {"id": "53995c3f42cd8ad8"}},
            "http": {"status": 200, "request_id": "123e4567-e89b-12d3-a456-426614174000"},
            "empty": {},
            "list": ["6187c989600fd4e81d9ea19ce58b2dc0"],
        });
        let mut rest = original.clone();
        let ids = split(&mut rest).unwrap();
        assert_eq!(
            rest,
            json!({
                "service": "payments",
                "user_id": 763665,
                "http": {"status": 200},
                "empty": {},
                "list": ["6187c989600fd4e81d9ea19ce58b2dc0"],
            })
        );
        assert_eq!(
            ids,
            json!({
                "trace_id": "6187c989600fd4e81d9ea19ce58b2dc0",
                "span": {"id": "00f067aa0ba902b7", "parent": {"id": "53995c3f42cd8ad8"}},
                "http": {"request_id": "123e4567-e89b-12d3-a456-426614174000"},
            })
        );
        merge(&mut rest, ids);
        assert_eq!(rest, original);

        let mut plain = json!({"service": "payments"});
        assert_eq!(split(&mut plain), None);
        assert_eq!(split(&mut Value::Null), None);
        let mut only = json!({"trace_id": "6187c989600fd4e81d9ea19ce58b2dc0"});
        let ids = split(&mut only).unwrap();
        assert_eq!(only, json!({}));
        let mut none = Value::Null;
        merge(&mut none, ids);
        assert_eq!(
            none,
            json!({"trace_id": "6187c989600fd4e81d9ea19ce58b2dc0"})
        );
    }
}
