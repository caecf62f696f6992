//! The OpenAPI 3.1 document of the service, generated: body schemas are
//! derived (utoipa) from the types in `schema.rs` that the admin handlers
//! deserialize, and the operations come from [`OPERATIONS`], which the tests
//! check against the router's `route_table()` in both directions — a route
//! added without a contract fails the build, and so does a contract for a
//! route that does not exist.
//!
//! `src/openapi.json` (served at `/openapi.json`) is this document written
//! out; a test fails when it differs. Regenerate on purpose with
//! `EDRLINK_REGEN_OPENAPI=1 cargo test -p edrlink-service --lib openapi`.

// Only the tests build the document: the binary serves the committed copy,
// which those tests keep equal to it.
#![cfg_attr(not(test), allow(dead_code))]

use crate::schema::{self, JWS_PATTERN};
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::ComponentsBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

/// A request or response body.
#[derive(Clone, Copy)]
enum Body {
    /// `application/json` with a component schema.
    Json(&'static str),
    /// `application/jose`: a compact JWS (typ named in the description).
    Jose(&'static str),
    /// `application/vnd.dsse.envelope.v1+json`.
    Dsse,
    /// The portal page.
    Html,
    /// The OpenAPI document itself.
    OpenApi,
}

/// One operation of the contract.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    /// Admin routes need the bearer admin key.
    admin: bool,
    request: Option<(bool, Body)>,
    ok: &'static [(u16, &'static str, Body)],
    errors: &'static [u16],
}

/// Errors the partner API answers with (RFC 9457 problems); 429 also comes
/// from the per-address flood limits in front of every `/v1/` route.
const PARTNER_ERRORS: &[u16] = &[400, 401, 403, 409, 413, 421, 429, 503];
/// Errors the admin API answers with.
const ADMIN_ERRORS: &[u16] = &[400, 401, 403, 404, 409, 413];

