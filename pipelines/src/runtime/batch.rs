//! The one batching buffer: gather up to `max` items, waiting at most `linger` after the
//! first one.

use std::time::Duration;
use tokio::sync::mpsc;

/// Collects items from a channel into batches.
#[derive(Debug, Clone, Copy)]
pub struct Batcher {
    /// Most items per batch.
    pub max: usize,
    /// How long to wait for more after the first item.
    pub linger: Duration,
}

impl Batcher {
    /// Waits for the first item, then takes what arrives within `linger`, up to `max`.
    /// `None` when the channel is closed and empty.
    ///
    /// Not cancel-safe: dropping the future loses the items gathered so far. Where the
    /// wait races other events (a `select!`), use [`fill`](Self::fill).
    pub async fn next<T>(&self, rx: &mut mpsc::Receiver<T>) -> Option<Vec<T>> {
        let mut batch = Vec::new();
        self.fill(rx, &mut batch).await;
        (!batch.is_empty()).then_some(batch)
    }

    /// Fills `batch` (which may already hold items) like [`next`](Self::next): waits for a
    /// first item if it is empty, then takes what arrives within `linger`, up to `max`.
    /// Returns with `batch` empty only when the channel is closed.
    ///
    /// Cancel-safe: every item taken from the channel is in `batch` at once, so dropping
    /// the future (the runtime's `select!` does, whenever a tick comes first) loses nothing;
    /// calling again goes on filling the same batch (with a fresh linger).
    pub async fn fill<T>(&self, rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>) {
        if batch.is_empty() {
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
        }
        let deadline = tokio::time::Instant::now() + self.linger;
        while batch.len() < self.max {
            // Take what is already queued without waiting.
            while batch.len() < self.max {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if batch.len() >= self.max {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_are_bounded_and_keep_order() {
        let (tx, mut rx) = mpsc::channel(100);
        for i in 0..25 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let b = Batcher {
            max: 10,
            linger: Duration::from_millis(5),
        };
        assert_eq!(b.next(&mut rx).await.unwrap(), (0..10).collect::<Vec<_>>());
        assert_eq!(b.next(&mut rx).await.unwrap(), (10..20).collect::<Vec<_>>());
        assert_eq!(b.next(&mut rx).await.unwrap(), (20..25).collect::<Vec<_>>());
        assert!(b.next(&mut rx).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn linger_bounds_the_wait() {
        let (tx, mut rx) = mpsc::channel(10);
        tx.send(1).await.unwrap();
        let b = Batcher {
            max: 10,
            linger: Duration::from_millis(50),
        };
        let start = tokio::time::Instant::now();
        assert_eq!(b.next(&mut rx).await.unwrap(), vec![1]);
        assert!(start.elapsed() >= Duration::from_millis(50));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fill_interrupted_by_a_tick_loses_nothing() {
        let (tx, mut rx) = mpsc::channel(10);
        let b = Batcher {
            max: 10,
            linger: Duration::from_millis(50),
        };
        let mut batch = Vec::new();
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        // The runtime's select!: a tick comes while the batch lingers for more.
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
            () = b.fill(&mut rx, &mut batch) => panic!("the linger ended before the tick"),
        }
        assert_eq!(batch, vec![1, 2], "what was taken from the channel is kept");
        tx.send(3).await.unwrap();
        b.fill(&mut rx, &mut batch).await;
        assert_eq!(batch, vec![1, 2, 3]);
        drop(tx);
        let mut rest = Vec::new();
        b.fill(&mut rx, &mut rest).await;
        assert!(rest.is_empty(), "closed and empty");
    }
}
