//! Writes grouped into one statement, as a database groups commits: while one
//! group's write is on its way to the server, the writes that arrive wait, and
//! the next group takes them all. On PostgreSQL every commit that notifies the
//! replicas goes through one lock, flush included, one at a time
//! (`migrations/postgres/0012_change_notices.sql`); a group of emails
//! recorded in one statement goes through it once. A write that finds no
//! group on its way goes at once, alone.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot::{self, error::TryRecvError};

use super::StoreError;

/// What each write of a group is told: the group's outcome.
type Outcome = Result<(), Arc<StoreError>>;

/// Writes of `T` waiting for their group, and the turn of the group on its way.
pub struct Grouped<T> {
    /// Writes not yet taken by a group, oldest first, each with whom to tell.
    waiting: Mutex<Vec<(T, oneshot::Sender<Outcome>)>>,
    /// Held by the group on its way to the server.
    turn: tokio::sync::Mutex<()>,
    /// The most writes in one group.
    most: usize,
}

impl<T> Grouped<T> {
    /// Groups of at most `most` writes.
    pub fn new(most: usize) -> Self {
        Self {
            waiting: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
            most: most.max(1),
        }
    }

    /// Writes `item` with whatever else waits, by `write`, which receives the
    /// group (`item` among it, unless an earlier group took it) and runs as
    /// the only group on its way; the group's outcome. A group dropped on its
    /// way (its caller stopped waiting) fails its writes with
    /// [`StoreError::GroupDropped`]; whether they were made is not known.
    pub async fn write<F, Fut>(&self, item: T, write: F) -> Result<(), StoreError>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let (tell, mut told) = oneshot::channel();
        self.waiting().push((item, tell));
        loop {
            let turn = tokio::select! {
                biased;
                outcome = &mut told => return outcome_of(outcome.ok()),
                turn = self.turn.lock() => turn,
            };
            // Unless a group took this write just now, this turn takes the
            // oldest waiting, this one among them unless a whole group waits
            // before it.
            match told.try_recv() {
                Err(TryRecvError::Empty) => {}
                Ok(outcome) => return outcome_of(Some(outcome)),
                Err(TryRecvError::Closed) => return outcome_of(None),
            }
            let group: Vec<_> = {
                let mut waiting = self.waiting();
                let taken = waiting.len().min(self.most);
                waiting.drain(..taken).collect()
            };
            let (items, tells): (Vec<T>, Vec<_>) = group.into_iter().unzip();
            let outcome = write(items).await.map_err(Arc::new);
            for tell in tells {
                // Whoever stopped waiting needs no answer.
                let _ = tell.send(outcome.clone());
            }
            drop(turn);
        }
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<(T, oneshot::Sender<Outcome>)>> {
        // A panic while holding it leaves a list still whole.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A write's result from its group's outcome, `None` when its group was dropped.
fn outcome_of(outcome: Option<Outcome>) -> Result<(), StoreError> {
    match outcome {
        Some(outcome) => outcome.map_err(StoreError::Grouped),
        None => Err(StoreError::GroupDropped),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Mutex as StdMutex,
            atomic::{AtomicU32, Ordering},
        },
        time::Duration,
    };

    use tokio::sync::Notify;

    use super::*;

    /// The groups written, in order.
    #[derive(Default)]
    struct Written(StdMutex<Vec<Vec<u32>>>);

    impl Written {
        fn groups(&self) -> Vec<Vec<u32>> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Writes the group down, the first group only once `open` is notified.
    async fn write_down(
        written: &Written,
        open: &Notify,
        group: Vec<u32>,
    ) -> Result<(), StoreError> {
        if written.groups().is_empty() {
            open.notified().await;
        }
        written.0.lock().unwrap().push(group);
        Ok(())
    }

    #[tokio::test]
    async fn writes_arriving_while_a_group_is_on_its_way_go_together_in_the_next() {
        let grouped = Grouped::new(16);
        let (written, open) = (Written::default(), Notify::new());
        let write = |group| write_down(&written, &open, group);
        let opener = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            open.notify_one();
        };
        let (a, b, c, d, ()) = tokio::join!(
            grouped.write(1, write),
            grouped.write(2, write),
            grouped.write(3, write),
            grouped.write(4, write),
            opener
        );
        for outcome in [a, b, c, d] {
            outcome.unwrap();
        }
        assert_eq!(written.groups(), [vec![1], vec![2, 3, 4]]);
    }

    #[tokio::test]
    async fn a_group_holds_at_most_its_most_and_the_rest_follow() {
        let grouped = Grouped::new(2);
        let (written, open) = (Written::default(), Notify::new());
        let write = |group| write_down(&written, &open, group);
        let opener = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            open.notify_one();
        };
        let writes = futures_util::future::join_all((1..=6).map(|n| grouped.write(n, write)));
        let (outcomes, ()) = tokio::join!(writes, opener);
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(written.groups(), [vec![1], vec![2, 3], vec![4, 5], vec![6]]);
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_writes() {
        let grouped = Grouped::new(16);
        let open = Notify::new();
        let calls = StdMutex::new(0);
        let write = |_group: Vec<u32>| {
            let first = {
                let mut calls = calls.lock().unwrap();
                *calls += 1;
                *calls == 1
            };
            let open = &open;
            async move {
                if first {
                    open.notified().await;
                    return Ok(());
                }
                Err(StoreError::Corrupt("refused".into()))
            }
        };
        let opener = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            open.notify_one();
        };
        let (a, b, c, ()) = tokio::join!(
            grouped.write(1, write),
            grouped.write(2, write),
            grouped.write(3, write),
            opener
        );
        a.unwrap();
        for outcome in [b, c] {
            let err = outcome.unwrap_err();
            assert!(matches!(err, StoreError::Grouped(_)), "{err:?}");
            assert_eq!(err.to_string(), "corrupt stored value: refused");
        }
    }

    #[tokio::test]
    async fn a_group_dropped_on_its_way_fails_its_writes_and_the_next_goes() {
        let grouped = Arc::new(Grouped::new(16));
        let (calls, open) = (Arc::new(AtomicU32::new(0)), Arc::new(Notify::new()));
        // The first group waits for `open`, the second never ends, the rest go.
        let opened = open.clone();
        let write = move |_group: Vec<u32>| {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let open = opened.clone();
            async move {
                match call {
                    1 => open.notified().await,
                    2 => std::future::pending().await,
                    _ => {}
                }
                Ok(())
            }
        };
        let spawn = |n: u32| {
            let (grouped, write) = (grouped.clone(), write.clone());
            tokio::spawn(async move { grouped.write(n, write).await })
        };
        let settle = || tokio::time::sleep(Duration::from_millis(20));
        let first = spawn(1);
        settle().await;
        let (second, third) = (spawn(2), spawn(3));
        settle().await;
        open.notify_one();
        first.await.unwrap().unwrap();
        // The second write leads the group of the second and the third.
        settle().await;
        second.abort();
        let err = third.await.unwrap().unwrap_err();
        assert!(matches!(err, StoreError::GroupDropped), "{err:?}");
        grouped.write(4, write).await.unwrap();
    }
}
