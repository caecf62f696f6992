//! Generator and checker of the language-neutral test vectors in tests/vectors/
//! (format: tests/vectors/README.md).
//!
//! `EDRLINK_REGEN_VECTORS=1 cargo test -p edrlink-core --test vectors` rewrites the
//! files; without it every case is run against the core and every file must equal
//! (as JSON) what the generator produces now.

mod common;

use common::*;
use edrlink_core::credential::Credential;
use edrlink_core::encoding::{b64url, b64url_decode, parse_rfc3339, rfc3339, UnixSeconds};
use edrlink_core::handshake::{self, Hello, SensorState};
use edrlink_core::http::{HttpRequest, HttpResponse, Problem};
use edrlink_core::keys::{Keyset, SigningKey, VerifyingKey};
use edrlink_core::memory_store::MemoryStore;
use edrlink_core::policy::Policy;
use edrlink_core::redeem::{self, PendingRedeem};
use edrlink_core::service::{
    Integration, RateLimit, ServiceConfig, ServiceRole, ServiceStore, TokenRecord, Workspace,
};
use edrlink_core::telemetry::{self, Batch, Event, GenericEvent};
use edrlink_core::{downlevel, dsse, eicar, jws, offboard, rotate, token, ErrorCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct VectorFile {
    description: String,
    version: u32,
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Case {
    name: String,
    kind: String,
    input: Value,
    expect: Value,
}

type Outcome = Result<Value, String>;

fn err(e: edrlink_core::Error) -> String {
    e.code().as_str().to_owned()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("input field {k} missing or not a string"))
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("input field {k} missing or not an integer"))
}

fn seed_of(v: &Value, k: &str) -> SigningKey {
    let b = unhex(s(v, k));
    SigningKey::from_seed(&b.try_into().expect("32-byte seed")).unwrap()
}

fn to_val<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

/// Re-signs a JWS payload with its typed claims: the typed round trip must give
/// back `payload_json` byte for byte (this pins the field order).
fn resign<T: Serialize + DeserializeOwned>(
    typ: &str,
    payload_json: &str,
    key: &SigningKey,
    embed: bool,
) -> Result<String, String> {
    let claims: T = serde_json::from_str(payload_json)
        .map_err(|e| format!("payload does not parse as claims: {e}"))?;
    let again = serde_json::to_string(&claims).unwrap();
    if again != payload_json {
        return Err(format!(
            "claims do not re-serialize identically:\n{again}\n{payload_json}"
        ));
    }
    jws::sign(typ, &claims, key, embed).map_err(err)
}

// ---------------------------------------------------------------------------
// The one interpreter: input -> expect. The checker compares its result with the
// file; the generator fills `expect` with it (and asserts intended outcomes).

fn run(kind: &str, inp: &Value) -> Outcome {
    match kind {
        "pae" => Ok(
            json!({"pae_hex": hex(&dsse::pae(s(inp, "payload_type"), &unhex(s(inp, "payload_hex"))))}),
        ),
        "key_from_seed" => {
            let k = seed_of(inp, "seed_hex");
            let pk = k.verifying_key();
            Ok(
                json!({"public_key_hex": hex(pk.as_bytes()), "public_key_b64url": b64url(pk.as_bytes()), "kid": pk.key_id(), "jwk": to_val(&pk.to_jwk())}),
            )
        }
        "ed25519_sign" => {
            let k = seed_of(inp, "seed_hex");
            Ok(json!({"signature_hex": hex(&k.sign(&unhex(s(inp, "message_hex"))))}))
        }
        "token_issue" => {
            let k = seed_of(inp, "service_seed_hex");
            let sp = &inp["spec"];
            let spec = token::TokenSpec {
                issuer: s(sp, "issuer").into(),
                partner_id: s(sp, "partner_id").into(),
                tenant_id: s(sp, "tenant_id").into(),
                region: s(sp, "region").into(),
                service_url: s(sp, "service_url").into(),
                epoch: i(sp, "epoch") as u64,
                lifetime: i(sp, "lifetime"),
                max_uses: i(sp, "max_uses") as u32,
            };
            let rng = CounterRandom::new(s(inp, "rng_label"));
            let (tok, claims) = token::issue(&spec, &k, i(inp, "now"), &rng).map_err(err)?;
            let mut parts = tok.split('.');
            let h = String::from_utf8(b64url_decode(parts.next().unwrap()).unwrap()).unwrap();
            let p = String::from_utf8(b64url_decode(parts.next().unwrap()).unwrap()).unwrap();
            Ok(
                json!({"token": tok, "header_json": h, "payload_json": p, "claims": to_val(&claims)}),
            )
        }
        "token_inspect" => {
            let info = token::inspect(s(inp, "token")).map_err(err)?;
            Ok(json!({"kid": info.kid, "claims": to_val(&info.claims)}))
        }
        "token_verify" => {
            let keys = Keyset::from_json(s(inp, "keyset_json")).map_err(err)?;
            let c = token::verify(s(inp, "token"), &keys, i(inp, "now"), i(inp, "skew"))
                .map_err(err)?;
            Ok(json!({"claims": to_val(&c)}))
        }
        "envelope_seal" => {
            let k = seed_of(inp, "seed_hex");
            let env = dsse::seal(s(inp, "payload_type"), &unhex(s(inp, "payload_hex")), &k)
                .map_err(err)?;
            Ok(json!({"envelope": String::from_utf8(env).unwrap()}))
        }
        "envelope_open" => {
            let pk = VerifyingKey::from_bytes(&unhex(s(inp, "public_key_hex"))).map_err(err)?;
            let p = dsse::open(s(inp, "envelope").as_bytes(), s(inp, "payload_type"), &pk)
                .map_err(err)?;
            Ok(json!({"payload_hex": hex(&p)}))
        }
        "jws_sign" => {
            let k = seed_of(inp, "seed_hex");
            let typ = s(inp, "typ");
            let embed = inp["embed_jwk"].as_bool().expect("embed_jwk");
            let pj = s(inp, "payload_json");
            let jws = match typ {
                token::TYP => resign::<token::AccessTokenClaims>(typ, pj, &k, embed),
                redeem::REQUEST_TYP => resign::<redeem::RequestClaims>(typ, pj, &k, embed),
                redeem::RESPONSE_TYP => resign::<redeem::ResponseClaims>(typ, pj, &k, embed),
                handshake::HELLO_TYP => resign::<Hello>(typ, pj, &k, embed),
                handshake::FLOW_TYP => resign::<handshake::FlowDecision>(typ, pj, &k, embed),
                offboard::REQUEST_TYP | offboard::RESPONSE_TYP => {
                    resign::<offboard::OffboardClaims>(typ, pj, &k, embed)
                }
                offboard::PACKAGE_TYP => resign::<offboard::PackageClaims>(typ, pj, &k, embed),
                rotate::REQUEST_TYP => resign::<rotate::RotateClaims>(typ, pj, &k, embed),
                rotate::RESPONSE_TYP => resign::<rotate::RotateResponse>(typ, pj, &k, embed),
                other => panic!("unknown typ {other}"),
            }?;
            let h =
                String::from_utf8(b64url_decode(jws.split('.').next().unwrap()).unwrap()).unwrap();
            Ok(json!({"jws": jws, "header_json": h}))
        }
        "jwk_parse" => {
            let jwk: edrlink_core::keys::Jwk =
                serde_json::from_str(s(inp, "jwk_json")).map_err(|_| "malformed".to_owned())?;
            let k = jwk.to_key().map_err(err)?;
            Ok(
                json!({"algorithm": k.algorithm().name(), "public_key_hex": hex(k.as_bytes()), "kid": k.key_id()}),
            )
        }
        "jws_verify" => {
            let pk = VerifyingKey::from_bytes(&unhex(s(inp, "public_key_hex"))).map_err(err)?;
            let u = edrlink_core::jws::parse(s(inp, "jws"), s(inp, "typ")).map_err(err)?;
            u.verify_with(&pk).map_err(err)?;
            Ok(json!({"payload_json": String::from_utf8(u.payload.clone()).unwrap()}))
        }
        "service_exchange" => Ok(run_exchange(
            &inp["world"],
            inp["steps"].as_array().expect("steps"),
        )),
        "shared_key_sign" => {
            let key = unhex(s(inp, "key_hex"));
            let body = unhex(s(inp, "body_hex"));
            let (m, p, ct, d) = (
                s(inp, "method"),
                s(inp, "path"),
                s(inp, "content_type"),
                s(inp, "date"),
            );
            Ok(json!({
                "string_to_sign": downlevel::string_to_sign(m, p, ct, d, &body),
                "authorization": downlevel::authorization(s(inp, "workspace_id"), &key, m, p, ct, d, &body),
            }))
        }
        "shared_key_verify" => {
            let key = unhex(s(inp, "key_hex"));
            let body = unhex(s(inp, "body_hex"));
            downlevel::verify(
                s(inp, "authorization"),
                &key,
                s(inp, "method"),
                s(inp, "path"),
                s(inp, "content_type"),
                s(inp, "date"),
                &body,
                i(inp, "now"),
            )
            .map_err(err)?;
            Ok(json!({"ok": true}))
        }
        "eicar" => {
            let t = s(inp, "eicar_text").as_bytes();
            Ok(json!({"length": t.len(), "sha256_hex": hex(&edrlink_core::encoding::sha256(t))}))
        }
        "eicar_detection" => Ok(
            json!({"event_json": serde_json::to_string(&eicar::test_detection(i(inp, "now"), s(inp, "file_path"))).unwrap()}),
        ),
        "error_code" => {
            let c = ErrorCode::from_name(s(inp, "name")).ok_or("unknown code name")?;
            Ok(json!({"number": c.as_u32(), "http_status": c.http_status()}))
        }
        "event_validate" => {
            let e = Event::from_json(s(inp, "event_json")).map_err(err)?;
            Ok(json!({"category": to_val(&e.category())}))
        }
        "rfc3339_format" => Ok(json!({"text": rfc3339(i(inp, "unix"))})),
        "rfc3339_parse" => Ok(json!({"unix": parse_rfc3339(s(inp, "text")).map_err(err)?})),
        other => panic!("unknown kind {other}"),
    }
}

fn outcome_value(o: Outcome) -> Value {
    match o {
        Ok(v) => v,
        Err(code) => json!({ "error": code }),
    }
}

// ---------------------------------------------------------------------------
// service_exchange: a service role + MemoryStore built from `world`.

fn build_world(w: &Value) -> (ServiceRole, MemoryStore) {
    let rl = &w["rate_limit"];
    let cfg = ServiceConfig {
        issuer: s(w, "issuer").into(),
        region: s(w, "region").into(),
        service_url: s(w, "service_url").into(),
        keys: vec![seed_of(w, "service_seed_hex")],
        policy: serde_json::from_value(w["policy"].clone()).unwrap(),
        rate_limit: RateLimit {
            burst: rl["burst"].as_f64().unwrap(),
            per_second: rl["per_second"].as_f64().unwrap(),
        },
        session_lifetime: i(w, "session_lifetime"),
    };
    let svc = ServiceRole::new(cfg, CounterRandom::boxed(s(w, "rng_label"))).unwrap();
    let mut store = MemoryStore::default();
    for t in w["tenants"].as_array().unwrap() {
        store
            .tenants
            .insert(s(t, "tenant_id").into(), s(t, "region").into());
    }
    for v in w["integrations"].as_array().unwrap() {
        let it: Integration = serde_json::from_value(v.clone()).unwrap();
        store
            .integrations
            .insert((it.tenant_id.clone(), it.partner_id.clone()), it);
    }
    for v in w["tokens"].as_array().unwrap() {
        let t: TokenRecord = serde_json::from_value(v.clone()).unwrap();
        store.tokens.insert(t.jti.clone(), t);
    }
    for v in w["workspaces"].as_array().unwrap() {
        let ws = Workspace {
            id: s(v, "id").into(),
            tenant_id: s(v, "tenant_id").into(),
            partner_id: s(v, "partner_id").into(),
            key: zeroize::Zeroizing::new(unhex(s(v, "key_hex"))),
            epoch: i(v, "epoch") as u64,
            expires_at: v.get("expires_at").and_then(Value::as_i64),
            revoked: v.get("revoked").and_then(Value::as_bool).unwrap_or(false),
        };
        store.workspaces.insert(ws.id.clone(), ws);
    }
    (svc, store)
}

