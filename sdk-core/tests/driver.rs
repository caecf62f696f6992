//! The client's operations (`start` / `op_status` / `op_timed_out`), its
//! state-change events and its diagnostics, driven against the in-process
//! service role with a plain loop — the same loop every host runs.

mod common;

use common::*;
use edrlink_core::client::{
    ClientConfig, ClientEvent, FlushOutcome, OpKind, OpOutcome, OpStatus, Operation, PartnerClient,
    WhenFull,
};
use edrlink_core::diag::{LogLevel, LogRecord, LOG_QUEUE_LEN};
use edrlink_core::encoding::{b64url, rfc3339, UnixSeconds};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::{format_http_date, problem, HttpRequest, HttpResponse};
use edrlink_core::telemetry::{Event, GenericEvent};
use edrlink_core::{Error, ErrorCode, Result};

type Front<'a> = &'a mut dyn FnMut(&HttpRequest) -> Option<HttpResponse>;

fn client(label: &str) -> PartnerClient {
    client_with(label, ClientConfig::new(device(label)))
}

fn client_with(label: &str, cfg: ClientConfig) -> PartnerClient {
    PartnerClient::new(cfg, CounterRandom::boxed(label))
}

fn ev(n: u64, now: UnixSeconds) -> Event {
    Event::Generic(GenericEvent {
        time: rfc3339(now),
        name: "file_write".into(),
        data: serde_json::json!({ "n": n }),
    })
}

fn events(c: &mut PartnerClient) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn logs(c: &mut PartnerClient) -> Vec<LogRecord> {
    std::iter::from_fn(|| c.poll_log()).collect()
}

fn pass(_: &HttpRequest) -> Option<HttpResponse> {
    None
}

/// Answers requests to `path` with the problem for `err` (a refusal in front
/// of, or instead of, the service); everything else reaches the service.
fn refuse(path: &'static str, err: Error) -> impl FnMut(&HttpRequest) -> Option<HttpResponse> {
    move |req| req.url.ends_with(path).then(|| problem(&err, None))
}

/// The host loop: status, send what is due, else move the clock to the
/// client's next time; at `timeout` seconds the operation resolves with
/// `op_timed_out`. `now` is advanced as the simulated clock.
fn run(
    w: &mut World,
    c: &mut PartnerClient,
    op: Operation<'_>,
    now: &mut UnixSeconds,
    timeout: i64,
    front: Front<'_>,
) -> Result<OpOutcome> {
    let h = c.start(op, *now)?;
    let deadline = *now + timeout;
    for _ in 0..1000 {
        match c.op_status(&h, *now) {
            OpStatus::Done(o) => return Ok(o),
            OpStatus::Failed(e) => return Err(e),
            OpStatus::Pending => {}
        }
        if *now >= deadline {
            return c.op_timed_out(&h, *now);
        }
        match c.poll_request(*now) {
            Some(req) => {
                let resp = front(&req).unwrap_or_else(|| w.handle(&req, *now));
                c.handle_response(req.id, &resp, *now);
            }
            None => {
                *now = c
                    .poll_timeout(*now)
                    .map_or(*now + 1, |t| t.max(*now + 1))
                    .min(deadline);
            }
        }
    }
    panic!("operation {:?} never settled", h.kind());
}

