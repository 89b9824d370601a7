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
    pub async fn next<T>(&self, rx: &mut mpsc::Receiver<T>) -> Option<Vec<T>> {
        let first = rx.recv().await?;
        let mut batch = Vec::with_capacity(self.max.min(1024));
        batch.push(first);
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
        Some(batch)
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
}
