//! `edrlink demo`: the seed story, end to end, against an embedded service.
//! Every step checks what the story says should happen and prints ✔ or ✘;
//! the exit code is 0 only if every step behaved.

use crate::admin::Admin;
use crate::{exit, fail, Failure};
use edrlink_core::agent::{Agent, AgentConfig};
use edrlink_core::client::ClientConfig;
use edrlink_core::handshake::FlowState;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_core::{token, ErrorCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const TENANT: &str = "contoso";
const PARTNER: &str = "acme-av";
const REGION: &str = "eu";
const FLUSH_SECS: u64 = 15;

type StepResult = Result<(), String>;
type Step = (String, Box<dyn Fn(&mut Demo) -> StepResult>);

struct Demo {
    admin: Admin,
    admin_url: String,
    dir: PathBuf,
    token: String,
    endpoints: Vec<Agent>,
    /// Events each endpoint submitted (heartbeats come on top, counted by `sent_events`).
    submitted: u64,
    json: bool,
    log: Vec<Value>,
    details: Vec<String>,
}

fn check(ok: bool, what: impl Into<String>) -> StepResult {
    if ok {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn generic(name: &str, i: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({"type": "generic", "time": edrlink_core::encoding::rfc3339(now), "name": name, "data": {"n": i}}).to_string()
}

impl Demo {
    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if !self.json {
            println!("      {line}");
        }
        self.details.push(line);
    }

    fn agent(&self, n: usize) -> Result<Agent, String> {
        let device = DeviceFacts {
            device_id: format!("demo-device-{n}"),
            hostname: format!("endpoint-{n}"),
            os: crate::host::os_family(),
            os_version: crate::host::os_version(),
            product: "Acme AV (edrlink demo)".into(),
            product_version: edrlink_core::VERSION.into(),
        };
        let t = HttpTransport::new(HttpOptions::default()).map_err(|e| e.to_string())?;
        Agent::new(
            AgentConfig {
                client: ClientConfig::new(device),
                data_dir: Some(self.endpoint_dir(n)),
            },
            t,
        )
        .map_err(|e| e.to_string())
    }

    fn endpoint_dir(&self, n: usize) -> PathBuf {
        self.dir.join(format!("endpoint-{n}"))
    }

    fn integration(&self, enabled: bool) -> Result<Value, String> {
        self.admin.ok(
            "PUT",
            &format!("/admin/tenants/{TENANT}/integrations/{PARTNER}"),
            Some(json!({"enabled": enabled})),
        )
    }

    fn new_token(&self) -> Result<String, String> {
        let v = self.admin.ok(
            "POST",
            &format!("/admin/tenants/{TENANT}/integrations/{PARTNER}/tokens"),
            Some(json!({"lifetime_secs": 3600, "max_uses": 10})),
        )?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no token in {v}"))
    }

    fn installations(&self) -> Result<Value, String> {
        self.admin.ok(
            "GET",
            &format!("/admin/tenants/{TENANT}/installations"),
            None,
        )
    }

    fn installation(&self, id: &str) -> Result<Value, String> {
        let v = self.installations()?;
        v["installations"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id).cloned())
            .ok_or_else(|| format!("installation {id} not listed"))
    }

    fn sent_total(&self) -> u64 {
        self.endpoints.iter().map(|a| a.health().sent_events).sum()
    }

    fn inst(&self, n: usize) -> String {
        self.endpoints[n]
            .health()
            .installation_id
            .unwrap_or_default()
    }
}

/// Runs the demo; exit 0 only if every step behaved as the story says.
pub fn run(keep: bool, json: bool) -> Result<u8, Failure> {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("edrlink-demo-{}-{unique}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| {
        fail(
            ErrorCode::Storage,
            format!("creating {}: {e}", dir.display()),
        )
    })?;
    let admin_key = edrlink_core::keys::random_id(&edrlink_core::keys::SystemRandom, 32)?;
    let db = dir.join("edrlink.db");
    let settings = edrlink_service::Settings {
        db_path: Some(db.clone()),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_key: admin_key.clone(),
        region: REGION.into(),
        ..edrlink_service::Settings::default()
    };
    if !json {
        println!("edrlink demo: a partner AV product onboards to the EDR service, end to end\n");
    }
    let svc = edrlink_service::RunningService::start(settings)
        .map_err(|e| fail(ErrorCode::Internal, format!("starting the service: {e:#}")))?;
    let mut d = Demo {
        admin: Admin::new(svc.url(), &admin_key),
        admin_url: svc.url().to_owned(),
        dir: dir.clone(),
        token: String::new(),
        endpoints: vec![],
        submitted: 0,
        json,
        log: vec![],
        details: vec![],
    };
    let url = svc.url().to_owned();
    let steps: Vec<Step> = vec![
        (
            "Start the reference service".into(),
            Box::new(move |d: &mut Demo| {
                d.say(format!("listening on {url}, SQLite database {}", db.display()));
                let (s, v) = d.admin.call("GET", "/healthz", None)?;
                check(s == 200, format!("healthz answered {s}: {v}"))
            }),
        ),
        (
            format!("Admin creates tenant \"{TENANT}\" in region {REGION}"),
            Box::new(|d: &mut Demo| {
                let (s, _) = d.admin.call("GET", "/admin/tenants", None)?;
                check(s == 200, "admin API reachable")?;
                let (unauth, _) = Admin::new(&d.admin_base(), "wrong-key").call("GET", "/admin/tenants", None)?;
                d.say(format!("admin API without the right key: HTTP {unauth}"));
                check(unauth == 401, "the admin API refuses a wrong key with 401")?;
                let v = d.admin.ok("POST", "/admin/tenants", Some(json!({"tenant_id": TENANT, "region": REGION})))?;
                d.say(format!("tenant {} (region {})", v["tenant_id"], v["region"]));
                check(v["region"] == REGION, "tenant is in the requested region")
            }),
        ),
        (
            format!("Admin turns the \"{PARTNER}\" integration on"),
            Box::new(|d: &mut Demo| {
                let v = d.integration(true)?;
                d.say(format!("integration enabled = {}, epoch = {}", v["enabled"], v["epoch"]));
                check(v["enabled"] == true, "integration is enabled")
            }),
        ),
        (
            "Admin generates an access token (1 hour, 10 uses)".into(),
            Box::new(|d: &mut Demo| {
                d.token = d.new_token()?;
                let t = &d.token;
                d.say(format!("token: {}…{} ({} characters)", &t[..12.min(t.len())], &t[t.len().saturating_sub(6)..], t.len()));
                Ok(())
            }),
        ),
        (
            "Inspect the token (what the partner console shows before redeeming)".into(),
            Box::new(|d: &mut Demo| {
                let info = token::inspect(&d.token).map_err(|e| e.to_string())?;
                let c = info.claims.clone();
                let now = now();
                d.say(format!("tenant {} · partner {} · region {} · epoch {} · service {}", c.tenant_id, c.partner_id, c.region, c.epoch, c.service_url));
                d.say(format!("expires in {} · status {} · not verified (the service decides)", crate::human_duration(info.seconds_left(now)), crate::status_name(info.status(now))));
                check(c.tenant_id == TENANT && c.partner_id == PARTNER && c.region == REGION, "claims name the tenant, partner and region")?;
                check(info.status(now) == token::TokenStatus::Valid, "token is valid")
            }),
        ),
        (
            "Two endpoints redeem the token and handshake".into(),
            Box::new(|d: &mut Demo| {
                for n in 1..=2 {
                    let a = d.agent(n)?;
                    let h = a.enroll(&d.token).map_err(|e| format!("endpoint-{n}: {e}"))?;
                    d.say(format!("endpoint-{n}: installation {} · flow {} · credential {}", h.installation_id.clone().unwrap_or_default(), crate::flow_name(h.flow), rel(&d.endpoint_dir(n).join("credential.json"), &d.dir)));
                    check(h.flow == Some(FlowState::Open) && h.healthy, format!("endpoint-{n} is onboarded with the flow open"))?;
                    check(d.endpoint_dir(n).join("credential.json").exists(), "credential stored")?;
                    d.endpoints.push(a);
                }
                check(d.inst(0) != d.inst(1), "each endpoint is its own installation")
            }),
        ),
        (
            "Both endpoints send telemetry (signed DSSE batches)".into(),
            Box::new(|d: &mut Demo| {
                for (i, n) in [(0usize, 3u64), (1, 2)] {
                    for k in 0..n {
                        d.endpoints[i].submit_json(&generic("process_start", k)).map_err(|e| e.to_string())?;
                    }
                    d.submitted += n;
                    let o = d.endpoints[i].flush(FLUSH_SECS).map_err(|e| e.to_string())?;
                    d.say(format!("endpoint-{}: {n} events + heartbeat → delivered {}, queued {}", i + 1, o.delivered, o.queued));
                    check(o.queued == 0 && o.delivered > n, "all delivered")?;
                }
                let s = d.stats()?;
                d.say(format!("service stored {} events in {} batches", s["events"], s["batches"]));
                check(s["events"].as_u64() == Some(d.sent_total()), "stored == sent")
            }),
        ),
        (
            "Detection test: endpoint-1 reports the EICAR test file".into(),
            Box::new(|d: &mut Demo| {
                d.endpoints[0].send_test_detection().map_err(|e| e.to_string())?;
                let o = d.endpoints[0].flush(FLUSH_SECS).map_err(|e| e.to_string())?;
                check(o.queued == 0, "detection delivered")?;
                let v = d.admin.ok("GET", &format!("/admin/tenants/{TENANT}/alerts"), None)?;
                let inst = d.inst(0);
                let alert = v["alerts"].as_array().and_then(|a| a.iter().find(|x| x["installation_id"] == inst.as_str()).cloned()).ok_or("no alert for endpoint-1")?;
                d.say(format!("alert: \"{}\" · severity {} · threat {} · test {}", alert["title"].as_str().unwrap_or(""), alert["severity"], alert["threat_name"], alert["test"]));
                check(alert["title"] == edrlink_core::eicar::EICAR_ALERT_TITLE && alert["test"] == true, "an \"EICAR test file\" test alert was raised")
            }),
        ),
        (
            "Health (endpoint view) and coverage (portal view)".into(),
            Box::new(|d: &mut Demo| {
                let reports: Vec<_> = d.endpoints.iter().map(|a| a.health()).collect();
                for (i, h) in reports.iter().enumerate() {
                    d.say(format!("endpoint-{}: healthy {} · licensed {} · flow {} · queued {} · sent {}", i + 1, h.healthy, h.onboarded, crate::flow_name(h.flow), h.queued_events, h.sent_events));
                    check(h.healthy, format!("endpoint-{} healthy", i + 1))?;
                }
                let v = d.installations()?;
                for i in v["installations"].as_array().cloned().unwrap_or_default() {
                    d.say(format!("portal: {} {} → {}", i["hostname"].as_str().unwrap_or(""), i["id"].as_str().unwrap_or(""), i["health"].as_str().unwrap_or("")));
                    check(i["health"] == "Healthy", "portal shows Healthy")?;
                }
                let c = &v["coverage"];
                d.say(format!("coverage: {}/{} onboarded ({}%)", c["onboarded"], c["total"], c["percent"]));
                check(c["onboarded"] == 2 && c["total"] == 2, "coverage 2/2")
            }),
        ),
        (
            "Offboard endpoint-1 (the partner side tells the service first, then forgets its credential)".into(),
            Box::new(|d: &mut Demo| {
                let inst = d.inst(0);
                d.endpoints[0].offboard(None).map_err(|e| e.to_string())?;
                let gone = !d.endpoint_dir(1).join("credential.json").exists();
                d.say(format!("endpoint-1: credential deleted = {gone}, licensed = {}", d.endpoints[0].health().onboarded));
                check(gone, "credential file deleted")?;
                let i = d.installation(&inst)?;
                let v = d.installations()?;
                d.say(format!("portal: {} offboarded = {} · health {} · coverage {}/{}", inst, i["offboarded"], i["health"].as_str().unwrap_or(""), v["coverage"]["onboarded"], v["coverage"]["total"]));
                check(i["offboarded"] == true && v["coverage"]["onboarded"] == 1, "the service records the offboarding")
            }),
        ),
        (
            "Admin turns the integration off: endpoint-2's sends are blocked, nothing is lost".into(),
            Box::new(|d: &mut Demo| {
                let v = d.integration(false)?;
                d.say(format!("integration enabled = {}, epoch = {}", v["enabled"], v["epoch"]));
                for k in 0..4 {
                    d.endpoints[1].submit_json(&generic("file_write", k)).map_err(|e| e.to_string())?;
                }
                d.submitted += 4;
                let r = d.endpoints[1].flush(FLUSH_SECS);
                let h = d.endpoints[1].health();
                let code = r.as_ref().err().map(|e| e.code());
                d.say(format!("endpoint-2 flush → {} · flow {} · queued {} (kept)", r.as_ref().err().map_or("ok".to_string(), |e| format!("error[{}]", e.code())), crate::flow_name(h.flow), h.queued_events));
                check(code == Some(ErrorCode::FlowBlocked), "the send is refused with flow_blocked")?;
                check(h.queued_events >= 4, "the 4 new events stay queued")
            }),
        ),
        (
            "Admin turns it back on: the old token and the old credential are refused".into(),
            Box::new(|d: &mut Demo| {
                let v = d.integration(true)?;
                d.say(format!("integration enabled = {}, epoch = {} (moved on)", v["enabled"], v["epoch"]));
                let probe = d.agent(9)?;
                let e = probe.enroll(&d.token).err().ok_or("old token was accepted")?;
                d.say(format!("old token on a new endpoint → error[{}]: {}", e.code(), e.message()));
                check(e.code() == ErrorCode::EpochMismatch, "old token refused with epoch_mismatch")?;
                let f = d.endpoints[1].handshake().map_err(|e| e.to_string())?;
                let h = d.endpoints[1].health();
                d.say(format!("endpoint-2 handshake → flow {} · new token needed {} · {}", crate::flow_name(Some(f)), h.needs_new_token, h.last_error.map(|e| e.to_string()).unwrap_or_default()));
                check(f == FlowState::Revoked && h.needs_new_token, "old credential revoked")?;
                let r = d.endpoints[1].flush(2);
                check(r.is_err(), "sends stay refused until re-onboarding")?;
                d.say(format!("endpoint-2 still holds {} queued events", d.endpoints[1].health().queued_events));
                Ok(())
            }),
        ),
        (
            "Admin generates a new token; endpoint-2 re-onboards and its queue is delivered".into(),
            Box::new(|d: &mut Demo| {
                let before = d.inst(1);
                d.token = d.new_token()?;
                let h = d.endpoints[1].enroll(&d.token).map_err(|e| e.to_string())?;
                d.say(format!("endpoint-2: installation {} (same as before: {}) · flow {}", h.installation_id.clone().unwrap_or_default(), h.installation_id.as_deref() == Some(before.as_str()), crate::flow_name(h.flow)));
                check(h.installation_id.as_deref() == Some(before.as_str()) && h.flow == Some(FlowState::Open), "same installation resumed with the flow open")?;
                let o = d.endpoints[1].flush(FLUSH_SECS).map_err(|e| e.to_string())?;
                d.say(format!("endpoint-2 flush → delivered {}, queued {}", o.delivered, o.queued));
                check(o.queued == 0 && o.delivered >= 4, "the queued events are delivered")?;
                let s = d.stats()?;
                let sent = d.sent_total();
                d.say(format!("service stored {} events · endpoints sent {sent} ({} submitted + heartbeats + EICAR) · batches {}", s["events"], d.submitted, s["batches"]));
                check(s["events"].as_u64() == Some(sent), "stored == sent: nothing lost, nothing stored twice")?;
                let i = d.installation(&before)?;
                d.say(format!("portal: {} missing sequence numbers = {}", before, i["missing_seq"]));
                check(i["missing_seq"] == 0, "no gaps")
            }),
        ),
        (
            "A second endpoint (endpoint-3) enrolls beside endpoint-2 and sends".into(),
            Box::new(|d: &mut Demo| {
                let a = d.agent(3)?;
                let h = a.enroll(&d.token).map_err(|e| format!("endpoint-3: {e}"))?;
                d.say(format!("endpoint-3: installation {} · flow {}", h.installation_id.clone().unwrap_or_default(), crate::flow_name(h.flow)));
                check(h.flow == Some(FlowState::Open) && h.healthy, "endpoint-3 is onboarded with the flow open")?;
                for k in 0..2 {
                    a.submit_json(&generic("process_start", k)).map_err(|e| e.to_string())?;
                }
                d.submitted += 2;
                let o = a.flush(FLUSH_SECS).map_err(|e| e.to_string())?;
                d.say(format!("endpoint-3: 2 events + heartbeat → delivered {}, queued {}", o.delivered, o.queued));
                d.endpoints.push(a);
                check(o.queued == 0 && o.delivered > 2, "all delivered")?;
                check(d.inst(2) != d.inst(1), "its own installation")
            }),
        ),
        (
            "Admin revokes endpoint-2 through the admin API (one stolen host, not the fleet)".into(),
            Box::new(|d: &mut Demo| {
                let inst = d.inst(1);
                let v = d.admin.ok("POST", &format!("/admin/tenants/{TENANT}/installations/{inst}/revoke"), None)?;
                d.say(format!("POST /admin/tenants/{TENANT}/installations/{inst}/revoke → revoked = {}", v["revoked"]));
                let i = d.installation(&inst)?;
                let other = d.installation(&d.inst(2))?;
                d.say(format!("portal: {inst} state {} · health {}", i["state"].as_str().unwrap_or(""), i["health"].as_str().unwrap_or("")));
                d.say(format!("portal: {} state {} · health {}", d.inst(2), other["state"].as_str().unwrap_or(""), other["health"].as_str().unwrap_or("")));
                check(i["state"] == "revoked" && i["health"] == "Revoked", "the portal shows endpoint-2 as revoked")?;
                check(other["state"] == "active", "endpoint-3 stays active")
            }),
        ),
        (
            "endpoint-2 is refused at once; endpoint-3 keeps sending".into(),
            Box::new(|d: &mut Demo| {
                for k in 0..2 {
                    d.endpoints[1].submit_json(&generic("file_write", 100 + k)).map_err(|e| e.to_string())?;
                }
                d.submitted += 2;
                let r = d.endpoints[1].flush(FLUSH_SECS);
                let h = d.endpoints[1].health();
                let code = r.as_ref().err().map(|e| e.code());
                d.say(format!("endpoint-2 flush → {} · flow {} · queued {} (kept)", r.as_ref().err().map_or("ok".to_string(), |e| format!("error[{}]", e.code())), crate::flow_line(&h), h.queued_events));
                check(code == Some(ErrorCode::Revoked), "endpoint-2's send is refused with revoked")?;
                check(h.needs_new_token && h.queued_events >= 2, "endpoint-2 needs a new token and keeps its events")?;
                for k in 0..3 {
                    d.endpoints[2].submit_json(&generic("process_start", 10 + k)).map_err(|e| e.to_string())?;
                }
                d.submitted += 3;
                let o = d.endpoints[2].flush(FLUSH_SECS).map_err(|e| e.to_string())?;
                d.say(format!("endpoint-3 flush → delivered {}, queued {}", o.delivered, o.queued));
                check(o.queued == 0 && o.delivered >= 3, "endpoint-3 keeps sending")?;
                let s = d.stats()?;
                let sent = d.sent_total();
                d.say(format!("service stored {} events · endpoints sent {sent}", s["events"]));
                check(s["events"].as_u64() == Some(sent), "stored == sent: nothing from the revoked endpoint")
            }),
        ),
    ];
    let total = steps.len();
    let mut passed = 0;
    for (n, (title, f)) in steps.iter().enumerate() {
        if !json {
            println!("{:>2}. {title}", n + 1);
        }
        d.details.clear();
        let r = f(&mut d);
        let ok = r.is_ok();
        if !json {
            match &r {
                Ok(()) => println!("    ✔ ok"),
                Err(e) => println!("    ✘ {e}"),
            }
        }
        d.log.push(json!({"step": n + 1, "title": title, "ok": ok, "details": d.details, "error": r.as_ref().err()}));
        if !ok {
            break;
        }
        passed += 1;
    }
    drop(d.endpoints.drain(..));
    svc.shutdown();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"passed": passed, "total": total, "ok": passed == total, "steps": d.log})
            )
            .unwrap_or_default()
        );
    } else {
        println!();
        if passed == total {
            println!("✔ all {total} steps behaved as the story says");
        } else {
            println!(
                "✘ {passed}/{total} steps passed; step {} did not behave as the story says",
                passed + 1
            );
        }
    }
    if keep {
        if !json {
            println!("kept {}", dir.display());
        }
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if passed == total {
        exit::OK
    } else {
        exit::ERROR
    })
}

impl Demo {
    fn admin_base(&self) -> String {
        self.admin_url.clone()
    }

    fn stats(&self) -> Result<Value, String> {
        self.admin
            .ok("GET", &format!("/admin/tenants/{TENANT}/stats"), None)
    }
}

fn rel(p: &Path, base: &Path) -> String {
    p.strip_prefix(base).map_or_else(
        |_| p.display().to_string(),
        |r| format!("<tmp>/{}", r.display()),
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
