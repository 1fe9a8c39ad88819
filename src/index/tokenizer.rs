//! The `message` tokenizer: words for alphabetic scripts, overlapping bigrams for CJK.
//!
//! Chinese and Japanese have no spaces between words, and the seeds' users write Chinese logs.
//! CJK characters (Han, Hiragana, Katakana, Hangul) are indexed as overlapping bigrams, the way
//! Lucene's and Elasticsearch's `cjk` analyzers do: `数据库连接失败` becomes `数据 据库 库连 连接
//! 接失 失败`. A two-character word is one bigram; a longer word or a phrase becomes a phrase of
//! consecutive bigrams; a lone CJK character is kept as a unigram. This needs no dictionary
//! (jieba's is several MB and segments Latin text differently) and treats the three languages
//! alike. Everything else is split on non-alphanumeric characters and lowercased, like tantivy's
//! default tokenizer, but tokens up to 255 bytes are kept (the default drops anything over 40,
//! which would make trace ids and hashes unsearchable).

use tantivy::tokenizer::{RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer};

/// Name the tokenizer is registered under on every partition and in the query parser.
pub const MESSAGE_TOKENIZER: &str = "lograft";

pub fn message_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(LogTokenizer::default())
        .filter(RemoveLongFilter::limit(255))
        .build()
}

/// Register the lograft tokenizers on an index.
pub fn register(index: &tantivy::Index) {
    index
        .tokenizers()
        .register(MESSAGE_TOKENIZER, message_analyzer());
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x3400..=0x4DBF     // CJK Extension A
        | 0x4E00..=0x9FFF     // CJK Unified Ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F   // CJK Extensions B.. and Compatibility Supplement
    )
}

#[derive(Clone, Default)]
pub struct LogTokenizer {
    token: Token,
}

pub struct LogTokenStream<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    token: &'a mut Token,
    /// Previous CJK character of the current run: (offset, char), and whether a bigram was
    /// already emitted from this run.
    cjk_previous: Option<(usize, char)>,
    cjk_emitted: bool,
}

impl Tokenizer for LogTokenizer {
    type TokenStream<'a> = LogTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LogTokenStream<'a> {
        self.token.reset();
        LogTokenStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
            cjk_previous: None,
            cjk_emitted: false,
        }
    }
}

impl LogTokenStream<'_> {
    fn emit(&mut self, from: usize, to: usize, lowercase: bool) {
        self.token.position = self.token.position.wrapping_add(1);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.text.clear();
        let text = &self.text[from..to];
        if lowercase && !text.is_ascii() {
            self.token
                .text
                .extend(text.chars().flat_map(char::to_lowercase));
        } else {
            self.token.text.push_str(text);
            if lowercase {
                self.token.text.make_ascii_lowercase();
            }
        }
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        loop {
            if let Some((previous_offset, previous)) = self.cjk_previous {
                match self.chars.peek().copied() {
                    Some((offset, c)) if is_cjk(c) => {
                        self.chars.next();
                        self.cjk_previous = Some((offset, c));
                        self.cjk_emitted = true;
                        self.emit(previous_offset, offset + c.len_utf8(), false);
                        return true;
                    }
                    _ => {
                        // The run ends; a lone character is kept as a unigram.
                        self.cjk_previous = None;
                        if !self.cjk_emitted {
                            self.emit(
                                previous_offset,
                                previous_offset + previous.len_utf8(),
                                false,
                            );
                            return true;
                        }
                    }
                }
            }
            let (start, c) = match self.chars.next() {
                Some(next) => next,
                None => return false,
            };
            if is_cjk(c) {
                self.cjk_previous = Some((start, c));
                self.cjk_emitted = false;
                continue;
            }
            if !c.is_alphanumeric() {
                continue;
            }
            let mut end = start + c.len_utf8();
            while let Some(&(offset, next)) = self.chars.peek() {
                if !next.is_alphanumeric() || is_cjk(next) {
                    break;
                }
                end = offset + next.len_utf8();
                self.chars.next();
            }
            self.emit(start, end, true);
            return true;
        }
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(String, usize)> {
        let mut analyzer = message_analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push((stream.token().text.clone(), stream.token().position));
        }
        out
    }

    fn texts(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn latin_words_like_the_default_tokenizer() {
        assert_eq!(
            texts("GET /api/v2 HTTP/1.1 503"),
            ["get", "api", "v2", "http", "1", "1", "503"]
        );
        assert_eq!(
            texts("Connection RESET by peer!"),
            ["connection", "reset", "by", "peer"]
        );
        let trace = "a".repeat(64);
        assert_eq!(texts(&format!("trace={trace}")), ["trace", trace.as_str()]);
        assert_eq!(texts("Ärger über Öl"), ["ärger", "über", "öl"]);
    }

    #[test]
    fn cjk_bigrams_with_consecutive_positions() {
        assert_eq!(
            texts("数据库连接失败"),
            ["数据", "据库", "库连", "连接", "接失", "失败"]
        );
        let with_latin = tokens("订单42支付失败 error");
        assert_eq!(
            with_latin
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>(),
            ["订单", "42", "支付", "付失", "失败", "error"]
        );
        let positions: Vec<usize> = with_latin.iter().map(|(_, p)| *p).collect();
        assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
        assert_eq!(texts("库 ok"), ["库", "ok"]);
        assert_eq!(
            texts("ログイン失敗"),
            ["ログ", "グイ", "イン", "ン失", "失敗"]
        );
        assert_eq!(texts("연결 실패"), ["연결", "실패"]);
    }
}
