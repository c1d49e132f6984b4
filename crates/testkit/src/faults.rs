//! Which links between named nodes are cut.

use std::collections::HashSet;

use parking_lot::Mutex;
use tokio::sync::watch;

/// Cut links, by (from, to) node id; every change bumps a generation that
/// forwarders watch.
pub struct Faults {
    state: Mutex<State>,
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Directed (from, to) pairs whose traffic is dropped.
    cut: HashSet<(u64, u64)>,
    /// Nodes cut off from every other node, both ways.
    isolated: HashSet<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            generation: watch::Sender::new(0),
        }
    }
}

impl Faults {
    /// Whether traffic from `from` to `to` is dropped now.
    pub fn blocks(&self, from: u64, to: u64) -> bool {
        let s = self.state.lock();
        s.isolated.contains(&from) || s.isolated.contains(&to) || s.cut.contains(&(from, to))
    }

    /// Drops traffic between `a` and `b`, both ways.
    pub fn cut(&self, a: u64, b: u64) {
        self.change(|s| {
            s.cut.insert((a, b));
            s.cut.insert((b, a));
        });
    }

    /// Drops traffic from `from` to `to` only (replies on connections
    /// `to` opened still flow).
    pub fn cut_one_way(&self, from: u64, to: u64) {
        self.change(|s| {
            s.cut.insert((from, to));
        });
    }

    /// Cuts `node` off from every other node.
    pub fn isolate(&self, node: u64) {
        self.change(|s| {
            s.isolated.insert(node);
        });
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.change(|s| {
            s.cut.clear();
            s.isolated.clear();
        });
    }

    /// A receiver that changes whenever the faults do.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock());
        self.generation.send_modify(|g| *g += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_isolation_and_heal() {
        let f = Faults::default();
        let rx = f.subscribe();
        assert!(!f.blocks(1, 2));
        f.cut(1, 2);
        assert!(f.blocks(1, 2) && f.blocks(2, 1) && !f.blocks(1, 3));
        f.cut_one_way(3, 4);
        assert!(f.blocks(3, 4) && !f.blocks(4, 3));
        f.isolate(5);
        assert!(f.blocks(5, 1) && f.blocks(1, 5));
        assert!(rx.has_changed().unwrap_or(false));
        f.heal();
        assert!(!f.blocks(1, 2) && !f.blocks(5, 1) && !f.blocks(3, 4));
    }
}
