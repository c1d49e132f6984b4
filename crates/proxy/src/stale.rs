//! Bounded reads never wait long on a stalled shard. A Bounded read asks a
//! shard for everything older than the staleness bound; a replica whose
//! datanode died, or whose stream stalled (a stopped coord, a datanode being
//! replaced), waits for that timestamp until it arrives or its guarantee wait
//! runs out, seconds later. After `after` without an answer the read is
//! also asked for what the replica has applied (guarantee 0), and the first
//! answer wins: a Bounded read costs a stalled shard a hedge delay, never the
//! failover. Strong and Session reads keep their guarantee (a client must
//! see its own writes) and are never relaxed.

use std::future::Future;
use std::time::Duration;

use quiver_common::{Result, Timestamp};

/// Reads `ts`; if that has not answered within `after`, also reads what the
/// replica has (`0`). The first success wins; if one attempt fails, the
/// other's outcome is the answer.
pub(crate) async fn read_bounded<T, F, Fut>(after: Duration, ts: Timestamp, read: F) -> Result<T>
where
    F: Fn(Timestamp) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let strict = read(ts);
    tokio::pin!(strict);
    tokio::select! {
        r = &mut strict => return r,
        () = tokio::time::sleep(after) => {}
    }
    let relaxed = read(0);
    tokio::pin!(relaxed);
    tokio::select! {
        r = &mut strict => match r {
            Ok(v) => Ok(v),
            Err(_) => relaxed.await,
        },
        r = &mut relaxed => match r {
            Ok(v) => Ok(v),
            Err(_) => strict.await,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use quiver_common::Error;

    use super::*;

    const AFTER: Duration = Duration::from_millis(50);

    /// A shard whose replica has applied up to `applied`: reads at or below
    /// it answer at once with the timestamp they were served at; newer ones
    /// wait forever (a stalled stream), or fail when `fails` says so.
    fn shard<'a>(
        applied: Timestamp,
        asked: &'a Mutex<Vec<Timestamp>>,
        fails: bool,
    ) -> impl Fn(Timestamp) -> std::pin::Pin<Box<dyn Future<Output = Result<Timestamp>> + 'a>> + 'a
    {
        move |ts| {
            asked.lock().map(|mut a| a.push(ts)).ok();
            Box::pin(async move {
                if ts <= applied {
                    return Ok(ts);
                }
                if fails {
                    return Err(Error::DeadlineExceeded("stalled".into()));
                }
                std::future::pending().await
            })
        }
    }

    #[tokio::test]
    async fn a_shard_that_keeps_up_is_asked_once() -> Result<()> {
        let asked = Mutex::new(Vec::new());
        let got = read_bounded(AFTER, 7, shard(10, &asked, false)).await?;
        assert_eq!(got, 7);
        assert_eq!(
            *asked.lock().map_err(|_| Error::Internal("lock".into()))?,
            [7]
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_stalled_shard_answers_what_it_has_after_the_delay() -> Result<()> {
        let asked = Mutex::new(Vec::new());
        let started = std::time::Instant::now();
        let got = read_bounded(AFTER, 50, shard(10, &asked, false)).await?;
        assert_eq!(got, 0, "served from what the replica has");
        assert!(started.elapsed() >= AFTER, "not before the delay");
        assert_eq!(
            *asked.lock().map_err(|_| Error::Internal("lock".into()))?,
            [50, 0]
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_attempt_leaves_the_answer_to_the_other() -> Result<()> {
        let asked = Mutex::new(Vec::new());
        // The strict attempt fails after the relaxed one started: the relaxed answer wins.
        let read = |ts: Timestamp| {
            asked.lock().map(|mut a| a.push(ts)).ok();
            Box::pin(async move {
                if ts == 0 {
                    tokio::time::sleep(AFTER).await;
                    return Ok::<Timestamp, Error>(0);
                }
                tokio::time::sleep(AFTER + AFTER / 2).await;
                Err(Error::DeadlineExceeded("stalled".into()))
            }) as std::pin::Pin<Box<dyn Future<Output = Result<Timestamp>> + '_>>
        };
        assert_eq!(read_bounded(AFTER, 50, read).await?, 0);
        // A strict attempt refused before the delay is the answer: a refusal
        // is not a stall.
        let both = read_bounded(AFTER, 50, shard(0, &asked, true)).await;
        assert!(matches!(both, Err(Error::DeadlineExceeded(_))), "{both:?}");
        Ok(())
    }
}
