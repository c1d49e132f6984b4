//! Text matching in filters, as Milvus has it on a VarChar field with
//! `enable_match`: `TEXT_MATCH(field, 'words')` holds when the row's text,
//! analysed by the field's analyzer, has any of the words' tokens;
//! `PHRASE_MATCH(field, 'words' [, slop])` when it has all of them in
//! order and adjacent, or, with a slop, within that many position moves
//! (Lucene's sloppy phrase: the spread of `position - index in the phrase`
//! over the matched tokens is at most `slop`, so slop 2 lets two words
//! trade places).
//!
//! The query's tokens are analysed once, when the filter is compiled; each
//! evaluation analyses the row (the analyzer is built once per filter, on
//! first use, also on a remote querynode that decoded it).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use quiver_common::DataType;
use quiver_text::Analyzer;
use serde::{Deserialize, Serialize};

use crate::ast::Expr;
use crate::compile::Compiler;
use crate::error::ExprError;
use crate::ir::{Const, Pred};
use crate::template::TemplateValue;

/// What a text match looks for in one field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TextMatch {
    pub(crate) field: String,
    /// The field's analyzer parameters (JSON; empty: the standard one).
    pub(crate) analyzer: String,
    /// The query's tokens, in order.
    pub(crate) tokens: Vec<String>,
    /// A phrase match's slop (None: any token matches).
    pub(crate) slop: Option<u32>,
    #[serde(skip)]
    built: Arc<OnceLock<Option<Analyzer>>>,
}

impl TextMatch {
    /// Whether `text` matches (see the module docs).
    pub(crate) fn matches(&self, text: &str) -> bool {
        let analyzer = self
            .built
            .get_or_init(|| Analyzer::from_params(&self.analyzer).ok());
        let Some(analyzer) = analyzer else {
            return false;
        };
        let row = analyzer.tokens(text);
        match self.slop {
            None => row.iter().any(|t| self.tokens.contains(&t.text)),
            Some(slop) => {
                let mut positions: HashMap<&str, Vec<i64>> = HashMap::new();
                for t in &row {
                    positions
                        .entry(t.text.as_str())
                        .or_default()
                        .push(i64::from(t.position));
                }
                phrase_within(&self.tokens, &positions, i64::from(slop))
            }
        }
    }
}

/// Whether some choice of one position per phrase token keeps the spread
/// of `position - index` within `slop`.
fn phrase_within(phrase: &[String], positions: &HashMap<&str, Vec<i64>>, slop: i64) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let mut offsets: Vec<Vec<i64>> = Vec::with_capacity(phrase.len());
    for (i, t) in phrase.iter().enumerate() {
        let Some(ps) = positions.get(t.as_str()) else {
            return false;
        };
        let mut o: Vec<i64> = ps.iter().map(|p| p - i as i64).collect();
        o.sort_unstable();
        offsets.push(o);
    }
    // Every window [w, w + slop] starting at an offset of the first token's
    // candidates or any other: try each offset as the window's start.
    let starts: Vec<i64> = offsets.iter().flatten().copied().collect();
    starts.iter().any(|w| {
        offsets.iter().all(|o| {
            let at = o.partition_point(|x| x < w);
            o.get(at).is_some_and(|x| *x <= w + slop)
        })
    })
}

