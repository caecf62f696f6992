//! Core crypto costs, each beside the raw ring Ed25519 operation on the same
//! bytes in the same run, so the report is a ratio (docs/PERFORMANCE.md, "Core crypto").
//!
//! `cargo bench -p edrlink-core --bench crypto -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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
    let pk = key.verifying_key().0;
    let mut g = c.benchmark_group("token");
    g.bench_function("verify", |b| b.iter(|| token::verify(black_box(&tok), &keys, NOW, 60).unwrap()));
    g.bench_function("raw_ring_verify", |b| b.iter(|| UnparsedPublicKey::new(&ED25519, &pk).verify(black_box(input.as_bytes()), &sig).unwrap()));
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
        g.bench_with_input(BenchmarkId::new("seal", size), &payload, |b, p| b.iter(|| dsse::seal(t, black_box(p), &key).unwrap()));
        g.bench_with_input(BenchmarkId::new("raw_ring_sign", size), &payload, |b, p| b.iter(|| pair.sign(black_box(p))));
        g.bench_with_input(BenchmarkId::new("open", size), &env, |b, e| b.iter(|| dsse::open(black_box(e), t, &vk).unwrap()));
        g.bench_with_input(BenchmarkId::new("raw_ring_verify", size), &payload, |b, p| {
            b.iter(|| UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref()).verify(black_box(p), raw_sig.as_ref()).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, token_verify, envelopes);
criterion_main!(benches);
