//! Admin/portal API over real HTTP: authentication, the route table against
//! the OpenAPI document, tenants, integrations, tokens, packages, limits.

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn concrete(path: &str) -> String {
    path.replace("{tenant}", "t1")
        .replace("{partner}", PARTNER)
        .replace("{jti}", "nope")
}

#[test]
fn every_admin_route_needs_the_admin_key_and_touches_nothing_without_it() {
    let s = Svc::start();
    let admin_routes: Vec<_> = edrlink_service::route_table()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/admin"))
        .collect();
    assert!(admin_routes.len() >= 11, "{admin_routes:?}");
    let body = json!({"tenant_id": "t1", "enabled": true})
        .to_string()
        .into_bytes();
    for (m, p) in &admin_routes {
        let path = concrete(p);
        for auth in [
            None,
            Some("Bearer wrong-key"),
            Some("Bearer "),
            Some("test-admin-key"),
            Some("Basic dGVzdC1hZG1pbi1rZXk="),
        ] {
            let mut h = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                h.push(("authorization", a));
            }
            let r = s.http.send(m, &path, &h, Some(body.clone()));
            assert_eq!(r.problem(401), "unauthorized", "{m} {path} with {auth:?}");
            assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
    }
    // Nothing was created by the refused requests.
    assert_eq!(
        s.admin_ok("GET", "/admin/tenants", None)["tenants"],
        json!([])
    );
    // And the right key works on the same routes.
    s.setup("t1");
    assert_eq!(
        s.admin_ok("GET", "/admin/tenants", None)["tenants"][0]["tenant_id"],
        "t1"
    );
}