fn enroll(w: &mut World, c: &mut PartnerClient, now: &mut UnixSeconds) -> String {
    let tok = w.token(3600, 10, *now);
    match run(w, c, Operation::Enroll { token: &tok }, now, 30, &mut pass).unwrap() {
        OpOutcome::Enrolled(h) => h.installation_id.unwrap(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn every_operation_completes_from_client_state_alone() {
    let mut w = World::new();
    let mut c = client("ops");
    let mut now = NOW;
    // Nothing is exchanged until the host drives: the status is pending.
    let tok = w.token(3600, 10, now);
    let h = c.start(Operation::Enroll { token: &tok }, now).unwrap();
    assert_eq!(h.kind(), OpKind::Enroll);
    assert_eq!(c.op_status(&h, now), OpStatus::Pending);
    let req = c.poll_request(now).unwrap();
    let resp = w.handle(&req, now);
    c.handle_response(req.id, &resp, now);
    assert_eq!(
        c.op_status(&h, now),
        OpStatus::Pending,
        "a credential without a flow decision is not enrolled yet"
    );
    let req = c.poll_request(now).unwrap();
    assert!(req.url.ends_with("/v1/handshake"));
    let resp = w.handle(&req, now);
    c.handle_response(req.id, &resp, now);
    let OpStatus::Done(OpOutcome::Enrolled(health)) = c.op_status(&h, now) else {
        panic!("{:?}", c.op_status(&h, now));
    };
    assert_eq!(health.flow, Some(FlowState::Open));
    let inst = health.installation_id.unwrap();

    for i in 0..3 {
        c.submit(ev(i, now), now).unwrap();
    }
    let out = run(&mut w, &mut c, Operation::Flush, &mut now, 30, &mut pass).unwrap();
    assert_eq!(
        out,
        OpOutcome::Flushed(FlushOutcome {
            delivered: 4,
            queued: 0
        }),
        "3 events + the heartbeat"
    );
    assert_eq!(
        run(
            &mut w,
            &mut c,
            Operation::Handshake,
            &mut now,
            30,
            &mut pass
        )
        .unwrap(),
        OpOutcome::Flow(FlowState::Open)
    );

    // A forced rotation: the key changes now, at the service too.
    let old_kid = c.credential().unwrap().signing_key().unwrap().key_id();
    events(&mut c);
    assert_eq!(
        run(&mut w, &mut c, Operation::Rotate, &mut now, 30, &mut pass).unwrap(),
        OpOutcome::Rotated
    );
    let new_kid = c.credential().unwrap().signing_key().unwrap().key_id();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        w.store.installations[&inst].public_key.unwrap().key_id(),
        new_kid
    );
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::CredentialChanged,
            ClientEvent::CredentialRotated
        ]
    );
    // The next rotation waits for two thirds of the new lifetime again.
    w.drive(&mut c, now + 60, 10);
    assert_eq!(
        c.credential().unwrap().signing_key().unwrap().key_id(),
        new_kid
    );

    assert_eq!(
        run(
            &mut w,
            &mut c,
            Operation::Offboard { reason: "test" },
            &mut now,
            30,
            &mut pass
        )
        .unwrap(),
        OpOutcome::Offboarded
    );
    assert!(w.store.installations[&inst].offboarded);
    // Without a credential these cannot start.
    for op in [Operation::Handshake, Operation::Rotate] {
        assert_eq!(
            c.start(op, now).unwrap_err().code(),
            ErrorCode::InvalidState,
            "{op:?}"
        );
    }
}

#[test]
fn package_enrollment_and_package_offboarding_are_operations_too() {
    let mut w = World::new();
    let pkg = downlevel_package(&mut w, "ws-op");
    let mut c = client("downlevel-op");
    let mut now = NOW;
    let out = run(
        &mut w,
        &mut c,
        Operation::EnrollWithPackage {
            package_json: &pkg.to_json(),
        },
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    let OpOutcome::Enrolled(h) = out else {
        panic!("{out:?}")
    };
    assert_eq!(h.flow, Some(FlowState::Open));
    assert_eq!(
        c.start(Operation::Rotate, now).unwrap_err().code(),
        ErrorCode::InvalidState,
        "a down-level credential has no installation key"
    );
    // Down-level handshake: no exchange, the flow is open.
    assert_eq!(
        run(
            &mut w,
            &mut c,
            Operation::Handshake,
            &mut now,
            30,
            &mut pass
        )
        .unwrap(),
        OpOutcome::Flow(FlowState::Open)
    );

    // A token client offboarded by an admin package: done at once.
    let mut t = client("pkg-off");
    let inst = enroll(&mut w, &mut t, &mut now);
    let (package, _) = edrlink_core::offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec![inst]),
        &key("service"),
        now,
        &CounterRandom::new("off"),
    )
    .unwrap();
    let h = t
        .start(
            Operation::OffboardWithPackage {
                package_json: &package,
            },
            now,
        )
        .unwrap();
    assert_eq!(t.op_status(&h, now), OpStatus::Done(OpOutcome::Offboarded));
}

