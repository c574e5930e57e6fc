//! Persistence of what a peer stores: nothing is lost on restart.
//!
//! The core does no I/O. When persistence is on ([`crate::NodeConfig::persist_storage`]),
//! every change to the [`DataStore`](super::DataStore) leaves a [`StorageChange`]: the
//! whole new state of one Resource-ID as a [`record`](encode_record), or its removal.
//! The runtime drains them with [`Node::take_storage_changes`](crate::Node::take_storage_changes)
//! and makes them durable *before* it sends anything the node queued, so a StoreAns
//! never leaves a peer before the value it acknowledges is on disk. On restart the
//! runtime hands the records back with [`Node::restore_storage`](crate::Node::restore_storage);
//! values whose lifetime ran out meanwhile are purged on load (RFC 6940 §7: lifetime).
//!
//! A [`StorageBackend`] is where records live: [`MemoryBackend`] here for tests and the
//! simulator, a redb database for real nodes (in the runtime crate).
//!
//! Record layout (all integers big-endian), one per Resource-ID:
//!
//! ```text
//! "RLD1" | kind count (u16) | kind* | signer count (u16) | signer*
//! kind   := Kind-ID (u32) | data model (u8: 1 single, 2 array, 3 dictionary)
//!           | generation (u64) | value count (u32) | value*
//! value  := expiry (u64, microseconds of the node's clock) | StoredData (RFC 6940 §7 wire form)
//! signer := SignerIdentity (§6.3.4 wire form) | certificate count (u16) | GenericCertificate*
//! ```
//!
//! Values keep their owners' signatures exactly as stored, and the record keeps the
//! signers' certificates, so a restored value is served and replicated as verifiable
//! as it arrived, even to peers that never saw its signer.

use std::collections::BTreeMap;
use std::convert::Infallible;

use reload_wire::{
    DataModel, Decode, DecodeError, Encode, EncodeError, GenericCertificate, KindId, Reader, ResourceId,
    SignerIdentity, StoredData, Writer,
};

use crate::time::Time;

/// The first bytes of every record: the format and its version.
const RECORD_MAGIC: &[u8; 4] = b"RLD1";

/// A change the runtime must make durable before it transmits what followed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageChange {
    /// Resource-ID `resource` now holds exactly what `record` says.
    Put {
        /// The Resource-ID.
        resource: ResourceId,
        /// Its encoded state ([`encode_record`]).
        record: Vec<u8>,
    },
    /// Nothing is held at `resource` any more.
    Remove {
        /// The Resource-ID.
        resource: ResourceId,
    },
}

impl StorageChange {
    /// The Resource-ID the change is about.
    pub fn resource(&self) -> &ResourceId {
        match self {
            StorageChange::Put { resource, .. } | StorageChange::Remove { resource } => resource,
        }
    }
}

/// Where a peer's records are kept between runs.
pub trait StorageBackend {
    /// Why the backend could not read or write.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every record held, to hand to [`Node::restore_storage`](crate::Node::restore_storage).
    fn load(&self) -> Result<Vec<(ResourceId, Vec<u8>)>, Self::Error>;

    /// Applies `changes` in order, atomically, and returns only once they are durable.
    fn apply(&mut self, changes: &[StorageChange]) -> Result<(), Self::Error>;
}

/// Records in memory: what tests and the simulator use to restart a peer.
#[derive(Clone, Debug, Default)]
pub struct MemoryBackend {
    records: BTreeMap<ResourceId, Vec<u8>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        MemoryBackend::default()
    }

    /// How many Resource-IDs have a record.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl StorageBackend for MemoryBackend {
    type Error = Infallible;

    fn load(&self) -> Result<Vec<(ResourceId, Vec<u8>)>, Infallible> {
        Ok(self.records.iter().map(|(r, b)| (r.clone(), b.clone())).collect())
    }

    fn apply(&mut self, changes: &[StorageChange]) -> Result<(), Infallible> {
        for c in changes {
            match c {
                StorageChange::Put { resource, record } => {
                    self.records.insert(resource.clone(), record.clone());
                }
                StorageChange::Remove { resource } => {
                    self.records.remove(resource);
                }
            }
        }
        Ok(())
    }
}

/// One Kind's part of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindRecord {
    /// The Kind.
    pub kind: KindId,
    /// Its data model when stored.
    pub model: DataModel,
    /// Its generation counter (§7.4.1.1).
    pub generation: u64,
    /// The values with the time each expires.
    pub values: Vec<(Time, StoredData)>,
}

/// The state of one Resource-ID, as persisted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The Kinds held there.
    pub kinds: Vec<KindRecord>,
    /// The certificates of the values' signers.
    pub signers: Vec<(SignerIdentity, Vec<GenericCertificate>)>,
}

