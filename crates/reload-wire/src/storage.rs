//! The storage structures (RFC 6940 §7): StoredData in its three data models, and
//! the bodies of Store, Fetch, Stat and Find.
//!
//! A Kind's data model is not on the wire (§7.4.2.1): it comes from the Kind's
//! definition. Decoding therefore takes [`DataModels`]; a Kind it does not know
//! makes decoding fail with [`DecodeErrorKind::UnknownKinds`] listing every such
//! Kind in the message, which is what Error_Unknown_Kind must carry (§7.4.1.2).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::HashAlgorithm;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::hex;
use crate::ids::{KindId, NodeId, ResourceId};
use crate::security::Signature;

/// A data model (RFC 6940 §7.2, registry §14.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataModel {
    /// One value per Resource-ID and Kind.
    Single,
    /// A sparse array indexed from zero.
    Array,
    /// Values indexed by an opaque key.
    Dictionary,
}

/// Which data model each Kind uses: what a decoder needs to read stored values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataModels(BTreeMap<KindId, DataModel>);

impl DataModels {
    /// No Kinds at all.
    pub fn empty() -> Self {
        DataModels(BTreeMap::new())
    }

    /// The registered Kinds: SIP-REGISTRATION (dictionary, RFC 7904 §7), TURN-SERVICE
    /// (single, §9), CERTIFICATE_BY_NODE and CERTIFICATE_BY_USER (array, §8).
    pub fn registered() -> Self {
        let mut m = DataModels::empty();
        m.insert(KindId::SIP_REGISTRATION, DataModel::Dictionary);
        m.insert(KindId::TURN_SERVICE, DataModel::Single);
        m.insert(KindId::CERTIFICATE_BY_NODE, DataModel::Array);
        m.insert(KindId::CERTIFICATE_BY_USER, DataModel::Array);
        m
    }

    /// Adds or replaces a Kind.
    pub fn insert(&mut self, kind: KindId, model: DataModel) {
        self.0.insert(kind, model);
    }

    /// The data model of `kind`.
    pub fn get(&self, kind: KindId) -> Option<DataModel> {
        self.0.get(&kind).copied()
    }

    /// Every known Kind and its model.
    pub fn iter(&self) -> impl Iterator<Item = (KindId, DataModel)> + '_ {
        self.0.iter().map(|(k, m)| (*k, *m))
    }
}

impl Default for DataModels {
    fn default() -> Self {
        DataModels::registered()
    }
}

/// Fails with every Kind of `kinds` that `models` does not know.
fn check_known(models: &DataModels, kinds: impl Iterator<Item = KindId>) -> Result<(), DecodeError> {
    let mut unknown: Vec<KindId> = kinds.filter(|k| models.get(*k).is_none()).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    unknown.dedup();
    Err(DecodeError::new("KindId", DecodeErrorKind::UnknownKinds(unknown)))
}

/// Walks a list of `KindId`-led records to collect their Kinds before parsing them:
/// each record is `KindId`, `skip_fixed` bytes, then a vector of width `prefix`.
fn peek_kinds(bytes: &[u8], skip_fixed: usize, prefix: Prefix) -> Result<Vec<KindId>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut kinds = Vec::new();
    while !r.is_empty() {
        kinds.push(KindId::decode(&mut r)?);
        r.take(skip_fixed, "KindId")?;
        r.vector(prefix, "KindId")?;
    }
    Ok(kinds)
}

/// `DataValue` (RFC 6940 §7.2): a value, or the statement that none exists.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DataValue {
    /// False for a deleted or absent value.
    pub exists: bool,
    /// The value.
    #[serde(serialize_with = "hex::serialize")]
    pub value: Vec<u8>,
}

impl DataValue {
    /// A present value.
    pub fn new(value: Vec<u8>) -> Self {
        DataValue { exists: true, value }
    }

    /// A nonexistent value (used to delete, §7.4.1.3).
    pub fn absent() -> Self {
        DataValue {
            exists: false,
            value: Vec::new(),
        }
    }
}

impl Encode for DataValue {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.boolean(self.exists);
        w.opaque(Prefix::U32, "DataValue.value", &self.value)
    }
}

impl Decode for DataValue {
    const NAME: &'static str = "DataValue";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DataValue {
            exists: r.boolean("DataValue.exists")?,
            value: r.opaque(Prefix::U32, "DataValue.value")?,
        })
    }
}

