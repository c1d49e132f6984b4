//! Text to tokens. Columns are 1-based and count characters.

use std::fmt;

use crate::error::ExprError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    /// Unsigned: the parser folds a leading `-` (so `i64::MIN` is writable).
    Int(u64),
    Float(f64),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    In,
    Like,
    Is,
    Null,
    True,
    False,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Ident(s) => return write!(f, "identifier {s:?}"),
            Tok::Int(i) => return write!(f, "number {i}"),
            Tok::Float(x) => return write!(f, "number {x:?}"),
            Tok::Str(s) => return write!(f, "string {s:?}"),
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::Comma => "','",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Star => "'*'",
            Tok::Slash => "'/'",
            Tok::Percent => "'%'",
            Tok::Eq => "'=='",
            Tok::Ne => "'!='",
            Tok::Lt => "'<'",
            Tok::Le => "'<='",
            Tok::Gt => "'>'",
            Tok::Ge => "'>='",
            Tok::And => "'and'",
            Tok::Or => "'or'",
            Tok::Not => "'not'",
            Tok::In => "'in'",
            Tok::Like => "'like'",
            Tok::Is => "'is'",
            Tok::Null => "'null'",
            Tok::True => "'true'",
            Tok::False => "'false'",
            Tok::Eof => "the end of the expression",
        };
        f.write_str(s)
    }
}

/// Keywords are case-insensitive (`and`, `AND`, `And`).
fn keyword(word: &str) -> Option<Tok> {
    Some(match word.to_ascii_lowercase().as_str() {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "like" => Tok::Like,
        "is" => Tok::Is,
        "null" => Tok::Null,
        "true" => Tok::True,
        "false" => Tok::False,
        _ => return None,
    })
}

/// Splits `text` into tokens with their columns; the last token is `Eof`.
pub(crate) fn lex(text: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = match (c, next) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('{', _) => (Tok::LBrace, 1),
            ('}', _) => (Tok::RBrace, 1),
            (',', _) => (Tok::Comma, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Star, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            ('=', Some('=')) => (Tok::Eq, 2),
            ('!', Some('=')) => (Tok::Ne, 2),
            ('<', Some('=')) => (Tok::Le, 2),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', _) => (Tok::Gt, 1),
            ('!', _) => (Tok::Not, 1),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('=', _) => return Err(ExprError::syntax(col, "unexpected '=' (use '==')")),
            ('"' | '\'', _) => {
                let (s, len) = crate::lexer_lit::string(&chars[i..], col)?;
                (Tok::Str(s), len)
            }
            (c, _) if c.is_ascii_digit() => crate::lexer_lit::number(&chars[i..], col)?,
            ('.', Some(d)) if d.is_ascii_digit() => crate::lexer_lit::number(&chars[i..], col)?,
            (c, _) if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count()
                    + 1;
                let word: String = chars[i..i + len].iter().collect();
                if c == '$' && word != quiver_common::DYNAMIC_FIELD {
                    return Err(ExprError::syntax(
                        col,
                        format!("unexpected {word:?} (only $meta may start with '$')"),
                    ));
                }
                (keyword(&word).unwrap_or(Tok::Ident(word)), len)
            }
            (c, _) => {
                return Err(ExprError::syntax(
                    col,
                    format!("unexpected character {c:?}"),
                ));
            }
        };
        out.push((tok, col));
        i += len;
    }
    out.push((Tok::Eof, chars.len() + 1));
    Ok(out)
}
