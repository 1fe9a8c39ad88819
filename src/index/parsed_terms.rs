//! Parsed fields are found through the message, and checked on their column.
//!
//! A parser cuts its fields out of the line, and the line is the message, which is indexed
//! word by word. Indexing every parsed value as a term of its own as well (eleven per nginx
//! line) was a fifth of the CPU of ingesting parsed nginx lines and an eighth of their index.
//! New partitions keep `fields` as columns only, and a search for `fields.path:/api/v2/users`
//! reads the message's postings of the value's words (`api`, `v2`, `users`), which every line
//! holding that value has, then keeps the lines whose `fields.path` column holds the value
//! exactly. That is exact, and as fast as the words are rare.
//!
//! It needs every line whose field holds the value to have the value's words in its message.
//! [`in_message`] decides that per value when the line is indexed: the value occurs in the
//! message with a word boundary on each side, so the message tokenizer cuts the same words
//! there. The values it cannot vouch for (numbers and booleans, whose text the line may spell
//! differently; strings not cut from the line, or cut inside a word or next to CJK text) are
//! terms of `fields_terms` ([`terms`]), and a search looks there too.

use tantivy::schema::OwnedValue;

use super::tokenizer::is_cjk;

/// Whether a search for `text` finds every line whose field holds it through the line's
/// `message`: `text` occurs in `message` where the tokenizer cuts words on both sides (the
/// ends of the message, or ASCII bytes that are neither letters nor digits), and holds no CJK
/// (its bigrams depend on the neighbours).
pub fn in_message(text: &str, message: &str) -> bool {
    if text.is_empty() || text.chars().any(is_cjk) {
        return false;
    }
    let (hay, needle) = (message.as_bytes(), text.as_bytes());
    // A text that starts (ends) with a separator is cut there whatever precedes (follows) it.
    let open_start = !needle[0].is_ascii_alphanumeric() && needle[0].is_ascii();
    let open_end = {
        let last = needle[needle.len() - 1];
        !last.is_ascii_alphanumeric() && last.is_ascii()
    };
    let separator = |b: Option<&u8>| b.is_none_or(|b| b.is_ascii() && !b.is_ascii_alphanumeric());
    let mut from = 0;
    while let Some(at) = super::stored_fields::find_bytes(hay, needle, from) {
        if (open_start || separator(at.checked_sub(1).and_then(|i| hay.get(i))))
            && (open_end || separator(hay.get(at + needle.len())))
        {
            return true;
        }
        from = at + 1;
    }
    false
}

/// The part of `fields` (as tantivy holds them, identifiers already moved to `ids`) that must
/// be indexed as terms (`fields_terms`): every value but the strings [`in_message`] vouches
/// for, with their paths. `None` when nothing is left.
pub fn terms(fields: &OwnedValue, message: &str) -> Option<OwnedValue> {
    let OwnedValue::Object(entries) = fields else {
        return None;
    };
    let kept = object_terms(entries, message);
    (!kept.is_empty()).then_some(OwnedValue::Object(kept))
}

fn object_terms(entries: &[(String, OwnedValue)], message: &str) -> Vec<(String, OwnedValue)> {
    entries
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), value_terms(value, message)?)))
        .collect()
}

fn value_terms(value: &OwnedValue, message: &str) -> Option<OwnedValue> {
    match value {
        OwnedValue::Null => None,
        // A string tantivy read as a time is a date (its column is not the strings'), and
        // stays a term like any other value that is not a string.
        OwnedValue::Str(text) if in_message(text, message) => None,
        OwnedValue::Object(entries) => {
            let kept = object_terms(entries, message);
            (!kept.is_empty()).then_some(OwnedValue::Object(kept))
        }
        OwnedValue::Array(items) => {
            let kept: Vec<OwnedValue> = items
                .iter()
                .filter_map(|item| value_terms(item, message))
                .collect();
            (!kept.is_empty()).then_some(OwnedValue::Array(kept))
        }
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LINE: &str = r#"203.0.113.77 - alice [15/Jan/2026:10:00:00 +0000] "GET /api/v2/users HTTP/1.1" 200 5120 "-" "curl/8.5.0""#;

    #[test]
    fn values_cut_at_word_boundaries_are_found_through_the_message() {
        for text in [
            "203.0.113.77",
            "alice",
            "15/Jan/2026:10:00:00 +0000",
            "GET",
            "/api/v2/users",
            "HTTP/1.1",
            "curl/8.5.0",
            "-",
            "\"GET",
            "00 +0000] \"",
        ] {
            assert!(in_message(text, LINE), "{text}");
        }
        for text in [
            // Inside a word: the message has `alice`, not `lic`.
            "lic",
            "api/v",
            "20",
            "url/8.5.0",
            // Not in the line.
            "bob",
            "",
            // Case differs: the column check would refuse it anyway, the words would not.
            "get",
        ] {
            assert!(!in_message(text, LINE), "{text}");
        }
        // The first occurrence inside a word, a later one at a boundary.
        assert!(in_message("ab", "xab ab"));
        assert!(!in_message("ab", "xab abx"));
        // Multibyte neighbours are not vouched for; CJK never is (bigrams).
        assert!(!in_message("abc", "éabc"));
        assert!(in_message("é", "café é"));
        assert!(!in_message("数据", "数据库 数据"));
    }

    #[test]
    fn terms_keep_what_the_message_cannot_find() {
        let terms = |fields: serde_json::Value, line: &str| terms(&OwnedValue::from(fields), line);
        let fields = json!({
            "remote_addr": "203.0.113.77", "user": "alice", "status": 200, "ok": true,
            "nothing": null, "lic": "lic", "upstream": {"addr": "-", "time": 0.25},
            "tags": ["GET", "bob", 7], "empty": {},
            "spans": ["00f067aa0ba902b7"],
        });
        assert_eq!(
            terms(fields, LINE).unwrap(),
            OwnedValue::from(json!({"status": 200, "ok": true, "lic": "lic",
                   "upstream": {"time": 0.25}, "tags": ["bob", 7],
                   "spans": ["00f067aa0ba902b7"]})),
        );
        // A time tantivy keeps as a date stays a term, in the message or not.
        let line = r#"{"at":"2026-01-15T10:00:00Z"}"#;
        let at = json!({"at": "2026-01-15T10:00:00Z"});
        assert!(
            matches!(&OwnedValue::from(at.clone()), OwnedValue::Object(e) if matches!(e[0].1, OwnedValue::Date(_)))
        );
        assert_eq!(terms(at.clone(), line).unwrap(), OwnedValue::from(at));
        assert_eq!(terms(json!({"user": "alice"}), LINE), None);
        assert_eq!(terms(serde_json::Value::Null, LINE), None);
    }
}
