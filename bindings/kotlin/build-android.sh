#!/usr/bin/env bash
# Builds libedrlink_uniffi.so for the Android ABIs into src/main/jniLibs
# (needs the Android NDK and `cargo install cargo-ndk`; not run on the
# project's build machines). Release profile: unwinding panics, not stripped
# by cargo (the Android Gradle plugin strips the packaged copies itself).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGETS=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android)
rustup target add "${TARGETS[@]}"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o bindings/kotlin/src/main/jniLibs \
  build --release -p edrlink-uniffi
# The Kotlin sources are generated from the host library (same metadata for every target):
bindings/uniffi/scripts/generate.sh