fn downlevel_package(w: &mut World, label: &str) -> edrlink_core::downlevel::OnboardingPackage {
    let epoch = w.epoch();
    let pkg = edrlink_core::downlevel::OnboardingPackage::issue(
        TENANT,
        PARTNER,
        REGION,
        SERVICE_URL,
        w.svc.keyset(),
        epoch,
        NOW,
        &CounterRandom::new(label),
    )
    .unwrap();
    w.store.workspaces.insert(
        pkg.workspace_id.clone(),
        edrlink_core::service::Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            key: pkg.key_bytes().unwrap(),
            epoch,
            expires_at: None,
            revoked: false,
        },
    );
    pkg
}

#[test]
fn a_refused_hello_keeps_its_own_code_and_still_retries() {
    let mut w = World::new();
    let mut c = client("hello-refused");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    events(&mut c);
    let mut front = refuse(
        "/v1/handshake",
        Error::new(ErrorCode::WrongRegion, "this service serves another region"),
    );
    let e = run(
        &mut w,
        &mut c,
        Operation::Handshake,
        &mut now,
        30,
        &mut front,
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::WrongRegion, "{e}");
    let h = c.health(now);
    let last = h.last_error.unwrap();
    assert_eq!(last.code, ErrorCode::WrongRegion, "not service_unavailable");
    assert_eq!(last.http_status, 421);
    assert!(h.next_attempt.is_some_and(|t| t > now), "retry scheduled");
    assert!(events(&mut c).contains(&ClientEvent::Failed(ErrorCode::WrongRegion)));
    // Once the refusal stops, the retry gets the decision.
    now = h.next_attempt.unwrap();
    w.drive(&mut c, now, 10);
    assert_eq!(c.flow(), Some(FlowState::Open));
}

#[test]
fn a_refused_rotation_keeps_its_own_code_and_is_not_forced_again() {
    let mut w = World::new();
    let mut c = client("rotate-refused");
    let mut now = NOW;
    let inst = enroll(&mut w, &mut c, &mut now);
    let kid = c.credential().unwrap().signing_key().unwrap().key_id();
    // The integration is off at the service while this client still holds an
    // open session: the rotation is refused with `flow_blocked`.
    w.store
        .integrations
        .get_mut(&(TENANT.to_owned(), PARTNER.to_owned()))
        .unwrap()
        .enabled = false;
    events(&mut c);
    let e = run(&mut w, &mut c, Operation::Rotate, &mut now, 30, &mut pass).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FlowBlocked, "{e}");
    assert_eq!(
        c.health(now).last_error.unwrap().code,
        ErrorCode::FlowBlocked
    );
    assert!(events(&mut c).contains(&ClientEvent::Failed(ErrorCode::FlowBlocked)));
    assert_eq!(
        c.credential().unwrap().signing_key().unwrap().key_id(),
        kid,
        "the old key stays"
    );
    assert_eq!(
        w.store.installations[&inst].public_key.unwrap().key_id(),
        kid
    );
    // After the backoff no second forced rotation goes out.
    let later = c.health(now).next_attempt.unwrap();
    let mut paths = vec![];
    for _ in 0..5 {
        let Some(req) = c.poll_request(later) else {
            break;
        };
        paths.push(req.url.clone());
        let resp = w.handle(&req, later);
        c.handle_response(req.id, &resp, later);
    }
    assert!(
        paths.iter().all(|p| !p.ends_with("/v1/rotate")),
        "{paths:?}"
    );
}

#[test]
fn a_refused_opt_out_keeps_its_own_code_and_the_credential() {
    let mut w = World::new();
    let mut c = client("offboard-refused");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    let mut front = refuse(
        "/v1/offboard",
        Error::new(ErrorCode::InvalidArgument, "opt-out is not enabled"),
    );
    let e = run(
        &mut w,
        &mut c,
        Operation::Offboard { reason: "test" },
        &mut now,
        30,
        &mut front,
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        c.health(now).last_error.unwrap().code,
        ErrorCode::InvalidArgument
    );
    assert!(c.credential().is_some());
}

