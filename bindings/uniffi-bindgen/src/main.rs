//! `uniffi-bindgen`, built from the workspace so it always matches the uniffi
//! runtime compiled into `edrlink-uniffi` (maturin and the test runners call it).
fn main() {
    uniffi::uniffi_bindgen_main()
}
