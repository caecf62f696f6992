//! `Bytes`: a byte string that crosses the FFI as uniffi's `bytes` type
//! (Python `bytes`, Kotlin `ByteArray`, Swift `Data`) but is converted on the
//! Rust side with one bulk copy. uniffi 0.32's generic `Vec<T>` converter,
//! which `Vec<u8>` uses, reads and writes element by element (measured: a
//! 64 KiB envelope spent more time in that loop than in Ed25519); the wire
//! format here is identical (big-endian i32 length, then the bytes).

use uniffi::{FfiConverter, MetadataBuffer, RustBuffer};

/// Owned bytes with a bulk-copy FFI converter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl core::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: the wire format is exactly the one uniffi's `Vec<u8>` (`bytes`)
// converter uses, so the foreign side's `bytes` reader/writer match it.
unsafe impl FfiConverter<crate::UniFfiTag> for Bytes {
    type FfiType = RustBuffer;

    fn lower(obj: Self) -> RustBuffer {
        let mut buf = Vec::with_capacity(obj.0.len() + 4);
        <Self as FfiConverter<crate::UniFfiTag>>::write(obj, &mut buf);
        RustBuffer::from_vec(buf)
    }

    fn try_lift(v: RustBuffer) -> uniffi::Result<Self> {
        let vec = v.destroy_into_vec();
        let mut slice = vec.as_slice();
        let value = <Self as FfiConverter<crate::UniFfiTag>>::try_read(&mut slice)?;
        if !slice.is_empty() {
            uniffi::deps::anyhow::bail!("junk data left in buffer after lifting bytes");
        }
        Ok(value)
    }

    fn write(obj: Self, buf: &mut Vec<u8>) {
        // uniffi limits byte strings to i32::MAX, as its own converter does
        let len = i32::try_from(obj.0.len()).expect("byte string longer than i32::MAX");
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<Self> {
        let Some((head, rest)) = buf.split_first_chunk::<4>() else {
            uniffi::deps::anyhow::bail!("buffer too short for a byte string length");
        };
        let len = usize::try_from(i32::from_be_bytes(*head))?;
        if rest.len() < len {
            uniffi::deps::anyhow::bail!("buffer too short for a byte string of {len} bytes");
        }
        let (data, rest) = rest.split_at(len);
        *buf = rest;
        Ok(Bytes(data.to_vec()))
    }

    const TYPE_ID_META: MetadataBuffer =
        <Vec<u8> as uniffi::TypeId<crate::UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local Bytes);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_wire_format_as_vec_u8() {
        for v in [
            vec![],
            vec![1u8, 2, 3],
            (0..70_000).map(|i| i as u8).collect::<Vec<_>>(),
        ] {
            let mut ours = Vec::new();
            <Bytes as FfiConverter<crate::UniFfiTag>>::write(Bytes(v.clone()), &mut ours);
            let mut theirs = Vec::new();
            <Vec<u8> as uniffi::Lower<crate::UniFfiTag>>::write(v.clone(), &mut theirs);
            assert_eq!(ours, theirs);
            let mut s = ours.as_slice();
            assert_eq!(
                <Bytes as FfiConverter<crate::UniFfiTag>>::try_read(&mut s)
                    .unwrap()
                    .0,
                v
            );
            assert!(s.is_empty());
        }
        let mut short: &[u8] = &[0, 0, 0, 9, 1];
        assert!(<Bytes as FfiConverter<crate::UniFfiTag>>::try_read(&mut short).is_err());
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(<Bytes as FfiConverter<crate::UniFfiTag>>::try_read(&mut negative).is_err());
    }
}