#[test]
fn backing_off_keeps_retry_after_and_a_flush_resolves_at_its_deadline() {
    let mut w = World::new();
    let mut c = client("rate-limited");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    c.submit(ev(1, now), now).unwrap();
    let mut front = refuse(
        "/v1/ingest",
        Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(120),
    );
    let start = now;
    let out = run(&mut w, &mut c, Operation::Flush, &mut now, 10, &mut front).unwrap();
    assert_eq!(
        out,
        OpOutcome::Flushed(FlushOutcome {
            delivered: 0,
            queued: 2
        }),
        "kept for later: the event and the heartbeat"
    );
    assert_eq!(now, start + 10, "resolved at the deadline");
    let last = c.health(now).last_error.unwrap();
    assert_eq!(last.code, ErrorCode::RateLimited);
    assert_eq!(last.retry_after, Some(120), "the service's Retry-After");
    // Another operation timing out reports that same typed error.
    let h = c.start(Operation::Flush, now).unwrap();
    let e = c.op_timeout_error(&h, now);
    assert_eq!(
        (e.code(), e.retry_after()),
        (ErrorCode::RateLimited, Some(120))
    );
    // Without any error the timeout is a transport error naming the wait.
    let mut fresh = client("silent");
    let h = fresh.start(Operation::Flush, now).unwrap();
    let e = fresh.op_timeout_error(&h, now + 10);
    assert_eq!(e.code(), ErrorCode::Transport);
    assert!(e.message().contains("10 s"), "{e}");
}

#[test]
fn flush_fails_at_once_when_blocked_and_events_stay_queued() {
    let mut w = World::new();
    let mut c = client("flush-blocked");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    w.set_enabled(false);
    for i in 0..3 {
        c.submit(ev(i, now), now).unwrap();
    }
    let start = now;
    let e = run(&mut w, &mut c, Operation::Flush, &mut now, 600, &mut pass).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FlowBlocked);
    assert_eq!(now, start, "no waiting for the deadline");
    assert_eq!(c.health(now).queued_events, 4);
    // Not enrolled with events queued: invalid_state, still queued.
    let mut lone = client("flush-lone");
    lone.submit(ev(1, now), now).unwrap();
    let e = run(&mut w, &mut lone, Operation::Flush, &mut now, 5, &mut pass).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState);
    assert_eq!(lone.health(now).queued_events, 1);
}

#[test]
fn needs_new_token_fires_once_with_its_reason() {
    let mut w = World::new();
    let mut c = client("nnt");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    w.set_enabled(false);
    w.set_enabled(true); // the epoch moved on
    events(&mut c);
    assert_eq!(
        run(
            &mut w,
            &mut c,
            Operation::Handshake,
            &mut now,
            30,
            &mut pass
        )
        .unwrap(),
        OpOutcome::Flow(FlowState::Revoked)
    );
    let evs = events(&mut c);
    let nnt: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, ClientEvent::NeedsNewToken(_)))
        .collect();
    assert_eq!(
        nnt,
        [&ClientEvent::NeedsNewToken(ErrorCode::EpochMismatch)],
        "{evs:?}"
    );
    assert_eq!(
        nnt[0].to_json(),
        r#"{"type":"needs_new_token","code":"epoch_mismatch"}"#
    );
    assert!(evs.contains(&ClientEvent::FlowChanged(FlowState::Revoked)));
    // Still revoked: asking again does not fire it again.
    c.submit(ev(1, now), now).unwrap();
    let e = run(&mut w, &mut c, Operation::Flush, &mut now, 30, &mut pass).unwrap_err();
    assert_eq!(e.code(), ErrorCode::EpochMismatch);
    run(
        &mut w,
        &mut c,
        Operation::Handshake,
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    assert!(!events(&mut c)
        .iter()
        .any(|e| matches!(e, ClientEvent::NeedsNewToken(_))));
    // A new token clears it; a later revocation fires again.
    enroll(&mut w, &mut c, &mut now);
    assert!(!c.health(now).needs_new_token);
    w.set_enabled(false);
    w.set_enabled(true);
    events(&mut c);
    run(
        &mut w,
        &mut c,
        Operation::Handshake,
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    assert!(events(&mut c).contains(&ClientEvent::NeedsNewToken(ErrorCode::EpochMismatch)));
}

fn capped(label: &str, max_events: u64, when_full: WhenFull) -> PartnerClient {
    let mut cfg = ClientConfig::new(device(label));
    cfg.max_queue_events = max_events;
    cfg.when_full = when_full;
    client_with(label, cfg)
}

#[test]
fn queue_full_once_per_episode_and_drops_aggregated_per_call() {
    let now = NOW;
    let mut c = capped("full", 3, WhenFull::RefuseNew);
    for i in 0..3 {
        c.submit(ev(i, now), now).unwrap();
    }
    assert!(events(&mut c).is_empty());
    assert_eq!(
        c.submit(ev(3, now), now).unwrap_err().code(),
        ErrorCode::QueueFull
    );
    let dropped = ClientEvent::EventsDropped {
        reason: "queue_full".into(),
        count: 1,
    };
    assert_eq!(events(&mut c), [ClientEvent::QueueFull, dropped.clone()]);
    assert_eq!(
        dropped.to_json(),
        r#"{"type":"events_dropped","reason":"queue_full","count":1}"#
    );
    // Still full: the drop is reported, queue_full is not repeated.
    assert!(c.submit(ev(4, now), now).is_err());
    assert_eq!(events(&mut c), [dropped]);
    // One call, one event per reason.
    let refused = c
        .submit_many(&(5..9).map(|i| ev(i, now)).collect::<Vec<_>>(), now)
        .unwrap();
    assert_eq!(refused, 4);
    assert_eq!(
        events(&mut c),
        [ClientEvent::EventsDropped {
            reason: "queue_full".into(),
            count: 4
        }]
    );

    // A delivery makes room: the next overflow is a new episode.
    let mut w = World::new();
    let mut t = now;
    enroll(&mut w, &mut c, &mut t);
    run(&mut w, &mut c, Operation::Flush, &mut t, 30, &mut pass).unwrap();
    assert_eq!(c.health(t).queued_events, 0);
    events(&mut c);
    let refused = c
        .submit_many(&(0..4).map(|i| ev(i, t)).collect::<Vec<_>>(), t)
        .unwrap();
    assert_eq!(refused, 1);
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::QueueFull,
            ClientEvent::EventsDropped {
                reason: "queue_full".into(),
                count: 1
            }
        ]
    );
}

