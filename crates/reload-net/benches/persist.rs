//! Cost of making one storage change durable: [`RedbBackend::apply`] of one Put
//! (a 1 KiB record) in its own write transaction, committed with
//! `Durability::Immediate`, so each iteration includes the sync to disk. A file in
//! the system's temporary directory (set `TMPDIR` to measure another disk), and the
//! in-memory database for comparison (the same work without the disk).
//!
//! Run with `cargo bench -p reload-net --bench persist`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reload_core::storage::{StorageBackend, StorageChange};
use reload_net::RedbBackend;
use reload_wire::ResourceId;

fn change(i: u64) -> StorageChange {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(i % 1024).to_be_bytes());
    StorageChange::Put {
        resource: ResourceId::new(id.to_vec()).expect("16 bytes"),
        record: vec![u8::try_from(i % 251).unwrap_or(0); 1024],
    }
}

fn apply_one_put(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut file = RedbBackend::open(dir.path().join("bench.redb")).expect("database");
    let mut memory = RedbBackend::in_memory().expect("database");
    let mut group = c.benchmark_group("apply_one_put");
    let mut i = 0u64;
    group.bench_function("file_fsync", |b| {
        b.iter(|| {
            i += 1;
            file.apply(black_box(&[change(i)])).expect("commit");
        })
    });
    group.bench_function("in_memory", |b| {
        b.iter(|| {
            i += 1;
            memory.apply(black_box(&[change(i)])).expect("commit");
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = apply_one_put
}
criterion_main!(benches);
