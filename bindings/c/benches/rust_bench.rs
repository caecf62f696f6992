//! Rust side of the C API overhead benchmark (run by tests/c/bench.sh next to
//! tests/c/bench.c). Prints `name ns_per_op` lines, best of 5 rounds.
use edrlink::{edrlink_envelope_seal, edrlink_result, edrlink_result_name, edrlink_string_free};
use edrlink_core::keys::SigningKey;
use edrlink_core::{dsse, ErrorCode};
use std::hint::black_box;
use std::time::Instant;

fn bench(name: &str, iters: u64, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    println!("{name} {best:.1}");
}

fn main() {
    let seed = [7u8; 32];
    let payload = vec![0x5au8; 1024];
    bench("rust_core_error_name", 2_000_000, || {
        black_box(black_box(ErrorCode::TokenExpired).as_str());
    });
    bench("rust_calls_ffi_result_name", 2_000_000, || {
        black_box(edrlink_result_name(black_box(
            edrlink_result::EDRLINK_TOKEN_EXPIRED as u32,
        )));
    });
    bench("rust_core_seal_1k_from_seed", 20_000, || {
        let k = SigningKey::from_seed(black_box(&seed)).unwrap();
        black_box(dsse::seal("application/octet-stream", black_box(&payload), &k).unwrap());
    });
    let key = SigningKey::from_seed(&seed).unwrap();
    bench("rust_core_seal_1k_prebuilt_key", 20_000, || {
        black_box(dsse::seal("application/octet-stream", black_box(&payload), &key).unwrap());
    });
    bench("rust_calls_ffi_seal_1k", 20_000, || {
        let mut out = std::ptr::null_mut();
        // SAFETY: valid buffers and out-pointer.
        let rc = unsafe {
            edrlink_envelope_seal(
                seed.as_ptr(),
                32,
                c"application/octet-stream".as_ptr(),
                payload.as_ptr(),
                payload.len(),
                &mut out,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, edrlink_result::EDRLINK_OK);
        // SAFETY: `out` came from edrlink_envelope_seal.
        unsafe { edrlink_string_free(black_box(out)) };
    });
}