#[test]
fn dropping_the_oldest_and_expiry_are_reported_as_drops() {
    let now = NOW;
    let mut c = capped("oldest", 3, WhenFull::DropOldest);
    c.submit_many(&(0..5).map(|i| ev(i, now)).collect::<Vec<_>>(), now)
        .unwrap();
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::QueueFull,
            ClientEvent::EventsDropped {
                reason: "queue_full".into(),
                count: 2
            }
        ]
    );
    let mut cfg = ClientConfig::new(device("expiry"));
    cfg.max_queue_age_secs = 60;
    let mut c = client_with("expiry", cfg);
    c.submit(ev(0, now), now).unwrap();
    c.submit(ev(1, now), now).unwrap();
    c.submit(ev(2, now + 61), now + 61).unwrap();
    assert_eq!(
        events(&mut c),
        [ClientEvent::EventsDropped {
            reason: "expired".into(),
            count: 2
        }]
    );
    assert_eq!(c.health(now + 61).queued_events, 1);
}

#[test]
fn every_event_has_its_canonical_json() {
    let cases = [
        (
            ClientEvent::CredentialChanged,
            r#"{"type":"credential_changed"}"#,
        ),
        (
            ClientEvent::CredentialRemoved,
            r#"{"type":"credential_removed"}"#,
        ),
        (
            ClientEvent::FlowChanged(FlowState::Blocked),
            r#"{"type":"flow_changed","flow":"blocked"}"#,
        ),
        (
            ClientEvent::Delivered(7),
            r#"{"type":"delivered","count":7}"#,
        ),
        (
            ClientEvent::Failed(ErrorCode::TokenExpired),
            r#"{"type":"failed","code":"token_expired"}"#,
        ),
        (
            ClientEvent::NeedsNewToken(ErrorCode::NeedsReenroll),
            r#"{"type":"needs_new_token","code":"needs_reenroll"}"#,
        ),
        (ClientEvent::QueueFull, r#"{"type":"queue_full"}"#),
        (
            ClientEvent::EventsDropped {
                reason: "expired".into(),
                count: 3,
            },
            r#"{"type":"events_dropped","reason":"expired","count":3}"#,
        ),
        (
            ClientEvent::CredentialRotated,
            r#"{"type":"credential_rotated"}"#,
        ),
    ];
    for (ev, json) in cases {
        assert_eq!(ev.to_json(), json);
        assert_eq!(serde_json::to_string(&ev).unwrap(), json);
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["type"], ev.type_name());
    }
}

