#!/usr/bin/env bash
# Toolchain smoke test for the wasm path (run by `scripts/install-deps.sh --verify`).
# Creates a throwaway crate in a temp dir (never in the repo) using ring (Ed25519 + HMAC),
# getrandom 0.2 (js), base64, serde_json and wasm-bindgen; builds it with scripts/wasm-build.sh,
# runs wasm-bindgen --target nodejs and calls the export from node, checking the Ed25519
# signature with node's own crypto.
# Usage: scripts/wasm-smoke-test.sh [work-dir]   (env WASM_BUILD_MODE=auto|rustup|build-std)
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$SCRIPT_DIR/versions.env"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WBG="$(wasm-bindgen --version | awk '{print $2}')"   # crate must match the CLI exactly

DIR="${1:-$(mktemp -d /tmp/edrlink-wasm-smoke.XXXXXX)}"
mkdir -p "$DIR/src"
cat > "$DIR/Cargo.toml" <<EOF
[package]
name = "wasm-smoke"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
ring = { version = "0.17", features = ["wasm32_unknown_unknown_js"] }
getrandom = { version = "0.2", features = ["js"] }
base64 = "0.22"
serde_json = "1"
wasm-bindgen = "=$WBG"

[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"

[workspace]
EOF
cat > "$DIR/src/lib.rs" <<'EOF'
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ring::{hmac, signature::{Ed25519KeyPair, KeyPair}};
use wasm_bindgen::prelude::*;

/// Signs `msg` with a fixed-seed Ed25519 key, HMACs it, and returns a JSON report.
#[wasm_bindgen]
pub fn smoke(msg: &str) -> Result<String, JsError> {
    let kp = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).map_err(|_| JsError::new("seed"))?;
    let sig = kp.sign(msg.as_bytes());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"key"), msg.as_bytes());
    let mut rnd = [0u8; 16];
    getrandom::getrandom(&mut rnd).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(serde_json::json!({
        "pk": B64.encode(kp.public_key().as_ref()),
        "sig": B64.encode(sig.as_ref()),
        "hmac": B64.encode(tag.as_ref()),
        "rnd": B64.encode(rnd),
    }).to_string())
}
EOF
OUT="$DIR/pkg"
rm -rf "$OUT"
WASM_WORKSPACE="$DIR" WASM_BINDGEN_TARGET=nodejs "$SCRIPT_DIR/wasm-build.sh" wasm-smoke "$OUT" >/dev/null
node - "$OUT/wasm_smoke.js" <<'EOF'
const crypto = require("crypto");
const { smoke } = require(process.argv[2]);
const r = JSON.parse(smoke("hello edrlink"));
const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(r.pk, "base64")]);
const pub = crypto.createPublicKey({ key: spki, format: "der", type: "spki" });
const ok = crypto.verify(null, Buffer.from("hello edrlink"), pub, Buffer.from(r.sig, "base64"));
const hm = crypto.createHmac("sha256", "key").update("hello edrlink").digest("base64");
if (!ok || hm !== r.hmac || Buffer.from(r.rnd, "base64").length !== 16) { console.error("FAIL", r); process.exit(1); }
console.log("wasm smoke ok: ed25519 verified by node, hmac matches, getrandom ok");
EOF
ls -l "$OUT"/*.wasm | awk '{print "wasm size:", $5, $NF}'
[ -n "${1:-}" ] || rm -rf "$DIR"
