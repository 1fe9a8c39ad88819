//! The shape of an Elasticsearch `_bulk` body and of newline-delimited bodies, without I/O:
//! bytes in, lines and bulk items out. `api::ingest` feeds request bodies through it;
//! `scripts/fuzz bulk` fuzzes it together with the parser that reads the documents.

use std::ops::ControlFlow;

/// Splits a body that arrives in pieces into lines, each cut at `max` bytes (the rest of a
/// longer line is skipped, never kept) with a trailing `\r` removed: memory is one line,
/// whatever the body's size.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    line: Vec<u8>,
    truncated: bool,
}

impl LineSplitter {
    pub fn new(max: usize) -> LineSplitter {
        LineSplitter {
            max,
            line: Vec::new(),
            truncated: false,
        }
    }

    /// Feed one piece; `on_line` gets each complete line and whether it was cut, and may stop.
    pub fn push(
        &mut self,
        mut data: &[u8],
        on_line: &mut dyn FnMut(&[u8], bool) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        while !data.is_empty() {
            let (piece, complete) = match data.iter().position(|b| *b == b'\n') {
                Some(at) => (&data[..at], Some(at + 1)),
                None => (data, None),
            };
            let room = self.max.saturating_sub(self.line.len());
            if piece.len() > room {
                self.truncated = true;
            }
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            let Some(next) = complete else {
                break;
            };
            data = &data[next..];
            if !self.truncated && self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let flow = on_line(&self.line, self.truncated);
            self.line.clear();
            self.truncated = false;
            flow?;
        }
        ControlFlow::Continue(())
    }

    /// What followed the last newline, and whether it was cut.
    pub fn finish(self) -> (Vec<u8>, bool) {
        (self.line, self.truncated)
    }
}

/// One action line of a `_bulk` body.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkAction {
    /// `index`, `create`, `update` or `delete`.
    pub action: &'static str,
    /// `_index`, if the line names one.
    pub index: Option<String>,
    pub id: Option<String>,
}

impl BulkAction {
    /// `index`, `create` and `update` are followed by a document line; `delete` is not.
    pub fn has_document(&self) -> bool {
        self.action != "delete"
    }
}

/// Why a `_bulk` body is refused as a whole, in Elasticsearch's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkError {
    pub kind: &'static str,
    pub reason: String,
}

fn refused(kind: &'static str, reason: String) -> BulkError {
    BulkError { kind, reason }
}

/// Parse an action line (`{"index": {"_index": "web", "_id": "1"}}`).
pub fn parse_action(line: &[u8]) -> Result<BulkAction, BulkError> {
    let action: serde_json::Value = serde_json::from_slice(line).map_err(|err| {
        refused(
            "x_content_parse_exception",
            format!("malformed action line: {err}"),
        )
    })?;
    let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
        return Err(refused(
            "illegal_argument_exception",
            "empty action line".into(),
        ));
    };
    let action = match kind.as_str() {
        "index" => "index",
        "create" => "create",
        "update" => "update",
        "delete" => "delete",
        other => {
            return Err(refused(
                "illegal_argument_exception",
                format!("unknown bulk action [{other}]"),
            ));
        }
    };
    Ok(BulkAction {
        action,
        index: meta["_index"].as_str().map(str::to_string),
        id: meta["_id"].as_str().map(str::to_string),
    })
}

/// What one line of a `_bulk` body is.
#[derive(Debug, PartialEq)]
pub enum BulkLine<'a> {
    Action(BulkAction),
    /// The document of the last action (whose `has_document` was true).
    Document {
        line: &'a [u8],
        truncated: bool,
    },
    /// A blank line between items.
    Blank,
}

/// Reads a `_bulk` body line by line: action, document, action, ...
#[derive(Debug, Default)]
pub struct BulkReader {
    /// The action whose document comes next.
    awaiting: Option<&'static str>,
}

impl BulkReader {
    pub fn line<'a>(&mut self, line: &'a [u8], truncated: bool) -> Result<BulkLine<'a>, BulkError> {
        if self.awaiting.take().is_some() {
            return Ok(BulkLine::Document { line, truncated });
        }
        if line.is_empty() {
            return Ok(BulkLine::Blank);
        }
        let action = parse_action(line)?;
        if action.has_document() {
            self.awaiting = Some(action.action);
        }
        Ok(BulkLine::Action(action))
    }

    /// The body ended (after its last newline, with `rest` left over): complete or refused.
    pub fn finish(&self, rest: &[u8]) -> Result<(), BulkError> {
        if !rest.is_empty() {
            return Err(refused(
                "illegal_argument_exception",
                "The bulk request must be terminated by a newline [\\n]".into(),
            ));
        }
        if let Some(action) = self.awaiting {
            return Err(refused(
                "illegal_argument_exception",
                format!("{action} action without a document"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]], max: usize) -> (Vec<(String, bool)>, Vec<u8>) {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            let _ = splitter.push(chunk, &mut |line, truncated| {
                lines.push((String::from_utf8_lossy(line).into_owned(), truncated));
                ControlFlow::Continue(())
            });
        }
        (lines, splitter.finish().0)
    }

    #[test]
    fn lines_are_cut_across_chunks_and_the_rest_is_skipped() {
        let (lines, rest) = lines_of(&[b"ab", b"cdefgh\r\nij\r", b"\nkl"], 4);
        assert_eq!(
            lines,
            vec![("abcd".to_string(), true), ("ij".to_string(), false)]
        );
        assert_eq!(rest, b"kl");
    }

    #[test]
    fn a_bulk_body_reads_as_actions_and_documents() {
        let mut reader = BulkReader::default();
        let action = reader.line(br#"{"index":{"_index":"web","_id":"7"}}"#, false);
        assert_eq!(
            action,
            Ok(BulkLine::Action(BulkAction {
                action: "index",
                index: Some("web".into()),
                id: Some("7".into())
            }))
        );
        assert!(reader.finish(b"").is_err(), "a document is due");
        assert_eq!(
            reader.line(b"{}", false),
            Ok(BulkLine::Document {
                line: b"{}",
                truncated: false
            })
        );
        assert_eq!(reader.line(b"", false), Ok(BulkLine::Blank));
        assert!(matches!(
            reader.line(br#"{"delete":{"_id":"1"}}"#, false),
            Ok(BulkLine::Action(_))
        ));
        assert_eq!(reader.finish(b""), Ok(()));
        assert_eq!(
            reader.line(b"{\"upsert\":{}}", false).unwrap_err().kind,
            "illegal_argument_exception"
        );
        assert_eq!(
            reader.line(b"nope", false).unwrap_err().kind,
            "x_content_parse_exception"
        );
        assert!(reader.finish(b"{}").is_err(), "no final newline");
    }
}
