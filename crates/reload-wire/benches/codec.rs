//! Encode and decode cost of the two messages on the hot path of a SIP call: the
//! Store that registers a phone, and the Fetch answer that finds it.
//!
//! Run with `cargo bench -p reload-wire --bench codec`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reload_wire::{Message, WireConfig, samples};

fn bench_message(c: &mut Criterion, name: &str, message: &Message) {
    let config = WireConfig::default();
    let bytes = message.encode().expect("sample encodes");
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| b.iter(|| black_box(message).encode().expect("encodes")));
    group.bench_function("decode", |b| {
        b.iter(|| Message::decode(black_box(&bytes), &config).expect("decodes"))
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    bench_message(c, "store_req_sip_registration", &samples::store_sip_registration());
    bench_message(
        c,
        "fetch_ans_sip_registration",
        &samples::fetch_sip_registration_answer(),
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
