//! The one work queue: items handed out in a fixed order (largest first, or as given) to
//! whichever worker asks next, each result kept at its item's index. The hash pool, the OCI
//! blob pool and the drift target pool all use it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A queue over items `0..len`, holding a result slot for each.
pub struct Queue<R> {
    order: Vec<usize>,
    next: AtomicUsize,
    results: Vec<OnceLock<R>>,
}

impl<R: Send + Sync> Queue<R> {
    /// Items handed out in their own order.
    pub fn in_order(len: usize) -> Queue<R> {
        Queue::with_order((0..len).collect())
    }

    /// Items handed out largest first, so that one huge item starts at once instead of
    /// being left for last; items of one size keep their order.
    pub fn largest_first(sizes: &[u64]) -> Queue<R> {
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        Queue::with_order(order)
    }

    fn with_order(order: Vec<usize>) -> Queue<R> {
        Queue {
            results: order.iter().map(|_| OnceLock::new()).collect(),
            order,
            next: AtomicUsize::new(0),
        }
    }

    /// One worker's loop: takes items until none is left, or until `stop` is set (checked
    /// before each item), and keeps what `work` makes of each.
    pub fn work(&self, stop: &AtomicBool, work: impl Fn(usize) -> R) {
        while !stop.load(Ordering::SeqCst) {
            let taken = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = self.order.get(taken) else {
                break;
            };
            let _ = self.results[index].set(work(index));
        }
    }

    /// Each item's result in item order; `None` for an item no worker took (a stop).
    pub fn into_results(self) -> Vec<Option<R>> {
        self.results.into_iter().map(OnceLock::into_inner).collect()
    }
}

/// Runs `work` over every item of `queue` on `workers` threads (at least one, at most one per
/// item), stopping early once `stop` is set; returns each item's result in item order.
pub fn run_until<R: Send + Sync>(
    queue: Queue<R>,
    workers: usize,
    stop: &AtomicBool,
    work: impl Fn(usize) -> R + Sync,
) -> Vec<Option<R>> {
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, queue.order.len().max(1)) {
            scope.spawn(|| queue.work(stop, &work));
        }
    });
    queue.into_results()
}

/// As [`run_until`] without a stop: every item's result, in item order.
pub fn run<R: Send + Sync>(
    queue: Queue<R>,
    workers: usize,
    work: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    run_until(queue, workers, &AtomicBool::new(false), work)
        .into_iter()
        .map(|result| result.expect("without a stop, every item is taken"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_item_is_taken_once_and_results_come_back_in_item_order() {
        for workers in [1, 3, 8, 100] {
            let taken: Vec<AtomicUsize> = (0..57).map(|_| AtomicUsize::new(0)).collect();
            let sizes: Vec<u64> = (0..57).map(|i| (i * 7919 % 101) as u64).collect();
            let results = run(Queue::largest_first(&sizes), workers, |i| {
                taken[i].fetch_add(1, Ordering::SeqCst);
                i * 10
            });
            assert!(taken.iter().all(|n| n.load(Ordering::SeqCst) == 1));
            assert_eq!(results, (0..57).map(|i| i * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn one_worker_takes_the_largest_first_and_ties_in_their_order() {
        let sizes = [5, 90, 5, 0, 90, 40];
        let seen = Mutex::new(Vec::new());
        run(Queue::largest_first(&sizes), 1, |i| {
            seen.lock().unwrap().push(i);
        });
        assert_eq!(seen.into_inner().unwrap(), [1, 4, 5, 0, 2, 3]);
    }

    #[test]
    fn in_order_hands_out_items_as_given() {
        let seen = Mutex::new(Vec::new());
        run(Queue::in_order(4), 1, |i| seen.lock().unwrap().push(i));
        assert_eq!(seen.into_inner().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn a_stop_leaves_the_items_not_yet_taken_without_a_result() {
        let stop = AtomicBool::new(false);
        let results = run_until(Queue::in_order(6), 1, &stop, |i| {
            if i == 2 {
                stop.store(true, Ordering::SeqCst);
            }
            i
        });
        assert_eq!(results, [Some(0), Some(1), Some(2), None, None, None]);
    }

    #[test]
    fn an_empty_queue_gives_no_results() {
        let results: Vec<u8> = run(Queue::largest_first(&[]), 4, |_| unreachable!());
        assert!(results.is_empty());
    }
}
