//! Analyzers as Milvus configures them (`analyzer_params` of a VarChar field
//! with `enable_analyzer`): a tokenizer and a chain of filters, or a built-in
//! analyzer type.
//!
//! - `{"type": "standard", "stop_words": [..]}` (the default): the standard
//!   tokenizer, lowercase, then the stop words given (none by default).
//! - `{"type": "english", "stop_words": [..]}`: standard, lowercase, the
//!   English Snowball stemmer, then the English stop words and any given.
//! - `{"tokenizer": "standard" | "whitespace", "filter": [..]}` with filters
//!   `"lowercase"`, `"alphanumonly"`, `"asciifolding"`,
//!   `{"type": "stop", "stop_words": [..]}` (`"_english_"` names the list),
//!   `{"type": "stemmer", "language": ..}`, `{"type": "length", "max": N}`.
//!
//! The standard tokenizer splits on every character that is not
//! alphanumeric (tantivy's `SimpleTokenizer`, as Milvus's `standard`);
//! positions count the tokenizer's tokens, so a removed stop word leaves a
//! gap that phrase matching sees (as Lucene and tantivy do).

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};
use serde_json::Value;

/// The English stop words of Lucene and tantivy (`_english_`).
pub const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// A token of analysed text and its position among the tokenizer's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokenizer {
    Standard,
    Whitespace,
}

enum Filter {
    Lowercase,
    AsciiFolding,
    AlphanumOnly,
    Stop(HashSet<String>),
    Stem(Stemmer),
    MaxLength(usize),
}

/// A configured analyzer: text in, tokens out.
pub struct Analyzer {
    tokenizer: Tokenizer,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Analyzer({:?}, {} filters)",
            self.tokenizer,
            self.filters.len()
        )
    }
}

fn stemmer(language: &str) -> Result<Stemmer, String> {
    let algorithm = match language.to_ascii_lowercase().as_str() {
        "english" => Algorithm::English,
        "arabic" => Algorithm::Arabic,
        "danish" => Algorithm::Danish,
        "dutch" => Algorithm::Dutch,
        "finnish" => Algorithm::Finnish,
        "french" => Algorithm::French,
        "german" => Algorithm::German,
        "greek" => Algorithm::Greek,
        "hungarian" => Algorithm::Hungarian,
        "italian" => Algorithm::Italian,
        "norwegian" => Algorithm::Norwegian,
        "portuguese" => Algorithm::Portuguese,
        "romanian" => Algorithm::Romanian,
        "russian" => Algorithm::Russian,
        "spanish" => Algorithm::Spanish,
        "swedish" => Algorithm::Swedish,
        "tamil" => Algorithm::Tamil,
        "turkish" => Algorithm::Turkish,
        other => return Err(format!("unsupported stemmer language: {other:?}")),
    };
    Ok(Stemmer::create(algorithm))
}

/// Stop words from a JSON list (or one string); `_english_` names the list.
fn stop_words(v: Option<&Value>) -> Result<HashSet<String>, String> {
    let mut words = HashSet::new();
    let items: Vec<&Value> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::String(_)) => vec![s],
        Some(other) => {
            return Err(format!(
                "stop_words must be a list of strings (got {other})"
            ));
        }
    };
    for item in items {
        let Some(w) = item.as_str() else {
            return Err(format!("stop_words must be strings (got {item})"));
        };
        if w == "_english_" {
            words.extend(ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()));
        } else {
            words.insert(w.to_string());
        }
    }
    Ok(words)
}

fn filter(v: &Value) -> Result<Filter, String> {
    let (kind, obj) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some(t) => (t, Some(o)),
            None => return Err(format!("a filter object needs a \"type\" (got {v})")),
        },
        other => return Err(format!("a filter is a name or an object (got {other})")),
    };
    let get = |k: &str| obj.and_then(|o| o.get(k));
    match kind {
        "lowercase" => Ok(Filter::Lowercase),
        "asciifolding" => Ok(Filter::AsciiFolding),
        "alphanumonly" => Ok(Filter::AlphanumOnly),
        "stop" => Ok(Filter::Stop(stop_words(get("stop_words"))?)),
        "stemmer" => {
            let language = get("language")
                .and_then(Value::as_str)
                .ok_or("a stemmer filter needs a \"language\"")?;
            Ok(Filter::Stem(stemmer(language)?))
        }
        "length" => {
            let max = get("max")
                .and_then(Value::as_u64)
                .filter(|m| *m > 0)
                .ok_or("a length filter needs a positive \"max\"")?;
            Ok(Filter::MaxLength(max as usize))
        }
        other => Err(format!(
            "unsupported filter: {other:?} (lowercase, asciifolding, alphanumonly, stop, stemmer, length are)"
        )),
    }
}

impl Analyzer {
    /// Milvus's default analyzer (`{"type": "standard"}`).
    pub fn standard() -> Self {
        Analyzer {
            tokenizer: Tokenizer::Standard,
            filters: vec![Filter::Lowercase],
        }
    }

