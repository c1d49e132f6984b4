//! Admission control at the front door: how much write data and how many
//! search results may be in flight at once. A request over the limit is
//! refused at once with [`Error::Overloaded`] (Milvus's rate limit, which
//! pymilvus retries with backoff), so a burst of writes faster than the
//! datanodes take them, or many large searches, cannot grow the process
//! without bound. A single request larger than the whole budget could never
//! pass: it is refused as invalid, naming the limit. With a memory limit,
//! writes are refused the same way while the process's resident memory is
//! at or over it (searches go on: they are what the memory is for).

use std::sync::Arc;

use quiver_common::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budgets (see [`crate::Limits`]).
#[derive(Debug)]
pub struct Admission {
    write_bytes: Arc<Semaphore>,
    write_budget: usize,
    search_hits: Arc<Semaphore>,
    search_budget: usize,
    /// Resident memory at which writes are refused (0: no limit).
    max_memory_bytes: u64,
    memory: quiver_common::ResidentMemory,
}

/// A request's place in a budget, given back when it is dropped.
#[derive(Debug)]
pub struct Admitted {
    _place: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(
        max_inflight_write_bytes: usize,
        max_inflight_search_hits: usize,
        max_memory_bytes: u64,
    ) -> Self {
        let write_budget = max_inflight_write_bytes.clamp(1, Semaphore::MAX_PERMITS);
        let search_budget = max_inflight_search_hits.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            write_bytes: Arc::new(Semaphore::new(write_budget)),
            write_budget,
            search_hits: Arc::new(Semaphore::new(search_budget)),
            search_budget,
            max_memory_bytes,
            memory: quiver_common::ResidentMemory::default(),
        }
    }

    /// Admits a write of `bytes` (its vectors and keys).
    pub fn write(&self, bytes: usize) -> Result<Admitted> {
        self.memory
            .admit_write(self.max_memory_bytes, "limits.max_memory_bytes")?;
        admit(
            &self.write_bytes,
            self.write_budget,
            bytes,
            "data",
            "limits.max_inflight_write_bytes",
            "bytes of writes",
        )
    }

    /// Admits a search that may hold `hits` results (queries x (limit + offset)).
    pub fn search(&self, hits: usize) -> Result<Admitted> {
        admit(
            &self.search_hits,
            self.search_budget,
            hits,
            "limit",
            "limits.max_inflight_search_hits",
            "search results",
        )
    }
}

fn admit(
    budget: &Arc<Semaphore>,
    total: usize,
    amount: usize,
    field: &str,
    setting: &str,
    what: &str,
) -> Result<Admitted> {
    let amount = amount.max(1);
    if amount > total {
        return Err(Error::invalid(
            field,
            format!(
                "the request needs {amount} {what}, more than the server's {setting} ({total}): split it"
            ),
        ));
    }
    let n = u32::try_from(amount).map_err(|_| {
        Error::invalid(
            field,
            format!("the request needs {amount} {what}, too many for one request: split it"),
        )
    })?;
    budget
        .clone()
        .try_acquire_many_owned(n)
        .map(|place| Admitted { _place: place })
        .map_err(|_| {
            Error::Overloaded(format!(
                "{} of the server's {total} {what} in flight ({setting}); retry with backoff",
                total - budget.available_permits()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_common::ErrorKind;

    #[test]
    fn a_budget_in_use_refuses_with_overloaded_and_frees_on_drop() {
        let a = Admission::new(1000, 100, 0);
        let first = a.write(600).expect("fits");
        let e = a
            .write(600)
            .expect_err("over the budget while the first is in flight");
        assert_eq!(e.kind(), ErrorKind::Overloaded);
        assert!(e.to_string().contains("max_inflight_write_bytes"), "{e}");
        let small = a.write(400).expect("what is left still fits");
        drop(first);
        let again = a.write(600).expect("freed on drop");
        drop((small, again));

        let s = a.search(100).expect("fits");
        assert_eq!(a.search(1).expect_err("full").kind(), ErrorKind::Overloaded);
        drop(s);
        a.search(1).expect("freed");
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_is_invalid() {
        let a = Admission::new(1000, 100, 0);
        let e = a.write(1001).expect_err("never fits");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.to_string().contains("split it"), "{e}");
        assert_eq!(
            a.search(101).expect_err("never fits").kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn writes_are_refused_while_memory_is_at_the_limit_and_searches_go_on() {
        let rss = quiver_common::ResidentMemory::default().bytes();
        assert!(rss > 0, "VmRSS on Linux");
        let tight = Admission::new(1000, 100, 1);
        let e = tight
            .write(10)
            .expect_err("a process always holds more than 1 byte");
        assert_eq!(e.kind(), ErrorKind::Overloaded);
        assert!(e.to_string().contains("max_memory_bytes"), "{e}");
        tight
            .search(10)
            .expect("searches are not refused for memory");
        let roomy = Admission::new(1000, 100, rss * 1000);
        roomy.write(10).expect("far below the limit");
    }
}
