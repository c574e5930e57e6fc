//! The values a peer holds, in the three data models (RFC 6940 §7.2), with the
//! replacement, generation and expiry rules of §7.4.
//!
//! Signatures and access control are checked by the caller before [`DataStore::store`];
//! the store enforces what depends on what it already holds: storage times,
//! generation counters, sizes and counts, atomicity across the Kinds of one request.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use reload_wire::storage::ARRAY_APPEND;
use reload_wire::{
    ArrayRange, DataModel, DataValue, ErrorCode, FetchKindResponse, FindKindData, GenericCertificate, HashAlgorithm,
    KindId, MetaData, MetaDataValue, ModelSpecifier, NodeId, ResourceId, Signature, SignerIdentity, StatKindResponse,
    StoreKindData, StoredData, StoredDataSpecifier, StoredDataValue, StoredMetaData,
};
use sha1::{Digest, Sha1};

use super::kind::{KindDef, KindRegistry};
use super::persist::{KindRecord, Record, RestoreSummary, StorageChange, decode_record, encode_record};
use crate::ring;
use crate::time::Time;

/// A held value and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    data: StoredData,
    expires: Time,
}

/// The values of one Kind at one Resource-ID.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Values {
    Single(Option<Held>),
    Array(BTreeMap<u32, Held>),
    Dictionary(BTreeMap<Vec<u8>, Held>),
}

impl Values {
    fn new(model: DataModel) -> Self {
        match model {
            DataModel::Single => Values::Single(None),
            DataModel::Array => Values::Array(BTreeMap::new()),
            DataModel::Dictionary => Values::Dictionary(BTreeMap::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Single(v) => usize::from(v.is_some()),
            Values::Array(m) => m.len(),
            Values::Dictionary(m) => m.len(),
        }
    }

    fn all(&self) -> Vec<&Held> {
        match self {
            Values::Single(v) => v.iter().collect(),
            Values::Array(m) => m.values().collect(),
            Values::Dictionary(m) => m.values().collect(),
        }
    }

    fn model(&self) -> DataModel {
        match self {
            Values::Single(_) => DataModel::Single,
            Values::Array(_) => DataModel::Array,
            Values::Dictionary(_) => DataModel::Dictionary,
        }
    }

    /// Puts a restored value in its place (index or key taken from the value).
    fn put(&mut self, held: Held) {
        match (self, &held.data.value) {
            (Values::Single(v), StoredDataValue::Single { .. }) => *v = Some(held),
            (Values::Array(m), StoredDataValue::Array { index, .. }) => {
                m.insert(*index, held);
            }
            (Values::Dictionary(m), StoredDataValue::Dictionary { key, .. }) => {
                m.insert(key.clone(), held);
            }
            // The record's model and the value's disagree only if the record was
            // damaged; StoredData::decode reads the value by the record's model.
            _ => {}
        }
    }

    fn expire(&mut self, now: Time) {
        match self {
            Values::Single(v) => {
                if v.as_ref().is_some_and(|h| h.expires <= now) {
                    *v = None;
                }
            }
            Values::Array(m) => m.retain(|_, h| h.expires > now),
            Values::Dictionary(m) => m.retain(|_, h| h.expires > now),
        }
    }
}

/// One Kind at one Resource-ID.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KindEntry {
    generation: u64,
    values: Values,
}

/// Why a Store was refused; each maps to the RFC's error (§7.4.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A Kind the overlay does not define: Error_Unknown_Kind with these Kind-IDs.
    UnknownKinds(Vec<KindId>),
    /// A value or the count of values exceeds the Kind's limits: Error_Data_Too_Large.
    DataTooLarge(&'static str),
    /// A value is older than the one it would replace: Error_Data_Too_Old.
    DataTooOld,
    /// The request's generation counter is not the current one:
    /// Error_Generation_Counter_Too_Low with the current counters.
    GenerationCounterTooLow(Vec<(KindId, u64)>),
    /// A value's data model is not its Kind's, or a replica store with generation 0:
    /// Error_Invalid_Message.
    Invalid(&'static str),
}

impl StoreError {
    /// The RFC's error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::UnknownKinds(_) => ErrorCode::UNKNOWN_KIND,
            StoreError::DataTooLarge(_) => ErrorCode::DATA_TOO_LARGE,
            StoreError::DataTooOld => ErrorCode::DATA_TOO_OLD,
            StoreError::GenerationCounterTooLow(_) => ErrorCode::GENERATION_COUNTER_TOO_LOW,
            StoreError::Invalid(_) => ErrorCode::INVALID_MESSAGE,
        }
    }
}

/// Everything one peer stores.
#[derive(Clone, Debug, Default)]
pub struct DataStore {
    resources: BTreeMap<ResourceId, BTreeMap<KindId, KindEntry>>,
    /// Resource-IDs changed since the last [`DataStore::take_changes`], when
    /// changes are tracked for persistence.
    changed: Option<BTreeSet<ResourceId>>,
    /// The certificates of the held values' signers: this peer serves them with the
    /// values (§6.3.4) and replicates them, whatever its certificate cache forgets.
    signers: HashMap<SignerIdentity, Vec<GenericCertificate>>,
}