/// The append index of an array Store (§7.4.1.1): "put it at the end".
pub const ARRAY_APPEND: u32 = 0xffff_ffff;

/// `StoredDataValue`: a value in one of the three data models.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum StoredDataValue {
    /// `single_value_entry`.
    Single {
        /// The value.
        value: DataValue,
    },
    /// `ArrayEntry`.
    Array {
        /// Position in the array; [`ARRAY_APPEND`] in a Store appends.
        index: u32,
        /// The value.
        value: DataValue,
    },
    /// `DictionaryEntry`.
    Dictionary {
        /// `DictionaryKey<0..2^16-1>`.
        #[serde(serialize_with = "hex::serialize")]
        key: Vec<u8>,
        /// The value.
        value: DataValue,
    },
}

impl StoredDataValue {
    /// The data model this value belongs to.
    pub fn model(&self) -> DataModel {
        match self {
            StoredDataValue::Single { .. } => DataModel::Single,
            StoredDataValue::Array { .. } => DataModel::Array,
            StoredDataValue::Dictionary { .. } => DataModel::Dictionary,
        }
    }

    /// The DataValue inside, whatever the model.
    pub fn data_value(&self) -> &DataValue {
        match self {
            StoredDataValue::Single { value }
            | StoredDataValue::Array { value, .. }
            | StoredDataValue::Dictionary { value, .. } => value,
        }
    }

    /// Reads a value of `model`.
    pub fn decode(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        Ok(match model {
            DataModel::Single => StoredDataValue::Single {
                value: DataValue::decode(r)?,
            },
            DataModel::Array => StoredDataValue::Array {
                index: r.u32("ArrayEntry.index")?,
                value: DataValue::decode(r)?,
            },
            DataModel::Dictionary => StoredDataValue::Dictionary {
                key: r.opaque(Prefix::U16, "DictionaryEntry.key")?,
                value: DataValue::decode(r)?,
            },
        })
    }
}

impl Encode for StoredDataValue {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            StoredDataValue::Single { value } => value.encode(w),
            StoredDataValue::Array { index, value } => {
                w.u32(*index);
                value.encode(w)
            }
            StoredDataValue::Dictionary { key, value } => {
                w.opaque(Prefix::U16, "DictionaryEntry.key", key)?;
                value.encode(w)
            }
        }
    }
}

/// `StoredData` (RFC 6940 §7): one signed value with its storage time and lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct StoredData {
    /// Milliseconds since the Unix epoch when the value was stored.
    pub storage_time: u64,
    /// Seconds of validity from when the storing peer received the Store.
    pub lifetime: u32,
    /// The value.
    pub value: StoredDataValue,
    /// The owner's signature over resource, kind, storage time, value and identity (§7.1).
    pub signature: Signature,
}

impl StoredData {
    /// Reads a StoredData whose value is of `model`.
    pub fn decode(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        let mut v = r.vector(Prefix::U32, "StoredData.length")?;
        let d = StoredData {
            storage_time: v.u64("StoredData.storage_time")?,
            lifetime: v.u32("StoredData.lifetime")?,
            value: StoredDataValue::decode(&mut v, model)?,
            signature: Signature::decode(&mut v)?,
        };
        v.finish("StoredData")?;
        Ok(d)
    }
}

impl Encode for StoredData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.vector(Prefix::U32, "StoredData.length", |w| {
            w.u64(self.storage_time);
            w.u32(self.lifetime);
            self.value.encode(w)?;
            self.signature.encode(w)
        })
    }
}

/// Checks that every value of a Kind uses the Kind's model, so that what is
/// encoded is what a receiver with the same Kind definitions will decode.
fn check_models(models: impl Iterator<Item = DataModel>, field: &'static str) -> Result<(), EncodeError> {
    let mut models = models.peekable();
    let first = models.peek().copied();
    if models.any(|m| Some(m) != first) {
        return Err(EncodeError::invalid(
            field,
            "all values of one Kind share its data model",
        ));
    }
    Ok(())
}

/// `StoreKindData`: the values of one Kind in a Store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreKindData {
    /// The Kind.
    pub kind: KindId,
    /// Expected current generation, 0 to skip the check.
    pub generation_counter: u64,
    /// The values.
    pub values: Vec<StoredData>,
}

