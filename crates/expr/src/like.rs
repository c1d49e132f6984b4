//! `like` patterns: `%` matches any run of characters, `_` exactly one,
//! `\` makes the next character literal.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LikeTok {
    Char(char),
    One,
    Many,
}

/// A compiled pattern; the common shapes avoid the general matcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LikePattern {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    General(Vec<LikeTok>),
}

impl LikePattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let mut toks: Vec<LikeTok> = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let t = match c {
                '%' => LikeTok::Many,
                '_' => LikeTok::One,
                '\\' => LikeTok::Char(chars.next().unwrap_or('\\')),
                c => LikeTok::Char(c),
            };
            if !(t == LikeTok::Many && toks.last() == Some(&LikeTok::Many)) {
                toks.push(t);
            }
        }
        let lead = toks.first() == Some(&LikeTok::Many);
        let trail = toks.len() > usize::from(lead) && toks.last() == Some(&LikeTok::Many);
        let inner = &toks[usize::from(lead)..toks.len() - usize::from(trail)];
        let literal: Option<String> = inner
            .iter()
            .map(|t| match t {
                LikeTok::Char(c) => Some(*c),
                _ => None,
            })
            .collect();
        match (literal, lead, trail) {
            (Some(s), false, false) => LikePattern::Exact(s),
            (Some(s), false, true) => LikePattern::Prefix(s),
            (Some(s), true, false) => LikePattern::Suffix(s),
            (Some(s), true, true) => LikePattern::Contains(s),
            (None, _, _) => LikePattern::General(toks),
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            LikePattern::Exact(p) => s == p,
            LikePattern::Prefix(p) => s.starts_with(p.as_str()),
            LikePattern::Suffix(p) => s.ends_with(p.as_str()),
            LikePattern::Contains(p) => s.contains(p.as_str()),
            LikePattern::General(p) => glob(p, &s.chars().collect::<Vec<_>>()),
        }
    }
}

/// Wildcard matching with single-star backtracking: O(len(s) * len(p)).
fn glob(p: &[LikeTok], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(LikeTok::One) => {
                pi += 1;
                si += 1;
            }
            Some(LikeTok::Char(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            Some(LikeTok::Many) => {
                star = Some((pi, si));
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == LikeTok::Many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        LikePattern::new(p).matches(s)
    }

    #[test]
    fn shapes() {
        assert_eq!(LikePattern::new("ab%"), LikePattern::Prefix("ab".into()));
        assert_eq!(LikePattern::new("%ab"), LikePattern::Suffix("ab".into()));
        assert_eq!(LikePattern::new("%a%%"), LikePattern::Contains("a".into()));
        assert_eq!(LikePattern::new("ab"), LikePattern::Exact("ab".into()));
        assert_eq!(LikePattern::new("%"), LikePattern::Suffix(String::new()));
        assert_eq!(LikePattern::new(r"a\%"), LikePattern::Exact("a%".into()));
        assert!(matches!(LikePattern::new("a_c"), LikePattern::General(_)));
    }

    #[test]
    fn matching() {
        assert!(m("ab%", "abc") && !m("ab%", "xabc"));
        assert!(m("%bc", "abc") && !m("%bc", "abcd"));
        assert!(m("%b%", "abc") && !m("%x%", "abc"));
        assert!(m("a_c", "abc") && !m("a_c", "ac") && !m("a_c", "abbc"));
        assert!(m("a%c%e", "abcde") && m("a%c%e", "ace") && !m("a%c%e", "acd"));
        assert!(m("_é_", "aéb"));
        assert!(m("%", "") && m("", "") && !m("", "a"));
        assert!(m(r"100\%", "100%") && !m(r"100\%", "1000"));
        assert!(m(r"a\_b", "a_b") && !m(r"a\_b", "axb"));
        assert!(m("%a_", "xxab") && !m("%a_", "xxa"));
        assert!(m("a\\", "a\\"));
    }
}
