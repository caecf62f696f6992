//! The partner API is callable from other origins (web consoles, browser
//! extensions); the admin API is not.
mod common;
use common::Svc;

#[test]
fn partner_api_allows_cross_origin_and_admin_does_not() {
    let s = Svc::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let pre = agent
        .options(&format!("{}/v1/redeem", s.url()))
        .header("origin", "https://console.partner.example")
        .header("access-control-request-method", "POST")
        .call()
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    assert_eq!(
        pre.headers().get("access-control-allow-origin").unwrap(),
        "*"
    );
    assert!(pre
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("content-type"));
    let keys = agent
        .get(&format!("{}/v1/keys", s.url()))
        .header("origin", "https://x.example")
        .call()
        .unwrap();
    assert_eq!(keys.status().as_u16(), 200);
    assert_eq!(
        keys.headers().get("access-control-allow-origin").unwrap(),
        "*"
    );
    assert!(
        keys.headers().get("date").is_some(),
        "partners learn the service clock from Date"
    );
    let admin = agent
        .get(&format!("{}/admin/tenants", s.url()))
        .header("origin", "https://x.example")
        .call()
        .unwrap();
    assert_eq!(admin.status().as_u16(), 401);
    assert!(admin.headers().get("access-control-allow-origin").is_none());
}