impl Encode for StoreKindData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        check_models(self.values.iter().map(|v| v.value.model()), "StoreKindData.values")?;
        self.kind.encode(w)?;
        w.u64(self.generation_counter);
        w.list(Prefix::U32, "StoreKindData.values", &self.values)
    }
}

impl StoreKindData {
    fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let kind = KindId::decode(r)?;
        let model = models
            .get(kind)
            .ok_or_else(|| DecodeError::new("StoreKindData.kind", DecodeErrorKind::UnknownKinds(vec![kind])))?;
        Ok(StoreKindData {
            kind,
            generation_counter: r.u64("StoreKindData.generation_counter")?,
            values: r.list(Prefix::U32, "StoreKindData.values", |r| StoredData::decode(r, model))?,
        })
    }
}

/// `StoreReq` (RFC 6940 §7.4.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreReq {
    /// Where to store.
    pub resource: ResourceId,
    /// 0 for an original store, 1.. for the replicas the responsible peer makes.
    pub replica_number: u8,
    /// One entry per Kind.
    pub kind_data: Vec<StoreKindData>,
}

impl Encode for StoreReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.resource.encode(w)?;
        w.u8(self.replica_number);
        w.list(Prefix::U32, "StoreReq.kind_data", &self.kind_data)
    }
}

impl StoreReq {
    /// Reads a StoreReq whose Kinds are all in `models`.
    pub fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let resource = ResourceId::decode(r)?;
        let replica_number = r.u8("StoreReq.replica_number")?;
        let mut list = r.vector(Prefix::U32, "StoreReq.kind_data")?;
        check_known(models, peek_kinds(list.rest(), 8, Prefix::U32)?.into_iter())?;
        let mut kind_data = Vec::new();
        while !list.is_empty() {
            kind_data.push(StoreKindData::decode(&mut list, models)?);
        }
        Ok(StoreReq {
            resource,
            replica_number,
            kind_data,
        })
    }
}

/// `StoreKindResponse`: the outcome of a Store for one Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// The generation counter after the store.
    pub generation_counter: u64,
    /// The peers holding replicas.
    pub replicas: Vec<NodeId>,
}

impl Encode for StoreKindResponse {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.kind.encode(w)?;
        w.u64(self.generation_counter);
        w.list(Prefix::U16, "StoreKindResponse.replicas", &self.replicas)
    }
}

impl Decode for StoreKindResponse {
    const NAME: &'static str = "StoreKindResponse";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoreKindResponse {
            kind: KindId::decode(r)?,
            generation_counter: r.u64("StoreKindResponse.generation_counter")?,
            replicas: crate::chord::decode_node_ids(r, "StoreKindResponse.replicas")?,
        })
    }
}

/// `StoreAns` (RFC 6940 §7.4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreAns {
    /// One entry per Kind of the request.
    pub kind_responses: Vec<StoreKindResponse>,
}

impl Encode for StoreAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U16, "StoreAns.kind_responses", &self.kind_responses)
    }
}

impl Decode for StoreAns {
    const NAME: &'static str = "StoreAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoreAns {
            kind_responses: r.list(Prefix::U16, "StoreAns.kind_responses", StoreKindResponse::decode)?,
        })
    }
}

/// `ArrayRange`: indices `first..=last`; 0xffffffff means the last element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ArrayRange {
    /// First index.
    pub first: u32,
    /// Last index.
    pub last: u32,
}

impl Encode for ArrayRange {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u32(self.first);
        w.u32(self.last);
        Ok(())
    }
}

impl Decode for ArrayRange {
    const NAME: &'static str = "ArrayRange";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ArrayRange {
            first: r.u32("ArrayRange.first")?,
            last: r.u32("ArrayRange.last")?,
        })
    }
}

/// `DictionaryKey<0..2^16-1>` as an element of a list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DictionaryKey(#[serde(serialize_with = "hex::serialize")] pub Vec<u8>);

impl Encode for DictionaryKey {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U16, "DictionaryKey", &self.0)
    }
}

impl Decode for DictionaryKey {
    const NAME: &'static str = "DictionaryKey";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DictionaryKey(r.opaque(Prefix::U16, "DictionaryKey")?))
    }
}

/// The `model_specifier` of a StoredDataSpecifier: which values of the Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "model", content = "select", rename_all = "snake_case")]
pub enum ModelSpecifier {
    /// The single value.
    Single,
    /// These index ranges.
    Array(Vec<ArrayRange>),
    /// These keys; none means all.
    Dictionary(Vec<DictionaryKey>),
}

