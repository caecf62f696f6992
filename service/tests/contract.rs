//! The admin API accepts exactly what its published schemas allow (the
//! mismatches schemathesis found: extra properties, explicit `null`s, a
//! whitespace-only body taken for "no body").

mod common;
use common::*;
use serde_json::json;

fn raw(s: &Svc, method: &str, path: &str, body: &[u8]) -> Resp {
    let auth = format!("Bearer {ADMIN}");
    s.http.send(
        method,
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.to_vec()),
    )
}

#[test]
fn bodies_outside_the_schema_are_refused() {
    let s = Svc::start();
    s.setup("t1");
    let tokens = format!("/admin/tenants/t1/integrations/{PARTNER}/tokens");
    let offboarding = format!("/admin/tenants/t1/integrations/{PARTNER}/offboarding-package");
    let integration = format!("/admin/tenants/t1/integrations/{PARTNER}");
    for (method, path, body) in [
        (
            "POST",
            "/admin/tenants",
            json!({"tenant_id": "t2", "region": null}),
        ),
        (
            "POST",
            "/admin/tenants",
            json!({"tenant_id": "t2", "extra": 1}),
        ),
        ("POST", &offboarding, json!({"installation_ids": null})),
        ("PUT", &integration, json!({"enabled": null})),
        ("PUT", &integration, json!({"enabled": true, "extra": 1})),
        ("POST", &tokens, json!({"max_uses": null})),
        ("POST", &tokens, json!({"max_uses": 2.5})),
    ] {
        let r = s.admin(method, path, Some(body.clone()));
        assert_eq!(r.problem(400), "malformed", "{method} {path} {body}");
    }
    // Whitespace is not "no body"; an array is not an object.
    assert_eq!(raw(&s, "POST", &tokens, b" \r\n").problem(400), "malformed");
    assert_eq!(
        raw(&s, "POST", &offboarding, b"[]").problem(400),
        "malformed"
    );
    assert_eq!(
        raw(&s, "POST", "/admin/tenants", br#"["t3"]"#).problem(400),
        "malformed"
    );
    // Nothing was created by the refused requests.
    let tenants = s.admin_ok("GET", "/admin/tenants", None);
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 1);

    // What the schema allows is accepted: no body, `{}`, an integral number
    // written with a fraction (JSON Schema's `integer` includes it).
    assert_eq!(raw(&s, "POST", &tokens, b"").status, 201);
    assert_eq!(s.admin("POST", &tokens, Some(json!({}))).status, 201);
    let t = s.admin_ok("POST", &tokens, Some(json!({"max_uses": 3.0})));
    assert_eq!(t["max_uses"], 3);
}
