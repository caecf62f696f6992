//! Core crypto costs, each beside the raw ring Ed25519 operation on the same
//! bytes in the same run, so the report is a ratio (docs/PERFORMANCE.md, "Core crypto").
//!
//! `cargo bench -p edrlink-core --bench crypto -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use edrlink_core::dsse;
use edrlink_core::keys::{Keyset, RandomSource, SigningKey};
use edrlink_core::token::{self, TokenSpec};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

struct Fixed;
impl RandomSource for Fixed {
    fn fill(&self, dest: &mut [u8]) -> edrlink_core::Result<()> {
        dest.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        Ok(())
    }
}

const SEED: [u8; 32] = [42u8; 32];
const NOW: i64 = 1_795_435_200;

fn token_verify(c: &mut Criterion) {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let spec = TokenSpec {
        issuer: "https://edr.example.test".into(),
        partner_id: "acme-av".into(),
        tenant_id: "tenant-1".into(),
        region: "eu".into(),
        service_url: "https://edr.example.test".into(),
        epoch: 1,
        lifetime: token::DEFAULT_LIFETIME,
        max_uses: 10,
    };
    let (tok, _) = token::issue(&spec, &key, NOW, &Fixed).unwrap();
    let keys = Keyset::from_keys(&[key.verifying_key()]);
    let (input, sig) = tok.rsplit_once('.').unwrap();
    let sig = edrlink_core::encoding::b64url_decode(sig).unwrap();
    let pk: [u8; 32] = key.verifying_key().as_bytes().try_into().unwrap();
    let mut g = c.benchmark_group("token");
    g.bench_function("verify", |b| {
        b.iter(|| token::verify(black_box(&tok), &keys, NOW, 60).unwrap())
    });
    g.bench_function("raw_ring_verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, &pk)
                .verify(black_box(input.as_bytes()), &sig)
                .unwrap()
        })
    });
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let pair = Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    let vk = key.verifying_key();
    for size in [1024usize, 64 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let t = edrlink_core::telemetry::BATCH_TYPE;
        let env = dsse::seal(t, &payload, &key).unwrap();
        let raw_sig = pair.sign(&payload);
        let mut g = c.benchmark_group(format!("envelope_{}k", size / 1024));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, p| {
            b.iter(|| dsse::seal(t, black_box(p), &key).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("raw_ring_sign", size), &payload, |b, p| {
            b.iter(|| pair.sign(black_box(p)))
        });
        g.bench_with_input(BenchmarkId::new("open", size), &env, |b, e| {
            b.iter(|| dsse::open(black_box(e), t, &vk).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("raw_ring_verify", size),
            &payload,
            |b, p| {
                b.iter(|| {
                    UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
                        .verify(black_box(p), raw_sig.as_ref())
                        .unwrap()
                })
            },
        );
        g.finish();
    }
}

criterion_group!(benches, token_verify, envelopes);

/// Interleaved A/B timing: on a shared, loaded machine criterion's means drift
/// with other processes. Here each round times `n` runs of A then `n` of B
/// back to back; the per-operation minimum over the rounds (least disturbed)
/// and the median of the per-round ratios are printed for docs/PERFORMANCE.md.
fn interleaved(name: &str, rounds: usize, n: usize, mut a: impl FnMut(), mut b: impl FnMut()) {
    use std::time::Instant;
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        (0..n).for_each(|_| a());
        let x = t.elapsed().as_secs_f64() / n as f64;
        let t = Instant::now();
        (0..n).for_each(|_| b());
        let y = t.elapsed().as_secs_f64() / n as f64;
        ta.push(x);
        tb.push(y);
        ratios.push(x / y);
    }
    let min = |v: &Vec<f64>| v.iter().cloned().fold(f64::INFINITY, f64::min);
    ratios.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let (ma, mb) = (min(&ta), min(&tb));
    println!(
        "interleaved {name:<22} sdk {:>9.1} us   raw {:>9.1} us   ratio(min) {:.3}   ratio(median of rounds) {:.3}",
        ma * 1e6,
        mb * 1e6,
        ma / mb,
        ratios[ratios.len() / 2]
    );
}

fn interleaved_report() {
    let key = SigningKey::from_seed(&SEED).unwrap();
    let pair = Ed25519KeyPair::from_seed_unchecked(&SEED).unwrap();
    let vk = key.verifying_key();
    let pk: [u8; 32] = vk.as_bytes().try_into().unwrap();
    let spec = TokenSpec {
        issuer: "https://edr.example.test".into(),
        partner_id: "acme-av".into(),
        tenant_id: "tenant-1".into(),
        region: "eu".into(),
        service_url: "https://edr.example.test".into(),
        epoch: 1,
        lifetime: token::DEFAULT_LIFETIME,
        max_uses: 10,
    };
    let (tok, _) = token::issue(&spec, &key, NOW, &Fixed).unwrap();
    let keys = Keyset::from_keys(&[vk]);
    let (input, sig) = tok.rsplit_once('.').unwrap();
    let sig = edrlink_core::encoding::b64url_decode(sig).unwrap();
    interleaved(
        "token verify",
        400,
        10,
        || {
            black_box(token::verify(black_box(&tok), &keys, NOW, 60).unwrap());
        },
        || {
            UnparsedPublicKey::new(&ED25519, &pk)
                .verify(black_box(input.as_bytes()), &sig)
                .unwrap()
        },
    );
    let t = edrlink_core::telemetry::BATCH_TYPE;
    for (size, rounds, n) in [(1024usize, 400, 10), (64 * 1024, 200, 2)] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let env = dsse::seal(t, &payload, &key).unwrap();
        let raw_sig = pair.sign(&payload);
        interleaved(
            &format!("envelope seal {}k", size / 1024),
            rounds,
            n,
            || {
                black_box(dsse::seal(t, black_box(&payload), &key).unwrap());
            },
            || {
                black_box(pair.sign(black_box(&payload)));
            },
        );
        interleaved(
            &format!("envelope open {}k", size / 1024),
            rounds,
            n,
            || {
                black_box(dsse::open(black_box(&env), t, &vk).unwrap());
            },
            || {
                UnparsedPublicKey::new(&ED25519, &pk)
                    .verify(black_box(&payload), raw_sig.as_ref())
                    .unwrap()
            },
        );
    }
}

fn main() {
    benches();
    // Only in a real `cargo bench` run (criterion's --bench flag), not `cargo test --benches`.
    if std::env::args().any(|a| a == "--bench") {
        interleaved_report();
    }
    Criterion::default().configure_from_args().final_summary();
}