impl ModelSpecifier {
    /// The data model this specifier selects in.
    pub fn model(&self) -> DataModel {
        match self {
            ModelSpecifier::Single => DataModel::Single,
            ModelSpecifier::Array(_) => DataModel::Array,
            ModelSpecifier::Dictionary(_) => DataModel::Dictionary,
        }
    }
}

/// `StoredDataSpecifier` (RFC 6940 §7.4.2.1): what to fetch or stat of one Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredDataSpecifier {
    /// The Kind.
    pub kind: KindId,
    /// The last generation seen; a match returns no values.
    pub generation: u64,
    /// Which values.
    pub model_specifier: ModelSpecifier,
}

impl Encode for StoredDataSpecifier {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.kind.encode(w)?;
        w.u64(self.generation);
        w.vector(Prefix::U16, "StoredDataSpecifier.length", |w| {
            match &self.model_specifier {
                ModelSpecifier::Single => Ok(()),
                ModelSpecifier::Array(ranges) => w.list(Prefix::U16, "StoredDataSpecifier.indices", ranges),
                ModelSpecifier::Dictionary(keys) => w.list(Prefix::U16, "StoredDataSpecifier.keys", keys),
            }
        })
    }
}

impl StoredDataSpecifier {
    fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let kind = KindId::decode(r)?;
        let generation = r.u64("StoredDataSpecifier.generation")?;
        let mut v = r.vector(Prefix::U16, "StoredDataSpecifier.length")?;
        let model = models
            .get(kind)
            .ok_or_else(|| DecodeError::new("StoredDataSpecifier.kind", DecodeErrorKind::UnknownKinds(vec![kind])))?;
        let model_specifier = match model {
            DataModel::Single => ModelSpecifier::Single,
            DataModel::Array => {
                ModelSpecifier::Array(v.list(Prefix::U16, "StoredDataSpecifier.indices", ArrayRange::decode)?)
            }
            DataModel::Dictionary => {
                ModelSpecifier::Dictionary(v.list(Prefix::U16, "StoredDataSpecifier.keys", DictionaryKey::decode)?)
            }
        };
        v.finish("StoredDataSpecifier")?;
        Ok(StoredDataSpecifier {
            kind,
            generation,
            model_specifier,
        })
    }
}

/// `FetchReq` (RFC 6940 §7.4.2.1); `StatReq` (§7.4.3.1) has the same layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchReq {
    /// Where to fetch from.
    pub resource: ResourceId,
    /// What to fetch.
    pub specifiers: Vec<StoredDataSpecifier>,
}

/// `StatReq` (RFC 6940 §7.4.3.1): identical to a Fetch request.
pub type StatReq = FetchReq;

impl Encode for FetchReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.resource.encode(w)?;
        w.list(Prefix::U16, "FetchReq.specifiers", &self.specifiers)
    }
}

impl FetchReq {
    /// Reads a FetchReq (or StatReq) whose Kinds are all in `models`.
    pub fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let resource = ResourceId::decode(r)?;
        let mut list = r.vector(Prefix::U16, "FetchReq.specifiers")?;
        check_known(models, peek_kinds(list.rest(), 8, Prefix::U16)?.into_iter())?;
        let mut specifiers = Vec::new();
        while !list.is_empty() {
            specifiers.push(StoredDataSpecifier::decode(&mut list, models)?);
        }
        Ok(FetchReq { resource, specifiers })
    }
}

/// `FetchKindResponse`: the values of one Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// Its generation counter.
    pub generation: u64,
    /// The values; empty if the requester's generation matched.
    pub values: Vec<StoredData>,
}

impl Encode for FetchKindResponse {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        check_models(self.values.iter().map(|v| v.value.model()), "FetchKindResponse.values")?;
        self.kind.encode(w)?;
        w.u64(self.generation);
        w.list(Prefix::U32, "FetchKindResponse.values", &self.values)
    }
}

/// `FetchAns` (RFC 6940 §7.4.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FetchAns {
    /// One entry per specifier of the request.
    pub kind_responses: Vec<FetchKindResponse>,
}

impl Encode for FetchAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U32, "FetchAns.kind_responses", &self.kind_responses)
    }
}

