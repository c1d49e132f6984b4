//! The parts of the parser below the binary operators: prefix operators,
//! literals, fields with JSON paths, templates, arrays, and the right-hand
//! sides of comparisons, `in` and `like`.

use crate::ast::{CmpOp, Expr, PathElem};
use crate::error::ExprError;
use crate::lexer::Tok;
use crate::parser::{NEG, NOT, Node, Parser, REL, cmp};

fn rel_op(t: &Tok) -> Option<CmpOp> {
    Some(match t {
        Tok::Lt => CmpOp::Lt,
        Tok::Le => CmpOp::Le,
        Tok::Gt => CmpOp::Gt,
        Tok::Ge => CmpOp::Ge,
        _ => return None,
    })
}

fn atom(e: Expr) -> Node {
    Node { e, d: 1 }
}

impl Parser {
    /// A literal, field, template, parenthesized expression, array, or a
    /// prefix operator applied to its operand.
    pub(crate) fn prefix(&mut self) -> Result<Node, ExprError> {
        let (tok, col) = self.next();
        Ok(match tok {
            Tok::Int(u) => atom(Expr::Int(i64::try_from(u).map_err(|_| {
                ExprError::syntax(col, format!("integer literal {u} is out of range"))
            })?)),
            Tok::Float(x) => atom(Expr::Float(x)),
            Tok::Str(s) => atom(Expr::Str(s)),
            Tok::True => atom(Expr::Bool(true)),
            Tok::False => atom(Expr::Bool(false)),
            Tok::Ident(name) => self.field(name, col)?,
            Tok::LBrace => {
                let name = match self.next() {
                    (Tok::Ident(name), _) => name,
                    (t, c) => {
                        return Err(ExprError::syntax(
                            c,
                            format!("expected a template name after '{{', found {t}"),
                        ));
                    }
                };
                self.expect(&Tok::RBrace, "'}' after the template name")?;
                atom(Expr::Template(name))
            }
            Tok::LParen => {
                let n = self.expr(0)?;
                self.expect(&Tok::RParen, &format!("')' to close '(' at column {col}"))?;
                n
            }
            Tok::LBracket => self.array(col)?,
            Tok::Minus => match self.peek().clone() {
                Tok::Int(u) => {
                    self.next();
                    let v = i64::try_from(-i128::from(u)).map_err(|_| {
                        ExprError::syntax(col, format!("integer literal -{u} is out of range"))
                    })?;
                    atom(Expr::Int(v))
                }
                Tok::Float(x) => {
                    self.next();
                    atom(Expr::Float(-x))
                }
                _ => {
                    let n = self.expr(NEG)?;
                    self.node(Expr::Neg(Box::new(n.e)), &[n.d], col)?
                }
            },
            Tok::Plus => self.expr(NEG)?,
            Tok::Not => {
                let n = self.expr(NOT)?;
                self.node(Expr::Not(Box::new(n.e)), &[n.d], col)?
            }
            t => {
                return Err(ExprError::syntax(
                    col,
                    format!("expected an expression, found {t}"),
                ));
            }
        })
    }

    /// A field name and its JSON path, if any, or a function call.
    fn field(&mut self, name: String, col: usize) -> Result<Node, ExprError> {
        if *self.peek() == Tok::LParen {
            self.next();
            let closing = format!("',' or ')' to close {name}( at column {col}");
            let (args, depths) = self.list(&Tok::RParen, &closing)?;
            return self.node(Expr::Call { name, args }, &depths, col);
        }
        let mut path = Vec::new();
        while *self.peek() == Tok::LBracket {
            self.next();
            match self.next() {
                (Tok::Str(k), _) => path.push(PathElem::Key(k)),
                (Tok::Int(i), _) => path.push(PathElem::Index(i)),
                (t, c) => {
                    return Err(ExprError::syntax(
                        c,
                        format!("expected a string key or an index in a JSON path, found {t}"),
                    ));
                }
            }
            self.expect(&Tok::RBracket, "']' after a JSON path element")?;
        }
        Ok(atom(Expr::Field { name, path }))
    }

    /// `[a, b, ...]` after its '[' (a trailing comma is allowed).
    fn array(&mut self, col: usize) -> Result<Node, ExprError> {
        let closing = format!("',' or ']' to close '[' at column {col}");
        let (items, depths) = self.list(&Tok::RBracket, &closing)?;
        self.node(Expr::Array(items), &depths, col)
    }

    /// Comma-separated expressions up to and including `close` (a trailing
    /// comma is allowed), with their depths; `closing` says what was
    /// expected when `close` is missing.
    fn list(&mut self, close: &Tok, closing: &str) -> Result<(Vec<Expr>, Vec<usize>), ExprError> {
        let mut items = Vec::new();
        let mut depths = Vec::new();
        while self.peek() != close {
            let n = self.expr(0)?;
            items.push(n.e);
            depths.push(n.d);
            if *self.peek() == Tok::Comma {
                self.next();
            } else {
                break;
            }
        }
        self.expect(close, closing)?;
        Ok((items, depths))
    }

    /// A comparison after its left side; `a < b < c` (same direction) is a range.
    pub(crate) fn relational(&mut self, lhs: Node) -> Result<Node, ExprError> {
        let (t, col) = self.next();
        let op = rel_op(&t).unwrap_or(CmpOp::Lt);
        let mid = self.expr(REL + 1)?;
        let Some(op2) = rel_op(self.peek()) else {
            let e = cmp(op, lhs.e, mid.e);
            return self.node(e, &[lhs.d, mid.d], col);
        };
        if op.is_ascending() != op2.is_ascending() {
            return Err(
                self.err("a chained comparison needs both operators '<'/'<=' or both '>'/'>='")
            );
        }
        self.next();
        let upper = self.expr(REL + 1)?;
        if rel_op(self.peek()).is_some() {
            return Err(self.err("a comparison chain has at most two operators (use 'and')"));
        }
        let e = Expr::Range {
            lower: Box::new(lhs.e),
            lower_op: op,
            mid: Box::new(mid.e),
            upper_op: op2,
            upper: Box::new(upper.e),
        };
        self.node(e, &[lhs.d, mid.d, upper.d], col)
    }

    /// The list after `in` / `not in`: an array or a template.
    pub(crate) fn in_list(
        &mut self,
        lhs: Node,
        negated: bool,
        col: usize,
    ) -> Result<Node, ExprError> {
        if !matches!(self.peek(), Tok::LBracket | Tok::LBrace) {
            return Err(self.err(format!(
                "expected a list '[...]' or a '{{template}}' after 'in', found {}",
                self.peek()
            )));
        }
        let list = self.prefix()?;
        let e = Expr::In {
            expr: Box::new(lhs.e),
            list: Box::new(list.e),
            negated,
        };
        self.node(e, &[lhs.d, list.d], col)
    }

    /// The pattern after `like`: a string or a template.
    pub(crate) fn like(&mut self, lhs: Node, col: usize) -> Result<Node, ExprError> {
        if !matches!(self.peek(), Tok::Str(_) | Tok::LBrace) {
            return Err(self.err(format!(
                "expected a string pattern after 'like', found {}",
                self.peek()
            )));
        }
        let pattern = self.prefix()?;
        let e = Expr::Like {
            expr: Box::new(lhs.e),
            pattern: Box::new(pattern.e),
        };
        self.node(e, &[lhs.d, pattern.d], col)
    }
}
