//! A compiled filter as bytes, so the front door can compile once and a
//! remote querynode can evaluate it: a format version byte, then the
//! postcard encoding of the IR. Internal: versioned with the binary.
//!
//! Decoding takes untrusted bytes, so it bounds the nesting depth of the tree
//! (a deep tree would overflow the stack while decoding or evaluating) and
//! rebuilds what can be derived (`in` indexes, JSON slots, primary keys)
//! instead of trusting it.

use std::cell::Cell;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ExprError;
use crate::ir::{Const, Pred, Val, ValueSet};
use crate::parser::MAX_DEPTH;

/// Bumped whenever the IR changes shape.
const FORMAT_VERSION: u8 = 1;

/// Deepest `Pred`/`Val` nesting accepted when decoding. A parsed expression
/// is at most [`MAX_DEPTH`] deep; compiling may add a `Val::Pred` wrapper or
/// a range's `And` per level.
pub(crate) const MAX_DECODE_DEPTH: usize = 2 * MAX_DEPTH + 8;

thread_local! {
    /// Nesting of the value being decoded on this thread.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// Whether the current decode went over the limit (postcard drops the
    /// message of custom errors, so this tells the caller why it failed).
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Counts one level of nesting while it lives.
struct Level;

impl Level {
    fn enter<E: serde::de::Error>() -> Result<Self, E> {
        let d = DEPTH.with(|c| {
            let d = c.get() + 1;
            c.set(d);
            d
        });
        let level = Level;
        if d > MAX_DECODE_DEPTH {
            TOO_DEEP.with(|c| c.set(true));
            return Err(E::custom("too deep"));
        }
        Ok(level)
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        DEPTH.with(|c| c.set(c.get().saturating_sub(1)));
    }
}

impl Serialize for Pred {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Pred::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Pred {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _level = Level::enter()?;
        Pred::deserialize(d)
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Val::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let _level = Level::enter()?;
        Val::deserialize(d)
    }
}

impl Serialize for ValueSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ValueSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Const>::deserialize(d).map(ValueSet::new)
    }
}

/// None only if postcard refuses the tree (it has no reason to).
pub(crate) fn encode(root: &Pred) -> Option<Vec<u8>> {
    postcard::to_extend(root, vec![FORMAT_VERSION]).ok()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Pred, ExprError> {
    let bad = |m: String| ExprError::Decode(m);
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| bad("empty input".into()))?;
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads {FORMAT_VERSION} \
             (every node of a cluster must run the same Quiver version)"
        )));
    }
    DEPTH.with(|c| c.set(0));
    TOO_DEEP.with(|c| c.set(false));
    let (root, rest) = postcard::take_from_bytes::<Pred>(body).map_err(|e| {
        if TOO_DEEP.with(Cell::get) {
            bad(format!("nested deeper than {MAX_DECODE_DEPTH} levels"))
        } else {
            bad(format!("invalid IR: {e}"))
        }
    })?;
    if !rest.is_empty() {
        return Err(bad(format!("{} trailing bytes", rest.len())));
    }
    Ok(root)
}

/// The number of JSON parse slots a decoded tree needs: one more than its
/// largest slot. The compiler numbers slots densely (one per JSON field), so
/// a slot beyond the number of JSON nodes means the input was not made by it.
pub(crate) fn json_slots(root: &Pred) -> Result<usize, ExprError> {
    let mut s = Slots::default();
    s.pred(root);
    if s.needed > s.nodes {
        return Err(ExprError::Decode(format!(
            "JSON slot {} out of range ({} JSON paths)",
            s.needed - 1,
            s.nodes
        )));
    }
    Ok(s.needed)
}

#[derive(Default)]
struct Slots {
    needed: usize,
    nodes: usize,
}

impl Slots {
    fn pred(&mut self, p: &Pred) {
        match p {
            Pred::Const(_) | Pred::Text(_) => {}
            Pred::And(v) | Pred::Or(v) => v.iter().for_each(|p| self.pred(p)),
            Pred::Not(p) => self.pred(p),
            Pred::Cmp { lhs, rhs, .. } => {
                self.val(lhs);
                self.val(rhs);
            }
            Pred::In { val, .. }
            | Pred::Like { val, .. }
            | Pred::IsNull { val, .. }
            | Pred::Contains { val, .. }
            | Pred::Truth(val) => self.val(val),
        }
    }

    fn val(&mut self, v: &Val) {
        match v {
            Val::Const(_) | Val::Pk | Val::Field(_) => {}
            Val::Json { slot, .. } => {
                self.nodes += 1;
                self.needed = self.needed.max(slot.saturating_add(1));
            }
            Val::Neg(v) | Val::Len(v) => self.val(v),
            Val::Arith { lhs, rhs, .. } => {
                self.val(lhs);
                self.val(rhs);
            }
            Val::Pred(p) => self.pred(p),
        }
    }
}