#[test]
fn log_records_cover_requests_answers_backoff_refusals_and_flow() {
    let mut w = World::new();
    let mut c = client("logs");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    let l = logs(&mut c);
    let has = |l: &[LogRecord], level: LogLevel, text: &str| {
        l.iter()
            .any(|r| r.level == level && r.message.contains(text))
    };
    assert!(has(&l, LogLevel::Debug, "POST /v1/redeem"), "{l:?}");
    assert!(has(&l, LogLevel::Debug, "200 to /v1/handshake"), "{l:?}");
    assert!(has(&l, LogLevel::Info, "flow is now open"), "{l:?}");

    // A lost answer: backoff at info, with the delay and the code.
    c.submit(ev(1, now), now).unwrap();
    c.flush();
    let req = c.poll_request(now).unwrap();
    c.handle_transport_error(req.id, "connection reset by proxy user:secret", now);
    let l = logs(&mut c);
    assert!(has(&l, LogLevel::Info, "after transport"), "{l:?}");
    assert!(
        l.iter().all(|r| !r.message.contains("secret")),
        "the transport's text is not logged: {l:?}"
    );

    // A refusal: warn with path and code.
    c.handshake_now();
    let req = c.poll_request(now).unwrap();
    assert!(req.url.ends_with("/v1/handshake"));
    let mut resp = problem(&Error::new(ErrorCode::WrongRegion, "another region"), None);
    // Its Date header shows the service's clock 100 s ahead: re-learned.
    resp.headers
        .push(("date".into(), format_http_date(now + 100)));
    c.handle_response(req.id, &resp, now);
    let l = logs(&mut c);
    assert!(
        has(&l, LogLevel::Debug, "clock offset to the service: 100 s"),
        "{l:?}"
    );
    assert!(
        has(&l, LogLevel::Warn, "refused: wrong_region (HTTP 421)"),
        "{l:?}"
    );
}

#[test]
fn the_log_queue_is_bounded_and_keeps_the_newest() {
    let mut w = World::new();
    let mut c = client("bounded");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    c.submit(ev(1, now), now).unwrap();
    c.flush();
    for _ in 0..300 {
        let Some(req) = c.poll_request(now) else {
            now = c.poll_timeout(now).unwrap_or(now + 1).max(now + 1);
            continue;
        };
        c.handle_transport_error(req.id, "down", now);
    }
    let l = logs(&mut c);
    assert_eq!(l.len(), LOG_QUEUE_LEN);
    assert!(l.last().unwrap().message.contains("backing off"), "{l:?}");
    assert!(c.poll_log().is_none());
}

