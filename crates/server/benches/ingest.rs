//! Ingest through the whole standalone engine: a durable batch insert, and
//! one row inserted then returned by a read-your-writes search.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quiver_api::{CreateCollection, IndexKind};
use quiver_common::{CollectionSchema, Metric, PrimaryKey, RowBatch};
use quiver_proxy::{Consistency, SearchRequest};
use quiver_server::{Standalone, StandaloneConfig};
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

const DIM: usize = 128;

fn rows(rng: &mut impl Rng, first: i64, n: usize) -> RowBatch {
    RowBatch {
        pks: (first..first + n as i64).map(PrimaryKey::Int).collect(),
        vectors: quiver_common::Vectors::f32(
            DIM,
            (0..n * DIM).map(|_| rng.random::<f32>()).collect(),
        ),
        columns: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = rt
        .block_on(Standalone::open(
            StandaloneConfig::new(dir.path()),
            CancellationToken::new(),
        ))
        .expect("open");
    let proxy = server.proxy.clone();
    let create = |name: &str, index| {
        rt.block_on(proxy.create_collection(CreateCollection {
            schema: CollectionSchema::simple(name, DIM as u32),
            shards: 1,
            metric: Metric::L2,
            index,
            partitions: None,
        }))
        .expect("create")
    };
    // The write path alone (WAL + apply): seals build no graph, so sealing
    // keeps up and writers never wait for it.
    create("w", IndexKind::Flat);
    // Freshness in steady state: 20k indexed rows and a small growing tail.
    create(
        "b",
        IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
        },
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut next = 0i64;
    rt.block_on(proxy.insert("b", rows(&mut rng, next, 20_000)))
        .expect("preload");
    rt.block_on(proxy.flush("b")).expect("flush");
    next += 20_000;

    let mut g = c.benchmark_group("ingest");
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1000));
    g.bench_function("insert_1000x128_durable", |b| {
        b.iter(|| {
            let batch = rows(&mut rng, next, 1000);
            next += 1000;
            rt.block_on(proxy.insert("w", batch)).expect("insert")
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("insert_1_then_search_finds_it", |b| {
        b.iter(|| {
            let batch = rows(&mut rng, next, 1);
            let quiver_common::VectorData::F32(v) = batch.vectors.clone().into_data();
            let pk = batch.pks[0].clone();
            next += 1;
            rt.block_on(async {
                let w = proxy.insert("b", batch).await.expect("insert");
                let hits = proxy
                    .search(SearchRequest {
                        collection: "b".into(),
                        queries: v,
                        k: 1,
                        ef: None,
                        refine_k: None,
                        filter: None,
                        consistency: Consistency::Session(w.ts),
                        output_fields: vec![],
                        with_vectors: false,
                        anns_field: None,
                        sparse: None,
                    })
                    .await
                    .expect("search");
                assert_eq!(hits[0][0].pk, pk);
            })
        })
    });
    g.finish();
    rt.block_on(server.close());
}

criterion_group!(benches, bench);
criterion_main!(benches);
