//! Milvus boolean filter expressions: [`parse`] text into an [`Expr`],
//! [`compile`] it against a collection schema into a [`CompiledFilter`],
//! which is a [`quiver_api::RowPredicate`].
//!
//! Supported: `== != < <= > >=`, chained ranges (`1 < age <= 10`), `in` /
//! `not in` lists, `like` (`%`, `_`, `\` escapes), `and or not && || !`
//! (keywords case-insensitive), `is [not] null`, `+ - * / %`, JSON paths
//! (`meta["k"][0]`), dynamic keys (bare names become `$meta["name"]` when the
//! schema has a dynamic field) and `{name}` templates.
//!
//! Logic is three-valued: a comparison involving NULL (a null field, a
//! missing JSON key, a JSON value of another type) is unknown, `not unknown`
//! is unknown, and a row passes only when the filter is true.

mod ast;
mod column_plan;
mod compile;
mod compile_terms;
mod display;
mod error;
mod eval;
mod eval_ops;
mod functions;
mod ir;
mod lexer;
mod lexer_lit;
mod like;
mod parser;
mod parser_terms;
mod pk;
mod template;
mod terms;
mod text;
mod wire;

use std::collections::HashMap;

use quiver_api::{RowAccess, RowPredicate};
use quiver_common::{CollectionSchema, PrimaryKey};

pub use ast::{ArithOp, CmpOp, Expr, PathElem};
pub use error::ExprError;
pub use parser::MAX_DEPTH;
pub use template::TemplateValue;

/// Parses a filter expression. Errors give the 1-based column.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    parser::parse(text)
}

/// Resolves fields against `schema`, fills `{name}` templates from
/// `templates`, and type-checks; errors name the offending field.
pub fn compile(
    expr: &Expr,
    schema: &CollectionSchema,
    templates: &HashMap<String, TemplateValue>,
) -> Result<CompiledFilter, ExprError> {
    let mut c = compile::Compiler {
        schema,
        templates,
        json_slots: Vec::new(),
    };
    let root = c.pred(expr)?;
    Ok(CompiledFilter {
        pks: pk::primary_keys(&root),
        terms: terms::column_terms(&root),
        plan: column_plan::column_plan(&root),
        json_slots: c.json_slots.len(),
        root,
    })
}

/// A type-checked filter, ready to evaluate rows (`Send + Sync`, immutable).
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    root: ir::Pred,
    json_slots: usize,
    pks: Option<Vec<PrimaryKey>>,
    /// The equality terms of the top-level conjunction (`terms.rs`).
    terms: Vec<quiver_api::ColumnTerms>,
    /// Its conditions on single columns (`column_plan.rs`).
    plan: Option<quiver_api::ColumnPlan>,
}

impl CompiledFilter {
    /// For filters of the shape `pk in [..]`, `pk == v` (or an `or` of
    /// those): exactly the keys they select, without duplicates. None for
    /// any other filter.
    pub fn primary_keys(&self) -> Option<Vec<PrimaryKey>> {
        self.pks.clone()
    }

    /// The same filter reading the column `to` wherever it read the field
    /// `from` (for a front door that stores a field under another column
    /// name, e.g. the dynamic field `$meta`). Unlike a wrapper around the
    /// row, the renaming is part of the filter, so it survives
    /// [`RowPredicate::encode`].
    pub fn rename_field(mut self, from: &str, to: &str) -> Self {
        self.root.rename_field(from, to);
        self.terms = terms::column_terms(&self.root);
        self.plan = column_plan::column_plan(&self.root);
        self
    }

    /// Reads a filter encoded by [`RowPredicate::encode`] (a format version,
    /// then the compiled tree; only a node of the same Quiver version reads
    /// it). Fails with [`ExprError::Decode`] on bytes
    /// of another format version, malformed or trailing bytes, and trees
    /// nested deeper than any expression the parser accepts.
    pub fn decode(bytes: &[u8]) -> Result<Self, ExprError> {
        let root = wire::decode(bytes)?;
        Ok(CompiledFilter {
            pks: pk::primary_keys(&root),
            terms: terms::column_terms(&root),
            plan: column_plan::column_plan(&root),
            json_slots: wire::json_slots(&root)?,
            root,
        })
    }
}

impl RowPredicate for CompiledFilter {
    fn eval(&self, row: &dyn RowAccess) -> bool {
        let cx = eval::Ctx::new(row, self.json_slots);
        eval::eval(&self.root, &cx) == Some(true)
    }

    /// The filter as bytes for a remote querynode ([`CompiledFilter::decode`]).
    fn encode(&self) -> Option<Vec<u8>> {
        wire::encode(&self.root)
    }

    fn column_terms(&self) -> &[quiver_api::ColumnTerms] {
        &self.terms
    }

    fn column_plan(&self) -> Option<&quiver_api::ColumnPlan> {
        self.plan.as_ref()
    }
}
