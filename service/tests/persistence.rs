//! Restart persistence: stop the service and start it again on the same
//! SQLite file (and port): everything the portal shows, the signing key,
//! tokens, sessions, sequences and nonces are intact, and an old credential
//! keeps working.

mod common;
use common::*;
use edrlink_core::eicar;
use serde_json::{json, Value};

fn snapshot(s: &Svc) -> Value {
    json!({
        "keys": s.http.send("GET", "/v1/keys", &[], None).json(),
        "tenants": s.admin_ok("GET", "/admin/tenants", None),
        "integrations": s.admin_ok("GET", "/admin/tenants/t1/integrations", None),
        "installations": s.installations("t1"),
        "alerts": s.alerts("t1"),
        "stats": s.admin_ok("GET", "/admin/tenants/t1/stats", None),
    })
}

#[test]
fn restart_keeps_state_keys_tokens_and_credentials() {
    let mut s = Svc::start();
    s.setup("t1");
    s.tenant("t2", "eu");
    let token = s.token_text("t1");
    let unused = s.token_text("t1");
    let revoked = s.token("t1", json!({}));
    s.admin_ok(
        "DELETE",
        &format!("/admin/tokens/{}", revoked["jti"].as_str().unwrap()),
        None,
    );
    let once = s.token("t1", json!({"max_uses": 1}))["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut a = Endpoint::new(&s, "a");
    a.enroll(&token);
    let now = s.now();
    let mut ev = generic(now, 40);
    ev.push(eicar::test_detection(now, "/tmp/eicar"));
    a.send(ev);
    assert!(a.client.is_idle());

    let now = s.now();
    let mut raw = Raw::enroll(&s.http, &token, "raw", now);
    let b1 = raw.batch(1, "r1", generic(now, 7), now);
    assert_eq!(raw.ingest(&s.http, &b1).status, 200);
    assert_eq!(
        raw.ingest(&s.http, &raw.batch(3, "r3", generic(now, 1), now))
            .json()["gap"],
        1
    );
    let mut first = Raw::new("once");
    assert_eq!(first.redeem(&s.http, &once, now).status, 200);
    let replayable = Raw::new("replay").redeem_body(&unused, now);
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", replayable.clone())
            .status,
        200
    );

    let before = snapshot(&s);
    assert_eq!(before["alerts"].as_array().unwrap().len(), 1);
    let addr = s.svc.as_ref().unwrap().addr();

    s.restart_with(|st| st.listen = addr);
    assert_eq!(s.url(), format!("http://{addr}"));
    let after = snapshot(&s);
    assert_eq!(before, after, "state changed across the restart");

    // The old credential (and its stored session) keeps working.
    let sent_before = a.client.health(s.now()).sent_events;
    a.send(generic(s.now(), 5));
    assert!(a.client.is_idle(), "{:?}", a.client.health(s.now()));
    assert_eq!(a.client.health(s.now()).sent_events, sent_before + 5);
    assert_eq!(
        s.stats("t1").0,
        before["stats"]["events"].as_u64().unwrap() + 5
    );

    // Sequences and batch ids survived: duplicate stays duplicate, regression stays regression.
    assert_eq!(raw.ingest(&s.http, &b1).json()["status"], "duplicate");
    assert_eq!(
        raw.ingest(&s.http, &raw.batch(2, "r2", vec![], s.now()))
            .problem(409),
        "sequence_regression"
    );
    raw.handshake(&s.http, s.now());
    assert_eq!(
        raw.ingest(&s.http, &raw.batch(4, "r4", vec![], s.now()))
            .json()["status"],
        "accepted"
    );

    // Tokens: the unused one redeems (same signing key), revoked stays revoked,
    // use counts persist, nonces persist (replay still refused).
    let now = s.now();
    assert_eq!(Raw::new("late").redeem(&s.http, &unused, now).status, 200);
    assert_eq!(
        Raw::new("rev")
            .redeem(&s.http, revoked["token"].as_str().unwrap(), now)
            .problem(401),
        "token_revoked"
    );
    assert_eq!(
        Raw::new("once2").redeem(&s.http, &once, now).problem(403),
        "token_exhausted"
    );
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", replayable)
            .problem(401),
        "replay"
    );

    // A supplied seed becomes the current key; the previous one stays in the keyset.
    let old_kid = before["keys"]["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    s.restart_with(|st| {
        st.listen = addr;
        st.signing_key_seed = Some([9u8; 32]);
    });
    let keys = s.http.send("GET", "/v1/keys", &[], None).json();
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let new_kid = edrlink_core::keys::SigningKey::from_seed(&[9u8; 32])
        .unwrap()
        .key_id();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()]);
    // Tokens signed by the previous key still verify.
    assert_eq!(
        Raw::new("prev")
            .redeem(&s.http, &s.token_text("t1"), s.now())
            .status,
        200
    );

    // On disk: WAL + FULL sync, each migration recorded once, no token text anywhere.
    s.svc.take().unwrap().shutdown();
    let conn = rusqlite::Connection::open(&s.db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM migrations")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        versions,
        (1..=edrlink_service::db::SCHEMA_VERSION).collect::<Vec<_>>(),
        "each migration recorded once"
    );
    let dump: String = conn
        .prepare("SELECT jti || tenant_id || partner_id FROM tokens")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!dump.is_empty());
    let db_bytes = std::fs::read(&s.db).unwrap();
    let wal = std::fs::read(s.db.with_extension("db-wal")).unwrap_or_default();
    for t in [&token, &unused, &once] {
        let sig = t.rsplit_once('.').unwrap().1.as_bytes();
        assert!(
            !db_bytes.windows(sig.len()).any(|w| w == sig)
                && !wal.windows(sig.len()).any(|w| w == sig),
            "token text stored in the database"
        );
    }
}
