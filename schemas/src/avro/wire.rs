//! The Confluent wire format: magic byte `0`, the writer schema's id as a 4-byte big-endian
//! integer, then the Avro binary encoding of the record (no container file header).

use super::error::DecodeError;

/// The first byte of every record in the Confluent wire format.
pub const MAGIC_BYTE: u8 = 0;

/// Length of the header: the magic byte and the 4-byte schema id.
pub const HEADER_LEN: usize = 5;

/// Starts a record: a buffer holding the header for `schema_id`, ready for the Avro body.
pub(crate) fn header(schema_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out
}

/// Splits a record into its writer schema id and its Avro body.
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    let Some((head, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TruncatedHeader { len: bytes.len() });
    };
    let [magic, id @ ..] = *head;
    if magic != MAGIC_BYTE {
        return Err(DecodeError::UnknownMagicByte { found: magic });
    }
    Ok((u32::from_be_bytes(id), body))
}

/// The writer schema id of a record, without decoding it (for routing and metrics).
pub fn schema_id(bytes: &[u8]) -> Result<u32, DecodeError> {
    split(bytes).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut bytes = header(0x0102_0304);
        assert_eq!(bytes, [0, 1, 2, 3, 4]);
        bytes.push(42);
        let (id, body) = split(&bytes).unwrap();
        assert_eq!((id, body), (0x0102_0304, &[42u8][..]));
    }

    #[test]
    fn short_or_foreign_headers_are_refused() {
        assert!(matches!(
            split(&[]),
            Err(DecodeError::TruncatedHeader { len: 0 })
        ));
        assert!(matches!(
            split(&[0, 0, 0, 1]),
            Err(DecodeError::TruncatedHeader { len: 4 })
        ));
        assert!(matches!(
            split(&[1, 0, 0, 0, 1]),
            Err(DecodeError::UnknownMagicByte { found: 1 })
        ));
    }
}
