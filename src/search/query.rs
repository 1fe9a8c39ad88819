//! The query language: text to a tantivy query, with limits on size and nesting checked
//! before anything recursive runs, wildcards and "everything except" negations.

use std::ops::Bound;

use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::tokenizer::TokenizerManager;

use super::*;
use crate::index::{Fields, query_schema};

/// Turns query text into a tantivy query. Shared by every partition (same schema).
pub struct QueryBuilder {
    parser: QueryParser,
    pub(crate) fields: Fields,
}

impl Default for QueryBuilder {
    fn default() -> Self {
        let (schema, fields) = query_schema();
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
                return Ok(route_parsed_fields(complete_negations(query), &self.fields));
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
        Ok(route_parsed_fields(complete_negations(query), &self.fields))
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
        let range = super::time_range::TimeRange::new("ts", from, to);
        if !hide_audit && Self::is_match_all(query.as_ref()) {
            return Box::new(range);
        }
        Box::new(super::time_range::InRange::new(
            query,
            range,
            hide_audit.then(|| self.audit_lines()),
        ))
    }

    /// The audit trail's lines (runner `_audit`).
    pub(super) fn audit_lines(&self) -> Box<dyn Query> {
        Box::new(tantivy::query::TermQuery::new(
            Term::from_field_text(self.fields.runner, crate::record::AUDIT_RUNNER),
            tantivy::schema::IndexRecordOption::Basic,
        ))
    }

    /// Whether `query` matches every document (`*`, or an empty query).
    pub(super) fn is_match_all(query: &dyn Query) -> bool {
        unboxed(query).downcast_ref::<AllQuery>().is_some()
    }

    /// Whether `query` is one term (its count in a segment is the term's frequency).
    pub(super) fn is_term(query: &dyn Query) -> bool {
        unboxed(query)
            .downcast_ref::<tantivy::query::TermQuery>()
            .is_some()
    }

    pub(super) fn before_cursor(&self, sort: u64) -> Box<dyn Query> {
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
    // A control character cannot be typed in a query; in a field name it made tantivy assert
    // (found by the `query` fuzz target).
    if let Some((at, c)) = q
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(refuse(format!(
            "the query contains the control character U+{:04X} at byte {at}",
            c as u32
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

/// Point every search for a parsed field's value (`fields.service:payments`) at where each
/// partition keeps it: [`ParsedFieldQuery`].
fn route_parsed_fields(query: Box<dyn Query>, fields: &Fields) -> Box<dyn Query> {
    let inner = unboxed(query.as_ref());
    if let Some(boolean) = inner.downcast_ref::<BooleanQuery>() {
        return Box::new(BooleanQuery::new(
            boolean
                .clauses()
                .iter()
                .map(|(occur, sub)| (*occur, route_parsed_fields(sub.box_clone(), fields)))
                .collect(),
        ));
    }
    if let Some(term) = inner.downcast_ref::<TermQuery>()
        && let Some(routed) = parsed_field_query(term.term(), fields)
    {
        return routed;
    }
    query
}

/// The query for `term` when it is a term of the parsed fields: [`ParsedFieldQuery`].
pub(crate) fn parsed_field_query(term: &Term, fields: &Fields) -> Option<Box<dyn Query>> {
    if term.field() != fields.fields {
        return None;
    }
    // A JSON term's value bytes: the path, its end byte (0), the value's type code, the value.
    let bytes = term.serialized_value_bytes();
    let in_field = |field| {
        let mut in_field = Term::from_field_json_path(field, "", false);
        in_field.truncate_value_bytes(0);
        in_field.append_bytes(bytes);
        in_field
    };
    let text = (term.value().json_path_type() == Some(tantivy::schema::Type::Str))
        .then(|| {
            let end = bytes.iter().position(|b| *b == 0)?;
            std::str::from_utf8(bytes.get(end + 2..)?).ok()
        })
        .flatten();
    let words = text.map(|text| {
        let mut analyzer = crate::index::tokenizer::message_analyzer();
        let mut words = Vec::new();
        analyzer.token_stream(text).process(&mut |token| {
            words.push(Term::from_field_text(fields.message, &token.text));
        });
        words
    });
    let in_ids = text
        .filter(|text| crate::index::identifiers::is_identifier(text))
        .map(|_| in_field(fields.ids));
    Some(Box::new(ParsedFieldQuery {
        in_fields: term.clone(),
        in_ids,
        in_terms: in_field(fields.fields_terms),
        words,
    }))
}

/// A value of a parsed field, where the partition keeps it:
///
/// * partitions with `fields_terms` ([`crate::index::parsed_terms`]): a string is found
///   through the message's postings of its words and checked on the `fields` column; any value
///   is also looked up in `fields_terms`; an identifier is read from the `ids` column;
/// * older partitions: the term in `fields`, and the `ids` column for an identifier where the
///   partition has one ([`crate::index::identifiers`]).
#[derive(Clone, Debug)]
struct ParsedFieldQuery {
    in_fields: Term,
    /// The value in the `ids` column, for an identifier.
    in_ids: Option<Term>,
    in_terms: Term,
    /// The message's terms of a string value's words (`None` for other values).
    words: Option<Vec<Term>>,
}

impl Query for ParsedFieldQuery {
    fn weight(
        &self,
        scoring: tantivy::query::EnableScoring<'_>,
    ) -> tantivy::Result<Box<dyn tantivy::query::Weight>> {
        let basic = tantivy::schema::IndexRecordOption::Basic;
        let schema = scoring.schema();
        let has = |field: tantivy::schema::Field| schema.num_fields() > field.field_id() as usize;
        let column = |term: &Term| -> Box<dyn Query> {
            Box::new(RangeQuery::new(
                Bound::Included(term.clone()),
                Bound::Included(term.clone()),
            ))
        };
        let in_ids = self
            .in_ids
            .as_ref()
            .filter(|term| has(term.field()) && schema.get_field_entry(term.field()).is_fast());
        if !has(self.in_terms.field()) {
            let in_fields: Box<dyn Query> = Box::new(TermQuery::new(self.in_fields.clone(), basic));
            let Some(in_ids) = in_ids else {
                return in_fields.weight(scoring);
            };
            return BooleanQuery::new(vec![
                (Occur::Should, in_fields),
                (Occur::Should, column(in_ids)),
            ])
            .weight(scoring);
        }
        let mut found: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Should,
            Box::new(TermQuery::new(self.in_terms.clone(), basic)),
        )];
        if let Some(in_ids) = in_ids {
            // Identifiers are never terms: the column is read whatever the message holds.
            found.push((Occur::Should, column(in_ids)));
        }
        if let Some(words) = &self.words {
            let columns = vec![(Occur::Should, column(&self.in_fields))];
            let mut through_message: Vec<(Occur, Box<dyn Query>)> = words
                .iter()
                .map(|word| {
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(word.clone(), basic)) as Box<dyn Query>,
                    )
                })
                .collect();
            through_message.push((Occur::Must, Box::new(BooleanQuery::new(columns))));
            found.push((Occur::Should, Box::new(BooleanQuery::new(through_message))));
        }
        BooleanQuery::new(found).weight(scoring)
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        visitor(&self.in_fields, false);
    }
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
        // A match-all query restricted to a range is the bare range (time bounds only).
        let ranged = builder.in_range(builder.parse("*").unwrap(), 0, 10, false);
        assert!(
            ranged
                .as_ref()
                .downcast_ref::<super::super::time_range::TimeRange>()
                .is_some(),
            "{ranged:?}"
        );
    }
}