fn request_of(r: &Value) -> HttpRequest {
    HttpRequest {
        id: 0,
        method: s(r, "method").into(),
        url: s(r, "path").into(),
        headers: r["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
            .collect(),
        body: s(r, "body").as_bytes().to_vec(),
    }
}

fn response_value(resp: &HttpResponse) -> Value {
    if (200..300).contains(&resp.status) {
        json!({"status": resp.status, "body": String::from_utf8(resp.body.clone()).unwrap()})
    } else {
        let p: Problem = serde_json::from_slice(&resp.body).expect("problem body");
        let mut v = json!({"status": resp.status, "error": p.code});
        if let Some(r) = p.retry_after {
            v["retry_after"] = json!(r);
        }
        if let Some(e) = p.expected_seq {
            v["expected_seq"] = json!(e);
        }
        v
    }
}

fn apply_admin(store: &mut MemoryStore, step: &Value) {
    if let Some(ws) = step.get("revoke_workspace").and_then(Value::as_str) {
        store.workspaces.get_mut(ws).unwrap().revoked = true;
        return;
    }
    if let Some(si) = step.get("set_installation") {
        // Admin revoke / offboarding package / reinstate: set the flags; a
        // revoked or offboarded installation loses its sessions at once.
        let id = s(si, "installation_id");
        let inst = store.installations.get_mut(id).unwrap();
        inst.revoked = si["revoked"].as_bool().unwrap();
        inst.offboarded = si["offboarded"].as_bool().unwrap();
        if inst.revoked || inst.offboarded {
            store.drop_sessions(id).unwrap();
        }
        return;
    }
    let it: Integration = serde_json::from_value(step["set_integration"].clone()).unwrap();
    store
        .integrations
        .insert((it.tenant_id.clone(), it.partner_id.clone()), it);
}

fn run_exchange(world: &Value, steps: &[Value]) -> Value {
    let (svc, mut store) = build_world(world);
    let mut out = Vec::new();
    for st in steps {
        if st.get("set_integration").is_some()
            || st.get("revoke_workspace").is_some()
            || st.get("set_installation").is_some()
        {
            apply_admin(&mut store, st);
            out.push(json!({}));
        } else {
            let resp = svc.handle(&mut store, &request_of(&st["request"]), i(st, "now"));
            out.push(response_value(&resp));
        }
    }
    json!({ "steps": out })
}

// ---------------------------------------------------------------------------
// Generator helpers.

struct Gen {
    cases: Vec<Case>,
}

impl Gen {
    fn new() -> Self {
        Gen { cases: Vec::new() }
    }
    /// A positive case.
    fn ok(&mut self, name: &str, kind: &str, input: Value) -> Value {
        let out = run(kind, &input).unwrap_or_else(|e| panic!("{name}: expected success, got {e}"));
        self.cases.push(Case {
            name: name.into(),
            kind: kind.into(),
            input,
            expect: out.clone(),
        });
        out
    }
    /// A negative case that must fail with `code`.
    fn fail(&mut self, name: &str, kind: &str, input: Value, code: ErrorCode) {
        match run(kind, &input) {
            Err(e) if e == code.as_str() => {}
            other => panic!("{name}: expected {code}, got {other:?}"),
        }
        self.cases.push(Case {
            name: name.into(),
            kind: kind.into(),
            input,
            expect: json!({"error": code.as_str()}),
        });
    }
    fn file(self, description: &str) -> VectorFile {
        VectorFile {
            description: description.into(),
            version: 1,
            cases: self.cases,
        }
    }
}

fn seed_hex(label: &str) -> String {
    hex(&seed(label))
}

fn jws_parts(jws: &str) -> (String, String) {
    let mut p = jws.split('.');
    let h = String::from_utf8(b64url_decode(p.next().unwrap()).unwrap()).unwrap();
    let b = String::from_utf8(b64url_decode(p.next().unwrap()).unwrap()).unwrap();
    (h, b)
}

/// Re-encodes a JWS with another header/payload but the original signature.
fn splice(jws: &str, header: Option<&str>, payload: Option<&str>) -> String {
    let p: Vec<&str> = jws.split('.').collect();
    format!(
        "{}.{}.{}",
        header
            .map(|h| b64url(h.as_bytes()))
            .unwrap_or_else(|| p[0].into()),
        payload
            .map(|x| b64url(x.as_bytes()))
            .unwrap_or_else(|| p[1].into()),
        p[2]
    )
}

// ---------------------------------------------------------------------------
// The files.

fn gen_pae() -> VectorFile {
    let mut g = Gen::new();
    let out = g.ok("dsse-spec-example", "pae", json!({"payload_type": "http://example.com/HelloWorld", "payload_hex": hex(b"hello world")}));
    assert_eq!(
        unhex(out["pae_hex"].as_str().unwrap()),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    g.ok(
        "empty-payload",
        "pae",
        json!({"payload_type": "text/plain", "payload_hex": ""}),
    );
    g.ok("binary-payload", "pae", json!({"payload_type": "application/octet-stream", "payload_hex": hex(&[0u8, 1, 0x20, 0x0a, 0xff])}));
    g.ok(
        "batch-type",
        "pae",
        json!({"payload_type": telemetry::BATCH_TYPE, "payload_hex": hex(br#"{"v":1}"#)}),
    );
    g.ok(
        "ten-byte-length",
        "pae",
        json!({"payload_type": "a", "payload_hex": hex(b"0123456789")}),
    );
    g.file("DSSE v1 pre-authentication encoding: \"DSSEv1\" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal")
}

fn gen_keys() -> VectorFile {
    let mut g = Gen::new();
    for label in ["service", "service-2", "endpoint", "endpoint-2"] {
        g.ok(
            &format!("seed-sha256({label})"),
            "key_from_seed",
            json!({"seed_hex": seed_hex(label)}),
        );
    }
    g.ok(
        "seed-all-zero",
        "key_from_seed",
        json!({"seed_hex": hex(&[0u8; 32])}),
    );
    // RFC 8032 section 7.1, tests 1-3.
    let rfc = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "72", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "af82", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ];
    for (n, (sd, msg, pk, sig)) in rfc.iter().enumerate() {
        let out = g.ok(
            &format!("rfc8032-test-{}-key", n + 1),
            "key_from_seed",
            json!({"seed_hex": sd}),
        );
        assert_eq!(out["public_key_hex"], *pk);
        let out = g.ok(
            &format!("rfc8032-test-{}", n + 1),
            "ed25519_sign",
            json!({"seed_hex": sd, "message_hex": msg}),
        );
        assert_eq!(out["signature_hex"], *sig);
    }
    g.file("Ed25519 keys: seed -> public key, key id (b64url of the first 16 bytes of SHA-256 of the public key), JWK; RFC 8032 signatures")
}

/// ECDSA P-256 installation keys (section 3). ECDSA signatures are
/// randomized, so these were made once, outside edrlink (Python
/// `cryptography`, private scalar = SHA-256("edrlink-vector-p256") mod n),
/// and are checked here, not re-made.
const P256_PUB: &str = "04301899349177f0ba2e14ff602af42ca6cfeffb8ff8aefc7c4a0aece810c8f444521b4453536bb6ef673daca21b23100a483df3a5a4485ea104a9c88afed3caff";
/// DER signature over PAE("text/plain", "hello world").
const P256_ENV_DER: &str = "304402202e7aff009db578a989bbd8ad1dd273dfb30fdf61112f01ac1a5b2cf800aa422c022057b1bbf2192cba1ff6c7a9aabf575fcf3983f4c655cf3a9a3a47d35a520baaf8";
/// An ES256 compact JWS (`r‖s`), and the same signature DER-encoded.
const P256_JWS: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImVkcmxpbmstaGVsbG8rand0Iiwia2lkIjoiLU5JQ285ZXAxaG51QkdUUUpfeW51USJ9.eyJpbnN0YWxsYXRpb25faWQiOiJpbnN0LXZlY3RvciIsIm5vbmNlIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSIsImlhdCI6MTc2NzIyNTYwMH0.ZuiVy1Db4LfjCUKNwl6TnxLjcItJ-HdnZy0iNn6dNyyx_X5bz5wU_r4dO-Di7wgt9ub3hqw_w3MBT_RE6YtqOw";
const P256_JWS_DER: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImVkcmxpbmstaGVsbG8rand0Iiwia2lkIjoiLU5JQ285ZXAxaG51QkdUUUpfeW51USJ9.eyJpbnN0YWxsYXRpb25faWQiOiJpbnN0LXZlY3RvciIsIm5vbmNlIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSIsImlhdCI6MTc2NzIyNTYwMH0.MEUCIGbolctQ2-C34wlCjcJek58S43CLSfh3Z2ctIjZ-nTcsAiEAsf1-W8-cFP6-HTvg4u8ILfbm94asP8NzAU_0ROmLajs";

fn gen_p256() -> VectorFile {
    let mut g = Gen::new();
    let pk = VerifyingKey::from_bytes(&unhex(P256_PUB)).unwrap();
    let jwk = pk.to_jwk();
    let jwk_json = serde_json::to_string(&jwk).unwrap();
    g.ok("jwk-p256", "jwk_parse", json!({"jwk_json": jwk_json}));
    let ed = serde_json::to_string(&key("endpoint").verifying_key().to_jwk()).unwrap();
    g.ok("jwk-ed25519", "jwk_parse", json!({"jwk_json": ed}));
    let mut v: Value = serde_json::to_value(&jwk).unwrap();
    let mut bad = |name: &str, f: &dyn Fn(&mut Value), code: ErrorCode| {
        let mut j = v.clone();
        f(&mut j);
        g.fail(name, "jwk_parse", json!({"jwk_json": j.to_string()}), code);
    };
    bad(
        "jwk-ec-without-y",
        &|j| {
            j.as_object_mut().unwrap().remove("y");
        },
        ErrorCode::Malformed,
    );
    bad(
        "jwk-p384",
        &|j| j["crv"] = json!("P-384"),
        ErrorCode::UnsupportedAlgorithm,
    );
    bad(
        "jwk-ec-alg-eddsa",
        &|j| j["alg"] = json!("EdDSA"),
        ErrorCode::UnsupportedAlgorithm,
    );
    bad(
        "jwk-ec-short-x",
        &|j| j["x"] = json!(b64url(&[1u8; 31])),
        ErrorCode::Malformed,
    );
    bad(
        "jwk-ec-wrong-kid",
        &|j| j["kid"] = json!("AAAAAAAAAAAAAAAAAAAAAA"),
        ErrorCode::Malformed,
    );
    v = serde_json::from_str(&ed).unwrap();
    let mut okp_y = v.clone();
    okp_y["y"] = json!(b64url(&[1u8; 32]));
    g.fail(
        "jwk-okp-with-y",
        "jwk_parse",
        json!({"jwk_json": okp_y.to_string()}),
        ErrorCode::Malformed,
    );
    // Service keysets are Ed25519 only.
    let tok = token_for(1, REGION, 3600, 1, "p256").0;
    let set = format!(r#"{{"keys":[{jwk_json}]}}"#);
    g.fail(
        "keyset-with-p256-key",
        "token_verify",
        json!({"token": tok, "keyset_json": set, "now": NOW, "skew": 60}),
        ErrorCode::UnsupportedAlgorithm,
    );
    // DSSE: DER signature.
    let envelope = |sig: &[u8]| {
        serde_json::to_string(&dsse::Envelope {
            payload: edrlink_core::encoding::b64std(b"hello world"),
            payload_type: "text/plain".into(),
            signatures: vec![dsse::Signature {
                keyid: pk.key_id(),
                sig: edrlink_core::encoding::b64std(sig),
            }],
        })
        .unwrap()
    };
    let der = unhex(P256_ENV_DER);
    let open = |e: &str, k: &str| json!({"envelope": e, "public_key_hex": k, "payload_type": "text/plain"});
    g.ok(
        "envelope-p256-der",
        "envelope_open",
        open(&envelope(&der), P256_PUB),
    );
    let raw = edrlink_core::keys::ecdsa_p256_to_raw(&der).unwrap();
    g.fail(
        "envelope-p256-raw-signature",
        "envelope_open",
        open(&envelope(&raw), P256_PUB),
        ErrorCode::BadSignature,
    );
    let mut flipped = der.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    g.fail(
        "envelope-p256-bad-signature",
        "envelope_open",
        open(&envelope(&flipped), P256_PUB),
        ErrorCode::BadSignature,
    );
    let tampered = envelope(&der).replace(
        &edrlink_core::encoding::b64std(b"hello world"),
        &edrlink_core::encoding::b64std(b"hello worle"),
    );
    g.fail(
        "envelope-p256-tampered-payload",
        "envelope_open",
        open(&tampered, P256_PUB),
        ErrorCode::BadSignature,
    );
    g.fail(
        "envelope-p256-opened-with-ed25519-key",
        "envelope_open",
        open(
            &envelope(&der),
            &hex(key("endpoint").verifying_key().as_bytes()),
        ),
        ErrorCode::UnknownKey,
    );
    let mut off_curve = unhex(P256_PUB);
    off_curve[64] ^= 1;
    g.fail(
        "envelope-p256-key-off-curve",
        "envelope_open",
        open(
            &envelope(&der).replace(
                &pk.key_id(),
                &VerifyingKey::from_bytes(&off_curve).unwrap().key_id(),
            ),
            &hex(&off_curve),
        ),
        ErrorCode::BadSignature,
    );
    // JWS: ES256 with r‖s.
    let jv = |j: &str, k: &str| json!({"jws": j, "typ": handshake::HELLO_TYP, "public_key_hex": k});
    g.ok("jws-es256", "jws_verify", jv(P256_JWS, P256_PUB));
    g.fail(
        "jws-es256-der-signature",
        "jws_verify",
        jv(P256_JWS_DER, P256_PUB),
        ErrorCode::Malformed,
    );
    g.fail(
        "jws-es256-with-ed25519-key",
        "jws_verify",
        jv(P256_JWS, &hex(key("endpoint").verifying_key().as_bytes())),
        ErrorCode::UnsupportedAlgorithm,
    );
    let eddsa = splice(
        P256_JWS,
        Some(&format!(
            r#"{{"alg":"EdDSA","typ":"{}","kid":"{}"}}"#,
            handshake::HELLO_TYP,
            pk.key_id()
        )),
        None,
    );
    g.fail(
        "jws-eddsa-header-with-p256-key",
        "jws_verify",
        jv(&eddsa, P256_PUB),
        ErrorCode::UnsupportedAlgorithm,
    );
    let es384 = splice(
        P256_JWS,
        Some(&format!(
            r#"{{"alg":"ES384","typ":"{}","kid":"{}"}}"#,
            handshake::HELLO_TYP,
            pk.key_id()
        )),
        None,
    );
    g.fail(
        "jws-es384",
        "jws_verify",
        jv(&es384, P256_PUB),
        ErrorCode::UnsupportedAlgorithm,
    );
    g.file("ECDSA P-256 installation keys: EC JWKs, ES256 JWS (r||s) and DSSE envelopes with DER signatures; service keysets stay Ed25519. Signatures were made outside edrlink (ECDSA is randomized) and are verified here.")
}

fn spec(epoch: u64, lifetime: i64, max_uses: u32) -> Value {
    json!({"issuer": ISSUER, "partner_id": PARTNER, "tenant_id": TENANT, "region": REGION, "service_url": SERVICE_URL, "epoch": epoch, "lifetime": lifetime, "max_uses": max_uses})
}

fn keyset_json(keys: &[&str]) -> String {
    Keyset::from_keys(
        &keys
            .iter()
            .map(|l| key(l).verifying_key())
            .collect::<Vec<_>>(),
    )
    .to_json()
}

fn gen_tokens() -> VectorFile {
    let mut g = Gen::new();
    let svc_seed = seed_hex("service");
    let t1 = g.ok("issue-default", "token_issue", json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "token-1", "spec": spec(1, token::DEFAULT_LIFETIME, token::DEFAULT_MAX_USES)}));
    g.ok("issue-short-single-use", "token_issue", json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "token-2", "spec": spec(3, 600, 1)}));
    g.ok("issue-max-lifetime", "token_issue", json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "token-3", "spec": spec(1, token::MAX_LIFETIME, 5)}));
    g.fail("issue-lifetime-too-long", "token_issue", json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "x", "spec": spec(1, token::MAX_LIFETIME + 1, 5)}), ErrorCode::InvalidArgument);
    g.fail(
        "issue-lifetime-zero",
        "token_issue",
        json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "x", "spec": spec(1, 0, 5)}),
        ErrorCode::InvalidArgument,
    );
    g.fail("issue-max-uses-zero", "token_issue", json!({"service_seed_hex": svc_seed, "now": NOW, "rng_label": "x", "spec": spec(1, 3600, 0)}), ErrorCode::InvalidArgument);

    let tok = t1["token"].as_str().unwrap().to_owned();
    let claims: token::AccessTokenClaims = serde_json::from_value(t1["claims"].clone()).unwrap();
    let (hdr, payload) = jws_parts(&tok);
    let ks = keyset_json(&["service"]);
    let exp = claims.exp;
    let nbf = claims.nbf;

    g.ok("inspect", "token_inspect", json!({"token": tok}));
    g.ok(
        "inspect-with-whitespace",
        "token_inspect",
        json!({"token": format!("  {tok}\n")}),
    );
    g.fail(
        "inspect-garbage",
        "token_inspect",
        json!({"token": "not a token"}),
        ErrorCode::Malformed,
    );

    let v =
        |now: i64, skew: i64| json!({"token": tok, "keyset_json": ks, "now": now, "skew": skew});
    g.ok("verify-at-issue", "token_verify", v(NOW, 60));
    g.ok("verify-last-second", "token_verify", v(exp - 1, 0));
    g.fail(
        "verify-expired-at-exp",
        "token_verify",
        v(exp, 0),
        ErrorCode::TokenExpired,
    );
    g.ok(
        "verify-expired-within-skew",
        "token_verify",
        v(exp + 59, 60),
    );
    g.fail(
        "verify-expired-beyond-skew",
        "token_verify",
        v(exp + 60, 60),
        ErrorCode::TokenExpired,
    );
    g.ok(
        "verify-skew-clamped-to-300-ok",
        "token_verify",
        v(exp + 299, 100_000),
    );
    g.fail(
        "verify-skew-clamped-to-300-expired",
        "token_verify",
        v(exp + 300, 100_000),
        ErrorCode::TokenExpired,
    );
    g.fail(
        "verify-negative-skew-clamped-to-0",
        "token_verify",
        v(exp, -50),
        ErrorCode::TokenExpired,
    );
    g.fail(
        "verify-not-yet-valid",
        "token_verify",
        v(nbf - 1, 0),
        ErrorCode::TokenNotYetValid,
    );
    g.ok(
        "verify-not-yet-valid-within-skew",
        "token_verify",
        v(nbf - 60, 60),
    );
    g.fail(
        "verify-not-yet-valid-beyond-skew",
        "token_verify",
        v(nbf - 61, 60),
        ErrorCode::TokenNotYetValid,
    );

    // Tampering.
    let tampered = payload.replace("\"max_uses\":10000", "\"max_uses\":99999");
    assert_ne!(tampered, payload);
    g.fail("verify-tampered-payload", "token_verify", json!({"token": splice(&tok, None, Some(&tampered)), "keyset_json": ks, "now": NOW, "skew": 60}), ErrorCode::BadSignature);
    let mut sig = b64url_decode(tok.rsplit('.').next().unwrap()).unwrap();
    sig[5] ^= 1;
    let bad_sig = format!("{}.{}", tok.rsplit_once('.').unwrap().0, b64url(&sig));
    g.fail(
        "verify-tampered-signature",
        "token_verify",
        json!({"token": bad_sig, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::BadSignature,
    );
    g.fail(
        "verify-unknown-kid",
        "token_verify",
        json!({"token": tok, "keyset_json": keyset_json(&["service-2"]), "now": NOW, "skew": 60}),
        ErrorCode::UnknownKey,
    );
    let other_kid = key("service-2").key_id();
    let swapped = hdr.replace(&key("service").key_id(), &other_kid);
    g.fail("verify-kid-swapped-to-other-key", "token_verify", json!({"token": splice(&tok, Some(&swapped), None), "keyset_json": keyset_json(&["service", "service-2"]), "now": NOW, "skew": 60}), ErrorCode::BadSignature);
    g.ok("verify-second-key-of-keyset", "token_verify", json!({"token": tok, "keyset_json": keyset_json(&["service-2", "service"]), "now": NOW, "skew": 60}));
    let mut ks_old = Keyset::from_keys(&[key("service").verifying_key()]);
    ks_old.keys[0].not_after = Some(NOW - 1);
    g.fail(
        "verify-key-past-not-after",
        "token_verify",
        json!({"token": tok, "keyset_json": ks_old.to_json(), "now": NOW, "skew": 60}),
        ErrorCode::UnknownKey,
    );
    g.fail(
        "verify-empty-keyset",
        "token_verify",
        json!({"token": tok, "keyset_json": "{\"keys\":[]}", "now": NOW, "skew": 60}),
        ErrorCode::UnknownKey,
    );
    g.fail(
        "verify-keyset-not-json",
        "token_verify",
        json!({"token": tok, "keyset_json": "keys", "now": NOW, "skew": 60}),
        ErrorCode::Malformed,
    );

    // Properly signed, with extreme times: a typed refusal, never an overflow
    // (`iat - MAX_SKEW` saturates).
    let svc = key("service");
    for (name, iat, nbf, exp) in [
        ("iat-i64-max", i64::MAX, nbf, exp),
        ("exp-i64-min", claims.iat, nbf, i64::MIN),
        ("nbf-i64-min-exp-i64-min", i64::MIN, i64::MIN, i64::MIN),
    ] {
        let mut c = claims.clone();
        (c.iat, c.nbf, c.exp) = (iat, nbf, exp);
        let t = jws::sign(token::TYP, &c, &svc, false).unwrap();
        g.fail(
            &format!("inspect-{name}"),
            "token_inspect",
            json!({"token": t}),
            ErrorCode::Malformed,
        );
        g.fail(
            &format!("verify-{name}"),
            "token_verify",
            json!({"token": t, "keyset_json": ks, "now": NOW, "skew": 300}),
            ErrorCode::Malformed,
        );
    }

    // Properly signed, but not an access token.
    let as_hello = jws::sign(handshake::HELLO_TYP, &claims, &svc, false).unwrap();
    g.fail(
        "verify-wrong-typ",
        "token_verify",
        json!({"token": as_hello, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::WrongType,
    );
    g.fail(
        "inspect-wrong-typ",
        "token_inspect",
        json!({"token": as_hello}),
        ErrorCode::WrongType,
    );
    let mut other_aud = claims.clone();
    other_aud.aud = "some-other-api".into();
    let aud_tok = jws::sign(token::TYP, &other_aud, &svc, false).unwrap();
    g.fail(
        "verify-wrong-audience",
        "token_verify",
        json!({"token": aud_tok, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::WrongType,
    );
    let mut window = claims.clone();
    window.exp = window.nbf;
    let window_tok = jws::sign(token::TYP, &window, &svc, false).unwrap();
    g.fail(
        "verify-empty-validity-window",
        "token_verify",
        json!({"token": window_tok, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::Malformed,
    );

    // Algorithms.
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"edrlink-access+jwt"}"#),
        tok.split('.').nth(1).unwrap()
    );
    g.fail(
        "verify-alg-none",
        "token_verify",
        json!({"token": none, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::UnsupportedAlgorithm,
    );
    g.fail(
        "inspect-alg-none",
        "token_inspect",
        json!({"token": none}),
        ErrorCode::UnsupportedAlgorithm,
    );
    let hs_input = format!(
        "{}.{}",
        b64url(
            format!(
                r#"{{"alg":"HS256","typ":"edrlink-access+jwt","kid":"{}"}}"#,
                svc.key_id()
            )
            .as_bytes()
        ),
        tok.split('.').nth(1).unwrap()
    );
    let hs_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, svc.verifying_key().as_bytes());
    let hs = format!(
        "{hs_input}.{}",
        b64url(ring::hmac::sign(&hs_key, hs_input.as_bytes()).as_ref())
    );
    g.fail(
        "verify-alg-hs256-with-public-key-as-secret",
        "token_verify",
        json!({"token": hs, "keyset_json": ks, "now": NOW, "skew": 60}),
        ErrorCode::UnsupportedAlgorithm,
    );

    // Malformed.
    for (name, t) in [
        (
            "verify-malformed-two-parts",
            tok.rsplit_once('.').unwrap().0.to_owned(),
        ),
        ("verify-malformed-four-parts", format!("{tok}.x")),
        ("verify-malformed-bad-base64", format!("{}!", tok)),
        (
            "verify-malformed-short-signature",
            format!("{}.{}", tok.rsplit_once('.').unwrap().0, b64url(&[0u8; 63])),
        ),
        (
            "verify-malformed-header-crit",
            splice(
                &tok,
                Some(&format!(
                    r#"{{"alg":"EdDSA","typ":"edrlink-access+jwt","kid":"{}","crit":["exp"]}}"#,
                    svc.key_id()
                )),
                None,
            ),
        ),
        (
            "verify-malformed-header-no-kid",
            splice(
                &tok,
                Some(r#"{"alg":"EdDSA","typ":"edrlink-access+jwt"}"#),
                None,
            ),
        ),
        ("verify-malformed-empty", String::new()),
    ] {
        g.fail(
            name,
            "token_verify",
            json!({"token": t, "keyset_json": ks, "now": NOW, "skew": 60}),
            ErrorCode::Malformed,
        );
    }
    g.file("Access tokens (JWT, EdDSA, typ edrlink-access+jwt): issue, inspect (no trust), verify against a pinned keyset with clamped skew")
}

fn sample_batch(seq: u64, session: Option<&str>) -> Batch {
    Batch {
        v: 1,
        installation_id: "inst-example".into(),
        session_id: session.map(str::to_owned),
        batch_id: format!("batch-{seq}"),
        seq,
        created: rfc3339(NOW),
        sent: rfc3339(NOW),
        policy_version: 1,
        events: vec![
            Event::Generic(GenericEvent {
                time: rfc3339(NOW),
                name: "process_start".into(),
                data: json!({"pid": 42, "image": "/usr/bin/true"}),
            }),
            eicar::test_detection(NOW, "/tmp/eicar.com"),
        ],
    }
}

fn gen_envelopes() -> VectorFile {
    let mut g = Gen::new();
    let sd = seed_hex("endpoint");
    let pk = hex(key("endpoint").verifying_key().as_bytes());
    let pk2 = hex(key("endpoint-2").verifying_key().as_bytes());
    let batch_json = serde_json::to_vec(&sample_batch(1, Some("sess-example"))).unwrap();
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&batch_json).unwrap();
        e.finish().unwrap()
    };
    let payloads: Vec<(&str, &str, Vec<u8>)> = vec![
        ("text", "text/plain", b"hello world".to_vec()),
        ("empty", "text/plain", Vec::new()),
        (
            "binary-all-bytes",
            "application/octet-stream",
            (0..=255u8).collect(),
        ),
        ("batch", telemetry::BATCH_TYPE, batch_json.clone()),
        ("batch-gzip", telemetry::BATCH_TYPE_GZIP, gz),
    ];
    let mut envs = Vec::new();
    for (name, typ, p) in &payloads {
        let out = g.ok(
            &format!("seal-{name}"),
            "envelope_seal",
            json!({"seed_hex": sd, "payload_type": typ, "payload_hex": hex(p)}),
        );
        envs.push((
            name.to_string(),
            typ.to_string(),
            out["envelope"].as_str().unwrap().to_owned(),
        ));
    }
    for (name, typ, env) in &envs {
        g.ok(
            &format!("open-{name}"),
            "envelope_open",
            json!({"envelope": env, "public_key_hex": pk, "payload_type": typ}),
        );
    }
    let (_, _, text_env) = envs[0].clone();
    let (_, _, bin_env) = envs[2].clone();
    let o =
        |e: &str, t: &str, k: &str| json!({"envelope": e, "public_key_hex": k, "payload_type": t});
    let mut env: Value = serde_json::from_str(&text_env).unwrap();
    // Both base64 alphabets are accepted (DSSE): the URL-safe form of the binary envelope.
    let mut url = serde_json::from_str::<Value>(&bin_env).unwrap();
    let urlsafe = |v: &Value| v.as_str().unwrap().replace('+', "-").replace('/', "_");
    url["payload"] = json!(urlsafe(&url["payload"]));
    url["signatures"][0]["sig"] = json!(urlsafe(&url["signatures"][0]["sig"]));
    assert!(
        url["payload"].as_str().unwrap().contains('-')
            || url["payload"].as_str().unwrap().contains('_')
    );
    g.ok(
        "open-url-safe-base64",
        "envelope_open",
        o(&url.to_string(), "application/octet-stream", &pk),
    );
    g.ok("open-reordered-fields-and-whitespace", "envelope_open", o(&format!("{{ \"signatures\": [ {{\"sig\": {}, \"keyid\": {}}} ],\n \"payloadType\": \"text/plain\", \"payload\": {} }}", env["signatures"][0]["sig"], env["signatures"][0]["keyid"], env["payload"]), "text/plain", &pk));
    g.fail(
        "open-wrong-payload-type",
        "envelope_open",
        o(&text_env, "application/json", &pk),
        ErrorCode::WrongType,
    );
    g.fail(
        "open-wrong-key",
        "envelope_open",
        o(&text_env, "text/plain", &pk2),
        ErrorCode::UnknownKey,
    );
    let mut t = env.clone();
    t["payload"] = json!(edrlink_core::encoding::b64std(b"hello world!"));
    g.fail(
        "open-tampered-payload",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::BadSignature,
    );
    let mut t = env.clone();
    t["payloadType"] = json!("text/html");
    g.fail(
        "open-tampered-payload-type",
        "envelope_open",
        o(&t.to_string(), "text/html", &pk),
        ErrorCode::BadSignature,
    );
    let mut t = env.clone();
    let mut sig =
        edrlink_core::encoding::b64_dsse_decode(env["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
    sig[0] ^= 0x80;
    t["signatures"][0]["sig"] = json!(edrlink_core::encoding::b64std(&sig));
    g.fail(
        "open-tampered-signature",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::BadSignature,
    );
    let mut t = env.clone();
    t["signatures"][0]["keyid"] = json!(key("endpoint-2").key_id());
    g.fail(
        "open-keyid-swapped-to-other-key",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk2),
        ErrorCode::BadSignature,
    );
    let mut t = env.clone();
    t["signatures"][0]["sig"] = json!(edrlink_core::encoding::b64std(&[0u8; 63]));
    g.fail(
        "open-signature-wrong-length",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::BadSignature,
    );
    let mut t = env.clone();
    let first = t["signatures"][0].clone();
    t["signatures"].as_array_mut().unwrap().push(first);
    g.fail(
        "open-two-signatures",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::Malformed,
    );
    let mut t = env.clone();
    t["signatures"] = json!([]);
    g.fail(
        "open-no-signature",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::Malformed,
    );
    let mut t = env.clone();
    t["signatures"][0].as_object_mut().unwrap().remove("keyid");
    g.fail(
        "open-no-keyid",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::Malformed,
    );
    let mut t = env.clone();
    t["payload"] = json!("aGVsbG8gd29ybGQ"); // unpadded: DSSE base64 needs padding
    g.fail(
        "open-payload-unpadded-base64",
        "envelope_open",
        o(&t.to_string(), "text/plain", &pk),
        ErrorCode::Malformed,
    );
    let mut t = env.clone();
    t["payloadType"] = json!("text/plain with spaces");
    g.fail(
        "open-payload-type-not-token",
        "envelope_open",
        o(&t.to_string(), "text/plain with spaces", &pk),
        ErrorCode::Malformed,
    );
    g.fail(
        "open-not-json",
        "envelope_open",
        o("DSSEv1 hello", "text/plain", &pk),
        ErrorCode::Malformed,
    );
    g.fail(
        "open-empty-object",
        "envelope_open",
        o("{}", "text/plain", &pk),
        ErrorCode::Malformed,
    );
    env["payload"] = json!(1);
    g.fail(
        "open-payload-not-string",
        "envelope_open",
        o(&env.to_string(), "text/plain", &pk),
        ErrorCode::Malformed,
    );
    g.file("DSSE envelopes (one Ed25519 signature, keyid = kid of the signer): seal and open")
}

// ---------------------------------------------------------------------------
// messages.json: exchanges against the service role, and every signed message.

/// A recorded service exchange.
struct Scenario {
    world: Value,
    svc: ServiceRole,
    store: MemoryStore,
    steps: Vec<Value>,
    expect: Vec<Value>,
}

fn base_world(
    integ_epoch: u64,
    enabled: bool,
    region: &str,
    tokens: &[TokenRecord],
    workspaces: Value,
) -> Value {
    json!({
        "service_seed_hex": seed_hex("service"),
        "issuer": ISSUER,
        "region": region,
        "service_url": SERVICE_URL,
        "rng_label": "service",
        "session_lifetime": 3600,
        "policy": to_val(&Policy::default()),
        "rate_limit": {"burst": 200, "per_second": 50},
        "tenants": [{"tenant_id": TENANT, "region": REGION}],
        "integrations": [to_val(&Integration { tenant_id: TENANT.into(), partner_id: PARTNER.into(), enabled, epoch: integ_epoch })],
        "tokens": tokens.iter().map(to_val).collect::<Vec<_>>(),
        "workspaces": workspaces,
    })
}

impl Scenario {
    fn new(world: Value) -> Self {
        let (svc, store) = build_world(&world);
        Scenario {
            world,
            svc,
            store,
            steps: Vec::new(),
            expect: Vec::new(),
        }
    }
    fn send(
        &mut self,
        now: UnixSeconds,
        path: &str,
        content_type: &str,
        body: &str,
        extra: &[(String, String)],
    ) -> HttpResponse {
        let mut headers = vec![json!(["content-type", content_type])];
        headers.extend(extra.iter().map(|(k, v)| json!([k, v])));
        let req = json!({"method": "POST", "path": path, "headers": headers, "body": body});
        let resp = self.svc.handle(&mut self.store, &request_of(&req), now);
        self.steps.push(json!({"now": now, "request": req}));
        self.expect.push(response_value(&resp));
        resp
    }
    fn jose(&mut self, now: UnixSeconds, path: &str, body: &str) -> HttpResponse {
        self.send(now, path, edrlink_core::http::JOSE, body, &[])
    }
    fn revoke_workspace(&mut self, id: &str) {
        let step = json!({ "revoke_workspace": id });
        apply_admin(&mut self.store, &step);
        self.steps.push(step);
        self.expect.push(json!({}));
    }
    /// The admin toggle, decided by the service role (off bumps the epoch);
    /// the step records the resulting integration for replay.
    fn set_integration(&mut self, enabled: bool, epoch: u64) {
        let it = self
            .svc
            .set_integration(&mut self.store, TENANT, PARTNER, enabled, NOW)
            .unwrap();
        assert_eq!(
            it.epoch, epoch,
            "the toggle moved the epoch to {}",
            it.epoch
        );
        let step = json!({"set_integration": to_val(&it)});
        apply_admin(&mut self.store, &step);
        self.steps.push(step);
        self.expect.push(json!({}));
    }
    fn set_installation(&mut self, id: &str, revoked: bool, offboarded: bool) {
        let step = json!({"set_installation": {"installation_id": id, "revoked": revoked, "offboarded": offboarded}});
        apply_admin(&mut self.store, &step);
        self.steps.push(step);
        self.expect.push(json!({}));
    }
    /// Adds the case; the last response must be `code` (or success when `None`).
    fn finish(self, g: &mut Gen, name: &str, last: Option<ErrorCode>) {
        let got = self.expect.last().unwrap();
        match last {
            Some(c) => assert_eq!(got["error"], c.as_str(), "{name}: {got}"),
            None => assert!(got.get("error").is_none(), "{name}: {got}"),
        }
        let input = json!({"world": self.world, "steps": self.steps});
        let out = g.ok(name, "service_exchange", input);
        assert_eq!(
            out,
            json!({"steps": self.expect}),
            "{name}: replay differs from the live run"
        );
    }
}

/// A token issued the way the portal issues one (`ServiceRole::issue_token`,
/// which also records it), by a role whose store has the integration in
/// `epoch` and the tenant in `region`: the refusal cases need tokens of
/// other epochs and regions than the exchange's world.
fn token_for(
    epoch: u64,
    region: &str,
    lifetime: i64,
    max_uses: u32,
    label: &str,
) -> (String, TokenRecord) {
    let role = ServiceRole::new(service_config("service"), CounterRandom::boxed(label)).unwrap();
    let mut store = MemoryStore::default();
    store.tenants.insert(TENANT.into(), region.into());
    store.integrations.insert(
        (TENANT.into(), PARTNER.into()),
        Integration {
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            enabled: true,
            epoch,
        },
    );
    let (t, c) = role
        .issue_token(&mut store, TENANT, PARTNER, lifetime, max_uses, NOW - 60)
        .unwrap();
    let rec = store
        .token(&c.jti)
        .unwrap()
        .expect("issue_token records the token");
    (t, rec)
}

fn redeem_body(
    tok: &str,
    key_label: &str,
    enrollment: &str,
    device_id: &str,
    iat: UnixSeconds,
    rng: &str,
) -> (String, PendingRedeem) {
    let r = CounterRandom::new(rng);
    let mut p = PendingRedeem::new(
        tok,
        device(device_id),
        Some(key(key_label)),
        Some(enrollment.into()),
        &r,
    )
    .unwrap();
    let body = p.request(iat, &r).unwrap();
    (body, p)
}

fn hello_of(cred: &Credential, now: UnixSeconds, rng: &str) -> String {
    let h = Hello {
        installation_id: String::new(),
        nonce: String::new(),
        iat: 0,
        sensor: SensorState::Running,
        last_seq: 0,
        policy_version: 1,
        clock_offset: 0,
        queued_events: 2,
        drops: Default::default(),
    };
    handshake::hello(cred, h, now, &CounterRandom::new(rng))
        .unwrap()
        .0
}

fn text(r: &HttpResponse) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

/// Redeems in a scenario and returns the credential.
fn enrolled(sc: &mut Scenario, tok: &str) -> Credential {
    let (body, p) = redeem_body(
        tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem",
    );
    let r = sc.jose(NOW, "/v1/redeem", &body);
    p.accept(&text(&r), None, NOW).unwrap().0
}

fn gen_messages() -> VectorFile {
    let mut g = Gen::new();
    let mut signed: Vec<(String, String, String, bool)> = Vec::new(); // (name, typ, jws, embed)
    let (tok, rec) = token_for(1, REGION, 86_400, 10, "token-msg");
    let world = || base_world(1, true, REGION, std::slice::from_ref(&rec), json!([]));

    // Redeem, replay.
    let mut sc = Scenario::new(world());
    let (body, p) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem",
    );
    let r = sc.jose(NOW, "/v1/redeem", &body);
    signed.push((
        "redeem-request".into(),
        redeem::REQUEST_TYP.into(),
        body.clone(),
        true,
    ));
    signed.push((
        "redeem-response".into(),
        redeem::RESPONSE_TYP.into(),
        text(&r),
        false,
    ));
    let cred = p.accept(&text(&r), None, NOW).unwrap().0;
    sc.jose(NOW + 1, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-then-replayed-nonce",
        Some(ErrorCode::Replay),
    );

    // Idempotent retry: same enrollment id and key, new nonce -> same installation.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let (body2, _) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW + 5,
        "client-redeem-retry",
    );
    sc.jose(NOW + 5, "/v1/redeem", &body2);
    sc.finish(&mut g, "redeem-retry-same-enrollment-is-idempotent", None);

    for (name, iat) in [
        ("redeem-stale-iat-past", NOW - 301),
        ("redeem-stale-iat-future", NOW + 301),
        // Attacker-chosen extremes: refused as stale, never an overflow.
        ("redeem-iat-i64-min", i64::MIN),
        ("redeem-iat-i64-max", i64::MAX),
    ] {
        let mut sc = Scenario::new(world());
        let (body, _) = redeem_body(
            &tok,
            "endpoint",
            "enroll-1",
            "device-1",
            iat,
            "client-redeem",
        );
        sc.jose(NOW, "/v1/redeem", &body);
        sc.finish(&mut g, name, Some(ErrorCode::StaleMessage));
    }
    let mut sc = Scenario::new(world());
    let (body, _) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW - 300,
        "client-redeem",
    );
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(&mut g, "redeem-iat-at-window-edge", None);

    let mut sc = Scenario::new(base_world(
        2,
        true,
        REGION,
        std::slice::from_ref(&rec),
        json!([]),
    ));
    let (body, _) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem",
    );
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-epoch-mismatch",
        Some(ErrorCode::EpochMismatch),
    );

    let mut sc = Scenario::new(base_world(
        1,
        false,
        REGION,
        std::slice::from_ref(&rec),
        json!([]),
    ));
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-integration-disabled",
        Some(ErrorCode::IntegrationDisabled),
    );

    let mut sc = Scenario::new(base_world(
        1,
        true,
        "us",
        std::slice::from_ref(&rec),
        json!([]),
    ));
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(&mut g, "redeem-wrong-region", Some(ErrorCode::WrongRegion));

    let mut revoked = rec.clone();
    revoked.revoked = true;
    let mut sc = Scenario::new(base_world(1, true, REGION, &[revoked], json!([])));
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-token-revoked",
        Some(ErrorCode::TokenRevoked),
    );

    let mut sc = Scenario::new(base_world(1, true, REGION, &[], json!([])));
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-token-unknown-to-service",
        Some(ErrorCode::TokenRevoked),
    );

    let mut used = rec.clone();
    used.uses = used.max_uses;
    let mut sc = Scenario::new(base_world(1, true, REGION, &[used], json!([])));
    sc.jose(NOW, "/v1/redeem", &body);
    sc.finish(
        &mut g,
        "redeem-token-exhausted",
        Some(ErrorCode::TokenExhausted),
    );

    let mut sc = Scenario::new(world());
    let late = NOW - 60 + 86_400;
    let (body_late, _) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        late,
        "client-redeem",
    );
    sc.jose(late, "/v1/redeem", &body_late);
    sc.finish(
        &mut g,
        "redeem-token-expired",
        Some(ErrorCode::TokenExpired),
    );

    // Signed by one key, embedding another.
    let mut sc = Scenario::new(world());
    let (h, pl) = jws_parts(&body);
    let other_jwk = serde_json::to_string(&key("endpoint-2").verifying_key().to_jwk()).unwrap();
    let swapped = format!(
        r#"{{"alg":"EdDSA","typ":"{}","jwk":{other_jwk}}}"#,
        redeem::REQUEST_TYP
    );
    assert_ne!(swapped, h);
    sc.jose(NOW, "/v1/redeem", &splice(&body, Some(&swapped), Some(&pl)));
    sc.finish(
        &mut g,
        "redeem-embedded-key-is-not-the-signer",
        Some(ErrorCode::BadSignature),
    );

    // Same enrollment id, another key.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let (b2, _) = redeem_body(
        &tok,
        "endpoint-2",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem-2",
    );
    sc.jose(NOW, "/v1/redeem", &b2);
    sc.finish(
        &mut g,
        "redeem-enrollment-reused-with-other-key",
        Some(ErrorCode::PossibleClone),
    );

    // Same device, another key and enrollment: accepted, possible_clone_of set.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let (b2, _) = redeem_body(
        &tok,
        "endpoint-2",
        "enroll-2",
        "device-1",
        NOW,
        "client-redeem-2",
    );
    let r = sc.jose(NOW, "/v1/redeem", &b2);
    let (_, rp) = jws_parts(&text(&r));
    assert!(rp.contains("\"possible_clone_of\":\"inst-"), "{rp}");
    signed.push((
        "redeem-response-possible-clone".into(),
        redeem::RESPONSE_TYP.into(),
        text(&r),
        false,
    ));
    sc.finish(
        &mut g,
        "redeem-same-device-other-key-flags-possible-clone",
        None,
    );

    // Handshake: open, replay, stale, wrong key.
    let mut sc = Scenario::new(world());
    let cred = {
        let c = enrolled(&mut sc, &tok);
        assert_eq!(c.installation_id, cred.installation_id);
        c
    };
    let hello = hello_of(&cred, NOW + 10, "client-hello");
    let r = sc.jose(NOW + 10, "/v1/handshake", &hello);
    signed.push((
        "hello".into(),
        handshake::HELLO_TYP.into(),
        hello.clone(),
        false,
    ));
    signed.push((
        "flow-decision-open".into(),
        handshake::FLOW_TYP.into(),
        text(&r),
        false,
    ));
    sc.jose(NOW + 11, "/v1/handshake", &hello);
    sc.finish(
        &mut g,
        "handshake-open-then-replayed-nonce",
        Some(ErrorCode::Replay),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 400,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.finish(&mut g, "handshake-stale-iat", Some(ErrorCode::StaleMessage));

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let mut forged = Credential::from_json(&cred.to_json()).unwrap();
    forged.auth = edrlink_core::credential::CredentialAuth::Key(key("endpoint-2").into());
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&forged, NOW + 10, "client-hello"),
    );
    sc.finish(
        &mut g,
        "handshake-signed-by-wrong-key",
        Some(ErrorCode::UnknownKey),
    );

    let mut sc = Scenario::new(world());
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.finish(
        &mut g,
        "handshake-unknown-installation",
        Some(ErrorCode::UnknownInstallation),
    );

    // Toggle off: blocked; back on: revoked (old epoch).
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.set_integration(false, 2);
    let r = sc.jose(
        NOW + 20,
        "/v1/handshake",
        &hello_of(&cred, NOW + 20, "client-hello-2"),
    );
    signed.push((
        "flow-decision-blocked".into(),
        handshake::FLOW_TYP.into(),
        text(&r),
        false,
    ));
    assert!(text(&r).len() > 10);
    sc.finish(&mut g, "handshake-blocked-after-toggle-off", None);

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.set_integration(false, 2);
    sc.set_integration(true, 2);
    let r = sc.jose(
        NOW + 30,
        "/v1/handshake",
        &hello_of(&cred, NOW + 30, "client-hello-3"),
    );
    signed.push((
        "flow-decision-revoked-epoch".into(),
        handshake::FLOW_TYP.into(),
        text(&r),
        false,
    ));
    sc.finish(&mut g, "handshake-revoked-after-epoch-change", None);

    // Ingest: accepted, duplicate, sequence regression, session missing, wrong epoch.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let r = sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    let d =
        handshake::accept_decision(&cred, &text(&r), &handshake_nonce("client-hello"), NOW + 10)
            .unwrap();
    let mut b = sample_batch(1, d.session_id.as_deref());
    b.installation_id = cred.installation_id.clone();
    let env1 =
        String::from_utf8(telemetry::seal_batch(&b, cred.signing_key().unwrap(), false).unwrap())
            .unwrap();
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.send(
        NOW + 12,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    let mut b3 = b.clone();
    b3.seq = 3;
    b3.batch_id = "batch-3".into();
    let env3 =
        String::from_utf8(telemetry::seal_batch(&b3, cred.signing_key().unwrap(), false).unwrap())
            .unwrap();
    sc.send(
        NOW + 13,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env3,
        &[],
    );
    let mut b2 = b.clone();
    b2.seq = 2;
    b2.batch_id = "batch-2-late".into();
    let env2 =
        String::from_utf8(telemetry::seal_batch(&b2, cred.signing_key().unwrap(), true).unwrap())
            .unwrap();
    sc.send(
        NOW + 14,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env2,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-accepted-duplicate-gap-then-regression",
        Some(ErrorCode::SequenceRegression),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let mut nb = b.clone();
    nb.session_id = None;
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &String::from_utf8(telemetry::seal_batch(&nb, cred.signing_key().unwrap(), false).unwrap())
            .unwrap(),
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-without-session",
        Some(ErrorCode::SessionExpired),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.send(
        NOW + 10 + 3601,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-after-session-expiry",
        Some(ErrorCode::SessionExpired),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.set_integration(false, 2);
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-while-integration-off",
        Some(ErrorCode::FlowBlocked),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.set_integration(false, 2);
    sc.set_integration(true, 2);
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-with-old-epoch-credential",
        Some(ErrorCode::EpochMismatch),
    );

    // Per-installation revocation: refused at once, with the session opened
    // before the revoke, on every route.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.set_installation(&cred.installation_id, true, false);
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-after-admin-revoke",
        Some(ErrorCode::Revoked),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.set_installation(&cred.installation_id, true, false);
    let r = sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    let d =
        handshake::accept_decision(&cred, &text(&r), &handshake_nonce("client-hello"), NOW + 10)
            .unwrap();
    assert_eq!(
        (d.decision, d.reason),
        (handshake::FlowState::Revoked, Some(ErrorCode::Revoked))
    );
    sc.finish(&mut g, "handshake-after-admin-revoke", None);

    for (name, revoked, offboarded, code) in [
        (
            "redeem-revoked-installation",
            true,
            false,
            ErrorCode::Revoked,
        ),
        (
            "redeem-offboarded-installation-without-reinstate",
            false,
            true,
            ErrorCode::Offboarded,
        ),
    ] {
        let mut sc = Scenario::new(world());
        enrolled(&mut sc, &tok);
        sc.set_installation(&cred.installation_id, revoked, offboarded);
        let (again, _) = redeem_body(
            &tok,
            "endpoint",
            "enroll-1",
            "device-1",
            NOW + 5,
            "client-redeem-again",
        );
        sc.jose(NOW + 5, "/v1/redeem", &again);
        sc.finish(&mut g, name, Some(code));
    }

    // Reinstated (both flags cleared), the installation resumes.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.set_installation(&cred.installation_id, false, true);
    sc.set_installation(&cred.installation_id, false, false);
    let (again, _) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW + 5,
        "client-redeem-again",
    );
    sc.jose(NOW + 5, "/v1/redeem", &again);
    sc.finish(&mut g, "redeem-after-reinstate-resumes", None);

    // credential_exp is enforced.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    let expired = cred.expires_at + 1;
    sc.send(expired, "/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, &env1, &[]);
    sc.finish(
        &mut g,
        "ingest-after-credential-expiry",
        Some(ErrorCode::CredentialExpired),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let r = sc.jose(
        expired,
        "/v1/handshake",
        &hello_of(&cred, expired, "client-hello"),
    );
    let d =
        handshake::accept_decision(&cred, &text(&r), &handshake_nonce("client-hello"), NOW + 10)
            .unwrap();
    assert_eq!(d.reason, Some(ErrorCode::CredentialExpired));
    sc.finish(&mut g, "handshake-after-credential-expiry", None);

    // Rotation in good standing only; the epoch is compared first.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.set_integration(false, 2);
    let (rb, _) = rotate::request(
        &cred,
        &key("endpoint-rotated"),
        NOW + 10,
        &CounterRandom::new("client-rotate"),
    )
    .unwrap();
    sc.jose(NOW + 10, "/v1/rotate", &rb);
    sc.finish(
        &mut g,
        "rotate-old-epoch-while-integration-off",
        Some(ErrorCode::EpochMismatch),
    );

    // Every redemption counts: a known installation cannot resume with an
    // exhausted token.
    let (tok_spent, mut rec_spent) = token_for(1, REGION, 86_400, 1, "token-spent");
    rec_spent.uses = 1;
    let mut sc = Scenario::new(base_world(
        1,
        true,
        REGION,
        &[rec.clone(), rec_spent],
        json!([]),
    ));
    enrolled(&mut sc, &tok);
    let (again, _) = redeem_body(
        &tok_spent,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW + 5,
        "client-redeem-again",
    );
    sc.jose(NOW + 5, "/v1/redeem", &again);
    sc.finish(
        &mut g,
        "redeem-resume-with-exhausted-token",
        Some(ErrorCode::TokenExhausted),
    );

    // A redeem refused for its token stores nothing, not even its nonce:
    // the same nonce with a good token is accepted afterwards.
    let (tok_revoked, mut rec_revoked) = token_for(1, REGION, 86_400, 10, "token-revoked");
    rec_revoked.revoked = true;
    let mut sc = Scenario::new(base_world(
        1,
        true,
        REGION,
        &[rec.clone(), rec_revoked],
        json!([]),
    ));
    let (bad, _) = redeem_body(
        &tok_revoked,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem",
    );
    let r = sc.jose(NOW, "/v1/redeem", &bad);
    assert_eq!(r.status, 401);
    let (good, p) = redeem_body(
        &tok,
        "endpoint",
        "enroll-1",
        "device-1",
        NOW,
        "client-redeem",
    );
    let r = sc.jose(NOW, "/v1/redeem", &good);
    p.accept(&text(&r), None, NOW).unwrap();
    sc.finish(&mut g, "redeem-refused-token-stores-no-nonce", None);

    // At most 4 live sessions per installation: the 5th drops the oldest.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let mut first = None;
    for k in 0..5 {
        let label = format!("client-hello-{k}");
        let r = sc.jose(
            NOW + 10 + k,
            "/v1/handshake",
            &hello_of(&cred, NOW + 10 + k, &label),
        );
        let d = handshake::accept_decision(&cred, &text(&r), &handshake_nonce(&label), NOW + 10)
            .unwrap();
        first = first.or(d.session_id);
    }
    let mut b1 = sample_batch(1, first.as_deref());
    b1.installation_id = cred.installation_id.clone();
    let env_first =
        String::from_utf8(telemetry::seal_batch(&b1, cred.signing_key().unwrap(), false).unwrap())
            .unwrap();
    sc.send(
        NOW + 20,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env_first,
        &[],
    );
    sc.finish(
        &mut g,
        "fifth-session-drops-the-oldest",
        Some(ErrorCode::SessionExpired),
    );

    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    let other =
        String::from_utf8(telemetry::seal_batch(&b, &key("endpoint-2"), false).unwrap()).unwrap();
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &other,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-signed-by-unknown-key",
        Some(ErrorCode::UnknownKey),
    );

    // Offboard (partner opt-out), then the hello is answered "revoked".
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let (ob, _) = offboard::request(
        &cred,
        "uninstalled",
        NOW + 10,
        &CounterRandom::new("client-offboard"),
    )
    .unwrap();
    let r = sc.jose(NOW + 10, "/v1/offboard", &ob);
    signed.push((
        "offboard-request".into(),
        offboard::REQUEST_TYP.into(),
        ob.clone(),
        false,
    ));
    signed.push((
        "offboard-response".into(),
        offboard::RESPONSE_TYP.into(),
        text(&r),
        false,
    ));
    let r = sc.jose(
        NOW + 20,
        "/v1/handshake",
        &hello_of(&cred, NOW + 20, "client-hello-2"),
    );
    signed.push((
        "flow-decision-revoked-offboarded".into(),
        handshake::FLOW_TYP.into(),
        text(&r),
        false,
    ));
    sc.finish(&mut g, "offboard-then-handshake-revoked", None);

    // Rotation: acquire-then-replace; the old key no longer works afterwards.
    let mut sc = Scenario::new(world());
    enrolled(&mut sc, &tok);
    let new_key = key("endpoint-rotated");
    let (rb, _) = rotate::request(
        &cred,
        &new_key,
        NOW + 10,
        &CounterRandom::new("client-rotate"),
    )
    .unwrap();
    let r = sc.jose(NOW + 10, "/v1/rotate", &rb);
    signed.push((
        "rotate-request".into(),
        rotate::REQUEST_TYP.into(),
        rb.clone(),
        false,
    ));
    signed.push((
        "rotate-response".into(),
        rotate::RESPONSE_TYP.into(),
        text(&r),
        false,
    ));
    sc.jose(
        NOW + 20,
        "/v1/handshake",
        &hello_of(&cred, NOW + 20, "client-hello-2"),
    );
    sc.finish(
        &mut g,
        "rotate-then-old-key-refused",
        Some(ErrorCode::UnknownKey),
    );

    // Offboarding package (admin-issued).
    let (pkg, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec![cred.installation_id.clone()]),
        &key("service"),
        NOW,
        &CounterRandom::new("package"),
    )
    .unwrap();
    signed.push((
        "offboarding-package".into(),
        offboard::PACKAGE_TYP.into(),
        pkg,
        false,
    ));
    let (pkg_all, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        None,
        &key("service"),
        NOW,
        &CounterRandom::new("package-2"),
    )
    .unwrap();
    signed.push((
        "offboarding-package-whole-tenant".into(),
        offboard::PACKAGE_TYP.into(),
        pkg_all,
        false,
    ));
    signed.push(("access-token".into(), token::TYP.into(), tok.clone(), false));

    // Rate limit (a world with burst 1, 1 request/s) and batch limits.
    let mut w = world();
    w["rate_limit"] = json!({"burst": 1, "per_second": 1});
    let mut sc = Scenario::new(w);
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env3,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-rate-limited-with-retry-after",
        Some(ErrorCode::RateLimited),
    );

    let mut w = world();
    w["policy"]["max_batch_events"] = json!(1);
    let mut sc = Scenario::new(w);
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-too-many-events",
        Some(ErrorCode::BatchTooLarge),
    );

    let mut w = world();
    w["policy"]["max_batch_bytes"] = json!(100);
    let mut sc = Scenario::new(w);
    enrolled(&mut sc, &tok);
    sc.jose(
        NOW + 10,
        "/v1/handshake",
        &hello_of(&cred, NOW + 10, "client-hello"),
    );
    sc.send(
        NOW + 11,
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        &env1,
        &[],
    );
    sc.finish(
        &mut g,
        "ingest-payload-over-policy-bytes",
        Some(ErrorCode::BatchTooLarge),
    );

    // Down-level: register with the workspace key (carrying the agent's own
    // device key), ingest with the device key; then a bad MAC and a stale date.
    let ws_key = seed("workspace-key");
    let ws_row = |extra: Value| {
        let mut row = json!({"id": "ws-example", "tenant_id": TENANT, "partner_id": PARTNER, "key_hex": hex(&ws_key), "epoch": 1});
        if let (Some(o), Some(e)) = (row.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        json!([row])
    };
    let ws = ws_row(json!({}));
    let dl = |key_id: &str,
              path: &str,
              body: &str,
              date_t: UnixSeconds,
              k: &[u8]|
     -> Vec<(String, String)> {
        let date = rfc3339(date_t);
        vec![
            (
                "authorization".into(),
                downlevel::authorization(
                    key_id,
                    k,
                    "POST",
                    path,
                    "application/json",
                    &date,
                    body.as_bytes(),
                ),
            ),
            (downlevel::DATE_HEADER.into(), date),
        ]
    };
    let dev_key = seed("device-key-1");
    let reg_of = |enrollment: &str, device_id: &str, k: &[u8]| {
        serde_json::to_string(&downlevel::RegisterRequest {
            enrollment_id: enrollment.into(),
            device: device(device_id),
            device_key: b64url(k),
        })
        .unwrap()
    };
    let reg = reg_of("dl-enroll-1", "dl-device-1", &dev_key);
    let register = |sc: &mut Scenario, t: UnixSeconds, body: &str| -> HttpResponse {
        sc.send(
            t,
            "/v1/downlevel/register",
            "application/json",
            body,
            &dl("ws-example", "/v1/downlevel/register", body, t, &ws_key),
        )
    };
    let ingest = |sc: &mut Scenario, t: UnixSeconds, id: &str, body: &str, k: &[u8]| {
        sc.send(
            t,
            "/v1/downlevel/ingest",
            "application/json",
            body,
            &dl(id, "/v1/downlevel/ingest", body, t, k),
        );
    };
    let batch_of = |inst: &str, seq: u64| {
        let mut b = sample_batch(seq, None);
        b.installation_id = inst.to_owned();
        serde_json::to_string(&b).unwrap()
    };
    let inst_of = |r: &HttpResponse| {
        serde_json::from_slice::<downlevel::RegisterResponse>(&r.body)
            .unwrap()
            .installation_id
    };

    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    let inst = inst_of(&register(&mut sc, NOW, &reg));
    register(&mut sc, NOW + 1, &reg);
    let dbody = batch_of(&inst, 1);
    ingest(&mut sc, NOW + 2, &inst, &dbody, &dev_key);
    ingest(&mut sc, NOW + 3, &inst, &dbody, &dev_key);
    ingest(&mut sc, NOW + 4, &inst, &dbody, &seed("wrong-key"));
    sc.send(
        NOW + 400,
        "/v1/downlevel/ingest",
        "application/json",
        &dbody,
        &dl(&inst, "/v1/downlevel/ingest", &dbody, NOW + 5, &dev_key),
    );
    sc.finish(
        &mut g,
        "downlevel-register-ingest-duplicate-bad-mac-stale",
        Some(ErrorCode::StaleMessage),
    );

    // The workspace key does not ingest, neither under the workspace id nor
    // under an installation id.
    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    let inst = inst_of(&register(&mut sc, NOW, &reg));
    let dbody = batch_of(&inst, 1);
    ingest(&mut sc, NOW + 1, "ws-example", &dbody, &ws_key);
    ingest(&mut sc, NOW + 2, &inst, &dbody, &ws_key);
    sc.finish(
        &mut g,
        "downlevel-workspace-key-does-not-ingest",
        Some(ErrorCode::BadSignature),
    );

    // One installation's device key cannot ingest a batch naming another.
    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    let a = inst_of(&register(&mut sc, NOW, &reg));
    let b = inst_of(&register(
        &mut sc,
        NOW + 1,
        &reg_of("dl-enroll-2", "dl-device-2", &seed("device-key-2")),
    ));
    ingest(&mut sc, NOW + 2, &a, &batch_of(&b, 1), &dev_key);
    sc.finish(
        &mut g,
        "downlevel-ingest-for-another-installation",
        Some(ErrorCode::BadSignature),
    );

    // Re-registering a known enrollment id with another device key (a
    // takeover attempt by a holder of the workspace key) is refused.
    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    register(&mut sc, NOW, &reg);
    register(
        &mut sc,
        NOW + 1,
        &reg_of("dl-enroll-1", "dl-device-1", &seed("attacker-key")),
    );
    sc.finish(
        &mut g,
        "downlevel-reregister-with-another-device-key",
        Some(ErrorCode::PossibleClone),
    );

    // A malformed device key.
    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    register(
        &mut sc,
        NOW,
        &reg_of("dl-enroll-1", "dl-device-1", b"short"),
    );
    sc.finish(
        &mut g,
        "downlevel-register-device-key-not-32-bytes",
        Some(ErrorCode::Malformed),
    );

    // Revoking the workspace key stops registrations, not registered agents.
    let mut sc = Scenario::new(base_world(1, true, REGION, &[], ws.clone()));
    let inst = inst_of(&register(&mut sc, NOW, &reg));
    sc.revoke_workspace("ws-example");
    ingest(&mut sc, NOW + 1, &inst, &batch_of(&inst, 1), &dev_key);
    register(&mut sc, NOW + 2, &reg);
    sc.finish(
        &mut g,
        "downlevel-workspace-revoked-registered-agent-keeps-sending",
        Some(ErrorCode::TokenRevoked),
    );

    // An expired workspace key: registration refused, registered agents send.
    let mut sc = Scenario::new(base_world(
        1,
        true,
        REGION,
        &[],
        ws_row(json!({"expires_at": NOW + 10})),
    ));
    let inst = inst_of(&register(&mut sc, NOW, &reg));
    ingest(&mut sc, NOW + 100, &inst, &batch_of(&inst, 1), &dev_key);
    register(
        &mut sc,
        NOW + 100,
        &reg_of("dl-enroll-2", "dl-device-2", &seed("device-key-2")),
    );
    sc.finish(
        &mut g,
        "downlevel-workspace-expired-registered-agent-keeps-sending",
        Some(ErrorCode::TokenExpired),
    );

    let mut sc = Scenario::new(base_world(2, true, REGION, &[], ws.clone()));
    register(&mut sc, NOW, &reg);
    sc.finish(
        &mut g,
        "downlevel-workspace-of-old-epoch",
        Some(ErrorCode::EpochMismatch),
    );

    let mut sc = Scenario::new(base_world(1, false, REGION, &[], ws));
    register(&mut sc, NOW, &reg);
    sc.finish(
        &mut g,
        "downlevel-integration-off",
        Some(ErrorCode::FlowBlocked),
    );

    // Unknown endpoint and method.
    let mut sc = Scenario::new(world());
    sc.jose(NOW, "/v1/nothing", "");
    sc.finish(&mut g, "unknown-endpoint", Some(ErrorCode::InvalidArgument));
    let mut sc = Scenario::new(world());
    sc.jose(NOW, "/v1/redeem", "not a jws");
    sc.finish(&mut g, "redeem-body-not-a-jws", Some(ErrorCode::Malformed));

    // Every signed message, exactly.
    for (name, typ, jws_text, embed) in signed {
        let (h, payload) = jws_parts(&jws_text);
        let signer = if jws_text == tok
            || [
                redeem::RESPONSE_TYP,
                handshake::FLOW_TYP,
                offboard::RESPONSE_TYP,
                offboard::PACKAGE_TYP,
                rotate::RESPONSE_TYP,
            ]
            .contains(&typ.as_str())
        {
            "service"
        } else {
            "endpoint"
        };
        let out = g.ok(&format!("sign-{name}"), "jws_sign", json!({"typ": typ, "seed_hex": seed_hex(signer), "embed_jwk": embed, "payload_json": payload}));
        assert_eq!(out["jws"], jws_text.as_str(), "{name}");
        assert_eq!(out["header_json"], h.as_str());
    }
    g.file("Signed protocol messages (compact JWS, EdDSA) and service-role exchanges (ServiceRole::handle over a MemoryStore)")
}

