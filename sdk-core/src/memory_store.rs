//! An in-memory [`ServiceStore`], for tests and for embedding the service role
//! where durability is not wanted (the reference service uses SQLite).

use crate::encoding::UnixSeconds;
use crate::error::Result;
use crate::service::{
    Alert, BatchRecord, Installation, Integration, ServiceStore, Session, TokenRecord, Workspace,
};
use std::collections::{HashMap, HashSet};

/// In-memory state. Fields are public so tests can arrange and inspect.
#[derive(Default)]
pub struct MemoryStore {
    /// Tenant regions.
    pub tenants: HashMap<String, String>,
    /// Integrations by (tenant, partner).
    pub integrations: HashMap<(String, String), Integration>,
    /// Tokens by jti.
    pub tokens: HashMap<String, TokenRecord>,
    /// Nonces and their expiry.
    pub nonces: HashMap<String, UnixSeconds>,
    /// Installations by id.
    pub installations: HashMap<String, Installation>,
    /// Sessions by id.
    pub sessions: HashMap<String, Session>,
    /// Stored batches by (installation, batch id).
    pub batches: HashMap<(String, String), BatchRecord>,
    /// Alerts in arrival order.
    pub alerts: Vec<(String, Alert)>,
    /// Workspaces by id.
    pub workspaces: HashMap<String, Workspace>,
    /// Down-level device keys by installation id.
    pub device_keys: HashMap<String, crate::downlevel::DeviceKey>,
    /// Redemptions counted, as (token `jti`, installation id).
    pub token_uses: HashSet<(String, String)>,
    /// Session ids in creation order (to drop the oldest first).
    pub session_order: Vec<String>,
}

impl MemoryStore {
    /// Events stored for an installation, in sequence order.
    pub fn events_of(&self, installation_id: &str) -> Vec<crate::telemetry::Event> {
        let mut bs: Vec<&BatchRecord> = self
            .batches
            .values()
            .filter(|b| b.installation_id == installation_id)
            .collect();
        bs.sort_by_key(|b| b.seq);
        bs.into_iter()
            .flat_map(|b| {
                b.events()
                    .expect("stored events are the JSON the service made")
            })
            .collect()
    }
}

impl ServiceStore for MemoryStore {
    fn tenant_region(&mut self, tenant_id: &str) -> Result<Option<String>> {
        Ok(self.tenants.get(tenant_id).cloned())
    }
    fn integration(&mut self, tenant_id: &str, partner_id: &str) -> Result<Option<Integration>> {
        Ok(self
            .integrations
            .get(&(tenant_id.to_owned(), partner_id.to_owned()))
            .cloned())
    }
    fn put_integration(&mut self, integ: &Integration, _now: UnixSeconds) -> Result<()> {
        self.integrations.insert(
            (integ.tenant_id.clone(), integ.partner_id.clone()),
            integ.clone(),
        );
        Ok(())
    }
    fn token(&mut self, jti: &str) -> Result<Option<TokenRecord>> {
        Ok(self.tokens.get(jti).cloned())
    }
    fn put_token(&mut self, rec: &TokenRecord, _now: UnixSeconds) -> Result<()> {
        self.tokens.insert(rec.jti.clone(), rec.clone());
        Ok(())
    }
    fn token_used_by(&mut self, jti: &str, installation_id: &str) -> Result<bool> {
        Ok(self
            .token_uses
            .contains(&(jti.to_owned(), installation_id.to_owned())))
    }
    fn add_token_use(&mut self, jti: &str, installation_id: &str) -> Result<()> {
        if self
            .token_uses
            .insert((jti.to_owned(), installation_id.to_owned()))
        {
            if let Some(t) = self.tokens.get_mut(jti) {
                t.uses = t.uses.saturating_add(1);
            }
        }
        Ok(())
    }
    fn nonce_fresh(
        &mut self,
        nonce: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.nonces.retain(|_, exp| *exp >= now);
        Ok(self.nonces.insert(nonce.to_owned(), expires_at).is_none())
    }
    fn installation(&mut self, id: &str) -> Result<Option<Installation>> {
        Ok(self.installations.get(id).cloned())
    }
    fn installation_by_key(&mut self, key_id: &str) -> Result<Option<Installation>> {
        Ok(self
            .installations
            .values()
            .find(|i| i.public_key.is_some_and(|k| k.key_id() == key_id))
            .cloned())
    }
    fn installation_by_enrollment(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        enrollment_id: &str,
    ) -> Result<Option<Installation>> {
        Ok(self
            .installations
            .values()
            .find(|i| {
                i.tenant_id == tenant_id
                    && i.partner_id == partner_id
                    && i.enrollment_id == enrollment_id
            })
            .cloned())
    }
    fn installations_by_device(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        device_id: &str,
    ) -> Result<Vec<Installation>> {
        Ok(self
            .installations
            .values()
            .filter(|i| {
                i.tenant_id == tenant_id
                    && i.partner_id == partner_id
                    && i.device.device_id == device_id
            })
            .cloned()
            .collect())
    }
    fn put_installation(&mut self, inst: &Installation) -> Result<()> {
        self.installations.insert(inst.id.clone(), inst.clone());
        Ok(())
    }
    fn session(&mut self, id: &str) -> Result<Option<Session>> {
        Ok(self.sessions.get(id).cloned())
    }
    fn put_session(&mut self, s: &Session, keep: usize) -> Result<()> {
        self.sessions.insert(s.id.clone(), s.clone());
        self.session_order.retain(|id| id != &s.id);
        self.session_order.push(s.id.clone());
        let sessions = &self.sessions;
        let mine: Vec<String> = self
            .session_order
            .iter()
            .filter(|id| {
                sessions
                    .get(*id)
                    .is_some_and(|x| x.installation_id == s.installation_id)
            })
            .cloned()
            .collect();
        for old in &mine[..mine.len().saturating_sub(keep)] {
            self.sessions.remove(old);
        }
        let sessions = &self.sessions;
        self.session_order.retain(|id| sessions.contains_key(id));
        Ok(())
    }
    fn drop_sessions(&mut self, installation_id: &str) -> Result<()> {
        self.sessions
            .retain(|_, s| s.installation_id != installation_id);
        let sessions = &self.sessions;
        self.session_order.retain(|id| sessions.contains_key(id));
        Ok(())
    }
    fn batch_seq(&mut self, installation_id: &str, batch_id: &str) -> Result<Option<u64>> {
        Ok(self
            .batches
            .get(&(installation_id.to_owned(), batch_id.to_owned()))
            .map(|b| b.seq))
    }
    fn store_batch(
        &mut self,
        inst: &Installation,
        batch: &BatchRecord,
        _now: UnixSeconds,
    ) -> Result<()> {
        self.installations.insert(inst.id.clone(), inst.clone());
        self.batches
            .insert((inst.id.clone(), batch.batch_id.clone()), batch.clone());
        self.alerts
            .extend(batch.alerts.iter().map(|a| (inst.id.clone(), a.clone())));
        Ok(())
    }
    fn workspace(&mut self, id: &str) -> Result<Option<Workspace>> {
        Ok(self.workspaces.get(id).cloned())
    }
    fn device_key(&mut self, installation_id: &str) -> Result<Option<crate::downlevel::DeviceKey>> {
        Ok(self.device_keys.get(installation_id).cloned())
    }
    fn put_device_key(
        &mut self,
        installation_id: &str,
        key: &crate::downlevel::DeviceKey,
    ) -> Result<()> {
        self.device_keys
            .insert(installation_id.to_owned(), key.clone());
        Ok(())
    }
}
