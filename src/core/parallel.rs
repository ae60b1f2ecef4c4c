//! Independent jobs numbered `0..count`, run on up to one thread per core.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `job(i)` for every `i` in `0..count`, on up to one thread per core (the
/// calling thread among them), each thread taking the next index not yet
/// taken; the results in index order. Used where the other cores would be
/// idle: a bundle's copies made before its run starts, its seal's digests.
/// A panicking job panics the caller once every thread has stopped.
pub fn each_on_threads<T: Send>(count: usize, job: impl Fn(usize) -> T + Sync) -> Vec<T> {
    each_on_up_to(cores(), count, job)
}

/// The cores this process may use (1 when that cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// [`each_on_threads`] on at most `threads` threads.
pub fn each_on_up_to<T: Send>(
    threads: usize,
    count: usize,
    job: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.min(count);
    if threads <= 1 {
        return (0..count).map(job).collect();
    }
    let next = AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return done;
            }
            done.push((i, job(i)));
        }
    };
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(take)).collect();
        let mut done = take();
        for helper in helpers {
            done.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_once_and_results_come_in_index_order() {
        let runs: Vec<AtomicUsize> = (0..200).map(|_| AtomicUsize::new(0)).collect();
        let results = each_on_threads(200, |i| {
            runs[i].fetch_add(1, Ordering::Relaxed);
            i * 3
        });
        assert_eq!(results, (0..200).map(|i| i * 3).collect::<Vec<_>>());
        assert!(runs.iter().all(|r| r.load(Ordering::Relaxed) == 1));
        assert!(each_on_threads(0, |i| i).is_empty());
    }
}