impl FetchAns {
    /// Reads a FetchAns whose Kinds are all in `models`.
    pub fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let mut list = r.vector(Prefix::U32, "FetchAns.kind_responses")?;
        check_known(models, peek_kinds(list.rest(), 8, Prefix::U32)?.into_iter())?;
        let mut kind_responses = Vec::new();
        while !list.is_empty() {
            let kind = KindId::decode(&mut list)?;
            let model = models
                .get(kind)
                .ok_or_else(|| DecodeError::new("FetchKindResponse.kind", DecodeErrorKind::UnknownKinds(vec![kind])))?;
            kind_responses.push(FetchKindResponse {
                kind,
                generation: list.u64("FetchKindResponse.generation")?,
                values: list.list(Prefix::U32, "FetchKindResponse.values", |r| {
                    StoredData::decode(r, model)
                })?,
            });
        }
        Ok(FetchAns { kind_responses })
    }
}

/// `MetaData` (RFC 6940 §7.4.3.2): a value's size and digest instead of the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetaData {
    /// Whether the value exists.
    pub exists: bool,
    /// The value's length.
    pub value_length: u32,
    /// The digest algorithm.
    pub hash_algorithm: HashAlgorithm,
    /// Digest of the DataValue's value including its 4 length bytes.
    #[serde(serialize_with = "hex::serialize")]
    pub hash_value: Vec<u8>,
}

impl Encode for MetaData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.boolean(self.exists);
        w.u32(self.value_length);
        w.u8(self.hash_algorithm.0);
        w.opaque(Prefix::U8, "MetaData.hash_value", &self.hash_value)
    }
}

impl Decode for MetaData {
    const NAME: &'static str = "MetaData";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MetaData {
            exists: r.boolean("MetaData.exists")?,
            value_length: r.u32("MetaData.value_length")?,
            hash_algorithm: HashAlgorithm(r.u8("MetaData.hash_algorithm")?),
            hash_value: r.opaque(Prefix::U8, "MetaData.hash_value")?,
        })
    }
}

/// `MetaDataValue`: metadata in one of the three data models.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum MetaDataValue {
    /// `single_value_entry`.
    Single {
        /// The metadata.
        value: MetaData,
    },
    /// `ArrayEntryMeta`.
    Array {
        /// The index.
        index: u32,
        /// The metadata.
        value: MetaData,
    },
    /// `DictionaryEntryMeta`.
    Dictionary {
        /// The key.
        #[serde(serialize_with = "hex::serialize")]
        key: Vec<u8>,
        /// The metadata.
        value: MetaData,
    },
}

impl MetaDataValue {
    fn model(&self) -> DataModel {
        match self {
            MetaDataValue::Single { .. } => DataModel::Single,
            MetaDataValue::Array { .. } => DataModel::Array,
            MetaDataValue::Dictionary { .. } => DataModel::Dictionary,
        }
    }

    fn decode(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        Ok(match model {
            DataModel::Single => MetaDataValue::Single {
                value: MetaData::decode(r)?,
            },
            DataModel::Array => MetaDataValue::Array {
                index: r.u32("ArrayEntryMeta.index")?,
                value: MetaData::decode(r)?,
            },
            DataModel::Dictionary => MetaDataValue::Dictionary {
                key: r.opaque(Prefix::U16, "DictionaryEntryMeta.key")?,
                value: MetaData::decode(r)?,
            },
        })
    }
}

impl Encode for MetaDataValue {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            MetaDataValue::Single { value } => value.encode(w),
            MetaDataValue::Array { index, value } => {
                w.u32(*index);
                value.encode(w)
            }
            MetaDataValue::Dictionary { key, value } => {
                w.opaque(Prefix::U16, "DictionaryEntryMeta.key", key)?;
                value.encode(w)
            }
        }
    }
}

/// `StoredMetaData` (RFC 6940 §7.4.3.2). Its first field, `value_length`, stands
/// where StoredData has `length` ("the same as the corresponding fields in
/// StoredData"), so it is written as the length of the rest of the structure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredMetaData {
    /// Storage time, as in StoredData.
    pub storage_time: u64,
    /// Lifetime, as in StoredData.
    pub lifetime: u32,
    /// The metadata.
    pub metadata: MetaDataValue,
}

impl Encode for StoredMetaData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.vector(Prefix::U32, "StoredMetaData.value_length", |w| {
            w.u64(self.storage_time);
            w.u32(self.lifetime);
            self.metadata.encode(w)
        })
    }
}

