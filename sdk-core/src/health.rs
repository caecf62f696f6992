//! Health, seen from both sides: the partner's report (what `edrlink health`
//! prints) and the portal's classification of an installation.

use crate::encoding::UnixSeconds;
use crate::handshake::FlowState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Partner-side health report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HealthReport {
    /// Onboarded, flow open, no recent error.
    pub healthy: bool,
    /// Holds a valid credential ("licensed" in agent parlance).
    pub onboarded: bool,
    /// Installation id, when onboarded.
    pub installation_id: Option<String>,
    /// Last flow decision (`None` before the first handshake).
    pub flow: Option<FlowState>,
    /// The endpoint needs a new access token (revoked, offboarded, repeated 401s).
    pub needs_new_token: bool,
    /// Last successful handshake (local time).
    pub last_handshake: Option<UnixSeconds>,
    /// Last acknowledged send (local time).
    pub last_send: Option<UnixSeconds>,
    /// Events waiting to be sent.
    pub queued_events: u64,
    /// Bytes waiting to be sent.
    pub queued_bytes: u64,
    /// Age of the oldest queued event, seconds.
    pub oldest_queued_age: Option<i64>,
    /// Events acknowledged by the service since start.
    pub sent_events: u64,
    /// Events dropped, by `reason/category`.
    pub drops: BTreeMap<String, u64>,
    /// Service clock minus local clock, seconds.
    pub clock_offset: i64,
    /// The last error, typed (code, number, HTTP status, `retry_after`,
    /// detail). A refusal stays here until an operation succeeds: backoff
    /// never replaces it with a generic code.
    pub last_error: Option<crate::error::ErrorInfo>,
    /// Next retry (local time), when backing off.
    pub next_attempt: Option<UnixSeconds>,
}

/// The portal's health classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum HealthClass {
    /// Revoked by the admin: refused on every partner route until reinstated.
    /// Ranked first: it overrides every other class.
    Revoked,
    /// Sending data, sensor running.
    Healthy,
    /// No data within the period.
    Inactive,
    /// The sensor service is not running ("Agent state").
    #[serde(rename = "Agent state")]
    AgentState,
    /// Never completed onboarding, or offboarded.
    #[serde(rename = "Not onboarded")]
    NotOnboarded,
}

impl HealthClass {
    /// Display name as the portal shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthClass::Revoked => "Revoked",
            HealthClass::Healthy => "Healthy",
            HealthClass::Inactive => "Inactive",
            HealthClass::AgentState => "Agent state",
            HealthClass::NotOnboarded => "Not onboarded",
        }
    }
}

/// Default inactivity period: 7 days without data.
pub const INACTIVE_AFTER: i64 = 7 * 86_400;

/// What the service knows about an installation, for classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Redeemed and not offboarded.
    pub onboarded: bool,
    /// Revoked by the admin.
    pub revoked: bool,
    /// Last time data (hello, batch) arrived.
    pub last_seen: Option<UnixSeconds>,
    /// The sensor state last reported.
    pub sensor_running: bool,
}

/// Classifies an installation at `now` with an inactivity `period`.
pub fn classify(a: Activity, now: UnixSeconds, period: i64) -> HealthClass {
    match a.last_seen {
        _ if a.revoked => HealthClass::Revoked,
        _ if !a.onboarded => HealthClass::NotOnboarded,
        None => HealthClass::NotOnboarded,
        Some(t) if now - t > period => HealthClass::Inactive,
        Some(_) if !a.sensor_running => HealthClass::AgentState,
        Some(_) => HealthClass::Healthy,
    }
}

/// Deployment coverage: onboarded count over all known devices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Installations onboarded (not offboarded).
    pub onboarded: u64,
    /// All installations known.
    pub total: u64,
    /// Percentage onboarded (0 when none known).
    pub percent: f64,
}

impl Coverage {
    /// Computes coverage.
    pub fn new(onboarded: u64, total: u64) -> Self {
        let percent = if total == 0 {
            0.0
        } else {
            (onboarded as f64 * 1000.0 / total as f64).round() / 10.0
        };
        Coverage {
            onboarded,
            total,
            percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let on = |last, run| Activity {
            onboarded: true,
            revoked: false,
            last_seen: last,
            sensor_running: run,
        };
        assert_eq!(
            classify(on(Some(100), true), 200, 1000),
            HealthClass::Healthy
        );
        assert_eq!(
            classify(on(Some(100), false), 200, 1000),
            HealthClass::AgentState
        );
        assert_eq!(
            classify(on(Some(100), true), 2000, 1000),
            HealthClass::Inactive
        );
        assert_eq!(
            classify(on(None, true), 200, 1000),
            HealthClass::NotOnboarded
        );
        assert_eq!(
            classify(
                Activity {
                    onboarded: false,
                    revoked: false,
                    last_seen: Some(100),
                    sensor_running: true
                },
                200,
                1000
            ),
            HealthClass::NotOnboarded
        );
        // Revoked ranks first, over every other class.
        for onboarded in [true, false] {
            assert_eq!(
                classify(
                    Activity {
                        onboarded,
                        revoked: true,
                        last_seen: Some(100),
                        sensor_running: true
                    },
                    200,
                    1000
                ),
                HealthClass::Revoked
            );
        }
        assert_eq!(
            serde_json::to_string(&HealthClass::AgentState).unwrap(),
            "\"Agent state\""
        );
        assert_eq!(Coverage::new(1, 3).percent, 33.3);
        assert_eq!(Coverage::new(0, 0).percent, 0.0);
    }
}
