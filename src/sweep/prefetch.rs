//! A small bounded hand-over between one producer thread and the sweep's
//! threads: a streamed sweep reads and validates the next batches of checks
//! on a thread of its own while the current ones are probed, instead of
//! every sweep thread waiting while one of them parses a file.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Up to `capacity` items handed from a producer to consumers.
pub struct Prefetch<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item is pushed or taken, or the queue ends.
    changed: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The producer has no more items.
    closed: bool,
    /// The consumers want no more items: the producer stops.
    stopped: bool,
}

impl<T> Prefetch<T> {
    pub fn new(capacity: usize) -> Self {
        Prefetch {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                stopped: false,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Producer: hands over `item`, waiting while the queue is full; false
    /// (and the item dropped) once the consumers stopped.
    pub fn push(&self, item: T) -> bool {
        let mut state = self.lock();
        while state.items.len() >= self.capacity && !state.stopped {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.stopped {
            return false;
        }
        state.items.push_back(item);
        self.changed.notify_all();
        true
    }

    /// Producer: there are no more items.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Producer: a guard that closes the queue when dropped, however the
    /// producer ends.
    pub fn closed_on_drop(&self) -> impl Drop + '_ {
        struct Close<'q, T>(&'q Prefetch<T>);
        impl<T> Drop for Close<'_, T> {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        Close(self)
    }

    /// Consumers: the next item, waiting for the producer; `None` once it
    /// closed the queue and every item was taken, or after [`Self::stop`].
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                self.changed.notify_all();
                return Some(item);
            }
            if state.closed || state.stopped {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Consumers: no more items are wanted; a waiting producer returns.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        state.items.clear();
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_every_item_over_in_order_and_ends_when_closed() {
        let queue = Prefetch::new(2);
        let taken = std::thread::scope(|scope| {
            scope.spawn(|| {
                for n in 0..100 {
                    assert!(queue.push(n));
                }
                queue.close();
            });
            std::iter::from_fn(|| queue.pop()).collect::<Vec<_>>()
        });
        assert_eq!(taken, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_producer_that_panics_still_ends_the_queue() {
        let queue = Prefetch::new(2);
        std::thread::scope(|scope| {
            let producer = scope.spawn(|| {
                let _closed = queue.closed_on_drop();
                queue.push(1);
                panic!("the producer failed");
            });
            assert_eq!(queue.pop(), Some(1));
            assert_eq!(queue.pop(), None, "the consumer must not wait for ever");
            assert!(producer.join().is_err());
        });
    }

    #[test]
    fn a_stop_releases_a_producer_waiting_on_a_full_queue() {
        let queue = Prefetch::new(1);
        std::thread::scope(|scope| {
            let producer = scope.spawn(|| (0..10).take_while(|&n| queue.push(n)).count());
            assert_eq!(queue.pop(), Some(0));
            // The producer fills the queue again and waits; stop frees it.
            while queue.lock().items.is_empty() {
                std::thread::yield_now();
            }
            queue.stop();
            let pushed = producer.join().unwrap();
            assert!(pushed < 10, "the producer went on after the stop: {pushed}");
            assert_eq!(queue.pop(), None);
        });
    }
}
