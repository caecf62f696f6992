//! The collection policy the service hands out (inside signed redemption and
//! flow-decision messages), and the partner-side rule that a policy never
//! rolls back.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// Whether file samples may be uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FileSampleSharing {
    /// Never upload samples (the default).
    #[default]
    None,
    /// Upload samples of detected files.
    All,
}

/// Collection policy. Travels only inside service-signed messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Monotonic version; the partner rejects a lower one.
    pub policy_version: u64,
    /// File-sample sharing.
    pub file_samples: FileSampleSharing,
    /// Largest batch payload in bytes (as sent, i.e. after compression).
    pub max_batch_bytes: u64,
    /// Most events in one batch.
    pub max_batch_events: u32,
    /// Seconds between heartbeats.
    pub heartbeat_interval: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            policy_version: 1,
            file_samples: FileSampleSharing::None,
            max_batch_bytes: 1024 * 1024,
            max_batch_events: 1000,
            heartbeat_interval: 300,
        }
    }
}

impl Policy {
    /// Applies `offered` over `self` unless it is a rollback; returns whether it
    /// changed. A rollback is refused and the last good policy is kept.
    pub fn accept_update(&mut self, offered: &Policy) -> Result<bool> {
        if offered.policy_version < self.policy_version {
            return Err(Error::new(
                ErrorCode::PolicyRollback,
                format!(
                    "policy version {} is older than {}",
                    offered.policy_version, self.policy_version
                ),
            ));
        }
        if offered.max_batch_bytes == 0
            || offered.max_batch_events == 0
            || offered.heartbeat_interval == 0
        {
            return Err(Error::malformed("policy limits must be positive"));
        }
        let changed = offered != self;
        *self = offered.clone();
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_is_refused_and_last_good_kept() {
        let mut p = Policy {
            policy_version: 5,
            ..Policy::default()
        };
        let old = Policy {
            policy_version: 4,
            file_samples: FileSampleSharing::All,
            ..Policy::default()
        };
        assert_eq!(
            p.accept_update(&old).unwrap_err().code(),
            ErrorCode::PolicyRollback
        );
        assert_eq!(p.policy_version, 5);
        assert_eq!(p.file_samples, FileSampleSharing::None);
        let newer = Policy {
            policy_version: 6,
            file_samples: FileSampleSharing::All,
            ..Policy::default()
        };
        assert!(p.accept_update(&newer).unwrap());
        assert!(!p.accept_update(&newer).unwrap());
    }
}
