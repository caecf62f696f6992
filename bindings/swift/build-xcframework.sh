#!/usr/bin/env bash
# Builds EdrlinkFFI.xcframework for the Swift package (run on macOS with Xcode
# and rustup; NOT run on the project's Linux build machines).
#   bindings/swift/build-xcframework.sh
# Release profile: unwinding panics (uniffi turns them into Swift errors),
# not stripped before generation (uniffi reads its metadata from the library).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi-apple}"
OUT="$ROOT/bindings/swift"
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${TARGETS[@]}"
for t in "${TARGETS[@]}"; do
  cargo build --release -p edrlink-uniffi --target "$t"
done

# Generated Swift + header + modulemap, from the host library, with the pinned bindgen.
cargo build --release -p edrlink-uniffi
bindings/uniffi/scripts/generate.sh --lib "$CARGO_TARGET_DIR/release/libedrlink_uniffi.dylib"

lib() { echo "$CARGO_TARGET_DIR/$1/release/libedrlink_uniffi.a"; }
FAT="$CARGO_TARGET_DIR/fat"; mkdir -p "$FAT/ios-sim" "$FAT/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$FAT/ios-sim/libedrlink_uniffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$FAT/macos/libedrlink_uniffi.a"

rm -rf "$OUT/EdrlinkFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$OUT/Headers" \
  -library "$FAT/ios-sim/libedrlink_uniffi.a" -headers "$OUT/Headers" \
  -library "$FAT/macos/libedrlink_uniffi.a" -headers "$OUT/Headers" \
  -output "$OUT/EdrlinkFFI.xcframework"
echo "built $OUT/EdrlinkFFI.xcframework; now: (cd bindings/swift && swift test)"
