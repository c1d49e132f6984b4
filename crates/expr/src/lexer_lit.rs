//! Literal tokens: numbers and quoted strings.

use crate::error::ExprError;
use crate::lexer::Tok;

/// A number at the start of `s`: decimal / hex / octal / binary integer or
/// a float with optional fraction and exponent. Returns the token and length.
pub(crate) fn number(s: &[char], col: usize) -> Result<(Tok, usize), ExprError> {
    let radix = match (s.first(), s.get(1)) {
        (Some('0'), Some('x' | 'X')) => 16,
        (Some('0'), Some('o' | 'O')) => 8,
        (Some('0'), Some('b' | 'B')) => 2,
        _ => 10,
    };
    if radix != 10 {
        let len = s[2..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let digits: String = s[2..2 + len].iter().collect();
        let v = u64::from_str_radix(&digits, radix).map_err(|_| {
            ExprError::syntax(col, format!("invalid integer literal 0{}{digits}", s[1]))
        })?;
        return Ok((Tok::Int(v), 2 + len));
    }
    let digits = |from: usize| s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut len = digits(0);
    let mut is_float = false;
    if s.get(len) == Some(&'.') {
        is_float = true;
        len += 1 + digits(len + 1);
    }
    if matches!(s.get(len), Some('e' | 'E')) {
        let sign = usize::from(matches!(s.get(len + 1), Some('+' | '-')));
        let exp = digits(len + 1 + sign);
        if exp == 0 {
            return Err(ExprError::syntax(col, "expected digits in the exponent"));
        }
        is_float = true;
        len += 1 + sign + exp;
    }
    if s.get(len)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    {
        return Err(ExprError::syntax(
            col + len,
            format!("unexpected {:?} after a number", s[len]),
        ));
    }
    let text: String = s[..len].iter().collect();
    if is_float {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((Tok::Float(v), len)),
            _ => Err(ExprError::syntax(
                col,
                format!("invalid or out-of-range float literal {text}"),
            )),
        }
    } else {
        let v = text.parse::<u64>().map_err(|_| {
            ExprError::syntax(col, format!("integer literal {text} is out of range"))
        })?;
        Ok((Tok::Int(v), len))
    }
}

/// A quoted string at the start of `s` (which begins with its quote).
/// Known escapes are decoded; an unknown escape such as `\%` is kept as
/// written, so `like` patterns can escape their wildcards.
pub(crate) fn string(s: &[char], col: usize) -> Result<(String, usize), ExprError> {
    let quote = s[0];
    let mut out = String::new();
    let mut i = 1;
    loop {
        let Some(&c) = s.get(i) else {
            return Err(ExprError::syntax(col, "unterminated string literal"));
        };
        i += 1;
        if c == quote {
            return Ok((out, i));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return Err(ExprError::syntax(col, "unterminated string literal"));
        };
        i += 1;
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            '\\' | '"' | '\'' => out.push(e),
            'u' => {
                let (c, len) = unicode_escape(&s[i..], col + i - 2)?;
                out.push(c);
                i += len;
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
}

/// `XXXX` or `{X...}` after `\u`.
fn unicode_escape(s: &[char], col: usize) -> Result<(char, usize), ExprError> {
    let (hex, len): (String, usize) = if s.first() == Some(&'{') {
        let n = s[1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if s.get(1 + n) != Some(&'}') || n == 0 || n > 6 {
            return Err(ExprError::syntax(col, "invalid \\u{...} escape"));
        }
        (s[1..1 + n].iter().collect(), n + 2)
    } else {
        let n = s
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if n != 4 {
            return Err(ExprError::syntax(
                col,
                "invalid \\u escape (expected 4 hex digits)",
            ));
        }
        (s[..4].iter().collect(), 4)
    };
    u32::from_str_radix(&hex, 16)
        .ok()
        .and_then(char::from_u32)
        .map(|c| (c, len))
        .ok_or_else(|| ExprError::syntax(col, format!("\\u escape {hex} is not a character")))
}
