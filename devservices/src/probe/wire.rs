//! A tiny big-endian reader for protocol probes.

use anyhow::{Context, bail};

/// Reads big-endian integers and strings from a byte slice, failing on truncation.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if self.buf.len() < n {
            bail!(
                "truncated response: wanted {n} bytes, {} left",
                self.buf.len()
            );
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        self.take(N)?.try_into().context("slice length")
    }

    pub fn i16(&mut self) -> anyhow::Result<i16> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> anyhow::Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A string with an `i16` length prefix (`-1` is null, returned as empty).
    pub fn string16(&mut self) -> anyhow::Result<String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(self.take(len as usize)?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_detects_truncation() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 0, 2, b'h', b'i', 0xff, 0xff, 9]);
        assert_eq!(r.i16().ok(), Some(1));
        assert_eq!(r.i32().ok(), Some(2));
        assert_eq!(r.string16().ok().as_deref(), Some("hi"));
        assert_eq!(r.string16().ok().as_deref(), Some(""));
        assert!(r.i16().is_err());
    }
}
