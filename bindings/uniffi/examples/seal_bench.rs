//! The Rust side of the binding benchmarks: the same envelope seal the
//! bindings call (`EnvelopeSigner::seal`, i.e. `edrlink_core::dsse::seal`),
//! timed natively with no FFI. Prints one JSON object (ns per call) that
//! tests/python/bench.py and tests/kotlin/Bench.kt read for the ratio.
//!
//!   cargo run --release -p edrlink-uniffi --example seal_bench
use edrlink_uniffi::{Bytes, EnvelopeSigner};
use std::hint::black_box;
use std::time::Instant;

fn ns_per_call(mut f: impl FnMut()) -> f64 {
    // calibrate to ~0.2 s per sample, best of 5 samples
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed().as_secs_f64() > 0.05 {
            break;
        }
        n *= 2;
    }
    let n = n * 4;
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let signer = EnvelopeSigner::new(Bytes((0u8..32).collect())).expect("valid seed");
    let mut out = Vec::new();
    for size in [1024usize, 64 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let ns = ns_per_call(|| {
            // the binding receives an owned copy of the bytes: include that copy
            black_box(
                signer
                    .seal(
                        "application/vnd.edrlink.batch.v1+json".into(),
                        black_box(Bytes(payload.clone())),
                    )
                    .unwrap(),
            );
        });
        out.push(format!("\"seal_{}k_ns\": {:.0}", size / 1024, ns));
    }
    let ns = ns_per_call(|| {
        black_box(edrlink_uniffi::protocol_version());
    });
    out.push(format!("\"trivial_call_ns\": {ns:.1}"));
    println!("{{{}}}", out.join(", "));
}
