//! A cap on the bytes a slice's segment writes may still use: past it, writes fail with the
//! error a full disk gives (ENOSPC), so the disk-full path (abort the transaction, remove the
//! partial file, keep the session) can be tested without filling a real disk. Unlimited
//! unless [`crate::ComputeCluster::limit_writes`] sets it.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes left; `u64::MAX` is unlimited.
#[derive(Debug)]
pub(crate) struct WriteBudget(AtomicU64);

impl Default for WriteBudget {
    fn default() -> Self {
        WriteBudget(AtomicU64::new(u64::MAX))
    }
}

impl WriteBudget {
    pub(crate) fn set(&self, bytes: Option<u64>) {
        self.0.store(bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Take `n` bytes, or fail as a full disk does.
    fn take(&self, n: usize) -> io::Result<()> {
        let n = n as u64;
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| match left {
                u64::MAX => Some(u64::MAX),
                left => left.checked_sub(n),
            })
            .map(|_| ())
            .map_err(|_| io::Error::from(io::ErrorKind::StorageFull))
    }
}

/// A writer that spends `budget` as it writes and takes the CRC-32 of what it wrote.
pub(crate) struct Budgeted<W> {
    pub inner: W,
    pub budget: Arc<WriteBudget>,
    pub crc: crc32fast::Hasher,
}

impl<W: Write> Write for Budgeted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.budget.take(buf.len())?;
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_fails_like_a_full_disk() {
        let budget = Arc::new(WriteBudget::default());
        let mut w = Budgeted {
            inner: Vec::new(),
            budget: budget.clone(),
            crc: Default::default(),
        };
        w.write_all(&[0; 100]).unwrap();
        budget.set(Some(10));
        assert_eq!(
            w.write_all(&[0; 11]).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        w.write_all(&[0; 10]).unwrap();
        budget.set(None);
        w.write_all(&[0; 1000]).unwrap();
    }
}