/// Every operation the service serves.
const OPERATIONS: &[Op] = &[
    Op {
        method: "GET",
        path: "/",
        id: "portal",
        summary: "The portal page",
        admin: false,
        request: None,
        ok: &[(200, "portal", Body::Html)],
        errors: &[],
    },
    Op {
        method: "GET",
        path: "/healthz",
        id: "healthz",
        summary: "Liveness and database check",
        admin: false,
        request: None,
        ok: &[(200, "ok", Body::Json("Healthz"))],
        errors: &[503],
    },
    Op {
        method: "GET",
        path: "/openapi.json",
        id: "openapi",
        summary: "This document",
        admin: false,
        request: None,
        ok: &[(200, "the OpenAPI document", Body::OpenApi)],
        errors: &[],
    },
    Op {
        method: "GET",
        path: "/v1/keys",
        id: "keys",
        summary: "The service's public signing keys",
        admin: false,
        request: None,
        ok: &[(200, "keyset", Body::Json("Keyset"))],
        errors: &[413, 429, 503],
    },
    Op {
        method: "POST",
        path: "/v1/redeem",
        id: "redeem",
        summary: "Redeem an access token for an installation credential",
        admin: false,
        request: Some((
            true,
            Body::Jose("edrlink-redeem+jwt signed by the new installation key (jwk embedded)"),
        )),
        ok: &[(
            200,
            "credential grant",
            Body::Jose("edrlink-redeem-resp+jwt"),
        )],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/handshake",
        id: "handshake",
        summary: "Signed inbound-flow handshake",
        admin: false,
        request: Some((
            true,
            Body::Jose("edrlink-hello+jwt signed by the installation key"),
        )),
        ok: &[(200, "flow decision", Body::Jose("edrlink-hello-resp+jwt"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/ingest",
        id: "ingest",
        summary: "Ingest one DSSE-signed telemetry batch (at most 5 MiB)",
        admin: false,
        request: Some((true, Body::Dsse)),
        ok: &[(200, "accepted or duplicate", Body::Json("IngestAck"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/offboard",
        id: "offboard",
        summary: "Partner-initiated offboarding",
        admin: false,
        request: Some((
            true,
            Body::Jose("edrlink-offboard+jwt signed by the installation key"),
        )),
        ok: &[(200, "offboarded", Body::Jose("edrlink-offboard-resp+jwt"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/rotate",
        id: "rotate",
        summary: "Rotate the installation key",
        admin: false,
        request: Some((
            true,
            Body::Jose("edrlink-rotate+jwt signed by the current and the new key"),
        )),
        ok: &[(200, "rotated", Body::Jose("edrlink-rotate-resp+jwt"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/downlevel/register",
        id: "downlevelRegister",
        summary: "Down-level registration (SharedKey HMAC authorization)",
        admin: false,
        request: Some((true, Body::Json("DownlevelRequest"))),
        ok: &[(200, "registered", Body::Json("RegisterResponse"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/v1/downlevel/ingest",
        id: "downlevelIngest",
        summary: "Down-level ingest of a JSON batch (SharedKey HMAC authorization)",
        admin: false,
        request: Some((true, Body::Json("DownlevelRequest"))),
        ok: &[(200, "accepted or duplicate", Body::Json("IngestAck"))],
        errors: PARTNER_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants",
        id: "createTenant",
        summary: "Create a tenant (idempotent for the same region)",
        admin: true,
        request: Some((true, Body::Json("CreateTenant"))),
        ok: &[
            (201, "created", Body::Json("Tenant")),
            (200, "already there", Body::Json("Tenant")),
        ],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "GET",
        path: "/admin/tenants",
        id: "listTenants",
        summary: "List tenants",
        admin: true,
        request: None,
        ok: &[(200, "tenants", Body::Json("TenantList"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "GET",
        path: "/admin/tenants/{tenant}/integrations",
        id: "listIntegrations",
        summary: "A tenant's partner integrations",
        admin: true,
        request: None,
        ok: &[(200, "integrations", Body::Json("IntegrationList"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "PUT",
        path: "/admin/tenants/{tenant}/integrations/{partner}",
        id: "setIntegration",
        summary: "Turn a partner integration on or off",
        admin: true,
        request: Some((true, Body::Json("SetIntegration"))),
        ok: &[(200, "the integration", Body::Json("Integration"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/integrations/{partner}/tokens",
        id: "generateToken",
        summary: "Generate an access token",
        admin: true,
        request: Some((false, Body::Json("GenerateToken"))),
        ok: &[(201, "the token (shown once)", Body::Json("GeneratedToken"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "DELETE",
        path: "/admin/tokens/{jti}",
        id: "revokeToken",
        summary: "Revoke an access token",
        admin: true,
        request: None,
        ok: &[(200, "revoked", Body::Json("RevokedToken"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/integrations/{partner}/onboarding-package",
        id: "onboardingPackage",
        summary: "Issue a down-level onboarding package (workspace id + key)",
        admin: true,
        request: Some((false, Body::Json("OnboardingRequest"))),
        ok: &[(
            201,
            "the package (shown once)",
            Body::Json("OnboardingPackage"),
        )],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/workspaces/{workspace}/revoke",
        id: "revokeWorkspace",
        summary: "Revoke a workspace key (registered agents keep their device keys)",
        admin: true,
        request: None,
        ok: &[(200, "revoked", Body::Json("RevokedWorkspace"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/integrations/{partner}/offboarding-package",
        id: "offboardingPackage",
        summary: "Issue a signed offboarding package",
        admin: true,
        request: Some((false, Body::Json("OffboardingRequest"))),
        ok: &[(201, "the package", Body::Json("OffboardingPackage"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "GET",
        path: "/admin/tenants/{tenant}/installations",
        id: "installations",
        summary: "Installations with health and coverage",
        admin: true,
        request: None,
        ok: &[(200, "installations", Body::Json("InstallationList"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/installations/revoke",
        id: "revokeInstallations",
        summary: "Revoke a list of installations (refused at once on every partner route)",
        admin: true,
        request: Some((true, Body::Json("RevokeRequest"))),
        ok: &[(200, "revoked", Body::Json("RevokedInstallations"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/installations/{id}/revoke",
        id: "revokeInstallation",
        summary: "Revoke one installation (refused at once on every partner route)",
        admin: true,
        request: None,
        ok: &[(200, "revoked", Body::Json("RevokedInstallations"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "POST",
        path: "/admin/tenants/{tenant}/installations/{id}/reinstate",
        id: "reinstateInstallation",
        summary: "Reinstate a revoked or offboarded installation (its next redemption resumes it)",
        admin: true,
        request: None,
        ok: &[(200, "reinstated", Body::Json("RevokedInstallations"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "GET",
        path: "/admin/tenants/{tenant}/alerts",
        id: "alerts",
        summary: "Alerts raised from detections",
        admin: true,
        request: None,
        ok: &[(200, "alerts", Body::Json("AlertList"))],
        errors: ADMIN_ERRORS,
    },
    Op {
        method: "GET",
        path: "/admin/tenants/{tenant}/stats",
        id: "stats",
        summary: "Event, batch, alert and installation counts",
        admin: true,
        request: None,
        ok: &[(200, "counts", Body::Json("Stats"))],
        errors: ADMIN_ERRORS,
    },
];

fn content(b: Body) -> Value {
    match b {
        Body::Json(name) => {
            json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}})
        }
        Body::Jose(_) => {
            json!({"application/jose": {"schema": {"type": "string", "pattern": JWS_PATTERN, "maxLength": edrlink_core::jws::MAX_JWS_LEN}}})
        }
        Body::Dsse => {
            json!({"application/vnd.dsse.envelope.v1+json": {"schema": {"$ref": "#/components/schemas/DsseEnvelope"}}})
        }
        Body::Html => json!({"text/html": {"schema": {"type": "string"}}}),
        Body::OpenApi => json!({"application/json": {"schema": {"type": "object"}}}),
    }
}

fn describe(b: Body, fallback: &str) -> String {
    match b {
        Body::Jose(typ) => format!("compact JWS: {typ}"),
        _ => fallback.to_owned(),
    }
}

fn operation(op: &Op) -> Value {
    let mut o = Map::new();
    let tag = if op.admin {
        "admin"
    } else if op.path.starts_with("/v1/") {
        "partner"
    } else {
        "ops"
    };
    o.insert("tags".into(), json!([tag]));
    o.insert("summary".into(), json!(op.summary));
    o.insert("operationId".into(), json!(op.id));
    let params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "jti" {
                json!({"type": "string", "minLength": 1})
            } else {
                json!({"type": "string", "pattern": schema::ID_PATTERN})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if !params.is_empty() {
        o.insert("parameters".into(), Value::Array(params));
    }
    if let Some((required, b)) = op.request {
        o.insert(
            "requestBody".into(),
            json!({"required": required, "description": describe(b, "request body"), "content": content(b)}),
        );
    }
    let mut responses = Map::new();
    for (status, desc, b) in op.ok {
        responses.insert(
            status.to_string(),
            json!({"description": describe(*b, desc), "content": content(*b)}),
        );
    }
    let mut errors: Vec<u16> = op.errors.to_vec();
    if op.admin && !errors.contains(&401) {
        errors.push(401);
    }
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({"$ref": "#/components/responses/Problem"}),
        );
    }
    o.insert("responses".into(), Value::Object(responses));
    if op.admin {
        o.insert("security".into(), json!([{"adminKey": []}]));
    }
    Value::Object(o)
}

/// The document as a JSON value.
pub fn document() -> Value {
    let components = ComponentsBuilder::new()
        .schema_from::<schema::CreateTenant>()
        .schema_from::<schema::SetIntegration>()
        .schema_from::<schema::GenerateToken>()
        .schema_from::<schema::OffboardingRequest>()
        .schema_from::<schema::OnboardingRequest>()
        .schema_from::<schema::RevokeRequest>()
        .schema_from::<schema::RevokedWorkspace>()
        .schema_from::<schema::RevokedInstallations>()
        .schema_from::<schema::InstallationState>()
        .schema_from::<schema::Tenant>()
        .schema_from::<schema::TenantSummary>()
        .schema_from::<schema::TenantList>()
        .schema_from::<schema::Integration>()
        .schema_from::<schema::IntegrationList>()
        .schema_from::<schema::GeneratedToken>()
        .schema_from::<schema::RevokedToken>()
        .schema_from::<schema::Jwk>()
        .schema_from::<schema::Keyset>()
        .schema_from::<schema::OnboardingPackage>()
        .schema_from::<schema::OffboardingPackage>()
        .schema_from::<schema::Health>()
        .schema_from::<schema::Installation>()
        .schema_from::<schema::Coverage>()
        .schema_from::<schema::InstallationList>()
        .schema_from::<schema::Severity>()
        .schema_from::<schema::Alert>()
        .schema_from::<schema::AlertList>()
        .schema_from::<schema::Stats>()
        .schema_from::<schema::Healthz>()
        .schema_from::<schema::Problem>()
        .schema_from::<schema::IngestAck>()
        .schema_from::<schema::RegisterResponse>()
        .schema_from::<schema::DsseEnvelope>()
        .schema_from::<schema::DsseSignature>()
        .security_scheme(
            "adminKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin API key (EDRLINK_ADMIN_KEY)"))
                    .build(),
            ),
        )
        .build();
    let api = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("edrlink reference service")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Partner API (/v1, decisions by edrlink_core::service::ServiceRole) and \
                     admin/portal API (/admin, bearer admin key). Errors are RFC 9457 problem \
                     details (application/problem+json) carrying a stable `code`. Generated \
                     from the service's types (service/src/openapi.rs).",
                ))
                .build(),
        )
        .components(Some(components))
        .build();
    let mut doc = serde_json::to_value(&api).expect("the document serializes");
    let mut paths = Map::new();
    for op in OPERATIONS {
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        item[op.method.to_ascii_lowercase()] = operation(op);
    }
    doc["paths"] = Value::Object(paths);
    doc["tags"] = json!([
        {"name": "partner", "description": "Partner API: signed messages from endpoints (see docs/PROTOCOL.md)"},
        {"name": "admin", "description": "Admin and portal API (bearer admin key)"},
        {"name": "ops", "description": "Portal page, health, this document"},
    ]);
    let c = &mut doc["components"];
    c["responses"] = json!({"Problem": {
        "description": "RFC 9457 problem",
        "headers": {"Retry-After": {"description": "429 and 503: seconds to wait", "schema": {"type": "integer"}}},
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    }});
    // Down-level bodies are signed with SharedKey HMAC over the exact bytes;
    // their shape is checked by the core after the signature.
    c["schemas"]["DownlevelRequest"] = json!({
        "type": "object",
        "description": "Down-level request (register: device facts; ingest: a telemetry batch), authorized by `Authorization: SharedKey <workspace>:<hmac>` and `x-edrlink-date`"
    });
    doc
}

/// The document as served (pretty JSON with a trailing newline).
pub fn document_json() -> String {
    let mut s = serde_json::to_string_pretty(&document()).expect("the document serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_has_a_contract_and_every_contract_a_route() {
        let routes: BTreeSet<(String, String)> = crate::route_table()
            .into_iter()
            .map(|(m, p)| (m.to_ascii_lowercase(), p.to_owned()))
            .collect();
        let doc = document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        let undocumented: Vec<_> = routes.difference(&documented).collect();
        let phantom: Vec<_> = documented.difference(&routes).collect();
        assert!(
            undocumented.is_empty(),
            "routes without an OpenAPI operation (add them to OPERATIONS): {undocumented:?}"
        );
        assert!(
            phantom.is_empty(),
            "operations without a route: {phantom:?}"
        );
    }

    #[test]
    fn every_reference_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r.clone());
                    }
                    o.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let ptr = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(ptr).is_some(), "dangling $ref {r}");
        }
    }

    #[test]
    fn request_bodies_are_closed_and_optional_fields_non_null() {
        let doc = document();
        for name in [
            "CreateTenant",
            "SetIntegration",
            "GenerateToken",
            "OffboardingRequest",
        ] {
            let s = &doc["components"]["schemas"][name];
            assert_eq!(s["additionalProperties"], false, "{name}: {s}");
            for (field, p) in s["properties"].as_object().unwrap() {
                assert!(
                    !p.to_string().contains("null"),
                    "{name}.{field} must not allow null: {p}"
                );
            }
        }
        assert_eq!(
            doc["components"]["schemas"]["SetIntegration"]["required"],
            json!(["enabled"])
        );
        assert_eq!(
            doc["components"]["schemas"]["CreateTenant"]["required"],
            json!(["tenant_id"])
        );
    }

    /// The handlers accept exactly what the schemas say: extra properties
    /// and explicit `null`s are refused, absent optional fields are fine.
    #[test]
    fn request_types_refuse_what_the_schema_forbids() {
        use schema::*;
        let bad = [
            r#"{"tenant_id":"t1","extra":1}"#,
            r#"{"tenant_id":"t1","region":null}"#,
            r#"{"region":"eu"}"#,
        ];
        for b in bad {
            assert!(serde_json::from_str::<CreateTenant>(b).is_err(), "{b}");
        }
        let ok: CreateTenant = serde_json::from_str(r#"{"tenant_id":"t1"}"#).unwrap();
        assert!(ok.region.is_none());
        assert!(
            serde_json::from_str::<OffboardingRequest>(r#"{"installation_ids":null}"#).is_err()
        );
        assert!(serde_json::from_str::<OffboardingRequest>("{}")
            .unwrap()
            .installation_ids
            .is_none());
        assert!(serde_json::from_str::<SetIntegration>(r#"{"enabled":null}"#).is_err());
        assert!(serde_json::from_str::<SetIntegration>(r#"{"enabled":true,"x":0}"#).is_err());
        assert!(serde_json::from_str::<GenerateToken>(r#"{"max_uses":null}"#).is_err());
        assert!(serde_json::from_str::<GenerateToken>(r#"{"lifetime_secs":null}"#).is_err());
        assert!(serde_json::from_str::<GenerateToken>(r#"{"max_uses":2.5}"#).is_err());
        assert!(serde_json::from_str::<GenerateToken>(r#"{"max_uses":-1}"#).is_err());
        assert!(serde_json::from_str::<GenerateToken>(r#"{"max_uses":"3"}"#).is_err());
        // JSON Schema's `integer` includes 3.0: accepted as 3.
        let t: GenerateToken =
            serde_json::from_str(r#"{"max_uses":3.0,"lifetime_secs":60}"#).unwrap();
        assert_eq!((t.max_uses, t.lifetime_secs), (Some(3), Some(60)));
    }

    /// The response mirrors name the fields the core writes.
    #[test]
    fn mirrors_match_the_core_types() {
        use edrlink_core::keys::{SigningKey, SystemRandom};
        let keys =
            |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
        let props = |name: &str| -> BTreeSet<String> {
            keys(&document()["components"]["schemas"][name]["properties"])
        };
        let key = SigningKey::from_seed(&[7; 32]).unwrap();
        let ks = edrlink_core::keys::Keyset::from_keys(&[key.verifying_key()]);
        let mut pkg = edrlink_core::downlevel::OnboardingPackage::issue(
            "t",
            "p",
            "eu",
            "https://x",
            ks.clone(),
            1,
            0,
            &SystemRandom,
        )
        .unwrap();
        // The service always issues packages with an expiry.
        pkg.expires = Some("2030-01-01T00:00:00Z".into());
        let pkg: Value = serde_json::from_str(&pkg.to_json()).unwrap();
        assert_eq!(keys(&pkg), props("OnboardingPackage"));
        let jwk = serde_json::to_value(&ks.keys[0]).unwrap();
        assert!(keys(&jwk).is_subset(&props("Jwk")), "{jwk}");
        let cov = serde_json::to_value(edrlink_core::health::Coverage::new(1, 2)).unwrap();
        assert_eq!(keys(&cov), props("Coverage"));
        let problem = edrlink_core::http::problem(
            &edrlink_core::Error::new(edrlink_core::ErrorCode::RateLimited, "x"),
            Some(3),
        );
        let p: Value = serde_json::from_slice(&problem.body).unwrap();
        assert!(keys(&p).is_subset(&props("Problem")), "{p}");
    }

    #[test]
    fn committed_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi.json");
        let now = document_json();
        if std::env::var_os("EDRLINK_REGEN_OPENAPI").is_some() {
            std::fs::write(path, &now).unwrap();
            return; // the served copy is compiled in: rebuild to check it
        }
        assert!(
            crate::OPENAPI_JSON == now,
            "src/openapi.json is stale: regenerate with EDRLINK_REGEN_OPENAPI=1 cargo test -p edrlink-service --lib openapi"
        );
    }
}
