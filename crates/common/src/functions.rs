//! Functions of a schema (Milvus's BM25): output columns computed from an
//! input column at the front door, and the query a text becomes.

use quiver_text::term_counts;

use crate::batch::{Column, RowBatch, ScalarValue};
use crate::error::{Error, Result};
use crate::schema::{CollectionSchema, FunctionKind};

impl CollectionSchema {
    /// Computes every function's output column of `rows` from its input (a
    /// BM25 function: each row's analysed terms and how often each occurs,
    /// as a sparse vector of term ids). A batch that carries an output
    /// itself is refused: outputs are only ever computed.
    pub fn compute_functions(&self, rows: &mut RowBatch) -> Result<()> {
        let n = rows.rows();
        for func in &self.functions {
            if rows.columns.iter().any(|c| c.name == func.output) {
                return Err(Error::invalid(
                    &func.output,
                    format!(
                        "the output of function {:?} is computed from field {:?}; do not send it",
                        func.name, func.input
                    ),
                ));
            }
            let input = self
                .field(&func.input)
                .ok_or_else(|| Error::invalid(&func.input, "no such field (a function's input)"))?;
            let Some(column) = rows.columns.iter().find(|c| c.name == func.input) else {
                return Err(Error::invalid(
                    &func.input,
                    format!("missing: the input of function {:?}", func.name),
                ));
            };
            let values = match func.kind {
                FunctionKind::Bm25 => {
                    let analyzer = input.analyzer()?;
                    (column.values.iter())
                        .map(|v| match v {
                            ScalarValue::Str(text) => {
                                ScalarValue::Sparse(term_counts(&analyzer.tokens(text)))
                            }
                            _ => ScalarValue::Sparse(Vec::new()),
                        })
                        .collect::<Vec<_>>()
                }
            };
            if values.len() != n {
                return Err(Error::invalid(
                    &func.input,
                    format!("expected {n} values (got {})", values.len()),
                ));
            }
            rows.columns.push(Column {
                name: func.output.clone(),
                values,
            });
        }
        Ok(())
    }

    /// What a text searches for in the output of a BM25 function: the
    /// text's analysed terms (by the input field's analyzer) and counts.
    pub fn bm25_query(&self, field: &str, text: &str) -> Result<Vec<(u32, f32)>> {
        let func = self.function_output(field).ok_or_else(|| {
            Error::invalid(
                "anns_field",
                format!("field {field:?} is not the output of a BM25 function: search it with sparse vectors"),
            )
        })?;
        let input = self
            .field(&func.input)
            .ok_or_else(|| Error::invalid(&func.input, "no such field (a function's input)"))?;
        Ok(term_counts(&input.analyzer()?.tokens(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{DataType, FieldSchema, FunctionSchema};
    use crate::{PrimaryKey, Vectors};

    fn schema() -> CollectionSchema {
        let mut text = FieldSchema::new("text", DataType::VarChar).with_max_length(100);
        text.enable_analyzer = true;
        text.analyzer_params = Some(r#"{"type": "english"}"#.into());
        let mut s = CollectionSchema::simple("c", 2);
        s.fields.remove(1);
        s.fields
            .push(FieldSchema::new("sparse", DataType::SparseFloatVector));
        s.fields.push(text);
        s.functions.push(FunctionSchema {
            name: "bm25".into(),
            kind: FunctionKind::Bm25,
            input: "text".into(),
            output: "sparse".into(),
            description: String::new(),
            params: Default::default(),
        });
        s
    }

    #[test]
    fn bm25_outputs_are_computed_and_never_sent() {
        let s = schema();
        s.validate().expect("valid");
        assert_eq!(s.dim(), 0);
        assert_eq!(s.vector_field().name, "sparse");
        let mut rows = RowBatch {
            pks: vec![PrimaryKey::Int(1), PrimaryKey::Int(2)],
            vectors: Vectors::f32(0, Vec::new()),
            columns: vec![Column {
                name: "text".into(),
                values: vec![
                    ScalarValue::Str("The cats and the cat".into()),
                    ScalarValue::Str(String::new()),
                ],
            }],
        };
        s.compute_functions(&mut rows).expect("computed");
        rows.validate(&s, 10).expect("valid batch");
        let cat = quiver_text::term_id("cat");
        assert_eq!(
            rows.columns[1].values[0],
            ScalarValue::Sparse(vec![(cat, 2.0)])
        );
        assert_eq!(rows.columns[1].values[1], ScalarValue::Sparse(Vec::new()));
        let e = s.compute_functions(&mut rows).expect_err("output sent");
        assert!(e.to_string().contains("do not send it"), "{e}");
        assert_eq!(
            s.bm25_query("sparse", "CATS").expect("query"),
            vec![(cat, 1.0)]
        );
        assert!(s.bm25_query("text", "x").is_err());
    }

    #[test]
    fn bad_functions_and_analyzers_name_the_field() {
        let mut s = schema();
        s.fields[2].enable_analyzer = false;
        let e = s.validate().expect_err("input without analyzer");
        assert!(e.to_string().contains("enable_analyzer"), "{e}");
        let mut s = schema();
        s.fields[2].analyzer_params = Some(r#"{"type": "klingon"}"#.into());
        let e = s.validate().expect_err("no such analyzer");
        assert!(e.to_string().contains("text.analyzer_params"), "{e}");
        let mut s = schema();
        s.functions[0].output = "text".into();
        let e = s.validate().expect_err("output not sparse");
        assert!(e.to_string().contains("SPARSE_FLOAT_VECTOR"), "{e}");
    }
}