impl Compiler<'_> {
    /// `TEXT_MATCH(field, 'words')` / `PHRASE_MATCH(field, 'words'[, slop])`.
    pub(crate) fn text_pred(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
    ) -> Result<Pred, ExprError> {
        let phrase = name.eq_ignore_ascii_case("phrase_match");
        let (target, query, slop) = match (args, phrase) {
            ([t, q], _) => (t, q, None),
            ([t, q, s], true) => (t, q, Some(s)),
            _ => {
                return Err(self.type_err(
                    e,
                    format!(
                        "{name} takes {} arguments (got {})",
                        if phrase { "2 or 3" } else { "2" },
                        args.len()
                    ),
                ));
            }
        };
        let Expr::Field { name: field, path } = target else {
            return Err(self.type_err(
                e,
                format!("the first argument of {name} must be a VarChar field, found {target}"),
            ));
        };
        let f = self
            .schema
            .field(field)
            .filter(|f| path.is_empty() && f.data_type == DataType::VarChar)
            .ok_or_else(|| {
                self.type_err(
                    e,
                    format!("the first argument of {name} must be a VarChar field, found {target}"),
                )
            })?;
        if !f.enable_match {
            return Err(self.type_err(
                e,
                format!(
                    "field {field:?} does not enable match (set enable_analyzer and enable_match)"
                ),
            ));
        }
        let text = match self.text_arg(query)? {
            Some(Const::Str(s)) => s,
            _ => {
                return Err(self.type_err(
                    e,
                    format!("the second argument of {name} must be a string, found {query}"),
                ));
            }
        };
        let slop = match slop.map(|s| self.text_arg(s)).transpose()? {
            None if phrase => Some(0),
            None => None,
            Some(Some(Const::Int(n))) if (0..=i64::from(u32::MAX)).contains(&n) => Some(n as u32),
            Some(_) => {
                return Err(self.type_err(
                    e,
                    format!("the slop of {name} must be a non-negative integer"),
                ));
            }
        };
        let analyzer_params = f.analyzer_params.clone().unwrap_or_default();
        let analyzer = Analyzer::from_params(&analyzer_params)
            .map_err(|m| self.type_err(e, format!("field {field:?}: {m}")))?;
        let tokens: Vec<String> = analyzer.tokens(&text).into_iter().map(|t| t.text).collect();
        if tokens.is_empty() {
            // Nothing to look for: no row matches (as an empty query does).
            return Ok(Pred::Const(false));
        }
        let built = Arc::new(OnceLock::new());
        let _ = built.set(Some(analyzer));
        Ok(Pred::Text(TextMatch {
            field: field.clone(),
            analyzer: analyzer_params,
            tokens,
            slop,
            built,
        }))
    }

    /// A constant argument (a literal or a template value).
    fn text_arg(&mut self, x: &Expr) -> Result<Option<Const>, ExprError> {
        Ok(match x {
            Expr::Str(s) => Some(Const::Str(s.clone())),
            Expr::Int(i) => Some(Const::Int(*i)),
            Expr::Template(name) => match self.template(name)? {
                TemplateValue::Array(_) => None,
                v => Some(v.to_const(name)?),
            },
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use quiver_api::{RowAccess, RowPredicate};
    use quiver_common::{CollectionSchema, DataType, FieldSchema, PrimaryKey, ScalarValue};

    struct Row(PrimaryKey, ScalarValue);

    impl RowAccess for Row {
        fn pk(&self) -> &PrimaryKey {
            &self.0
        }
        fn field(&self, name: &str) -> Option<quiver_common::ValueRef<'_>> {
            (name == "doc").then_some(quiver_common::ValueRef::of(&self.1))
        }
    }

    fn schema(analyzer: Option<&str>) -> CollectionSchema {
        let mut s = CollectionSchema::simple("c", 2);
        let mut doc = FieldSchema::new("doc", DataType::VarChar).with_max_length(200);
        doc.enable_analyzer = true;
        doc.enable_match = true;
        doc.analyzer_params = analyzer.map(str::to_string);
        s.fields.push(doc);
        s.fields
            .push(FieldSchema::new("plain", DataType::VarChar).with_max_length(10));
        s
    }

    fn matching(expr: &str, analyzer: Option<&str>, texts: &[&str]) -> Vec<i64> {
        let parsed = crate::parse(expr).expect("parses");
        let f = crate::compile(&parsed, &schema(analyzer), &Default::default()).expect("compiles");
        // Through the wire too, as a remote querynode gets it.
        let f = crate::CompiledFilter::decode(&f.encode().expect("encodes")).expect("decodes");
        let rows: Vec<Row> = (texts.iter().enumerate())
            .map(|(i, t)| Row(PrimaryKey::Int(i as i64), ScalarValue::Str(t.to_string())))
            .chain([Row(PrimaryKey::Int(99), ScalarValue::Null)])
            .collect();
        (rows.iter().filter(|r| f.eval(*r)))
            .map(|r| match r.0 {
                PrimaryKey::Int(i) => i,
                PrimaryKey::Str(_) => -1,
            })
            .collect()
    }

    #[test]
    fn text_match_is_any_token() {
        let texts = [
            "Milvus is a vector database",
            "Quiver speaks Milvus",
            "nothing here",
        ];
        assert_eq!(matching("TEXT_MATCH(doc, 'milvus')", None, &texts), [0, 1]);
        assert_eq!(
            matching("text_match(doc, 'database quiver')", None, &texts),
            [0, 1]
        );
        assert_eq!(
            matching("not TEXT_MATCH(doc, 'vector')", None, &texts),
            [1, 2]
        );
        assert_eq!(
            matching("TEXT_MATCH(doc, '...')", None, &texts),
            Vec::<i64>::new()
        );
        let english = Some(r#"{"type": "english"}"#);
        assert_eq!(
            matching("TEXT_MATCH(doc, 'databases')", english, &texts),
            [0]
        );
    }

    #[test]
    fn phrase_match_with_slop_as_lucene() {
        let texts = [
            "machine learning boosts efficiency",
            "learning machine",
            "machine deep learning",
            "the learning of a machine",
        ];
        let m = |expr: &str| matching(expr, None, &texts);
        assert_eq!(m("PHRASE_MATCH(doc, 'machine learning')"), [0]);
        assert_eq!(m("PHRASE_MATCH(doc, 'machine learning', 1)"), [0, 2]);
        assert_eq!(m("PHRASE_MATCH(doc, 'machine learning', 2)"), [0, 1, 2]);
        assert_eq!(m("PHRASE_MATCH(doc, 'machine learning', 5)"), [0, 1, 2, 3]);
    }

    #[test]
    fn bad_text_matches_name_the_problem() {
        let err = |expr: &str| {
            let parsed = crate::parse(expr).expect("parses");
            crate::compile(&parsed, &schema(None), &Default::default())
                .expect_err(expr)
                .to_string()
        };
        assert!(err("TEXT_MATCH(plain, 'a')").contains("does not enable match"));
        assert!(err("TEXT_MATCH(doc)").contains("takes 2 arguments"));
        assert!(err("TEXT_MATCH(doc, 3)").contains("must be a string"));
        assert!(err("PHRASE_MATCH(doc, 'a', -1)").contains("slop"));
    }
}
