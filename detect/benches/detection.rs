//! Criterion benchmark of detection: our rules + SigmaHQ's Linux rules over the
//! mixed-event corpus, routed (the default) and naive (every rule on every event).
//! `cargo bench -p shaobing-detect --bench detection`. For plain events/s figures
//! see the `detection_rate` bench.

mod workload;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shaobing_detect::Routing;

fn bench(c: &mut Criterion) {
    let events = workload::corpus();
    let mut group = c.benchmark_group("detect_mixed_corpus");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    for (name, routing) in [("routed", Routing::Routed), ("naive", Routing::Naive)] {
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                // A fresh detector per run: windows and open alerts start empty.
                || workload::detector(routing).0,
                |detector| {
                    let mut alerts = 0usize;
                    for event in &events {
                        alerts += detector.process(event).len();
                    }
                    alerts
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
