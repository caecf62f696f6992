//! Writes the committed seed corpus, fuzz/corpus/<target>/, from the shared
//! test vectors (tests/vectors/*.json) and from artefacts the core makes with
//! the fixtures (spool files, a credential, packages, a browser state
//! document). Deterministic names (`seed-NNN`); run on purpose and review:
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds
use edrlink_core::downlevel::OnboardingPackage;
use edrlink_core::keys::SystemRandom;
use edrlink_core::spool::{Limits, Outbox};
use edrlink_core::spool_file::{FileSpool, Fsync};
use edrlink_core::telemetry::Event;
use edrlink_fuzz::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const MAX_SEED: usize = 16 * 1024;

fn vectors() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["cases"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.len() >= 8 => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn write(target: &str, seeds: Vec<Vec<u8>>, cap: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0;
    for s in seeds {
        if s.len() > MAX_SEED || !seen.insert(s.clone()) {
            continue;
        }
        std::fs::write(dir.join(format!("seed-{n:03}")), &s).unwrap();
        n += 1;
        if n == cap {
            break;
        }
    }
    println!("{target}: {n} seeds");
}

fn event(i: u64) -> Event {
    Event::from_json(&format!(
        r#"{{"type":"generic","time":"2027-01-15T08:00:00Z","name":"e{i}","data":{{"n":{i}}}}}"#
    ))
    .unwrap()
}

fn main() {
    let cases = vectors();
    let inputs = |kind: &str| -> Vec<Value> {
        cases
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| c["input"].clone())
            .collect()
    };

    // parsers: every string of the vectors' inputs (tokens, envelopes, events, …).
    let mut all = Vec::new();
    for c in &cases {
        strings(&c["input"], &mut all);
    }
    write(
        "parsers",
        all.into_iter().map(String::into_bytes).collect(),
        60,
    );

    // service_role: path selector byte + request body of the service exchanges.
    let mut reqs = Vec::new();
    for i in inputs("service_exchange") {
        for step in i["steps"].as_array().into_iter().flatten() {
            let r = &step["request"];
            let path = r["path"].as_str().unwrap_or("");
            let Some(p) = PATHS.iter().position(|x| path.ends_with(x)) else {
                continue;
            };
            let mut s = vec![p as u8];
            s.extend_from_slice(r["body"].as_str().unwrap_or("").as_bytes());
            reqs.push(s);
        }
    }
    write("service_role", reqs, 40);

    // spool_files: a real spool's segment and state (selector 0, 1, 2).
    let tmp = tempfile::tempdir().unwrap();
    {
        let spool = FileSpool::open(tmp.path(), Fsync::Never).unwrap();
        let mut o = Outbox::open(Box::new(spool), Limits::default()).unwrap();
        for i in 0..5 {
            o.push(&event(i), NOW).unwrap();
        }
        o.begin_batch(3, 1 << 20, "batch-1".into(), "2027-01-15T08:00:00Z".into())
            .unwrap();
    }
    let seg = std::fs::read(tmp.path().join(format!("seg-{:020}.log", 0))).unwrap();
    let state = std::fs::read(tmp.path().join("state.json")).unwrap();
    let mut both = vec![2u8];
    both.extend_from_slice(&state);
    both.push(0);
    both.extend_from_slice(&seg);
    write(
        "spool_files",
        vec![
            [&[0u8][..], &seg].concat(),
            [&[1u8][..], &state].concat(),
            both,
        ],
        10,
    );

    // credential_file: the fixture credential as the agent stores it.
    let cred = credential();
    write(
        "credential_file",
        vec![cred.to_json().as_bytes().to_vec()],
        10,
    );

    // packages: onboarding package JSON, offboarding packages (all / one installation).
    let role = role();
    let onboarding = OnboardingPackage::issue(
        "t1",
        "acme",
        "eu",
        "http://fuzz",
        role.keyset(),
        1,
        NOW,
        &SystemRandom,
    )
    .unwrap()
    .to_json();
    let key = service_key();
    let (all_inst, _) =
        edrlink_core::offboard::issue_package("t1", "acme", None, &key, NOW, &SystemRandom)
            .unwrap();
    let (one, _) = edrlink_core::offboard::issue_package(
        "t1",
        "acme",
        Some(vec!["inst-fuzz".into()]),
        &key,
        NOW,
        &SystemRandom,
    )
    .unwrap();
    write(
        "packages",
        vec![
            onboarding.as_bytes().to_vec(),
            all_inst.into_bytes(),
            one.into_bytes(),
        ],
        10,
    );

    // state_restore: exportState() documents (with and without an in-flight batch).
    let mut o = Outbox::in_memory(Limits::default());
    for i in 0..4 {
        o.push(&event(i), NOW).unwrap();
    }
    let queued = serde_json::to_string(&o.snapshot().unwrap()).unwrap();
    o.begin_batch(2, 1 << 20, "batch-1".into(), "2027-01-15T08:00:00Z".into())
        .unwrap();
    let inflight = serde_json::to_string(&o.snapshot().unwrap()).unwrap();
    let docs = vec![
        format!(
            r#"{{"v":1,"credential":{},"outbox":{inflight}}}"#,
            cred.to_json().as_str()
        ),
        format!(r#"{{"v":1,"credential":null,"outbox":{queued}}}"#),
    ];
    write(
        "state_restore",
        docs.into_iter().map(String::into_bytes).collect(),
        10,
    );

    // c_api: "<string>\0<second argument>" pairs from the token and envelope vectors.
    let mut pairs = Vec::new();
    for i in inputs("token_verify") {
        pairs.push(
            format!(
                "{}\0{}",
                i["token"].as_str().unwrap_or(""),
                i["keyset_json"].as_str().unwrap_or("")
            )
            .into_bytes(),
        );
    }
    for i in inputs("envelope_open") {
        let env = match &i["envelope"] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        pairs.push(format!("{env}\0{}", i["payload_type"].as_str().unwrap_or("")).into_bytes());
    }
    write("c_api", pairs, 30);
}