#[test]
fn no_log_record_holds_a_secret() {
    let mut w = World::new();
    let mut now = NOW;
    let mut all: Vec<LogRecord> = vec![];
    let mut secrets: Vec<String> = vec![];

    // Token enrollment, a refused token, delivery, a rotation, an opt-out.
    let mut c = client("secrets");
    let bad = w.token(3600, 10, now);
    w.store.tokens.get_mut(&jti_of(&bad)).unwrap().revoked = true;
    secrets.push(bad.clone());
    assert!(run(
        &mut w,
        &mut c,
        Operation::Enroll { token: &bad },
        &mut now,
        30,
        &mut pass
    )
    .is_err());
    let tok = w.token(3600, 10, now);
    secrets.push(tok.clone());
    run(
        &mut w,
        &mut c,
        Operation::Enroll { token: &tok },
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    let note_cred = |c: &PartnerClient, secrets: &mut Vec<String>| {
        let cred = c.credential().unwrap();
        secrets.push(cred.to_json().to_string());
        secrets.push(b64url(cred.signing_key().unwrap().seed()));
    };
    note_cred(&c, &mut secrets);
    for i in 0..5 {
        c.submit(ev(i, now), now).unwrap();
    }
    let mut flaky = {
        let mut n = 0;
        move |req: &HttpRequest| {
            n += 1;
            (req.url.ends_with("/v1/ingest") && n == 1).then(|| {
                problem(
                    &Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(2),
                    None,
                )
            })
        }
    };
    run(&mut w, &mut c, Operation::Flush, &mut now, 30, &mut flaky).unwrap();
    run(&mut w, &mut c, Operation::Rotate, &mut now, 30, &mut pass).unwrap();
    note_cred(&c, &mut secrets);
    run(
        &mut w,
        &mut c,
        Operation::Offboard { reason: "test" },
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    all.extend(logs(&mut c));

    // Package enrollment: the workspace key and the device key.
    let pkg = downlevel_package(&mut w, "ws-secrets");
    secrets.push(pkg.workspace_key.clone());
    secrets.push(pkg.to_json().to_string());
    let mut d = client("secrets-downlevel");
    let h = d
        .start(
            Operation::EnrollWithPackage {
                package_json: &pkg.to_json(),
            },
            now,
        )
        .unwrap();
    secrets.push(d.pending_registration().unwrap().1.to_string());
    while let Some(req) = d.poll_request(now) {
        let resp = w.handle(&req, now);
        d.handle_response(req.id, &resp, now);
    }
    assert!(matches!(d.op_status(&h, now), OpStatus::Done(_)));
    secrets.push(d.credential().unwrap().to_json().to_string());
    d.submit(ev(1, now), now).unwrap();
    run(&mut w, &mut d, Operation::Flush, &mut now, 30, &mut pass).unwrap();
    all.extend(logs(&mut d));

    assert!(all.len() > 20, "the story was logged: {all:?}");
    for level in [LogLevel::Debug, LogLevel::Info, LogLevel::Warn] {
        assert!(all.iter().any(|r| r.level == level), "{level}: {all:?}");
    }
    for r in &all {
        for s in &secrets {
            assert!(!r.message.contains(s.as_str()), "{r:?} holds a secret");
        }
        // No fragment of a secret either (a prefix of a token or key).
        for s in &secrets {
            let frag = &s[..s.len().min(16)];
            assert!(!r.message.contains(frag), "{r:?} holds part of a secret");
        }
    }
}

fn jti_of(token: &str) -> String {
    edrlink_core::token::inspect_at(token, NOW)
        .unwrap()
        .claims
        .jti
}

#[test]
fn a_rotation_while_blocked_fails_at_once_with_the_reason() {
    let mut w = World::new();
    let mut c = client("rotate-blocked");
    let mut now = NOW;
    enroll(&mut w, &mut c, &mut now);
    w.set_enabled(false);
    assert_eq!(
        run(
            &mut w,
            &mut c,
            Operation::Handshake,
            &mut now,
            30,
            &mut pass
        )
        .unwrap(),
        OpOutcome::Flow(FlowState::Blocked)
    );
    let start = now;
    let e = run(&mut w, &mut c, Operation::Rotate, &mut now, 600, &mut pass).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FlowBlocked);
    assert_eq!(now, start, "no wait for the blocked re-check");
}

#[test]
fn a_new_package_clears_needs_new_token_for_a_downlevel_agent() {
    let mut w = World::new();
    let mut c = client("downlevel-renew");
    let mut now = NOW;
    let pkg = downlevel_package(&mut w, "ws-old");
    run(
        &mut w,
        &mut c,
        Operation::EnrollWithPackage {
            package_json: &pkg.to_json(),
        },
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    // Turned off and on: the old workspace's epoch is over.
    w.set_enabled(false);
    w.set_enabled(true);
    c.submit(ev(1, now), now).unwrap();
    let e = run(&mut w, &mut c, Operation::Flush, &mut now, 30, &mut pass).unwrap_err();
    assert!(c.health(now).needs_new_token, "{e}");
    // A package of the new epoch onboards again, and the held event goes out.
    let pkg = downlevel_package(&mut w, "ws-new");
    run(
        &mut w,
        &mut c,
        Operation::EnrollWithPackage {
            package_json: &pkg.to_json(),
        },
        &mut now,
        30,
        &mut pass,
    )
    .unwrap();
    assert!(!c.health(now).needs_new_token);
    let out = run(&mut w, &mut c, Operation::Flush, &mut now, 30, &mut pass).unwrap();
    assert_eq!(
        out,
        OpOutcome::Flushed(FlushOutcome {
            delivered: 2,
            queued: 0
        }),
        "the held event and a heartbeat: {:?}",
        c.health(now)
    );
}
