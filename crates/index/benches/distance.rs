//! score() throughput at 50/128/768 dims for the three metrics.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use quiver_index::{Metric, score};

fn vector(dim: usize, seed: u32) -> Vec<f32> {
    (0..dim)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
        .collect()
}

fn distances(c: &mut Criterion) {
    let mut g = c.benchmark_group("score");
    g.warm_up_time(std::time::Duration::from_millis(300));
    g.measurement_time(std::time::Duration::from_secs(1));
    for dim in [50, 128, 768] {
        let (a, b) = (vector(dim, 1), vector(dim, 2));
        for metric in [Metric::L2, Metric::Ip, Metric::Cosine] {
            g.bench_function(format!("{}/{dim}", metric.as_str()), |bench| {
                bench.iter(|| score(metric, black_box(&a), black_box(&b)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, distances);
criterion_main!(benches);
