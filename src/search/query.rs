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
        check_query_text(q)?;
        // Below the bound, the tree (one clause more than groups and NOTs) is within the limit.
        let bound = nesting_bound(q);
        if bound < MAX_QUERY_DEPTH {
            return self.parse_shallow(q);
        }
        // The grammar's work and recursion grow with these, whatever the tree they make.
        if bound > MAX_QUERY_GROUPS {
            return Err(bad_query(
                q,
                format!(
                    "the query holds {bound} groups and NOTs; at most {MAX_QUERY_GROUPS} are allowed"
                ),
            ));
        }
        // The grammar recurses once per group or NOT even where the tree it builds does not
        // (`((a))` is the leaf `a`): it runs on a stack of known size, and the tree is refused
        // if it nests deeper than the rest of search may go.
        on_grammar_stack(q, || self.parse_measured(q))
    }

    /// [`Self::parse`] for a query within [`MAX_QUERY_GROUPS`]: the tree is measured first.
    fn parse_measured(&self, q: &str) -> Result<Box<dyn Query>, SearchError> {
        let depth = grammar_depth(q);
        if depth > MAX_QUERY_DEPTH {
            return Err(bad_query(
                q,
                format!(
                    "the query nests {depth} levels deep (groups and NOTs); at most {MAX_QUERY_DEPTH} are allowed"
                ),
            ));
        }
        self.parse_shallow(q)
    }

    /// [`Self::parse`] for a query whose tree is known to nest at most [`MAX_QUERY_DEPTH`] deep.
    fn parse_shallow(&self, q: &str) -> Result<Box<dyn Query>, SearchError> {
        // Wildcards (`ap*`, `err?r`) become regular expressions over the field's terms.
        if let Ok(ast) = tantivy::query_grammar::parse_query(q) {
            let (ast, expanded) = expand_wildcards(ast);
            if expanded {
                let query = self
                    .parser
                    .build_query_from_user_input_ast(ast)
                    .map_err(|err| {
                        bad_query(
                            q,
                            format!(
                                "{err} (wildcards work on message, level, runner, node and path)"
                            ),
                        )
                    })?;
                return Ok(route_parsed_fields(complete_negations(query), &self.fields));
            }
        }
        let query = self.parser.parse_query(q).map_err(|err| {
            // The strict parser only says "syntax error"; the lenient one says where.
            let located = matches!(err, tantivy::query::QueryParserError::SyntaxError(_))
                .then(|| self.parser.parse_query_lenient(q).1.into_iter().next())
                .flatten();
            let reason = match (located, err) {
                (Some(located), _) => located.to_string(),
                // It carries the whole query, which the error already quotes the start of.
                (None, tantivy::query::QueryParserError::SyntaxError(_)) => {
                    "syntax error".to_string()
                }
                (None, err) => err.to_string(),
            };
            bad_query(q, reason)
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

fn bad_query(q: &str, reason: String) -> SearchError {
    SearchError::BadQuery {
        query: q.chars().take(200).collect(),
        reason,
    }
}

/// Refuse queries over [`MAX_QUERY_BYTES`] or with a control character. Nesting is checked by
/// [`QueryBuilder::parse`], which knows it from the grammar.
fn check_query_text(q: &str) -> Result<(), SearchError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(bad_query(
            q,
            format!(
                "the query is {} bytes long; at most {MAX_QUERY_BYTES} are allowed",
                q.len()
            ),
        ));
    }
    // A control character cannot be typed in a query; in a field name it made tantivy assert
    // (found by the `query` fuzz target).
    if let Some((at, c)) = q
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(bad_query(
            q,
            format!(
                "the query contains the control character U+{:04X} at byte {at}",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// An upper bound of the grammar's recursion that needs no parsing: it recurses only into a
/// group (`(`) or a `NOT` and a space, so it cannot nest deeper than there are of them. Most
/// queries stop here. (Discounting the parentheses inside quotes was not a bound: the grammar
/// decides what a quote opens — an unterminated `"` opens nothing — found by the `query` fuzz
/// target.)
fn nesting_bound(q: &str) -> usize {
    let nots = q
        .match_indices("NOT")
        .filter(|(at, _)| q[at + 3..].starts_with(char::is_whitespace))
        .count();
    q.bytes().filter(|&b| b == b'(').count() + nots
}

/// Stack for [`on_grammar_stack`], the size of a main thread's. The grammar's recursion on
/// [`MAX_QUERY_GROUPS`] groups or `NOT`s needs less than a quarter of it in an unoptimized
/// build (the tests run the deepest queries on a quarter), less when optimized.
const GRAMMAR_STACK: usize = 8 << 20;

/// Runs `parse` on a thread with [`GRAMMAR_STACK`]: the grammar, its trees and their drops
/// all recurse as deep as the query text nests, and a caller's stack may be half used.
fn on_grammar_stack(
    q: &str,
    parse: impl FnOnce() -> Result<Box<dyn Query>, SearchError> + Send,
) -> Result<Box<dyn Query>, SearchError> {
    std::thread::scope(|scope| {
        let parsing = std::thread::Builder::new()
            .name("query-grammar".into())
            .stack_size(GRAMMAR_STACK)
            .spawn_scoped(scope, parse)
            .map_err(|err| {
                SearchError::Unavailable(format!(
                    "no thread could be started to parse a query with many groups: {err}"
                ))
            })?;
        parsing.join().unwrap_or_else(|_| {
            Err(bad_query(
                q,
                "the query grammar failed on this query".to_string(),
            ))
        })
    })
}

/// How deep the clauses of the trees the grammar builds from `q` nest, strict and lenient
/// reading alike (the lenient one words syntax errors, and builds a query too). Runs on
/// [`on_grammar_stack`].
fn grammar_depth(q: &str) -> usize {
    fn depth(ast: &tantivy::query_grammar::UserInputAst) -> usize {
        use tantivy::query_grammar::UserInputAst;
        match ast {
            UserInputAst::Clause(clauses) => {
                1 + clauses.iter().map(|(_, sub)| depth(sub)).max().unwrap_or(0)
            }
            UserInputAst::Boost(inner, _) => depth(inner),
            UserInputAst::Leaf(_) => 0,
        }
    }
    let strict = tantivy::query_grammar::parse_query(q)
        .map(|ast| depth(&ast))
        .unwrap_or(0);
    strict.max(depth(&tantivy::query_grammar::parse_query_lenient(q).0))
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

    /// Queries within the limits that make the grammar recurse deepest: a group or a NOT each,
    /// the fuzz target's find (groups after an unterminated quote), and the longest query.
    fn deepest_queries() -> Vec<String> {
        let n = MAX_QUERY_GROUPS;
        vec![
            "(".repeat(n),
            format!("{}a", "NOT ".repeat(n)),
            format!("{}a", "(NOT ".repeat(n / 2)),
            format!("level:vvv\"{}", "(".repeat(n)),
            format!("a:({}", "b:(".repeat(n - 1)),
            format!("{}b{}", "(a OR ".repeat(n), ")".repeat(n)),
            format!("{}b", format!("({} OR ", "x".repeat(55)).repeat(n)),
        ]
    }

    fn refusal(builder: &QueryBuilder, q: &str) -> String {
        let text = builder.parse(q).err().expect("refused").to_string();
        assert!(
            text.len() < 600,
            "the error quotes only the start: {}",
            text.len()
        );
        text
    }

    #[test]
    fn deep_and_long_queries_are_refused_not_parsed() {
        let builder = QueryBuilder::default();
        // 3000 nested groups overflowed the stack and aborted the process; so did groups after
        // an unterminated quote, which a reading of quotes took for a phrase (fuzz target).
        for q in [
            format!("{}a{}", "(".repeat(3000), ")".repeat(3000)),
            format!("{}a", "NOT ".repeat(3000)),
            format!("{}a", "(NOT ".repeat(3000)),
            format!("level:vvv\"{}a", "(x OR ".repeat(2000)),
            format!("\"{}\" AND b", "(".repeat(MAX_QUERY_GROUPS + 1)),
        ] {
            let text = refusal(&builder, &q);
            assert!(text.contains("groups and NOTs; at most 256"), "{text}");
        }
        for q in ["(".repeat(100_000), "a ".repeat(MAX_QUERY_BYTES)] {
            assert!(refusal(&builder, &q).contains("bytes long"));
        }
        // The tree's depth is what is limited: 32 levels parse, 33 do not.
        let nested = |levels: usize| format!("{}b{}", "(a OR ".repeat(levels), ")".repeat(levels));
        builder
            .parse(&nested(MAX_QUERY_DEPTH))
            .expect("32 levels parse");
        let text = refusal(&builder, &nested(MAX_QUERY_DEPTH + 1));
        assert!(text.contains("33 levels deep"), "{text}");
        let text = refusal(&builder, &format!("{}a", "NOT ".repeat(40)));
        assert!(text.contains("40 levels deep"), "{text}");
        for q in deepest_queries() {
            if let Err(err) = builder.parse(&q) {
                assert!(err.to_string().len() < 600, "{err}");
            }
        }
        // Groups around one word build no deeper a tree than the word: parsed, and the same.
        let wrapped = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            format!("{:?}", builder.parse(&wrapped).expect("parsed")),
            format!("{:?}", builder.parse("a").unwrap())
        );
        builder
            .parse(&format!("\"{}\" AND b", "(".repeat(200)))
            .expect("parentheses in a phrase are text");
        builder
            .parse(&format!("a AND{}", " NOT b AND NOT c".repeat(20)))
            .expect("separate NOTs");
        builder
            .parse(&"NOTICE ".repeat(300))
            .expect("a word that starts with NOT is a word");
    }

    /// The grammar's stack holds the deepest queries with room to spare, in the unoptimized
    /// build the tests and fuzz targets run (an optimized one needs less).
    #[test]
    fn the_grammar_stack_has_room_for_the_deepest_queries() {
        let margin = 4;
        std::thread::Builder::new()
            .stack_size(GRAMMAR_STACK / margin)
            .spawn(|| {
                let builder = QueryBuilder::default();
                for q in deepest_queries() {
                    assert!(nesting_bound(&q) <= MAX_QUERY_GROUPS);
                    assert!(q.len() <= MAX_QUERY_BYTES);
                    let _ = builder.parse_measured(&q);
                }
            })
            .unwrap()
            .join()
            .expect("a quarter of the stack was enough");
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