impl StoredMetaData {
    fn decode(r: &mut Reader<'_>, model: DataModel) -> Result<Self, DecodeError> {
        let mut v = r.vector(Prefix::U32, "StoredMetaData.value_length")?;
        let m = StoredMetaData {
            storage_time: v.u64("StoredMetaData.storage_time")?,
            lifetime: v.u32("StoredMetaData.lifetime")?,
            metadata: MetaDataValue::decode(&mut v, model)?,
        };
        v.finish("StoredMetaData")?;
        Ok(m)
    }
}

/// `StatKindResponse`: the metadata of one Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatKindResponse {
    /// The Kind.
    pub kind: KindId,
    /// Its generation counter.
    pub generation: u64,
    /// The metadata.
    pub values: Vec<StoredMetaData>,
}

impl Encode for StatKindResponse {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        check_models(
            self.values.iter().map(|v| v.metadata.model()),
            "StatKindResponse.values",
        )?;
        self.kind.encode(w)?;
        w.u64(self.generation);
        w.list(Prefix::U32, "StatKindResponse.values", &self.values)
    }
}

/// `StatAns` (RFC 6940 §7.4.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatAns {
    /// One entry per specifier of the request.
    pub kind_responses: Vec<StatKindResponse>,
}

impl Encode for StatAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U32, "StatAns.kind_responses", &self.kind_responses)
    }
}

impl StatAns {
    /// Reads a StatAns whose Kinds are all in `models`.
    pub fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let mut list = r.vector(Prefix::U32, "StatAns.kind_responses")?;
        check_known(models, peek_kinds(list.rest(), 8, Prefix::U32)?.into_iter())?;
        let mut kind_responses = Vec::new();
        while !list.is_empty() {
            let kind = KindId::decode(&mut list)?;
            let model = models
                .get(kind)
                .ok_or_else(|| DecodeError::new("StatKindResponse.kind", DecodeErrorKind::UnknownKinds(vec![kind])))?;
            kind_responses.push(StatKindResponse {
                kind,
                generation: list.u64("StatKindResponse.generation")?,
                values: list.list(Prefix::U32, "StatKindResponse.values", |r| {
                    StoredMetaData::decode(r, model)
                })?,
            });
        }
        Ok(StatAns { kind_responses })
    }
}

/// `FindReq` (RFC 6940 §7.4.4.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindReq {
    /// The Resource-ID to search near.
    pub resource: ResourceId,
    /// The Kinds searched for, each once.
    pub kinds: Vec<KindId>,
}

impl Encode for FindReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.resource.encode(w)?;
        w.list(Prefix::U8, "FindReq.kinds", &self.kinds)
    }
}

impl Decode for FindReq {
    const NAME: &'static str = "FindReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let resource = ResourceId::decode(r)?;
        let mut v = r.vector(Prefix::U8, "FindReq.kinds")?;
        if v.remaining() % 4 != 0 {
            return Err(DecodeError::invalid(
                "FindReq.kinds",
                v.remaining() as u64,
                "a multiple of 4 (whole Kind-IDs)",
            ));
        }
        let mut kinds = Vec::with_capacity(v.remaining() / 4);
        while !v.is_empty() {
            kinds.push(KindId::decode(&mut v)?);
        }
        Ok(FindReq { resource, kinds })
    }
}

/// `FindKindData`: the closest Resource-ID of one Kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindKindData {
    /// The Kind.
    pub kind: KindId,
    /// The closest Resource-ID, or an empty one... see [`FindKindData::closest`].
    pub closest: ResourceId,
}

impl Encode for FindKindData {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.kind.encode(w)?;
        self.closest.encode(w)
    }
}

impl Decode for FindKindData {
    const NAME: &'static str = "FindKindData";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FindKindData {
            kind: KindId::decode(r)?,
            closest: ResourceId::decode(r)?,
        })
    }
}

/// `FindAns` (RFC 6940 §7.4.4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindAns {
    /// One entry per Kind that may be found.
    pub results: Vec<FindKindData>,
}

impl Encode for FindAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U16, "FindAns.results", &self.results)
    }
}

impl Decode for FindAns {
    const NAME: &'static str = "FindAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FindAns {
            results: r.list(Prefix::U16, "FindAns.results", FindKindData::decode)?,
        })
    }
}
