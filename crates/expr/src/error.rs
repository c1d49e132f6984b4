//! The one error type of the crate.

/// Why an expression could not be parsed or compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// The text is not a valid expression; `column` is 1-based, in characters.
    #[error("at column {column}: {message}")]
    Syntax { column: usize, message: String },
    /// A name that is neither a schema field nor, without a dynamic field,
    /// a dynamic key.
    #[error("unknown field {0:?}: not in the schema and the collection has no dynamic field")]
    UnknownField(String),
    /// The expression uses `field` in a way its type does not allow.
    #[error("field {field:?}: {message}")]
    Field { field: String, message: String },
    /// A `{name}` template has no value or a value of the wrong shape.
    #[error("template {{{name}}}: {message}")]
    Template { name: String, message: String },
    /// A type error that involves no field (e.g. `1 == "a"`).
    #[error("{0}")]
    Type(String),
    /// Bytes that are not an encoded filter of this build
    /// ([`crate::CompiledFilter::decode`]).
    #[error("cannot decode filter: {0}")]
    Decode(String),
}

impl ExprError {
    pub(crate) fn syntax(column: usize, message: impl Into<String>) -> Self {
        ExprError::Syntax {
            column,
            message: message.into(),
        }
    }
}

impl From<ExprError> for quiver_common::Error {
    fn from(e: ExprError) -> Self {
        quiver_common::Error::invalid("expr", e.to_string())
    }
}
