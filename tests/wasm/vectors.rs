//! The shared protocol vectors (tests/vectors/*.json, format in its README) run
//! through the JS-facing API. Kinds without a JS API are skipped and counted.
#![cfg(target_arch = "wasm32")]

#[path = "common/mod.rs"]
mod common;

use common::*;
use edrlink_wasm::*;
use serde_json::Value;
use wasm_bindgen_test::*;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} is not a string"))
}

/// Runs one case: Ok(true) passed, Ok(false) skipped (no JS API), Err(msg) failed.
fn run(kind: &str, input: &Value, expect: &Value) -> Result<bool, String> {
    let want_err = expect.get("error").and_then(Value::as_str);
    let outcome: Result<Value, String> = match kind {
        "pae" => Ok(Value::from(to_hex(&pae(s(input, "payload_type"), &hex(s(input, "payload_hex")))))),
        "key_from_seed" => SigningKey::from_seed(&hex(s(input, "seed_hex")))
            .map(|k| serde_json::json!({"public_key_hex": to_hex(&k.public_key()), "kid": k.key_id()}))
            .map_err(|e| code_of(&e)),
        "ed25519_sign" => SigningKey::from_seed(&hex(s(input, "seed_hex")))
            .map(|k| Value::from(to_hex(&k.sign(&hex(s(input, "message_hex"))))))
            .map_err(|e| code_of(&e)),
        // Issuing is the service role's job; negative issue cases have no JS API.
        "token_issue" if want_err.is_some() => return Ok(false),
        "token_issue" => inspect_token(s(expect, "token"), Some(0.0)).map(|v| json_of(&v)).map_err(|e| code_of(&e)),
        "token_inspect" => inspect_token(s(input, "token"), Some(0.0)).map(|v| json_of(&v)).map_err(|e| code_of(&e)),
        "token_verify" => {
            let now = input["now"].as_i64().unwrap() as f64;
            let skew = input["skew"].as_i64().unwrap() as f64;
            verify_token(s(input, "token"), s(input, "keyset_json").into(), Some(now), Some(skew))
                .map(|v| json_of(&v))
                .map_err(|e| code_of(&e))
        }
        "envelope_seal" => {
            let k = SigningKey::from_seed(&hex(s(input, "seed_hex"))).unwrap();
            seal_envelope(s(input, "payload_type"), &hex(s(input, "payload_hex")), &k)
                .map(|b| Value::from(String::from_utf8(b).unwrap()))
                .map_err(|e| code_of(&e))
        }
        "envelope_open" => open_envelope(s(input, "envelope").as_bytes(), s(input, "payload_type"), &hex(s(input, "public_key_hex")))
            .map(|b| Value::from(to_hex(&b)))
            .map_err(|e| code_of(&e)),
        "eicar" => {
            let ev = json_of(&eicar_test_event(None, Some(0.0)).unwrap());
            Ok(serde_json::json!({"length": s(input, "eicar_text").len(), "sha256_hex": ev["sha256"]}))
        }
        "eicar_detection" => {
            let now = input["now"].as_i64().unwrap() as f64;
            eicar_test_event(Some(s(input, "file_path").into()), Some(now)).map(|v| json_of(&v)).map_err(|e| code_of(&e))
        }
        "error_code" => {
            let list = js_sys::Array::from(&error_codes().unwrap());
            let name = s(input, "name");
            let found = list.iter().find(|e| get(e, "name").as_string().as_deref() == Some(name));
            Ok(found.map_or(Value::Null, |e| json_of(&e)))
        }
        _ => return Ok(false),
    };
    match (want_err, outcome) {
        (Some(w), Err(got)) if w == got => Ok(true),
        (Some(w), Err(got)) => Err(format!("expected error {w}, got {got}")),
        (Some(w), Ok(v)) => Err(format!("expected error {w}, got {v}")),
        (None, Err(got)) => Err(format!("unexpected error {got}")),
        (None, Ok(got)) => {
            let ok = match kind {
                "pae" => got == expect["pae_hex"],
                "key_from_seed" => {
                    got["public_key_hex"] == expect["public_key_hex"] && got["kid"] == expect["kid"]
                }
                "ed25519_sign" => got == expect["signature_hex"],
                "token_issue" | "token_inspect" => {
                    got["claims"] == expect["claims"]
                        && (kind == "token_issue" || got["kid"] == expect["kid"])
                }
                "token_verify" => got == expect["claims"],
                "envelope_seal" => got == expect["envelope"],
                "envelope_open" => got == expect["payload_hex"],
                "eicar" => {
                    got["length"] == expect["length"] && got["sha256_hex"] == expect["sha256_hex"]
                }
                "eicar_detection" => {
                    got == serde_json::from_str::<Value>(s(expect, "event_json")).unwrap()
                }
                "error_code" => {
                    got["number"] == expect["number"] && got["status"] == expect["http_status"]
                }
                _ => unreachable!(),
            };
            if ok {
                Ok(true)
            } else {
                Err(format!("got {got}, expected {expect}"))
            }
        }
    }
}

/// Runs every case of one file; returns (passed, skipped).
fn run_file(file: &str, text: &str) -> (usize, usize) {
    let (mut passed, mut skipped, mut failed) = (0, 0, Vec::new());
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(doc["version"], 1, "{file}");
    for case in doc["cases"].as_array().unwrap() {
        let name = s(case, "name");
        match run(s(case, "kind"), &case["input"], &case["expect"]) {
            Ok(true) => passed += 1,
            Ok(false) => skipped += 1,
            Err(msg) => failed.push(format!("{file}/{name}: {msg}")),
        }
    }
    wasm_bindgen_test::console_log!(
        "{file}: {passed} passed, {skipped} skipped (no JS API), {} failed",
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} vector(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    (passed, skipped)
}

/// At least `min` cases ran, and the file was not empty (files whose kinds
/// have no JS API still have to parse and hold cases).
fn enough(passed: usize, skipped: usize, min: usize) -> bool {
    passed >= min && passed + skipped > 0
}

macro_rules! vector_file {
    ($test:ident, $file:literal, $min:expr) => {
        #[wasm_bindgen_test]
        fn $test() {
            let (passed, skipped) = run_file($file, include_str!(concat!("../vectors/", $file)));
            assert!(
                enough(passed, skipped, $min),
                "{}: only {passed} cases ran ({skipped} skipped)",
                $file
            );
        }
    };
}

vector_file!(pae_vectors, "pae.json", 5);
vector_file!(key_vectors, "keys.json", 11);
vector_file!(token_vectors, "tokens.json", 39);
vector_file!(envelope_vectors, "envelopes.json", 27);
vector_file!(eicar_vectors, "eicar.json", 3);
vector_file!(error_code_vectors, "errors.json", 37);
// P-256 installation keys: envelopes with DER signatures and an EC key in a
// service keyset (JWK and JWS kinds have no JS API of their own).
vector_file!(p256_vectors, "p256.json", 7);
// Service-role, down-level HMAC and RFC 3339 kinds have no JS API: skipped, but parsed.
vector_file!(message_vectors, "messages.json", 0);
vector_file!(downlevel_vectors, "downlevel.json", 0);
vector_file!(encoding_vectors, "encodings.json", 0);
