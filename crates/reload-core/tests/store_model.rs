//! Property: any sequence of stores, fetches and restarts on one peer gives what a
//! plain map of "latest value by storage time" gives (RFC 6940 §7.2, §7.4). A
//! restart reloads the store from the records its changes left: nothing is lost.

use std::collections::BTreeMap;

use proptest::prelude::*;
use reload_core::Time;
use reload_core::storage::{AccessPolicy, DataStore, KindDef, KindRegistry, MemoryBackend, StorageBackend, StoreError};
use reload_wire::*;

const DICT: KindId = KindId(0xf000_0003);

#[derive(Clone, Debug)]
enum Op {
    Store {
        key: u8,
        time: u64,
        value: u8,
        exists: bool,
    },
    Fetch {
        key: u8,
    },
    FetchAll,
    /// The peer stops and starts again from its persisted records.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..4, 0u64..8, any::<u8>(), prop::bool::weighted(0.8))
            .prop_map(|(key, time, value, exists)| Op::Store { key, time, value, exists }),
        1 => (0u8..5).prop_map(|key| Op::Fetch { key }),
        1 => Just(Op::FetchAll),
        1 => Just(Op::Restart),
    ]
}

fn registry() -> KindRegistry {
    let mut r = KindRegistry::default();
    r.add(KindDef {
        id: DICT,
        name: "test-dictionary".into(),
        model: DataModel::Dictionary,
        policy: AccessPolicy::NodeMatch,
        max_count: 100,
        max_size: 100,
    });
    r
}

fn value(key: u8, time: u64, v: u8, exists: bool) -> StoredData {
    StoredData {
        storage_time: time,
        lifetime: 3600,
        value: StoredDataValue::Dictionary {
            key: vec![key],
            value: DataValue {
                exists,
                value: if exists { vec![v] } else { Vec::new() },
            },
        },
        signature: Signature {
            algorithm: SignatureAndHashAlgorithm::ECDSA_SHA256,
            identity: SignerIdentity::CertHash {
                hash_alg: HashAlgorithm::SHA256,
                certificate_hash: vec![1; 32],
            },
            // The signature differs with the value, as a real one would.
            signature_value: vec![v, u8::from(exists), time as u8],
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn stores_and_fetches_match_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let reg = registry();
        let resource = ResourceId::from(NodeId([3; 16]));
        let mut store = DataStore::new();
        store.track_changes();
        let mut disk = MemoryBackend::new();
        let mut model: BTreeMap<u8, StoredData> = BTreeMap::new();
        let mut generation = 0u64;
        let now = Time::ZERO;
        for op in ops {
            match op {
                Op::Store { key, time, value: v, exists } => {
                    let d = value(key, time, v, exists);
                    let req = [StoreKindData { kind: DICT, generation_counter: 0, values: vec![d.clone()] }];
                    let got = store.store(now, &reg, &resource, &req, false);
                    let want = match model.get(&key) {
                        Some(cur) if d.storage_time < cur.storage_time => Err(StoreError::DataTooOld),
                        Some(cur) if d.storage_time == cur.storage_time && *cur != d => Err(StoreError::DataTooOld),
                        Some(cur) if *cur == d => Ok(generation),
                        _ => {
                            model.insert(key, d);
                            generation += 1;
                            Ok(generation)
                        }
                    };
                    prop_assert_eq!(got, want.map(|g| vec![(DICT, g)]));
                }
                Op::Fetch { key } => {
                    let spec = StoredDataSpecifier {
                        kind: DICT,
                        generation: 0,
                        model_specifier: ModelSpecifier::Dictionary(vec![DictionaryKey(vec![key])]),
                    };
                    let f = store.fetch(now, &resource, &spec);
                    prop_assert_eq!(f.generation, generation);
                    prop_assert_eq!(f.values.len(), 1);
                    match model.get(&key) {
                        Some(d) => prop_assert_eq!(&f.values[0], d),
                        None => prop_assert!(!f.values[0].value.data_value().exists),
                    }
                }
                Op::FetchAll => {
                    let spec = StoredDataSpecifier {
                        kind: DICT,
                        generation: 0,
                        model_specifier: ModelSpecifier::Dictionary(Vec::new()),
                    };
                    let f = store.fetch(now, &resource, &spec);
                    let want: Vec<StoredData> = model.values().cloned().collect();
                    prop_assert_eq!(f.values, want);
                }
                Op::Restart => {
                    store = DataStore::new();
                    store.track_changes();
                    let records = disk.load().expect("memory never fails");
                    let summary = store.restore(now, &reg, records);
                    prop_assert_eq!(summary.values, model.len());
                    prop_assert_eq!(summary.unreadable + summary.expired + summary.dropped_kinds, 0);
                    prop_assert_eq!(store.generation(&resource, DICT), generation);
                }
            }
            let changes = store.take_changes();
            disk.apply(&changes).expect("memory never fails");
        }
    }
}