#[test]
fn openapi_lists_exactly_the_routes_of_the_router() {
    let s = Svc::start();
    let r = s.http.send("GET", "/openapi.json", &[], None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = edrlink_service::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(documented, routed, "OpenAPI paths and router routes differ");
    // Every $ref resolves.
    let text = r.text();
    for piece in text.split("\"$ref\": \"#/").skip(1) {
        let ptr = format!("/{}", &piece[..piece.find('"').unwrap()]);
        assert!(doc.pointer(&ptr).is_some(), "dangling $ref {ptr}");
    }
    // Every documented route is really served (not the 404/405 fallback).
    s.setup("t1");
    for (m, p) in &routed {
        let auth = format!("Bearer {ADMIN}");
        let body = if m == "GET" {
            None
        } else {
            Some(b"{}".to_vec())
        };
        let r = s.http.send(
            m,
            &concrete(p),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        );
        assert_ne!(r.status, 405, "{m} {p}");
        if r.status == 404 {
            assert_ne!(
                r.json()["detail"],
                "no such endpoint",
                "{m} {p} fell through to the fallback"
            );
        }
    }
    // And something not in the table is not served.
    let r = s.http.send("GET", "/admin/nothing", &[], None);
    assert_eq!(r.problem(404), "invalid_argument");
    let r = s.http.send("PUT", "/v1/keys", &[], Some(vec![]));
    assert_eq!(r.status, 405);
}

#[test]
fn tenants_integrations_tokens_and_packages() {
    let s = Svc::start();
    // Tenants: created, idempotent, region fixed, ids validated.
    assert_eq!(
        s.admin("POST", "/admin/tenants", Some(json!({"tenant_id": "t1"})))
            .status,
        201
    );
    let again = s.admin(
        "POST",
        "/admin/tenants",
        Some(json!({"tenant_id": "t1", "region": "eu"})),
    );
    assert_eq!(
        (again.status, again.json()["created"].clone()),
        (200, json!(false))
    );
    assert_eq!(
        s.admin(
            "POST",
            "/admin/tenants",
            Some(json!({"tenant_id": "t1", "region": "us"}))
        )
        .problem(409),
        "invalid_state"
    );
    assert_eq!(
        s.admin(
            "POST",
            "/admin/tenants",
            Some(json!({"tenant_id": "bad id/"}))
        )
        .problem(400),
        "invalid_argument"
    );
    assert_eq!(
        s.admin("POST", "/admin/tenants", Some(json!({"nope": 1})))
            .problem(400),
        "malformed"
    );
    let r = s.http.send(
        "POST",
        "/admin/tenants",
        &[("authorization", &format!("Bearer {ADMIN}"))],
        Some(b"{not json".to_vec()),
    );
    assert_eq!(r.problem(400), "malformed");
    // Body limit (64 KiB) on admin requests.
    let big = format!("{{\"tenant_id\": \"{}\"}}", "x".repeat(70 * 1024));
    let r = s.http.send(
        "POST",
        "/admin/tenants",
        &[("authorization", &format!("Bearer {ADMIN}"))],
        Some(big.into_bytes()),
    );
    assert_eq!(r.problem(413), "too_large");

    // Unknown tenant.
    assert_eq!(
        s.admin(
            "PUT",
            "/admin/tenants/nope/integrations/acme",
            Some(json!({"enabled": true}))
        )
        .status,
        404
    );
    for p in ["installations", "alerts", "stats", "integrations"] {
        assert_eq!(
            s.admin("GET", &format!("/admin/tenants/nope/{p}"), None)
                .status,
            404,
            "{p}"
        );
    }

    // Integration: token refused before it is on.
    let tok = s.admin(
        "POST",
        "/admin/tenants/t1/integrations/acme/tokens",
        Some(json!({})),
    );
    assert_eq!(tok.problem(403), "integration_disabled");
    assert_eq!(
        s.admin(
            "PUT",
            "/admin/tenants/t1/integrations/acme",
            Some(json!({}))
        )
        .problem(400),
        "malformed"
    );
    let on = s.set_integration("t1", true);
    assert_eq!(
        on,
        json!({"tenant_id": "t1", "partner_id": "acme", "enabled": true, "epoch": 1})
    );
    // Off bumps the epoch, on again keeps it (old tokens stay dead).
    assert_eq!(s.set_integration("t1", false)["epoch"], 2);
    assert_eq!(s.set_integration("t1", false)["epoch"], 2);
    assert_eq!(
        s.admin(
            "POST",
            "/admin/tenants/t1/integrations/acme/tokens",
            Some(json!({}))
        )
        .problem(403),
        "integration_disabled"
    );
    assert_eq!(
        s.admin(
            "POST",
            "/admin/tenants/t1/integrations/acme/onboarding-package",
            None
        )
        .problem(403),
        "integration_disabled"
    );
    assert_eq!(
        s.set_integration("t1", true),
        json!({"tenant_id": "t1", "partner_id": "acme", "enabled": true, "epoch": 2})
    );
    let list = s.admin_ok("GET", "/admin/tenants/t1/integrations", None);
    assert_eq!(
        list["integrations"],
        json!([{"tenant_id": "t1", "partner_id": "acme", "enabled": true, "epoch": 2}])
    );

    // Tokens: default lifetime, bounds, revoke.
    let now = s.now();
    let t = s.token("t1", json!({}));
    assert_eq!(t["epoch"], 2);
    let exp = t["exp"].as_i64().unwrap();
    assert!(
        (exp - now - edrlink_core::token::DEFAULT_LIFETIME).abs() <= 2,
        "{t}"
    );
    assert_eq!(t["expires_at"], edrlink_core::encoding::rfc3339(exp));
    let claims = edrlink_core::token::inspect(t["token"].as_str().unwrap())
        .unwrap()
        .claims;
    assert_eq!(
        (
            claims.jti.as_str(),
            claims.tenant_id.as_str(),
            claims.region.as_str(),
            claims.service_url.clone()
        ),
        (t["jti"].as_str().unwrap(), "t1", "eu", s.url())
    );
    let long = s.token(
        "t1",
        json!({"lifetime_secs": edrlink_core::token::MAX_LIFETIME, "max_uses": 3}),
    );
    assert_eq!(long["max_uses"], 3);
    for bad in [
        json!({"lifetime_secs": edrlink_core::token::MAX_LIFETIME + 1}),
        json!({"lifetime_secs": 0}),
        json!({"max_uses": 0}),
    ] {
        assert_eq!(
            s.admin(
                "POST",
                "/admin/tenants/t1/integrations/acme/tokens",
                Some(bad.clone())
            )
            .problem(400),
            "invalid_argument",
            "{bad}"
        );
    }
    let jti = t["jti"].as_str().unwrap();
    assert_eq!(
        s.admin_ok("DELETE", &format!("/admin/tokens/{jti}"), None),
        json!({"jti": jti, "revoked": true})
    );
    assert_eq!(
        s.admin("DELETE", "/admin/tokens/unknown-jti", None).status,
        404
    );

    // Onboarding package: parses, names our service, keyset and epoch.
    let pkg = s.admin(
        "POST",
        "/admin/tenants/t1/integrations/acme/onboarding-package",
        None,
    );
    assert_eq!(pkg.status, 201);
    assert_eq!(pkg.header("cache-control"), Some("no-store"));
    let p = edrlink_core::downlevel::OnboardingPackage::from_json(&pkg.text()).unwrap();
    assert_eq!(
        (
            p.tenant_id.as_str(),
            p.region.as_str(),
            p.epoch,
            p.service_url.as_str()
        ),
        ("t1", "eu", 2, s.url().as_str())
    );
    let keys: Value = s.http.send("GET", "/v1/keys", &[], None).json();
    assert_eq!(serde_json::to_value(&p.service_keys).unwrap(), keys);

    // Offboarding package: 30 days; unknown installation refused.
    let off = s.admin_ok(
        "POST",
        "/admin/tenants/t1/integrations/acme/offboarding-package",
        Some(json!({})),
    );
    let exp = off["exp"].as_i64().unwrap();
    assert!((exp - s.now() - edrlink_core::offboard::PACKAGE_VALIDITY).abs() <= 2);
    assert!(off["package"].as_str().unwrap().split('.').count() == 3);
    let r = s.admin(
        "POST",
        "/admin/tenants/t1/integrations/acme/offboarding-package",
        Some(json!({"installation_ids": ["inst-nope"]})),
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        s.admin(
            "POST",
            "/admin/tenants/t1/integrations/other/offboarding-package",
            Some(json!({}))
        )
        .status,
        404
    );

    // Empty views.
    assert_eq!(
        s.installations("t1"),
        json!({"installations": [], "coverage": {"onboarded": 0, "total": 0, "percent": 0.0}})
    );
    assert_eq!(s.alerts("t1"), Vec::<Value>::new());
    assert_eq!(s.stats("t1"), (0, 0));
}

#[test]
fn healthz_portal_and_generated_admin_key() {
    let s = Svc::start_with(|st| st.admin_key = String::new());
    let key = s.svc.as_ref().unwrap().admin_key().to_owned();
    assert!(key.len() >= 24 && key != ADMIN);
    let r = s.http.send(
        "GET",
        "/admin/tenants",
        &[("authorization", &format!("Bearer {key}"))],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.admin("GET", "/admin/tenants", None).problem(401),
        "unauthorized"
    );

    let h = s.http.send("GET", "/healthz", &[], None);
    assert_eq!((h.status, h.json()["status"].clone()), (200, json!("ok")));

    let page = s.http.send("GET", "/", &[], None);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let html = page.text();
    for id in [
        "admin-key",
        "tenant",
        "create-tenant",
        "partner",
        "toggle",
        "generate-token",
        "token-output",
        "copy-token",
        "token-expiry",
        "installations",
        "coverage",
        "alerts",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "portal lacks #{id}");
    }
    assert!(html.contains("sessionStorage") && html.contains("setInterval(refresh, 2000)"));
    // A Revoke (or Reinstate) button per installation, wired to the admin
    // routes, and a state column that sets revoked/offboarded rows apart.
    for needle in [
        "\"/revoke\"",
        "\"/reinstate\"",
        "b.textContent = revoked ? \"Reinstate\" : \"Revoke\"",
        "<th>State</th>",
        "tr.className = \"state-\" + i.state",
        ".health-Revoked",
    ] {
        assert!(html.contains(needle), "portal lacks {needle}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "portal must not load external resources"
    );
}
