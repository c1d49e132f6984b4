//! Tokens to [`Expr`]: a Pratt parser. Both the recursion and the depth of
//! the produced tree are bounded by [`MAX_DEPTH`], so no input can overflow
//! the stack here or later (compile, eval, drop).

use crate::ast::{ArithOp, CmpOp, Expr};
use crate::error::ExprError;
use crate::lexer::{Tok, lex};

/// Deepest tree an expression may produce (operators, arrays; `and` / `or`
/// chains count once).
pub const MAX_DEPTH: usize = 256;

/// Deepest recursion of the parser: parentheses cost a level without
/// deepening the tree, and a binary operator inside parentheses costs two.
const MAX_NESTING: usize = 2 * MAX_DEPTH;

// Binding powers, loosest first.
const OR: u8 = 10;
const AND: u8 = 20;
pub(crate) const NOT: u8 = 30;
const EQ: u8 = 40;
pub(crate) const REL: u8 = 50;
const POSTFIX: u8 = 60; // in, not in, like, is [not] null
const ADD: u8 = 70;
const MUL: u8 = 80;
pub(crate) const NEG: u8 = 90;

/// An expression with the depth of its tree.
pub(crate) struct Node {
    pub(crate) e: Expr,
    pub(crate) d: usize,
}

pub(crate) struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    nesting: usize,
}

/// Parses a whole expression.
pub(crate) fn parse(text: &str) -> Result<Expr, ExprError> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        nesting: 0,
    };
    if *p.peek() == Tok::Eof {
        return Err(ExprError::syntax(1, "the expression is empty"));
    }
    let n = p.expr(0)?;
    match p.peek() {
        Tok::Eof => Ok(n.e),
        t => Err(p.err(format!(
            "unexpected {t}: expected an operator or the end of the expression"
        ))),
    }
}

impl Parser {
    pub(crate) fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.0)
    }

    pub(crate) fn peek2(&self) -> &Tok {
        self.toks.get(self.pos + 1).map_or(&Tok::Eof, |t| &t.0)
    }

    /// Column of the next token.
    pub(crate) fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(1, |t| t.1)
    }

    pub(crate) fn next(&mut self) -> (Tok, usize) {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::Eof, self.toks.last().map_or(1, |t| t.1)));
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// An error at the next token.
    pub(crate) fn err(&self, message: impl Into<String>) -> ExprError {
        ExprError::syntax(self.col(), message)
    }

    pub(crate) fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.err(format!("expected {what}, found {}", self.peek())))
        }
    }

    /// A node over `children`, refused when the tree gets too deep.
    pub(crate) fn node(&self, e: Expr, children: &[usize], col: usize) -> Result<Node, ExprError> {
        let d = 1 + children.iter().copied().max().unwrap_or(0);
        if d > MAX_DEPTH {
            return Err(too_deep(col));
        }
        Ok(Node { e, d })
    }

    /// An expression whose operators all bind at least as tightly as `min_bp`.
    pub(crate) fn expr(&mut self, min_bp: u8) -> Result<Node, ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(too_deep(self.col()));
        }
        let mut lhs = self.prefix()?;
        loop {
            let col = self.col();
            lhs = match self.peek().clone() {
                Tok::Or if OR >= min_bp => self.nary(lhs, &Tok::Or, OR)?,
                Tok::And if AND >= min_bp => self.nary(lhs, &Tok::And, AND)?,
                Tok::Eq | Tok::Ne if EQ >= min_bp => {
                    let op = if self.next().0 == Tok::Eq {
                        CmpOp::Eq
                    } else {
                        CmpOp::Ne
                    };
                    let rhs = self.expr(EQ + 1)?;
                    let e = cmp(op, lhs.e, rhs.e);
                    self.node(e, &[lhs.d, rhs.d], col)?
                }
                Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge if REL >= min_bp => self.relational(lhs)?,
                Tok::In if POSTFIX >= min_bp => {
                    self.next();
                    self.in_list(lhs, false, col)?
                }
                Tok::Not if POSTFIX >= min_bp && *self.peek2() == Tok::In => {
                    self.next();
                    self.next();
                    self.in_list(lhs, true, col)?
                }
                Tok::Like if POSTFIX >= min_bp => {
                    self.next();
                    self.like(lhs, col)?
                }
                Tok::Is if POSTFIX >= min_bp => {
                    self.next();
                    let negated = *self.peek() == Tok::Not;
                    if negated {
                        self.next();
                    }
                    self.expect(&Tok::Null, "'null' after 'is'")?;
                    let e = Expr::IsNull {
                        expr: Box::new(lhs.e),
                        negated,
                    };
                    self.node(e, &[lhs.d], col)?
                }
                Tok::Plus | Tok::Minus if ADD >= min_bp => self.arith(lhs, ADD)?,
                Tok::Star | Tok::Slash | Tok::Percent if MUL >= min_bp => self.arith(lhs, MUL)?,
                _ => break,
            };
        }
        self.nesting -= 1;
        Ok(lhs)
    }

    /// `lhs op rhs` for an arithmetic operator binding at `bp`.
    fn arith(&mut self, lhs: Node, bp: u8) -> Result<Node, ExprError> {
        let (tok, col) = self.next();
        let op = match tok {
            Tok::Plus => ArithOp::Add,
            Tok::Minus => ArithOp::Sub,
            Tok::Star => ArithOp::Mul,
            Tok::Slash => ArithOp::Div,
            _ => ArithOp::Mod,
        };
        let rhs = self.expr(bp + 1)?;
        let e = Expr::Arith {
            op,
            lhs: Box::new(lhs.e),
            rhs: Box::new(rhs.e),
        };
        self.node(e, &[lhs.d, rhs.d], col)
    }

    /// `a and b and ...` (or `or`) as one n-ary node.
    fn nary(&mut self, first: Node, op: &Tok, bp: u8) -> Result<Node, ExprError> {
        let col = self.col();
        let mut depths = vec![first.d];
        let mut items = vec![first.e];
        while self.peek() == op {
            self.next();
            let n = self.expr(bp + 1)?;
            depths.push(n.d);
            items.push(n.e);
        }
        let e = if *op == Tok::And {
            Expr::And(items)
        } else {
            Expr::Or(items)
        };
        self.node(e, &depths, col)
    }
}

pub(crate) fn cmp(op: CmpOp, lhs: Expr, rhs: Expr) -> Expr {
    Expr::Cmp {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

pub(crate) fn too_deep(col: usize) -> ExprError {
    ExprError::syntax(
        col,
        format!("the expression is nested too deeply (at most {MAX_DEPTH} levels)"),
    )
}
