//! A bounded queue between the threads that prepare files and the associations that send
//! them: producers block when it is full (so that memory stays flat however many files),
//! consumers block — or, for the async driver, await — when it is empty.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::Waker;

#[derive(Debug)]
struct Inner<T> {
    items: VecDeque<T>,
    /// Producers that have not finished.
    producers: usize,
    /// Given up: producers stop, consumers get nothing more.
    closed: bool,
    /// Async consumers waiting for an item.
    wakers: Vec<Waker>,
    /// Threads blocked in `pop` and in `push` (a notification costs a system call: only
    /// when someone waits).
    consumers_waiting: usize,
    producers_waiting: usize,
}

/// A multi-producer, multi-consumer bounded queue.
#[derive(Debug)]
pub(crate) struct WorkQueue<T> {
    inner: Mutex<Inner<T>>,
    not_full: Condvar,
    not_empty: Condvar,
    capacity: usize,
}

impl<T> WorkQueue<T> {
    /// A queue of at most `capacity` items fed by `producers` producers, each of which
    /// calls [`producer_done`](Self::producer_done) when it has no more.
    pub(crate) fn new(capacity: usize, producers: usize) -> WorkQueue<T> {
        WorkQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                producers,
                closed: false,
                wakers: Vec::new(),
                consumers_waiting: 0,
                producers_waiting: 0,
            }),
            not_full: Condvar::new(),
            not_empty: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(&self, inner: &mut Inner<T>) {
        if inner.consumers_waiting > 0 {
            self.not_empty.notify_one();
        }
        for w in inner.wakers.drain(..) {
            w.wake();
        }
    }

    /// Adds an item, waiting while the queue is full; false when the queue was closed
    /// (the item is dropped: stop producing).
    pub(crate) fn push(&self, item: T) -> bool {
        let mut g = self.lock();
        while g.items.len() >= self.capacity && !g.closed {
            g.producers_waiting += 1;
            g = self.not_full.wait(g).unwrap_or_else(|p| p.into_inner());
            g.producers_waiting -= 1;
        }
        if g.closed {
            return false;
        }
        g.items.push_back(item);
        self.wake(&mut g);
        true
    }

    /// Puts an item taken back at the front (beyond the capacity: it was counted before).
    pub(crate) fn put_back(&self, item: T) {
        let mut g = self.lock();
        g.items.push_front(item);
        self.wake(&mut g);
    }

    /// One producer has no more items.
    pub(crate) fn producer_done(&self) {
        let mut g = self.lock();
        g.producers = g.producers.saturating_sub(1);
        if g.producers == 0 {
            self.not_empty.notify_all();
            for w in g.wakers.drain(..) {
                w.wake();
            }
        }
    }

    /// Gives up: producers stop at their next item, consumers get `None`.
    pub(crate) fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.items.clear();
        self.not_full.notify_all();
        self.not_empty.notify_all();
        for w in g.wakers.drain(..) {
            w.wake();
        }
    }

    fn take(&self, g: &mut Inner<T>) -> Option<T> {
        let item = g.items.pop_front();
        // Producers wake when the queue is half empty, not at every item.
        if item.is_some() && g.producers_waiting > 0 && g.items.len() <= self.capacity / 2 {
            self.not_full.notify_all();
        }
        item
    }

    /// The next item, waiting while the queue is empty; `None` once every producer has
    /// finished and the queue is empty, or it was closed.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut g = self.lock();
        loop {
            if g.closed {
                return None;
            }
            if let Some(item) = self.take(&mut g) {
                return Some(item);
            }
            if g.producers == 0 {
                return None;
            }
            g.consumers_waiting += 1;
            g = self.not_empty.wait(g).unwrap_or_else(|p| p.into_inner());
            g.consumers_waiting -= 1;
        }
    }

    /// [`pop`](Self::pop) for async consumers: awaits instead of blocking the thread.
    #[cfg(feature = "tokio")]
    pub(crate) async fn pop_async(&self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut g = self.lock();
            use std::task::Poll;
            if g.closed {
                return Poll::Ready(None);
            }
            if let Some(item) = self.take(&mut g) {
                return Poll::Ready(Some(item));
            }
            if g.producers == 0 {
                return Poll::Ready(None);
            }
            if !g.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                g.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Calls `f` on every item waiting, the last queued first (to plan contexts ahead:
    /// the next items are noted last, as the most recent).
    pub(crate) fn for_each_waiting_rev(&self, mut f: impl FnMut(&T)) {
        let g = self.lock();
        g.items.iter().rev().for_each(&mut f);
    }

    /// Waits until the queue is full or its producers are done, at most `limit`.
    pub(crate) fn wait_filled(&self, limit: std::time::Duration) {
        let until = std::time::Instant::now() + limit;
        loop {
            {
                let g = self.lock();
                if g.closed || g.producers == 0 || g.items.len() >= self.capacity {
                    return;
                }
            }
            if std::time::Instant::now() >= until {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounded_and_ends_when_every_producer_is_done() {
        let q = Arc::new(WorkQueue::new(4, 2));
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        assert!(q.push(p * 1000 + i));
                    }
                    q.producer_done();
                })
            })
            .collect();
        let mut got = Vec::new();
        while let Some(x) = q.pop() {
            assert!(q.lock().items.len() <= 4);
            got.push(x);
        }
        for p in producers {
            p.join().expect("producer");
        }
        got.sort_unstable();
        let want: Vec<i32> = (0..100).chain(1000..1100).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn closing_releases_a_blocked_producer() {
        let q = Arc::new(WorkQueue::new(1, 1));
        assert!(q.push(1));
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.push(2));
        std::thread::sleep(std::time::Duration::from_millis(50));
        q.close();
        assert!(!t.join().expect("producer"));
        assert_eq!(q.pop(), None);
    }
}