    /// The analyzer `analyzer_params` describes (JSON; empty: standard).
    /// Err says what is wrong with the parameters.
    pub fn from_params(params: &str) -> Result<Self, String> {
        if params.trim().is_empty() {
            return Ok(Self::standard());
        }
        let v: Value = serde_json::from_str(params)
            .map_err(|e| format!("analyzer params must be a JSON object: {e}"))?;
        let Value::Object(o) = &v else {
            return Err(format!("analyzer params must be a JSON object (got {v})"));
        };
        if let Some(t) = o.get("type") {
            let stop = stop_words(o.get("stop_words"))?;
            let mut filters = vec![Filter::Lowercase];
            match t.as_str() {
                Some("standard") => {}
                Some("english") => {
                    filters.push(Filter::Stem(stemmer("english")?));
                    let mut all = stop;
                    all.extend(ENGLISH_STOP_WORDS.iter().map(|s| s.to_string()));
                    filters.push(Filter::Stop(all));
                    return Ok(Analyzer {
                        tokenizer: Tokenizer::Standard,
                        filters,
                    });
                }
                Some(other) => {
                    return Err(format!(
                        "unsupported analyzer type: {other:?} (standard, english are)"
                    ));
                }
                None => return Err(format!("analyzer type must be a string (got {t})")),
            }
            if !stop.is_empty() {
                filters.push(Filter::Stop(stop));
            }
            return Ok(Analyzer {
                tokenizer: Tokenizer::Standard,
                filters,
            });
        }
        let tokenizer = match o.get("tokenizer") {
            None => Tokenizer::Standard,
            Some(Value::String(s)) if s == "standard" => Tokenizer::Standard,
            Some(Value::String(s)) if s == "whitespace" => Tokenizer::Whitespace,
            Some(other) => {
                return Err(format!(
                    "unsupported tokenizer: {other} (standard, whitespace are)"
                ));
            }
        };
        let filters = match o.get("filter") {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(filter).collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("filter must be a list (got {other})")),
        };
        if let Some(k) = o
            .keys()
            .find(|k| !matches!(k.as_str(), "tokenizer" | "filter"))
        {
            return Err(format!("unknown analyzer parameter: {k:?}"));
        }
        Ok(Analyzer { tokenizer, filters })
    }

    /// The tokens of `text`, in order, with their positions.
    pub fn tokens(&self, text: &str) -> Vec<Token> {
        let raw: Box<dyn Iterator<Item = &str>> = match self.tokenizer {
            Tokenizer::Standard => Box::new(
                text.split(|c: char| !c.is_alphanumeric())
                    .filter(|t| !t.is_empty()),
            ),
            Tokenizer::Whitespace => Box::new(text.split_whitespace()),
        };
        let mut out = Vec::new();
        'tokens: for (position, t) in raw.enumerate() {
            let mut t = t.to_string();
            for f in &self.filters {
                match f {
                    Filter::Lowercase => {
                        if t.chars().any(char::is_uppercase) {
                            t = t.to_lowercase();
                        }
                    }
                    Filter::AsciiFolding => t = fold_ascii(&t),
                    Filter::AlphanumOnly => {
                        if !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                            continue 'tokens;
                        }
                    }
                    Filter::Stop(words) => {
                        if words.contains(&t) {
                            continue 'tokens;
                        }
                    }
                    Filter::Stem(s) => t = s.stem(&t).into_owned(),
                    Filter::MaxLength(max) => {
                        if t.len() > *max {
                            continue 'tokens;
                        }
                    }
                }
            }
            out.push(Token {
                text: t,
                position: position as u32,
            });
        }
        out
    }
}

/// Latin letters with diacritics folded to their ASCII base letter (the
/// common Latin-1 and Latin Extended-A range); other characters unchanged.
fn fold_ascii(t: &str) -> String {
    t.chars()
        .map(|c| match c {
            'à'..='å' => 'a',
            'À'..='Å' => 'A',
            'ç' => 'c',
            'Ç' => 'C',
            'è'..='ë' => 'e',
            'È'..='Ë' => 'E',
            'ì'..='ï' => 'i',
            'Ì'..='Ï' => 'I',
            'ñ' => 'n',
            'Ñ' => 'N',
            'ò'..='ö' | 'ø' => 'o',
            'Ò'..='Ö' | 'Ø' => 'O',
            'ù'..='ü' => 'u',
            'Ù'..='Ü' => 'U',
            'ý' | 'ÿ' => 'y',
            'Ý' => 'Y',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(a: &Analyzer, s: &str) -> Vec<String> {
        a.tokens(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn standard_splits_on_punctuation_and_lowercases() {
        let a = Analyzer::from_params("").expect("default");
        assert_eq!(
            texts(&a, "Hello, World! It's 2024-v2"),
            ["hello", "world", "it", "s", "2024", "v2"]
        );
    }

    #[test]
    fn english_stems_and_drops_stop_words_keeping_positions() {
        let a = Analyzer::from_params(r#"{"type": "english"}"#).expect("english");
        let t = a.tokens("The cats are running in the gardens");
        let words: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["cat", "run", "garden"]);
        assert_eq!(t.iter().map(|t| t.position).collect::<Vec<_>>(), [1, 3, 6]);
    }

    #[test]
    fn custom_chains_and_stop_words() {
        let a = Analyzer::from_params(
            r#"{"tokenizer": "whitespace", "filter": ["lowercase", {"type": "stop", "stop_words": ["foo"]}, {"type": "length", "max": 4}]}"#,
        )
        .expect("custom");
        assert_eq!(texts(&a, "Foo BAR bazzz qux,"), ["bar", "qux,"]);
        let s = Analyzer::from_params(r#"{"type": "standard", "stop_words": ["_english_"]}"#)
            .expect("standard with stop words");
        assert_eq!(texts(&s, "the Milvus of it"), ["milvus"]);
    }

    #[test]
    fn bad_params_say_what_is_wrong() {
        for (p, want) in [
            (r#"{"type": "chinese"}"#, "unsupported analyzer type"),
            (r#"{"tokenizer": "jieba"}"#, "unsupported tokenizer"),
            (r#"{"filter": ["nope"]}"#, "unsupported filter"),
            (
                r#"{"filter": [{"type": "stemmer", "language": "klingon"}]}"#,
                "klingon",
            ),
            ("[1]", "JSON object"),
            ("{", "JSON object"),
        ] {
            let e = Analyzer::from_params(p).expect_err(p);
            assert!(e.contains(want), "{p}: {e}");
        }
    }
}