/// The nonce `hello_of` used with this rng label (the first 16 random bytes).
fn handshake_nonce(rng: &str) -> String {
    edrlink_core::keys::random_id(&CounterRandom::new(rng), 16).unwrap()
}

fn gen_downlevel() -> VectorFile {
    let mut g = Gen::new();
    let key_hex = hex(&seed("workspace-key"));
    let date = rfc3339(NOW);
    let body = br#"{"v":1}"#;
    let base = |body: &[u8], method: &str, path: &str| json!({"workspace_id": "ws-example", "key_hex": key_hex, "method": method, "path": path, "content_type": "application/json", "date": date, "body_hex": hex(body)});
    let out = g.ok(
        "sign-ingest",
        "shared_key_sign",
        base(body, "POST", "/v1/downlevel/ingest"),
    );
    let auth = out["authorization"].as_str().unwrap().to_owned();
    g.ok(
        "sign-register",
        "shared_key_sign",
        base(
            br#"{"enrollment_id":"e1"}"#,
            "POST",
            "/v1/downlevel/register",
        ),
    );
    g.ok(
        "sign-empty-body",
        "shared_key_sign",
        base(b"", "POST", "/v1/downlevel/ingest"),
    );
    let v = |auth: &str, body: &[u8], date: &str, now: i64| json!({"authorization": auth, "key_hex": key_hex, "method": "POST", "path": "/v1/downlevel/ingest", "content_type": "application/json", "date": date, "body_hex": hex(body), "now": now});
    g.ok("verify-ok", "shared_key_verify", v(&auth, body, &date, NOW));
    g.ok(
        "verify-ok-date-300s-old",
        "shared_key_verify",
        v(&auth, body, &date, NOW + 300),
    );
    g.fail(
        "verify-stale-date",
        "shared_key_verify",
        v(&auth, body, &date, NOW + 301),
        ErrorCode::StaleMessage,
    );
    g.fail(
        "verify-future-date",
        "shared_key_verify",
        v(&auth, body, &date, NOW - 301),
        ErrorCode::StaleMessage,
    );
    g.fail(
        "verify-body-changed",
        "shared_key_verify",
        v(&auth, br#"{"v":2}"#, &date, NOW),
        ErrorCode::BadSignature,
    );
    g.fail(
        "verify-date-changed",
        "shared_key_verify",
        v(&auth, body, &rfc3339(NOW + 1), NOW),
        ErrorCode::BadSignature,
    );
    let mut bad = auth.clone();
    let c = bad.pop().unwrap();
    bad.push(if c == 'A' { 'B' } else { 'A' });
    let sig_pos = auth.find(':').unwrap() + 1;
    let flipped = format!(
        "{}{}{}",
        &auth[..sig_pos],
        if &auth[sig_pos..sig_pos + 1] == "A" {
            "B"
        } else {
            "A"
        },
        &auth[sig_pos + 1..]
    );
    g.fail(
        "verify-signature-changed",
        "shared_key_verify",
        v(&flipped, body, &date, NOW),
        ErrorCode::BadSignature,
    );
    g.fail(
        "verify-not-sharedkey",
        "shared_key_verify",
        v(&format!("Bearer {}", &auth[10..]), body, &date, NOW),
        ErrorCode::Unauthorized,
    );
    g.fail(
        "verify-no-colon",
        "shared_key_verify",
        v("SharedKey ws-example", body, &date, NOW),
        ErrorCode::Unauthorized,
    );
    g.fail(
        "verify-signature-not-base64",
        "shared_key_verify",
        v("SharedKey ws-example:!!!", body, &date, NOW),
        ErrorCode::Unauthorized,
    );
    let _ = bad;
    // Ingest is signed with the agent's device key and named by its
    // installation id (the `workspace_id` argument is the key id).
    let dev_hex = hex(&seed("device-key-1"));
    let ingest = json!({"workspace_id": "inst-example", "key_hex": dev_hex, "method": "POST", "path": "/v1/downlevel/ingest", "content_type": "application/json", "date": date, "body_hex": hex(body)});
    let out = g.ok("sign-ingest-with-device-key", "shared_key_sign", ingest);
    let dev_auth = out["authorization"].as_str().unwrap().to_owned();
    assert!(dev_auth.starts_with("SharedKey inst-example:"));
    let mut dv = v(&dev_auth, body, &date, NOW);
    dv["key_hex"] = json!(dev_hex);
    g.ok("verify-device-key", "shared_key_verify", dv.clone());
    g.fail(
        "verify-device-key-signature-with-workspace-key",
        "shared_key_verify",
        v(&dev_auth, body, &date, NOW),
        ErrorCode::BadSignature,
    );
    // A correctly signed date at the end of the calendar: stale, not an overflow.
    let far = "9999-12-31T23:59:59Z";
    let far_auth = downlevel::authorization(
        "ws-example",
        &seed("workspace-key"),
        "POST",
        "/v1/downlevel/ingest",
        "application/json",
        far,
        body,
    );
    g.fail(
        "verify-date-year-9999",
        "shared_key_verify",
        v(&far_auth, body, far, NOW),
        ErrorCode::StaleMessage,
    );
    g.file("Down-level SharedKey (HMAC-SHA256) request signing: string to sign, Authorization header, verification window +/-300 s")
}

fn gen_eicar() -> VectorFile {
    let mut g = Gen::new();
    let out = g.ok(
        "eicar-file",
        "eicar",
        json!({"eicar_text": std::str::from_utf8(eicar::EICAR).unwrap()}),
    );
    assert_eq!(out["sha256_hex"], eicar::EICAR_SHA256);
    g.ok(
        "test-detection",
        "eicar_detection",
        json!({"now": NOW, "file_path": "C:\\Temp\\eicar.com"}),
    );
    g.ok(
        "test-detection-empty-path",
        "eicar_detection",
        json!({"now": NOW, "file_path": ""}),
    );
    g.file("The 68-byte EICAR test string, its SHA-256, and the test detection event the SDK sends")
}

fn gen_errors() -> VectorFile {
    let mut g = Gen::new();
    for c in ErrorCode::ALL {
        g.ok(c.as_str(), "error_code", json!({"name": c.as_str()}));
    }
    g.file("Every ErrorCode: stable snake_case name, C number, HTTP status (ErrorCode::ALL, numeric order)")
}

fn gen_encodings() -> VectorFile {
    let mut g = Gen::new();
    for t in [0, NOW, 951_782_400, 1_709_164_800, -1, 4_102_444_799] {
        g.ok(&format!("format-{t}"), "rfc3339_format", json!({"unix": t}));
    }
    for (name, t) in [
        ("parse-z", "2026-11-23T12:00:00Z"),
        ("parse-lower-z", "2026-11-23t12:00:00z"),
        ("parse-fraction-truncated", "2026-11-23T12:00:00.999Z"),
        ("parse-offset", "2026-11-23T13:00:00+01:00"),
        ("parse-negative-offset", "2026-11-23T07:30:00-04:30"),
        ("parse-leap-day", "2024-02-29T00:00:00Z"),
        ("parse-leap-second-clamped", "2016-12-31T23:59:60Z"),
    ] {
        g.ok(name, "rfc3339_parse", json!({"text": t}));
    }
    for (name, t) in [
        ("parse-no-zone", "2026-11-23T12:00:00"),
        ("parse-space-separator", "2026-11-23 12:00:00Z"),
        ("parse-bad-month", "2026-13-01T00:00:00Z"),
        ("parse-bad-day", "2026-02-29T00:00:00Z"),
        ("parse-empty-fraction", "2026-11-23T12:00:00.Z"),
        ("parse-empty", ""),
    ] {
        g.fail(
            name,
            "rfc3339_parse",
            json!({"text": t}),
            ErrorCode::Malformed,
        );
    }
    g.file("RFC 3339 UTC timestamps: formatting (second precision, Z) and parsing")
}

fn gen_events() -> VectorFile {
    let mut g = Gen::new();
    let t = rfc3339(NOW);
    let det = serde_json::to_string(&eicar::test_detection(NOW, "/tmp/eicar.com")).unwrap();
    let sample = |content: &[u8], digest: &str| {
        serde_json::to_string(&Event::FileSample(telemetry::FileSample {
            time: t.clone(),
            sha256: digest.into(),
            file_name: "eicar.com".into(),
            content: edrlink_core::encoding::b64std(content),
        }))
        .unwrap()
    };
    let ok: Vec<(&str, String)> = vec![
        ("detection-eicar", det.clone()),
        (
            "detection-url",
            format!(
                r#"{{"type":"detection","time":"{t}","threat_name":"Phish.Generic","file_path":"","sha256":"","severity":"high","action":"blocked","url":"https://bad.example/"}}"#
            ),
        ),
        (
            "detection-test-defaults-false",
            format!(
                r#"{{"type":"detection","time":"{t}","threat_name":"X","file_path":"/x","sha256":"","severity":"low","action":"detected"}}"#
            ),
        ),
        (
            "heartbeat",
            format!(r#"{{"type":"heartbeat","time":"{t}","sensor":"stopped"}}"#),
        ),
        (
            "generic",
            format!(
                r#"{{"type":"generic","time":"{t}","name":"process_start","data":{{"pid":4}}}}"#
            ),
        ),
        (
            "generic-data-defaults-null",
            r#"{"type":"generic","time":"2026-11-23T13:00:00+01:00","name":"x"}"#.to_owned(),
        ),
        ("file-sample", sample(eicar::EICAR, eicar::EICAR_SHA256)),
    ];
    for (name, e) in ok {
        g.ok(name, "event_validate", json!({ "event_json": e }));
    }
    let bad: Vec<(&str, String, ErrorCode)> = vec![
        ("not-json", "{".into(), ErrorCode::Malformed),
        (
            "unknown-type",
            format!(r#"{{"type":"telepathy","time":"{t}"}}"#),
            ErrorCode::Malformed,
        ),
        (
            "missing-time",
            r#"{"type":"heartbeat","sensor":"running"}"#.into(),
            ErrorCode::Malformed,
        ),
        (
            "bad-time",
            r#"{"type":"heartbeat","time":"yesterday","sensor":"running"}"#.into(),
            ErrorCode::Malformed,
        ),
        (
            "bad-sensor",
            format!(r#"{{"type":"heartbeat","time":"{t}","sensor":"sleeping"}}"#),
            ErrorCode::Malformed,
        ),
        (
            "empty-threat-name",
            det.replace("EICAR-Test-File", ""),
            ErrorCode::Malformed,
        ),
        (
            "short-sha256",
            det.replace(eicar::EICAR_SHA256, "abcd"),
            ErrorCode::Malformed,
        ),
        (
            "bad-severity",
            det.replace("informational", "apocalyptic"),
            ErrorCode::Malformed,
        ),
        (
            "generic-empty-name",
            format!(r#"{{"type":"generic","time":"{t}","name":""}}"#),
            ErrorCode::Malformed,
        ),
        (
            "generic-name-129",
            format!(
                r#"{{"type":"generic","time":"{t}","name":"{}"}}"#,
                "n".repeat(129)
            ),
            ErrorCode::Malformed,
        ),
        (
            "file-sample-digest-mismatch",
            sample(b"not eicar", eicar::EICAR_SHA256),
            ErrorCode::Malformed,
        ),
    ];
    for (name, e, code) in bad {
        g.fail(name, "event_validate", json!({ "event_json": e }), code);
    }
    g.file("Telemetry events as hosts submit them (JSON): validation and drop category")
}

fn generate() -> Vec<(&'static str, VectorFile)> {
    vec![
        ("pae.json", gen_pae()),
        ("keys.json", gen_keys()),
        ("tokens.json", gen_tokens()),
        ("envelopes.json", gen_envelopes()),
        ("messages.json", gen_messages()),
        ("downlevel.json", gen_downlevel()),
        ("eicar.json", gen_eicar()),
        ("errors.json", gen_errors()),
        ("encodings.json", gen_encodings()),
        ("events.json", gen_events()),
        ("p256.json", gen_p256()),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

#[test]
fn vectors() {
    let files = generate();
    let regen = std::env::var("EDRLINK_REGEN_VECTORS").is_ok_and(|v| v == "1");
    let mut total = 0;
    for (name, fresh) in &files {
        let path = dir().join(name);
        if regen {
            let mut text = serde_json::to_string_pretty(fresh).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (run with EDRLINK_REGEN_VECTORS=1)", path.display())
        });
        assert!(text.is_ascii(), "{name} must be ASCII");
        assert!(
            !text.contains("\\u") && !text.contains("\\t") && !text.contains("\\r"),
            "{name}: only \\\" \\\\ \\n escapes allowed"
        );
        let stored: VectorFile = serde_json::from_str(&text).unwrap();
        let mut names = std::collections::HashSet::new();
        for c in &stored.cases {
            assert!(
                names.insert(c.name.clone()),
                "{name}: duplicate case {}",
                c.name
            );
            let got = outcome_value(run(&c.kind, &c.input));
            assert_eq!(
                got, c.expect,
                "{name} / {}: core disagrees with the vector",
                c.name
            );
        }
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::to_value(fresh).unwrap(),
            "{name} is stale: regenerate with EDRLINK_REGEN_VECTORS=1 and review the diff"
        );
        let mut kinds = std::collections::BTreeMap::new();
        for c in &stored.cases {
            *kinds.entry(c.kind.as_str()).or_insert(0) += 1;
        }
        println!("{name}: {} cases {kinds:?}", stored.cases.len());
        total += stored.cases.len();
    }
    println!("{total} vector cases");
}