impl DataStore {
    /// An empty store.
    pub fn new() -> Self {
        DataStore::default()
    }

    /// How many Resource-IDs hold anything.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// Whether anything is held at `resource`.
    pub fn holds(&self, resource: &ResourceId) -> bool {
        self.resources.contains_key(resource)
    }

    /// The Resource-IDs held, in ring order.
    pub fn resources(&self) -> impl Iterator<Item = &ResourceId> {
        self.resources.keys()
    }

    /// Applies one StoreReq's Kinds atomically (§7.4.1.1: "If any operation fails,
    /// the state MUST be rolled back"). Returns the new generation of each Kind.
    /// `replica` says whether this is a replica store (replica_number > 0).
    pub fn store(
        &mut self,
        now: Time,
        registry: &KindRegistry,
        resource: &ResourceId,
        kind_data: &[StoreKindData],
        replica: bool,
    ) -> Result<Vec<(KindId, u64)>, StoreError> {
        let unknown: Vec<KindId> = kind_data
            .iter()
            .map(|k| k.kind)
            .filter(|k| registry.get(*k).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::UnknownKinds(unknown));
        }
        // Work on a copy of this resource and commit it only if every Kind succeeds.
        let mut staged = self.resources.get(resource).cloned().unwrap_or_default();
        for kinds in staged.values_mut() {
            kinds.values.expire(now);
        }
        let mut low = Vec::new();
        let mut result = Vec::with_capacity(kind_data.len());
        for kd in kind_data {
            let Some(def) = registry.get(kd.kind) else { continue };
            let entry = staged.entry(kd.kind).or_insert_with(|| KindEntry {
                generation: 0,
                values: Values::new(def.model),
            });
            if replica {
                // §7.4.1.1: replicas take the counter as sent and never use 0.
                if kd.generation_counter == 0 {
                    return Err(StoreError::Invalid("a replica store must carry its generation counter"));
                }
            } else if kd.generation_counter != 0 && kd.generation_counter != entry.generation {
                low.push((kd.kind, entry.generation));
                continue;
            }
            let changed = apply(now, def, entry, &kd.values)?;
            if replica {
                // A replica store that arrives after a later one must not roll the
                // counter back.
                entry.generation = entry.generation.max(kd.generation_counter);
            } else if changed {
                entry.generation += 1;
            }
            result.push((kd.kind, entry.generation));
        }
        if !low.is_empty() {
            return Err(StoreError::GenerationCounterTooLow(low));
        }
        staged.retain(|_, e| e.values.len() > 0);
        if staged.is_empty() {
            self.resources.remove(resource);
        } else {
            self.resources.insert(resource.clone(), staged);
        }
        // Even a store that changed no value may have extended an expiry.
        self.touch(resource);
        Ok(result)
    }

    /// The current generation counter of each Kind at `resource` (for the error
    /// info of Error_Generation_Counter_Too_Low).
    pub fn generation(&self, resource: &ResourceId, kind: KindId) -> u64 {
        self.resources
            .get(resource)
            .and_then(|k| k.get(&kind))
            .map_or(0, |e| e.generation)
    }

    /// Takes what another peer holds at `resource` where it is newer than this
    /// peer's copy (§7.4.1.1: after a store of data "previously stored by another
    /// node" fails with Error_Data_Too_Old or Error_Generation_Counter_Too_Low, the
    /// peer "MUST fetch the newer data ... and use that to replace its own copy").
    /// Values are taken one by one by storage time, as partition merging does;
    /// older ones are skipped, not refused, and the higher generation counter
    /// stays. The values must have been checked (signatures, policy) already.
    /// Returns how many values were taken.
    pub fn merge(
        &mut self,
        now: Time,
        registry: &KindRegistry,
        resource: &ResourceId,
        kinds: &[FetchKindResponse],
    ) -> usize {
        let mut taken = 0;
        let mut staged = self.resources.get(resource).cloned().unwrap_or_default();
        for kr in kinds {
            let Some(def) = registry.get(kr.kind) else { continue };
            let entry = staged.entry(kr.kind).or_insert_with(|| KindEntry {
                generation: 0,
                values: Values::new(def.model),
            });
            for v in &kr.values {
                if is_synthesized(v) || v.value.model() != def.model {
                    continue;
                }
                // Apply it alone: a value older than ours is simply not taken.
                let mut trial = entry.clone();
                if apply(now, def, &mut trial, std::slice::from_ref(v)).is_ok_and(|changed| changed) {
                    *entry = trial;
                    taken += 1;
                }
            }
            entry.generation = entry.generation.max(kr.generation);
        }
        staged.retain(|_, e| e.values.len() > 0);
        if !staged.is_empty() {
            self.resources.insert(resource.clone(), staged);
        }
        self.touch(resource);
        taken
    }

    /// Keeps `certificates` as what verifies values signed by `identity` (call it
    /// after a store the certificates verified). Forgotten once no held value has
    /// that signer.
    pub fn remember_signer(&mut self, identity: &SignerIdentity, certificates: Vec<GenericCertificate>) {
        if !certificates.is_empty() && self.signers.get(identity) != Some(&certificates) {
            self.signers.insert(identity.clone(), certificates);
        }
    }

    /// The certificates kept for values signed by `identity`.
    pub fn signer_certificates(&self, identity: &SignerIdentity) -> &[GenericCertificate] {
        self.signers.get(identity).map_or(&[], Vec::as_slice)
    }

    /// Drops every value whose lifetime has run out (§7: lifetime), and the
    /// certificates of signers no value needs any more.
    pub fn expire(&mut self, now: Time) {
        for (resource, kinds) in self.resources.iter_mut() {
            let before: usize = kinds.values().map(|e| e.values.len()).sum();
            for e in kinds.values_mut() {
                e.values.expire(now);
            }
            kinds.retain(|_, e| e.values.len() > 0);
            let after: usize = kinds.values().map(|e| e.values.len()).sum();
            if after != before {
                if let Some(changed) = self.changed.as_mut() {
                    changed.insert(resource.clone());
                }
            }
        }
        self.resources.retain(|_, k| !k.is_empty());
        if !self.signers.is_empty() {
            let used: HashSet<&SignerIdentity> = self
                .resources
                .values()
                .flat_map(|k| k.values())
                .flat_map(|e| e.values.all())
                .map(|h| &h.data.signature.identity)
                .collect();
            let unused: Vec<SignerIdentity> = self.signers.keys().filter(|i| !used.contains(i)).cloned().collect();
            for i in unused {
                self.signers.remove(&i);
            }
        }
    }

    /// Answers one StoredDataSpecifier of a Fetch (§7.4.2). A matching generation
    /// returns no values; absent entries come back as synthesized nonexistent values.
    pub fn fetch(&self, now: Time, resource: &ResourceId, spec: &StoredDataSpecifier) -> FetchKindResponse {
        let entry = self.resources.get(resource).and_then(|k| k.get(&spec.kind));
        let generation = entry.map_or(0, |e| e.generation);
        let values = if spec.generation != 0 && spec.generation == generation {
            Vec::new()
        } else {
            select(now, entry.map(|e| &e.values), &spec.model_specifier)
        };
        FetchKindResponse {
            kind: spec.kind,
            generation,
            values,
        }
    }

    /// Answers one StoredDataSpecifier of a Stat (§7.4.3): metadata instead of values.
    pub fn stat(&self, now: Time, resource: &ResourceId, spec: &StoredDataSpecifier) -> StatKindResponse {
        let f = self.fetch(now, resource, spec);
        StatKindResponse {
            kind: f.kind,
            generation: f.generation,
            values: f.values.iter().map(metadata).collect(),
        }
    }

    /// Answers a Find (§7.4.4): for each Kind, the held Resource-ID closest at or
    /// after `resource` on the ring, or the all-zero Resource-ID when none is held.
    pub fn find(&self, resource: &ResourceId, kinds: &[KindId]) -> Vec<FindKindData> {
        let start = ring::resource_point(resource);
        kinds
            .iter()
            .map(|kind| {
                let closest = self
                    .resources
                    .iter()
                    .filter(|(_, k)| k.contains_key(kind))
                    .map(|(r, _)| r)
                    .min_by_key(|r| ring::distance(start, ring::resource_point(r)))
                    .cloned()
                    .unwrap_or_else(|| ResourceId::from(NodeId::ZERO));
                FindKindData { kind: *kind, closest }
            })
            .collect()
    }

    /// The Kinds that hold values at `resource`.
    pub fn kinds_at(&self, resource: &ResourceId) -> Vec<KindId> {
        self.resources
            .get(resource)
            .map(|k| k.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Every value held at `resource`, by Kind, with the lifetime left (for
    /// replication and hand-over, §7.4.1.1: "adjust the lifetime value downward").
    pub fn export(&self, now: Time, resource: &ResourceId) -> Vec<(KindId, u64, Vec<StoredData>)> {
        let Some(kinds) = self.resources.get(resource) else {
            return Vec::new();
        };
        kinds
            .iter()
            .map(|(kind, e)| {
                let values = e
                    .values
                    .all()
                    .into_iter()
                    .filter(|h| h.expires > now)
                    .map(|h| {
                        let mut d = h.data.clone();
                        // Rounded to the nearest second: a hand-over a moment after the store
                        // keeps the lifetime the owner gave (§7.4.1.1 lowers it by the time held).
                        let left = h.expires.since(now).as_micros().saturating_add(500_000) / 1_000_000;
                        d.lifetime = u32::try_from(left).unwrap_or(u32::MAX);
                        d
                    })
                    .collect();
                (*kind, e.generation, values)
            })
            .collect()
    }

    /// Forgets a resource (after handing it to the peer now responsible, §10.7.3).
    pub fn remove(&mut self, resource: &ResourceId) {
        if self.resources.remove(resource).is_some() {
            self.touch(resource);
        }
    }

    // ----- persistence -----

    /// From now on, remember which Resource-IDs change, for [`DataStore::take_changes`].
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(BTreeSet::new);
    }

    fn touch(&mut self, resource: &ResourceId) {
        if let Some(changed) = self.changed.as_mut() {
            changed.insert(resource.clone());
        }
    }

    /// The changes since the last call, in Resource-ID order: each changed
    /// Resource-ID's whole state, or its removal. Empty unless tracking is on.
    pub fn take_changes(&mut self) -> Vec<StorageChange> {
        let Some(changed) = self.changed.as_mut() else {
            return Vec::new();
        };
        let changed = std::mem::take(changed);
        changed
            .into_iter()
            .map(|resource| match self.record(&resource) {
                Some(record) => StorageChange::Put { resource, record },
                None => StorageChange::Remove { resource },
            })
            .collect()
    }

    /// The record of `resource`, or `None` when nothing is held there. A state that
    /// cannot be encoded (it was decoded from the wire, so it can) counts as empty.
    fn record(&self, resource: &ResourceId) -> Option<Vec<u8>> {
        let kinds = self.resources.get(resource)?;
        let mut record = Record::default();
        for (kind, e) in kinds {
            let values = e.values.all();
            for h in &values {
                let identity = &h.data.signature.identity;
                if let Some(certs) = self.signers.get(identity) {
                    if !record.signers.iter().any(|(i, _)| i == identity) {
                        record.signers.push((identity.clone(), certs.clone()));
                    }
                }
            }
            record.kinds.push(KindRecord {
                kind: *kind,
                model: e.values.model(),
                generation: e.generation,
                values: values.into_iter().map(|h| (h.expires, h.data.clone())).collect(),
            });
        }
        encode_record(&record).ok()
    }

    /// Loads records saved by an earlier run (before the node starts). Values that
    /// expired meanwhile are purged, and Kinds the overlay no longer defines with
    /// the same data model are dropped; either way the record is rewritten.
    pub fn restore(
        &mut self,
        now: Time,
        registry: &KindRegistry,
        records: impl IntoIterator<Item = (ResourceId, Vec<u8>)>,
    ) -> RestoreSummary {
        let mut summary = RestoreSummary::default();
        for (resource, bytes) in records {
            let Ok(Record { kinds, signers }) = decode_record(&bytes) else {
                summary.unreadable += 1;
                self.touch(&resource);
                continue;
            };
            for (identity, certificates) in signers {
                self.remember_signer(&identity, certificates);
            }
            let mut entries = BTreeMap::new();
            let mut purged = false;
            for k in kinds {
                if registry.get(k.kind).map(|d| d.model) != Some(k.model) {
                    summary.dropped_kinds += 1;
                    purged = true;
                    continue;
                }
                let mut values = Values::new(k.model);
                for (expires, data) in k.values {
                    if expires <= now {
                        summary.expired += 1;
                        purged = true;
                    } else {
                        summary.values += 1;
                        values.put(Held { data, expires });
                    }
                }
                if values.len() > 0 {
                    entries.insert(
                        k.kind,
                        KindEntry {
                            generation: k.generation,
                            values,
                        },
                    );
                }
            }
            if purged {
                self.touch(&resource);
            }
            if !entries.is_empty() {
                summary.resources += 1;
                self.resources.insert(resource, entries);
            }
        }
        summary
    }
}

/// Applies a Kind's values to its entry; true if anything changed.
fn apply(now: Time, def: &KindDef, entry: &mut KindEntry, values: &[StoredData]) -> Result<bool, StoreError> {
    let mut changed = false;
    for v in values {
        if v.value.model() != def.model {
            return Err(StoreError::Invalid("the value's data model is not its Kind's"));
        }
        if v.value.data_value().value.len() > def.max_size as usize {
            return Err(StoreError::DataTooLarge("a value exceeds the Kind's max-size"));
        }
        let held = Held {
            data: v.clone(),
            expires: now + Duration::from_secs(u64::from(v.lifetime)),
        };
        match (&mut entry.values, &v.value) {
            (Values::Single(cur), _) => changed |= replace(cur, held)?,
            (Values::Array(m), StoredDataValue::Array { index, .. }) => {
                // §7.4.1.1: index 0xffffffff appends after the last element.
                let index = if *index == ARRAY_APPEND {
                    m.keys().next_back().map_or(0, |last| last.saturating_add(1))
                } else {
                    *index
                };
                let mut held = held;
                if let StoredDataValue::Array { index: i, .. } = &mut held.data.value {
                    *i = index;
                }
                let mut cur = m.remove(&index);
                changed |= replace(&mut cur, held)?;
                if let Some(h) = cur {
                    m.insert(index, h);
                }
            }
            (Values::Dictionary(m), StoredDataValue::Dictionary { key, .. }) => {
                let mut cur = m.remove(key);
                changed |= replace(&mut cur, held)?;
                if let Some(h) = cur {
                    m.insert(key.clone(), h);
                }
            }
            _ => return Err(StoreError::Invalid("the value's data model is not its Kind's")),
        }
        if entry.values.len() > def.max_count as usize {
            return Err(StoreError::DataTooLarge("more values than the Kind's max-count"));
        }
    }
    Ok(changed)
}

/// Puts `new` in `slot` unless it is older than what is there (§7: storage_time).
/// The same value again is accepted and changes nothing.
fn replace(slot: &mut Option<Held>, new: Held) -> Result<bool, StoreError> {
    if let Some(cur) = slot.as_ref() {
        if new.data.storage_time < cur.data.storage_time {
            return Err(StoreError::DataTooOld);
        }
        if new.data.storage_time == cur.data.storage_time {
            if new.data.value == cur.data.value && new.data.signature == cur.data.signature {
                // A retransmission or a replica refresh: keep the later expiry.
                let expires = cur.expires.max(new.expires);
                if let Some(c) = slot.as_mut() {
                    c.expires = expires;
                }
                return Ok(false);
            }
            return Err(StoreError::DataTooOld);
        }
    }
    *slot = Some(new);
    Ok(true)
}

/// Whether `d` is what a storing peer synthesizes for an absent entry (§7.4.2.2):
/// unsigned, storage time 0, exists = false. It claims nothing, so a fetcher
/// accepts it unverified and nobody stores it.
pub fn is_synthesized(d: &StoredData) -> bool {
    d.signature.is_anonymous() && d.storage_time == 0 && !d.value.data_value().exists
}

/// A value the store synthesizes for an absent entry (§7.4.2.2): exists = false,
/// identity none, algorithm {none, anonymous}, empty signature.
fn absent(value: StoredDataValue) -> StoredData {
    StoredData {
        storage_time: 0,
        lifetime: 0,
        value,
        signature: Signature::synthesized(),
    }
}

fn select(now: Time, values: Option<&Values>, spec: &ModelSpecifier) -> Vec<StoredData> {
    let live = |h: &Held| (h.expires > now).then(|| h.data.clone());
    match (values, spec) {
        // A value past its lifetime but not yet swept is as absent as a missing one.
        (Some(Values::Single(Some(h))), ModelSpecifier::Single) if h.expires > now => vec![h.data.clone()],
        (_, ModelSpecifier::Single) => vec![absent(StoredDataValue::Single {
            value: DataValue::absent(),
        })],
        (v, ModelSpecifier::Array(ranges)) => {
            let m = match v {
                Some(Values::Array(m)) => Some(m),
                _ => None,
            };
            let last = m.and_then(|m| m.keys().next_back().copied());
            let mut out = Vec::new();
            for ArrayRange { first, last: end } in ranges {
                let end = if *end == ARRAY_APPEND { last.unwrap_or(0) } else { *end };
                if last.is_none() || first > &end {
                    continue;
                }
                // Bound the synthesized gaps by what is held, not by the request.
                let end = end.min(last.unwrap_or(0));
                for i in *first..=end {
                    match m.and_then(|m| m.get(&i)).and_then(live) {
                        Some(d) => out.push(d),
                        None => out.push(absent(StoredDataValue::Array {
                            index: i,
                            value: DataValue::absent(),
                        })),
                    }
                    if out.len() > 65_536 {
                        return out;
                    }
                }
            }
            out
        }
        (v, ModelSpecifier::Dictionary(keys)) => {
            let m = match v {
                Some(Values::Dictionary(m)) => Some(m),
                _ => None,
            };
            if keys.is_empty() {
                // A wildcard fetch: every entry (§7.4.2.1).
                return m.map(|m| m.values().filter_map(live).collect()).unwrap_or_default();
            }
            keys.iter()
                .map(|k| {
                    m.and_then(|m| m.get(&k.0)).and_then(live).unwrap_or_else(|| {
                        absent(StoredDataValue::Dictionary {
                            key: k.0.clone(),
                            value: DataValue::absent(),
                        })
                    })
                })
                .collect()
        }
    }
}

/// A value's metadata (§7.4.3.2): SHA-1 digest of the value with its 4 length bytes.
fn metadata(d: &StoredData) -> StoredMetaData {
    let dv = d.value.data_value();
    let mut h = Sha1::new();
    h.update((dv.value.len() as u32).to_be_bytes());
    h.update(&dv.value);
    let meta = MetaData {
        exists: dv.exists,
        value_length: dv.value.len() as u32,
        hash_algorithm: HashAlgorithm::SHA1,
        hash_value: h.finalize().to_vec(),
    };
    StoredMetaData {
        storage_time: d.storage_time,
        lifetime: d.lifetime,
        metadata: match &d.value {
            StoredDataValue::Single { .. } => MetaDataValue::Single { value: meta },
            StoredDataValue::Array { index, .. } => MetaDataValue::Array {
                index: *index,
                value: meta,
            },
            StoredDataValue::Dictionary { key, .. } => MetaDataValue::Dictionary {
                key: key.clone(),
                value: meta,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::access::AccessPolicy;
    use reload_wire::{DictionaryKey, SignatureAndHashAlgorithm, SignerIdentity};

    const SINGLE: KindId = KindId(0xf000_0001);
    const ARRAY: KindId = KindId(0xf000_0002);
    const DICT: KindId = KindId(0xf000_0003);

    fn registry() -> KindRegistry {
        let mut r = KindRegistry::default();
        for (id, model) in [
            (SINGLE, DataModel::Single),
            (ARRAY, DataModel::Array),
            (DICT, DataModel::Dictionary),
        ] {
            r.add(KindDef {
                id,
                name: format!("{id:?}"),
                model,
                policy: AccessPolicy::NodeMatch,
                max_count: 4,
                max_size: 16,
            });
        }
        r
    }

    fn sig() -> Signature {
        Signature {
            algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
            identity: SignerIdentity::CertHash {
                hash_alg: HashAlgorithm::SHA256,
                certificate_hash: vec![1; 32],
            },
            signature_value: vec![2; 8],
        }
    }

    fn data(time: u64, value: StoredDataValue) -> StoredData {
        StoredData {
            storage_time: time,
            lifetime: 60,
            value,
            signature: sig(),
        }
    }

    fn single(time: u64, v: &[u8]) -> StoredData {
        data(
            time,
            StoredDataValue::Single {
                value: DataValue::new(v.to_vec()),
            },
        )
    }

    fn at(index: u32, time: u64, v: &[u8]) -> StoredData {
        data(
            time,
            StoredDataValue::Array {
                index,
                value: DataValue::new(v.to_vec()),
            },
        )
    }

    fn entry(key: &[u8], time: u64, v: &[u8]) -> StoredData {
        data(
            time,
            StoredDataValue::Dictionary {
                key: key.to_vec(),
                value: DataValue::new(v.to_vec()),
            },
        )
    }

    fn kd(kind: KindId, generation: u64, values: Vec<StoredData>) -> StoreKindData {
        StoreKindData {
            kind,
            generation_counter: generation,
            values,
        }
    }

    fn spec(kind: KindId, generation: u64, model_specifier: ModelSpecifier) -> StoredDataSpecifier {
        StoredDataSpecifier {
            kind,
            generation,
            model_specifier,
        }
    }

    fn r() -> ResourceId {
        ResourceId::from(NodeId([9; 16]))
    }

    #[test]
    fn single_values_replace_by_storage_time_and_count_generations() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(10, b"a")])], false),
            Ok(vec![(SINGLE, 1)])
        );
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 1, vec![single(11, b"b")])], false),
            Ok(vec![(SINGLE, 2)])
        );
        // Older than what is held: Error_Data_Too_Old, nothing changes.
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(9, b"c")])], false),
            Err(StoreError::DataTooOld)
        );
        // A stale generation counter: Error_Generation_Counter_Too_Low with the current one.
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 1, vec![single(12, b"d")])], false),
            Err(StoreError::GenerationCounterTooLow(vec![(SINGLE, 2)]))
        );
        let f = s.fetch(t, &r(), &spec(SINGLE, 0, ModelSpecifier::Single));
        assert_eq!((f.generation, f.values), (2, vec![single(11, b"b")]));
        // The same generation as held: not modified, no values (§7.4.2.1).
        assert!(
            s.fetch(t, &r(), &spec(SINGLE, 2, ModelSpecifier::Single))
                .values
                .is_empty()
        );
        // A retransmission of the held value is accepted and changes nothing.
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(11, b"b")])], false),
            Ok(vec![(SINGLE, 2)])
        );
    }

    #[test]
    fn arrays_append_and_are_sparse() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        let v = vec![at(2, 1, b"x"), at(ARRAY_APPEND, 1, b"y")];
        assert!(s.store(t, &reg, &r(), &[kd(ARRAY, 0, v)], false).is_ok());
        let f = s.fetch(
            t,
            &r(),
            &spec(
                ARRAY,
                0,
                ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: ARRAY_APPEND,
                }]),
            ),
        );
        let got: Vec<(u32, bool)> = f
            .values
            .iter()
            .map(|d| match &d.value {
                StoredDataValue::Array { index, value } => (*index, value.exists),
                _ => unreachable!(),
            })
            .collect();
        // [NA, NA, "x", "y"]: the gaps are synthesized, unsigned, exists = false.
        assert_eq!(got, vec![(0, false), (1, false), (2, true), (3, true)]);
        assert!(f.values[0].signature.is_anonymous());
    }

    #[test]
    fn dictionaries_fetch_by_key_or_all() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        let v = vec![entry(b"k1", 1, b"one"), entry(b"k2", 1, b"two")];
        assert!(s.store(t, &reg, &r(), &[kd(DICT, 0, v)], false).is_ok());
        let all = s.fetch(t, &r(), &spec(DICT, 0, ModelSpecifier::Dictionary(vec![])));
        assert_eq!(all.values.len(), 2);
        let some = s.fetch(
            t,
            &r(),
            &spec(
                DICT,
                0,
                ModelSpecifier::Dictionary(vec![DictionaryKey(b"k2".to_vec()), DictionaryKey(b"zz".to_vec())]),
            ),
        );
        assert_eq!(some.values[0], entry(b"k2", 1, b"two"));
        assert!(!some.values[1].value.data_value().exists);
    }

    #[test]
    fn deletion_is_a_signed_nonexistent_value_and_expiry_removes_it() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"a")])], false)
                .is_ok()
        );
        let gone = data(
            2,
            StoredDataValue::Single {
                value: DataValue::absent(),
            },
        );
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![gone.clone()])], false)
                .is_ok()
        );
        let f = s.fetch(t, &r(), &spec(SINGLE, 0, ModelSpecifier::Single));
        assert_eq!(
            f.values,
            vec![gone],
            "the signed tombstone is kept and returned (§7.4.1.3)"
        );
        s.expire(t + Duration::from_secs(61));
        assert_eq!(s.resource_count(), 0);
    }

    #[test]
    fn limits_and_unknown_kinds_refuse_the_whole_request() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"keep")])], false)
                .is_ok()
        );
        // Two Kinds, the second too large: neither is stored (§7.4.1.1 atomicity).
        let req = [
            kd(SINGLE, 0, vec![single(5, b"new")]),
            kd(DICT, 0, vec![entry(b"k", 1, &[0; 17])]),
        ];
        assert_eq!(
            s.store(t, &reg, &r(), &req, false),
            Err(StoreError::DataTooLarge("a value exceeds the Kind's max-size"))
        );
        assert_eq!(
            s.fetch(t, &r(), &spec(SINGLE, 0, ModelSpecifier::Single)).values,
            vec![single(1, b"keep")]
        );
        let five: Vec<StoredData> = (0..5).map(|i| at(i, 1, b"v")).collect();
        assert!(matches!(
            s.store(t, &reg, &r(), &[kd(ARRAY, 0, five)], false),
            Err(StoreError::DataTooLarge(_))
        ));
        let unknown = s.store(t, &reg, &r(), &[kd(KindId(77), 0, vec![])], false);
        assert_eq!(unknown, Err(StoreError::UnknownKinds(vec![KindId(77)])));
        assert_eq!(unknown.err().map(|e| e.code()), Some(ErrorCode::UNKNOWN_KIND));
    }

    #[test]
    fn replicas_take_the_generation_as_sent() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert_eq!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 7, vec![single(1, b"a")])], true),
            Ok(vec![(SINGLE, 7)])
        );
        assert!(matches!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(2, b"a")])], true),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn stat_gives_lengths_and_digests() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"abc")])], false)
                .is_ok()
        );
        let st = s.stat(t, &r(), &spec(SINGLE, 0, ModelSpecifier::Single));
        let MetaDataValue::Single { value } = &st.values[0].metadata else {
            panic!("single")
        };
        assert_eq!(
            (value.exists, value.value_length, value.hash_value.len()),
            (true, 3, 20)
        );
    }

    #[test]
    fn find_returns_the_closest_resource_of_each_kind() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        let near = ResourceId::from(NodeId([0x50; 16]));
        let far = ResourceId::from(NodeId([0x90; 16]));
        assert!(
            s.store(t, &reg, &near, &[kd(SINGLE, 0, vec![single(1, b"a")])], false)
                .is_ok()
        );
        assert!(
            s.store(t, &reg, &far, &[kd(DICT, 0, vec![entry(b"k", 1, b"b")])], false)
                .is_ok()
        );
        let found = s.find(&ResourceId::from(NodeId([0x40; 16])), &[SINGLE, DICT, ARRAY]);
        assert_eq!(found[0].closest, near);
        assert_eq!(found[1].closest, far);
        assert_eq!(found[2].closest, ResourceId::from(NodeId::ZERO), "none held: 0");
    }

    #[test]
    fn export_lowers_lifetimes_for_hand_over() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"a")])], false)
                .is_ok()
        );
        let out = s.export(t + Duration::from_secs(20), &r());
        assert_eq!(out[0].2[0].lifetime, 40);
    }

    /// Applies what the store reports to an in-memory "disk".
    fn sync(s: &mut DataStore, disk: &mut BTreeMap<ResourceId, Vec<u8>>) {
        for c in s.take_changes() {
            match c {
                StorageChange::Put { resource, record } => {
                    disk.insert(resource, record);
                }
                StorageChange::Remove { resource } => {
                    disk.remove(&resource);
                }
            }
        }
    }

    #[test]
    fn changes_are_reported_only_when_tracked() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"a")])], false)
                .is_ok()
        );
        assert!(s.take_changes().is_empty(), "the simulator's stores pay nothing");
        s.track_changes();
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(2, b"b")])], false)
                .is_ok()
        );
        let changes = s.take_changes();
        assert!(matches!(changes.as_slice(), [StorageChange::Put { resource, .. }] if *resource == r()));
        assert!(s.take_changes().is_empty(), "taken once");
        // A refused store changes nothing and reports nothing.
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"old")])], false)
                .is_err()
        );
        assert!(s.take_changes().is_empty());
        s.remove(&r());
        assert_eq!(s.take_changes(), vec![StorageChange::Remove { resource: r() }]);
    }

    #[test]
    fn a_restored_store_answers_as_before_in_every_data_model() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        s.track_changes();
        let mut disk = BTreeMap::new();
        let req = [
            kd(SINGLE, 0, vec![single(1, b"a")]),
            kd(ARRAY, 0, vec![at(0, 1, b"x"), at(5, 1, b"y")]),
            kd(DICT, 0, vec![entry(b"k", 1, b"v"), entry(b"l", 1, b"w")]),
        ];
        assert!(s.store(t, &reg, &r(), &req, false).is_ok());
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 1, vec![single(2, b"b")])], false)
                .is_ok()
        );
        sync(&mut s, &mut disk);
        let mut back = DataStore::new();
        let later = t + Duration::from_secs(10);
        let summary = back.restore(later, &reg, disk.clone());
        assert_eq!(
            summary,
            RestoreSummary {
                resources: 1,
                values: 5,
                ..RestoreSummary::default()
            }
        );
        for (kind, ms) in [
            (SINGLE, ModelSpecifier::Single),
            (ARRAY, ModelSpecifier::Array(vec![ArrayRange { first: 0, last: 9 }])),
            (DICT, ModelSpecifier::Dictionary(Vec::new())),
        ] {
            assert_eq!(
                back.fetch(later, &r(), &spec(kind, 0, ms.clone())),
                s.fetch(later, &r(), &spec(kind, 0, ms))
            );
        }
        assert_eq!(back.generation(&r(), SINGLE), 2);
        assert_eq!(
            back.export(later, &r()),
            s.export(later, &r()),
            "lifetimes count from the original store"
        );
    }

    #[test]
    fn restore_purges_expired_values_drops_unknown_kinds_and_survives_damage() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        s.track_changes();
        let mut disk = BTreeMap::new();
        let mut short = single(1, b"short");
        short.lifetime = 5;
        assert!(
            s.store(
                t,
                &reg,
                &r(),
                &[kd(SINGLE, 0, vec![short]), kd(DICT, 0, vec![entry(b"k", 1, b"v")])],
                false
            )
            .is_ok()
        );
        let other = ResourceId::from(NodeId([7; 16]));
        assert!(
            s.store(t, &reg, &other, &[kd(ARRAY, 0, vec![at(0, 1, b"x")])], false)
                .is_ok()
        );
        let damaged = ResourceId::from(NodeId([5; 16]));
        sync(&mut s, &mut disk);
        disk.insert(damaged.clone(), b"RLD1\x00\x05garbage".to_vec());
        // The overlay's configuration no longer has the array Kind.
        let mut fewer = KindRegistry::default();
        for k in [SINGLE, DICT] {
            if let Some(def) = reg.get(k) {
                fewer.add(def.clone());
            }
        }
        let mut back = DataStore::new();
        back.track_changes();
        let summary = back.restore(t + Duration::from_secs(30), &fewer, disk.clone());
        assert_eq!(
            summary,
            RestoreSummary {
                resources: 1,
                values: 1,
                expired: 1,
                dropped_kinds: 1,
                unreadable: 1,
            }
        );
        assert!(back.holds(&r()) && !back.holds(&other) && !back.holds(&damaged));
        // What was purged is rewritten: the rest of r(), and removals for the others.
        sync(&mut back, &mut disk);
        assert_eq!(disk.len(), 1);
        let again = DataStore::new().restore(t + Duration::from_secs(30), &fewer, disk);
        assert_eq!((again.values, again.expired), (1, 0));
    }

    #[test]
    fn expiry_is_reported_as_a_change() {
        let (mut s, reg, t) = (DataStore::new(), registry(), Time::ZERO);
        s.track_changes();
        assert!(
            s.store(t, &reg, &r(), &[kd(SINGLE, 0, vec![single(1, b"a")])], false)
                .is_ok()
        );
        let _ = s.take_changes();
        s.expire(t + Duration::from_secs(30));
        assert!(s.take_changes().is_empty(), "nothing expired yet");
        s.expire(t + Duration::from_secs(61));
        assert_eq!(s.take_changes(), vec![StorageChange::Remove { resource: r() }]);
    }
}
