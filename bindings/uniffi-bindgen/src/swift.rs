//! `uniffi-bindgen-swift`: Swift sources, C header and module map for an
//! XCFramework (bindings/swift/build-xcframework.sh runs it on Apple hosts).
fn main() {
    uniffi::uniffi_bindgen_swift()
}
