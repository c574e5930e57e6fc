//! The presentation language of RFC 6940 §6.3.1 (borrowed from TLS): big-endian
//! fixed-width integers, and variable-length vectors preceded by their length in
//! *bytes* on 1, 2, 3 or 4 bytes.
//!
//! [`Reader`] never reads past its slice and never allocates more than the bytes it
//! has been given: every length prefix is checked against what remains before it is
//! used, and lists grow element by element as elements are actually decoded.
//! [`Writer`] back-patches length prefixes and refuses a vector that does not fit
//! its prefix, so an encoded message always decodes again.

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

/// The width of a vector's length prefix: `<0..2^8-1>` is [`Prefix::U8`], and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// One byte, at most 255 bytes of content.
    U8,
    /// Two bytes, at most 65 535 bytes.
    U16,
    /// Three bytes, at most 2^24-1 bytes.
    U24,
    /// Four bytes, at most 2^32-1 bytes.
    U32,
}

impl Prefix {
    /// The number of bytes the prefix itself takes.
    pub const fn width(self) -> usize {
        match self {
            Prefix::U8 => 1,
            Prefix::U16 => 2,
            Prefix::U24 => 3,
            Prefix::U32 => 4,
        }
    }

    /// The largest content length the prefix can express.
    pub const fn max(self) -> usize {
        match self {
            Prefix::U8 => 0xff,
            Prefix::U16 => 0xffff,
            Prefix::U24 => 0xff_ffff,
            Prefix::U32 => 0xffff_ffff,
        }
    }
}

/// A cursor over bytes received from the network.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes the next `n` bytes, or fails naming `field` if fewer remain.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::Truncated {
                    needed: n,
                    remaining: self.buf.len(),
                },
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes every remaining byte.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Reads a fixed-size array (`opaque x[N]`).
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads a `uint8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a `uint16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a `uint24` into the low bits of a `u32`.
    pub fn u24(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let [a, b, c] = self.array(field)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a `uint32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a `uint64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a `Boolean` (RFC 6940 §6.3.1.1): exactly 0 or 1, anything else is invalid.
    pub fn boolean(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::invalid(field, other.into(), "a Boolean is 0 or 1")),
        }
    }

    /// Reads a length of the given width.
    pub fn length(&mut self, prefix: Prefix, field: &'static str) -> Result<usize, DecodeError> {
        let n = match prefix {
            Prefix::U8 => self.u8(field)?.into(),
            Prefix::U16 => self.u16(field)?.into(),
            Prefix::U24 => self.u24(field)?,
            Prefix::U32 => self.u32(field)?,
        };
        usize::try_from(n).map_err(|_| DecodeError::invalid(field, n.into(), "a length this machine can address"))
    }

    /// Reads a length prefix and returns a reader over exactly that many bytes.
    pub fn vector(&mut self, prefix: Prefix, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let n = self.length(prefix, field)?;
        Ok(Reader::new(self.take(n, field)?))
    }

    /// Reads `opaque x<..>`: a length prefix and that many bytes.
    pub fn opaque(&mut self, prefix: Prefix, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        Ok(self.vector(prefix, field)?.take_rest().to_vec())
    }

    /// Reads `T x<..>`: a length prefix, then elements until exactly that many bytes
    /// have been consumed. Each element consumes at least one byte, so the list can
    /// never hold more elements than the input had bytes.
    pub fn list<T>(
        &mut self,
        prefix: Prefix,
        field: &'static str,
        mut element: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let mut inner = self.vector(prefix, field)?;
        let mut out = Vec::new();
        while !inner.is_empty() {
            let before = inner.remaining();
            out.push(element(&mut inner)?);
            if inner.remaining() == before {
                // A zero-width element would loop forever; no RELOAD type is one.
                return Err(DecodeError::invalid(field, 0, "list elements of non-zero width"));
            }
        }
        Ok(out)
    }

    /// Fails unless every byte has been read; `field` names the enclosing structure.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(field, DecodeErrorKind::TrailingBytes(self.buf.len())))
        }
    }
}

/// A growing buffer that RELOAD structures are written into.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes have been written.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Gives the written bytes back.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes a `uint8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a `uint16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a `uint24`; fails if `v` does not fit in 24 bits.
    pub fn u24(&mut self, v: u32, field: &'static str) -> Result<(), EncodeError> {
        if v > 0xff_ffff {
            return Err(EncodeError::too_long(field, v as usize, 0xff_ffff));
        }
        self.bytes(&v.to_be_bytes()[1..]);
        Ok(())
    }

    /// Writes a `uint32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a `uint64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a `Boolean`.
    pub fn boolean(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Overwrites a big-endian integer of `width` bytes at `at`.
    pub fn patch(&mut self, at: usize, width: usize, value: usize) {
        let be = (value as u64).to_be_bytes();
        self.buf[at..at + width].copy_from_slice(&be[8 - width..]);
    }

    /// Writes a vector: a length prefix, then what `content` writes; the prefix is
    /// filled in afterwards and the vector refused if it is longer than the prefix allows.
    pub fn vector(
        &mut self,
        prefix: Prefix,
        field: &'static str,
        content: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let at = self.buf.len();
        self.buf.resize(at + prefix.width(), 0);
        content(self)?;
        let n = self.buf.len() - at - prefix.width();
        if n > prefix.max() {
            return Err(EncodeError::too_long(field, n, prefix.max()));
        }
        self.patch(at, prefix.width(), n);
        Ok(())
    }

    /// Writes `opaque x<..>`.
    pub fn opaque(&mut self, prefix: Prefix, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
        if b.len() > prefix.max() {
            return Err(EncodeError::too_long(field, b.len(), prefix.max()));
        }
        self.vector(prefix, field, |w| {
            w.bytes(b);
            Ok(())
        })
    }

    /// Writes `T x<..>` from a slice of encodable elements.
    pub fn list<T: Encode>(&mut self, prefix: Prefix, field: &'static str, items: &[T]) -> Result<(), EncodeError> {
        self.vector(prefix, field, |w| items.iter().try_for_each(|i| i.encode(w)))
    }
}

/// A structure with a context-free wire encoding.
pub trait Encode {
    /// Appends the wire form to `w`.
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError>;

    /// The wire form on its own.
    fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        self.encode(&mut w)?;
        Ok(w.into_vec())
    }
}

/// A structure that can be read back without outside context.
pub trait Decode: Sized {
    /// The structure's name in the RFC, used in errors about trailing bytes.
    const NAME: &'static str;

    /// Reads one value from `r`, leaving what follows it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Reads a value that must span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(v)
    }
}

impl<T: Encode> Encode for &T {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        (**self).encode(w)
    }
}