/// Encodes the state of one Resource-ID.
pub fn encode_record(record: &Record) -> Result<Vec<u8>, EncodeError> {
    let kinds = &record.kinds;
    let mut w = Writer::new();
    w.bytes(RECORD_MAGIC);
    let count = u16::try_from(kinds.len())
        .map_err(|_| EncodeError::too_long("record.kinds", kinds.len(), usize::from(u16::MAX)))?;
    w.u16(count);
    for k in kinds {
        w.u32(k.kind.0);
        w.u8(model_code(k.model));
        w.u64(k.generation);
        let n = u32::try_from(k.values.len())
            .map_err(|_| EncodeError::too_long("record.values", k.values.len(), u32::MAX as usize))?;
        w.u32(n);
        for (expires, data) in &k.values {
            w.u64(expires.as_micros());
            data.encode(&mut w)?;
        }
    }
    let signers = u16::try_from(record.signers.len())
        .map_err(|_| EncodeError::too_long("record.signers", record.signers.len(), usize::from(u16::MAX)))?;
    w.u16(signers);
    for (identity, certificates) in &record.signers {
        identity.encode(&mut w)?;
        let n = u16::try_from(certificates.len())
            .map_err(|_| EncodeError::too_long("record.certificates", certificates.len(), usize::from(u16::MAX)))?;
        w.u16(n);
        for c in certificates {
            c.encode(&mut w)?;
        }
    }
    Ok(w.into_vec())
}

/// Decodes a record written by [`encode_record`]. Every count is checked against
/// the bytes that remain, so a damaged record fails instead of allocating.
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader::new(bytes);
    let magic = r.array::<4>("record.magic")?;
    if &magic != RECORD_MAGIC {
        return Err(DecodeError::invalid(
            "record.magic",
            u64::from(u32::from_be_bytes(magic)),
            "a p2psip storage record (RLD1)",
        ));
    }
    let kinds = r.u16("record.kinds")?;
    let mut out = Vec::new();
    for _ in 0..kinds {
        let kind = KindId(r.u32("record.kind")?);
        let model = model_from_code(r.u8("record.model")?)?;
        let generation = r.u64("record.generation")?;
        let count = r.u32("record.values")?;
        let mut values = Vec::new();
        for _ in 0..count {
            // Each value takes at least its expiry and a StoredData length: a count
            // larger than the bytes left fails here, one element at a time.
            let expires = Time(r.u64("record.expires")?);
            values.push((expires, StoredData::decode(&mut r, model)?));
        }
        out.push(KindRecord {
            kind,
            model,
            generation,
            values,
        });
    }
    let count = r.u16("record.signers")?;
    let mut signers = Vec::new();
    for _ in 0..count {
        let identity = SignerIdentity::decode(&mut r)?;
        let n = r.u16("record.certificates")?;
        let mut certificates = Vec::new();
        for _ in 0..n {
            certificates.push(GenericCertificate::decode(&mut r)?);
        }
        signers.push((identity, certificates));
    }
    r.finish("record")?;
    Ok(Record { kinds: out, signers })
}

fn model_code(model: DataModel) -> u8 {
    match model {
        DataModel::Single => 1,
        DataModel::Array => 2,
        DataModel::Dictionary => 3,
    }
}

fn model_from_code(code: u8) -> Result<DataModel, DecodeError> {
    match code {
        1 => Ok(DataModel::Single),
        2 => Ok(DataModel::Array),
        3 => Ok(DataModel::Dictionary),
        other => Err(DecodeError::invalid(
            "record.model",
            u64::from(other),
            "1 (single), 2 (array) or 3 (dictionary)",
        )),
    }
}

/// What [`Node::restore_storage`](crate::Node::restore_storage) made of the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Resource-IDs that hold something again.
    pub resources: usize,
    /// Values loaded.
    pub values: usize,
    /// Values whose lifetime had run out, purged.
    pub expired: usize,
    /// Kinds the overlay no longer defines, or whose data model changed, dropped.
    pub dropped_kinds: usize,
    /// Records that could not be read, dropped (the runtime may log them).
    pub unreadable: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use reload_wire::{DataValue, Signature, StoredDataValue};

    fn sample() -> Record {
        Record {
            kinds: vec![KindRecord {
                kind: KindId(7),
                model: DataModel::Dictionary,
                generation: 3,
                values: vec![(
                    Time(42),
                    StoredData {
                        storage_time: 9,
                        lifetime: 60,
                        value: StoredDataValue::Dictionary {
                            key: b"k".to_vec(),
                            value: DataValue::new(b"v".to_vec()),
                        },
                        signature: Signature::synthesized(),
                    },
                )],
            }],
            signers: vec![(SignerIdentity::None, vec![GenericCertificate::x509(vec![0x30, 0x00])])],
        }
    }

    #[test]
    fn records_round_trip() {
        let bytes = encode_record(&sample()).expect("encodes");
        assert_eq!(decode_record(&bytes).expect("decodes"), sample());
    }

    #[test]
    fn damaged_records_fail_without_panicking() {
        let bytes = encode_record(&sample()).expect("encodes");
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_record(&longer).is_err(), "trailing bytes");
        // Every single-byte change either decodes to something or fails cleanly.
        for i in 0..bytes.len() {
            for b in [0x00, 0x7f, 0xff] {
                let mut changed = bytes.clone();
                changed[i] = b;
                let _ = decode_record(&changed);
            }
        }
        // Counts far beyond the bytes present fail fast.
        let mut huge = b"RLD1".to_vec();
        huge.extend_from_slice(&[
            0x00, 0x01, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
        ]);
        assert!(decode_record(&huge).is_err());
    }
}
