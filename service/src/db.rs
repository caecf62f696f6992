//! SQLite storage: schema migrations, the [`ServiceStore`] implementation the
//! partner API runs on (one savepoint per request inside a group's
//! transaction, see `pipeline.rs`), and the portal queries.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed transaction
//! (and therefore every acknowledged batch) survives power loss, not only a
//! process crash.

use edrlink_core::downlevel::DeviceKey;
use edrlink_core::encoding::UnixSeconds;
use edrlink_core::error::{Error, ErrorCode, Result};
use edrlink_core::keys::VerifyingKey;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::service::{
    Alert, BatchRecord, Installation, Integration, ServiceStore, Session, TokenRecord, Workspace,
};
use edrlink_core::telemetry::Severity;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::path::Path;
use zeroize::Zeroizing;

/// Versioned schema: entry `i` migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1
    r#"
    CREATE TABLE signing_keys (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        seed BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tenants (
        tenant_id TEXT PRIMARY KEY,
        region TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE integrations (
        tenant_id TEXT NOT NULL REFERENCES tenants(tenant_id),
        partner_id TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, partner_id)
    );
    CREATE TABLE tokens (
        jti TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        exp INTEGER NOT NULL,
        max_uses INTEGER NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0,
        revoked INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE nonces (
        nonce TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX nonces_expiry ON nonces(expires_at);
    CREATE TABLE installations (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        enrollment_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        device_json TEXT NOT NULL,
        public_key BLOB,
        key_id TEXT,
        workspace_id TEXT,
        epoch INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        credential_exp INTEGER NOT NULL,
        last_seen INTEGER,
        sensor_running INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        missing_seq INTEGER NOT NULL,
        reported_drops INTEGER NOT NULL,
        offboarded INTEGER NOT NULL,
        possible_clone_of TEXT
    );
    CREATE INDEX installations_key ON installations(key_id);
    CREATE INDEX installations_enrollment ON installations(tenant_id, partner_id, enrollment_id);
    CREATE INDEX installations_device ON installations(tenant_id, partner_id, device_id);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        installation_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_expiry ON sessions(expires_at);
    CREATE TABLE batches (
        installation_id TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_count INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        events_json BLOB NOT NULL,
        PRIMARY KEY (installation_id, batch_id)
    );
    CREATE INDEX batches_tenant ON batches(tenant_id);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL,
        installation_id TEXT NOT NULL,
        title TEXT NOT NULL,
        severity TEXT NOT NULL,
        threat_name TEXT NOT NULL,
        file_path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        url TEXT,
        test INTEGER NOT NULL,
        time TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX alerts_tenant ON alerts(tenant_id, id);
    CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        key BLOB NOT NULL,
        epoch INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE offboarding_packages (
        jti TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        installation_ids TEXT,
        exp INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // v2: per-installation revocation, redemption counting per (token,
    // installation), session bound per installation, package epochs.
    r#"
    ALTER TABLE installations ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE token_uses (
        jti TEXT NOT NULL,
        installation_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (jti, installation_id)
    );
    CREATE INDEX sessions_installation ON sessions(installation_id, expires_at);
    ALTER TABLE offboarding_packages ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
    "#,
    // v3: down-level per-device secrets; workspace key expiry and revocation.
    r#"
    ALTER TABLE installations ADD COLUMN device_key BLOB;
    ALTER TABLE workspaces ADD COLUMN expires_at INTEGER;
    ALTER TABLE workspaces ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
    "#,
];

/// Current schema version.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A database failure as callers see it: a generic message (the text names
/// tables and columns, which is no business of an unauthenticated caller).
/// The detail goes to the server log; rusqlite messages name tables and
/// constraints, never bound values, so no secret reaches the log.
pub(crate) fn storage(e: rusqlite::Error) -> Error {
    tracing::error!(error = %e, "database error");
    Error::new(
        ErrorCode::Storage,
        "database error (details in the service log)",
    )
}

/// Creates the database file (and its `-wal`/`-shm` companions, if present)
/// readable by the owner only: it holds the service signing seeds and the
/// down-level workspace keys. SQLite creates `-wal`/`-shm` with the main
/// file's mode; existing files are tightened too.
#[cfg(unix)]
fn restrict_files(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", p.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut f = p.as_os_str().to_owned();
        f.push(suffix);
        let f = std::path::PathBuf::from(f);
        if f.exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| anyhow::anyhow!("restricting {}: {e}", f.display()))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_files(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Opens (creating if needed) the database and applies pending migrations.
pub fn open(path: Option<&Path>) -> anyhow::Result<Connection> {
    let mut conn = match path {
        Some(p) => {
            restrict_files(p)?;
            Connection::open(p)?
        }
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // journal_mode returns a row; in-memory databases answer "memory".
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM migrations",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        anyhow::bail!(
            "database schema version {current} is newer than this build ({SCHEMA_VERSION})"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO migrations (version, applied_at) VALUES (?1, ?2)",
            params![i as i64 + 1, crate::unix_now()],
        )?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    tx.commit()?;
    Ok(())
}

/// Signing key seeds, current first (at most `keep`). With `wanted`, that seed
/// becomes current (inserted if it differs from the stored current one); with
/// none stored, `generate` supplies the first.
pub fn signing_seeds(
    conn: &mut Connection,
    wanted: Option<[u8; 32]>,
    generate: impl FnOnce() -> anyhow::Result<Zeroizing<[u8; 32]>>,
    keep: usize,
) -> anyhow::Result<Vec<Zeroizing<[u8; 32]>>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let load = |tx: &Transaction| -> anyhow::Result<Vec<Zeroizing<[u8; 32]>>> {
        let mut st = tx.prepare("SELECT seed FROM signing_keys ORDER BY seq DESC")?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            let v = Zeroizing::new(r?);
            let arr: [u8; 32] = v
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("stored signing key has a bad length"))?;
            out.push(Zeroizing::new(arr));
        }
        Ok(out)
    };
    let mut seeds = load(&tx)?;
    let insert = match (&wanted, seeds.first()) {
        (Some(w), Some(cur)) => (w != &**cur).then(|| Zeroizing::new(*w)),
        (Some(w), None) => Some(Zeroizing::new(*w)),
        (None, None) => Some(generate()?),
        (None, Some(_)) => None,
    };
    if let Some(seed) = insert {
        tx.execute(
            "INSERT INTO signing_keys (seed, created_at) VALUES (?1, ?2)",
            params![&seed[..], crate::unix_now()],
        )?;
        seeds = load(&tx)?;
    }
    // Retired seeds (beyond the overlap window) are deleted, not kept: a
    // stolen database must not yield keys the service no longer uses.
    let keep = keep.max(1);
    if seeds.len() > keep {
        tx.execute(
            "DELETE FROM signing_keys WHERE seq NOT IN (SELECT seq FROM signing_keys ORDER BY seq DESC LIMIT ?1)",
            [keep as i64],
        )?;
    }
    tx.commit()?;
    seeds.truncate(keep);
    Ok(seeds)
}

/// The [`ServiceStore`] over one open transaction.
pub struct SqliteStore<'a> {
    /// The transaction every call runs in.
    pub tx: &'a Transaction<'a>,
}

const INSTALLATION_COLS: &str = "id, tenant_id, partner_id, enrollment_id, device_json, public_key, workspace_id, epoch, created_at, credential_exp, last_seen, sensor_running, last_seq, missing_seq, reported_drops, offboarded, possible_clone_of, revoked";

fn installation_from_row(r: &Row) -> rusqlite::Result<Installation> {
    let device_json: String = r.get(4)?;
    let device: DeviceFacts = serde_json::from_str(&device_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let pk: Option<Vec<u8>> = r.get(5)?;
    let public_key = match pk {
        Some(b) => Some(VerifyingKey::from_bytes(&b).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Blob, Box::new(e))
        })?),
        None => None,
    };
    Ok(Installation {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        partner_id: r.get(2)?,
        enrollment_id: r.get(3)?,
        device,
        public_key,
        workspace_id: r.get(6)?,
        epoch: r.get::<_, i64>(7)? as u64,
        created_at: r.get(8)?,
        credential_exp: r.get(9)?,
        last_seen: r.get(10)?,
        sensor_running: r.get(11)?,
        last_seq: r.get::<_, i64>(12)? as u64,
        missing_seq: r.get::<_, i64>(13)? as u64,
        reported_drops: r.get::<_, i64>(14)? as u64,
        offboarded: r.get(15)?,
        possible_clone_of: r.get(16)?,
        revoked: r.get(17)?,
    })
}

fn token_from_row(r: &Row) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        jti: r.get(0)?,
        tenant_id: r.get(1)?,
        partner_id: r.get(2)?,
        epoch: r.get::<_, i64>(3)? as u64,
        exp: r.get(4)?,
        max_uses: r.get::<_, i64>(5)? as u32,
        uses: r.get::<_, i64>(6)? as u32,
        revoked: r.get(7)?,
    })
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Informational => "informational",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

impl SqliteStore<'_> {
    fn installations_where(
        &self,
        clause: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Installation>> {
        let mut st = self
            .tx
            .prepare_cached(&format!(
                "SELECT {INSTALLATION_COLS} FROM installations WHERE {clause}"
            ))
            .map_err(storage)?;
        let rows = st.query_map(p, installation_from_row).map_err(storage)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(storage)
    }

    fn put_installation_inner(&self, i: &Installation) -> Result<()> {
        let device_json = serde_json::to_string(&i.device)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO installations (id, tenant_id, partner_id, enrollment_id, device_id, device_json, public_key, key_id, workspace_id, epoch, created_at, credential_exp, last_seen, sensor_running, last_seq, missing_seq, reported_drops, offboarded, possible_clone_of, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
                 ON CONFLICT(id) DO UPDATE SET tenant_id=excluded.tenant_id, partner_id=excluded.partner_id, enrollment_id=excluded.enrollment_id,
                   device_id=excluded.device_id, device_json=excluded.device_json, public_key=excluded.public_key, key_id=excluded.key_id,
                   workspace_id=excluded.workspace_id, epoch=excluded.epoch, created_at=excluded.created_at, credential_exp=excluded.credential_exp,
                   last_seen=excluded.last_seen, sensor_running=excluded.sensor_running, last_seq=excluded.last_seq, missing_seq=excluded.missing_seq,
                   reported_drops=excluded.reported_drops, offboarded=excluded.offboarded, possible_clone_of=excluded.possible_clone_of,
                   revoked=excluded.revoked",
            )
            .map_err(storage)?;
        st.execute(params![
            i.id,
            i.tenant_id,
            i.partner_id,
            i.enrollment_id,
            i.device.device_id,
            device_json,
            i.public_key.map(|k| k.as_bytes().to_vec()),
            i.public_key.map(|k| k.key_id()),
            i.workspace_id,
            i.epoch as i64,
            i.created_at,
            i.credential_exp,
            i.last_seen,
            i.sensor_running,
            i.last_seq as i64,
            i.missing_seq as i64,
            i.reported_drops as i64,
            i.offboarded,
            i.possible_clone_of,
            i.revoked,
        ])
        .map_err(storage)?;
        Ok(())
    }
}

impl ServiceStore for SqliteStore<'_> {
    fn tenant_region(&mut self, tenant_id: &str) -> Result<Option<String>> {
        self.tx
            .prepare_cached("SELECT region FROM tenants WHERE tenant_id = ?1")
            .and_then(|mut s| s.query_row([tenant_id], |r| r.get(0)).optional())
            .map_err(storage)
    }

    fn integration(&mut self, tenant_id: &str, partner_id: &str) -> Result<Option<Integration>> {
        self.tx
            .prepare_cached(
                "SELECT enabled, epoch FROM integrations WHERE tenant_id = ?1 AND partner_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row([tenant_id, partner_id], |r| {
                    Ok(Integration {
                        tenant_id: tenant_id.into(),
                        partner_id: partner_id.into(),
                        enabled: r.get(0)?,
                        epoch: r.get::<_, i64>(1)? as u64,
                    })
                })
                .optional()
            })
            .map_err(storage)
    }

    fn put_integration(&mut self, i: &Integration, now: UnixSeconds) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO integrations (tenant_id, partner_id, enabled, epoch, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(tenant_id, partner_id) DO UPDATE SET enabled = excluded.enabled, epoch = excluded.epoch, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![i.tenant_id, i.partner_id, i.enabled, i.epoch as i64, now]))
            .map(|_| ())
            .map_err(storage)
    }

    fn put_token(&mut self, t: &TokenRecord, now: UnixSeconds) -> Result<()> {
        insert_token(self.tx, t, now).map_err(storage)
    }

    fn token(&mut self, jti: &str) -> Result<Option<TokenRecord>> {
        self.tx
            .prepare_cached("SELECT jti, tenant_id, partner_id, epoch, exp, max_uses, uses, revoked FROM tokens WHERE jti = ?1")
            .and_then(|mut s| s.query_row([jti], token_from_row).optional())
            .map_err(storage)
    }

    fn token_used_by(&mut self, jti: &str, installation_id: &str) -> Result<bool> {
        self.tx
            .prepare_cached("SELECT 1 FROM token_uses WHERE jti = ?1 AND installation_id = ?2")
            .and_then(|mut s| {
                s.query_row([jti, installation_id], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map(|o| o.is_some())
            .map_err(storage)
    }

    fn add_token_use(&mut self, jti: &str, installation_id: &str) -> Result<()> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO token_uses (jti, installation_id, created_at) VALUES (?1, ?2, strftime('%s','now'))",
            )
            .and_then(|mut s| s.execute([jti, installation_id]))
            .map_err(storage)?;
        if n == 1 {
            self.tx
                .prepare_cached("UPDATE tokens SET uses = uses + 1 WHERE jti = ?1")
                .and_then(|mut s| s.execute([jti]))
                .map_err(storage)?;
        }
        Ok(())
    }

    fn nonce_fresh(
        &mut self,
        nonce: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool> {
        self.tx
            .prepare_cached("DELETE FROM nonces WHERE expires_at < ?1")
            .and_then(|mut s| s.execute([now]))
            .map_err(storage)?;
        let n = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![nonce, expires_at]))
            .map_err(storage)?;
        Ok(n == 1)
    }

    fn installation(&mut self, id: &str) -> Result<Option<Installation>> {
        Ok(self.installations_where("id = ?1", &[&id])?.pop())
    }

    fn installation_by_key(&mut self, key_id: &str) -> Result<Option<Installation>> {
        Ok(self
            .installations_where("key_id = ?1 ORDER BY created_at DESC LIMIT 1", &[&key_id])?
            .pop())
    }

    fn installation_by_enrollment(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        enrollment_id: &str,
    ) -> Result<Option<Installation>> {
        Ok(self
            .installations_where(
                "tenant_id = ?1 AND partner_id = ?2 AND enrollment_id = ?3 LIMIT 1",
                &[&tenant_id, &partner_id, &enrollment_id],
            )?
            .pop())
    }

    fn installations_by_device(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        device_id: &str,
    ) -> Result<Vec<Installation>> {
        self.installations_where(
            "tenant_id = ?1 AND partner_id = ?2 AND device_id = ?3 ORDER BY created_at, id",
            &[&tenant_id, &partner_id, &device_id],
        )
    }

    fn put_installation(&mut self, inst: &Installation) -> Result<()> {
        self.put_installation_inner(inst)
    }

    fn session(&mut self, id: &str) -> Result<Option<Session>> {
        self.tx
            .prepare_cached("SELECT id, installation_id, expires_at FROM sessions WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(Session {
                        id: r.get(0)?,
                        installation_id: r.get(1)?,
                        expires_at: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(storage)
    }

    fn put_session(&mut self, s: &Session, keep: usize) -> Result<()> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO sessions (id, installation_id, expires_at) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![s.id, s.installation_id, s.expires_at]))
            .map_err(storage)?;
        // Newest first by expiry (sessions share one lifetime), then insertion.
        self.tx
            .prepare_cached(
                "DELETE FROM sessions WHERE installation_id = ?1 AND rowid NOT IN
                   (SELECT rowid FROM sessions WHERE installation_id = ?1 ORDER BY expires_at DESC, rowid DESC LIMIT ?2)",
            )
            .and_then(|mut st| st.execute(params![s.installation_id, keep as i64]))
            .map_err(storage)?;
        Ok(())
    }

    fn drop_sessions(&mut self, installation_id: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM sessions WHERE installation_id = ?1")
            .and_then(|mut st| st.execute([installation_id]))
            .map_err(storage)?;
        Ok(())
    }

    fn batch_seq(&mut self, installation_id: &str, batch_id: &str) -> Result<Option<u64>> {
        self.tx
            .prepare_cached("SELECT seq FROM batches WHERE installation_id = ?1 AND batch_id = ?2")
            .and_then(|mut s| {
                s.query_row([installation_id, batch_id], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map(|o| o.map(|v| v as u64))
            .map_err(storage)
    }

    fn store_batch(
        &mut self,
        inst: &Installation,
        batch: &BatchRecord,
        now: UnixSeconds,
    ) -> Result<()> {
        // Only the ingest state changes with a batch: a narrow UPDATE of
        // unindexed columns, not the full upsert (which rewrites the row and
        // its indexes and re-serializes the device facts) in the one writer.
        let updated = self
            .tx
            .prepare_cached(
                "UPDATE installations SET last_seen = ?2, sensor_running = ?3, last_seq = ?4, missing_seq = ?5 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    inst.id,
                    inst.last_seen,
                    inst.sensor_running,
                    inst.last_seq as i64,
                    inst.missing_seq as i64
                ])
            })
            .map_err(storage)?;
        if updated != 1 {
            return Err(Error::new(
                ErrorCode::Internal,
                "the installation of an accepted batch is gone",
            ));
        }
        self.tx
            .prepare_cached("INSERT INTO batches (installation_id, batch_id, tenant_id, seq, event_count, received_at, events_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .and_then(|mut s| s.execute(params![inst.id, batch.batch_id, inst.tenant_id, batch.seq as i64, batch.event_count as i64, now, batch.events_json]))
            .map_err(storage)?;
        for a in &batch.alerts {
            self.tx
                .prepare_cached(
                    "INSERT INTO alerts (tenant_id, installation_id, title, severity, threat_name, file_path, sha256, url, test, time, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .and_then(|mut s| s.execute(params![inst.tenant_id, inst.id, a.title, severity_name(a.severity), a.threat_name, a.file_path, a.sha256, a.url, a.test, a.time, now]))
                .map_err(storage)?;
        }
        Ok(())
    }

    fn workspace(&mut self, id: &str) -> Result<Option<Workspace>> {
        self.tx
            .prepare_cached(
                "SELECT id, tenant_id, partner_id, key, epoch, expires_at, revoked FROM workspaces WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(Workspace {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        partner_id: r.get(2)?,
                        key: Zeroizing::new(r.get(3)?),
                        epoch: r.get::<_, i64>(4)? as u64,
                        expires_at: r.get(5)?,
                        revoked: r.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(storage)
    }

    fn device_key(&mut self, installation_id: &str) -> Result<Option<DeviceKey>> {
        let raw: Option<Option<Zeroizing<Vec<u8>>>> = self
            .tx
            .prepare_cached("SELECT device_key FROM installations WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([installation_id], |r| {
                    Ok(r.get::<_, Option<Vec<u8>>>(0)?.map(Zeroizing::new))
                })
                .optional()
            })
            .map_err(storage)?;
        raw.flatten().map(|b| DeviceKey::from_bytes(&b)).transpose()
    }

    fn put_device_key(&mut self, installation_id: &str, key: &DeviceKey) -> Result<()> {
        // A separate statement from the installation upsert: the device key
        // is written once, at registration, and never by a later upsert.
        let n = self
            .tx
            .execute(
                "UPDATE installations SET device_key = ?2 WHERE id = ?1",
                params![installation_id, key.as_bytes()],
            )
            .map_err(storage)?;
        if n != 1 {
            return Err(Error::new(
                ErrorCode::Storage,
                "device key for an installation that is not stored",
            ));
        }
        Ok(())
    }
}

// ---- portal / admin queries ---------------------------------------------

/// Records a token issued by the admin.
fn insert_token(tx: &Transaction, t: &TokenRecord, now: UnixSeconds) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO tokens (jti, tenant_id, partner_id, epoch, exp, max_uses, uses, revoked, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![t.jti, t.tenant_id, t.partner_id, t.epoch as i64, t.exp, t.max_uses as i64, t.uses as i64, t.revoked, now],
    )?;
    Ok(())
}

/// Stores a down-level workspace.
pub fn insert_workspace(tx: &Transaction, w: &Workspace, now: UnixSeconds) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO workspaces (id, tenant_id, partner_id, key, epoch, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![w.id, w.tenant_id, w.partner_id, &w.key[..], w.epoch as i64, now],
    )?;
    tx.execute(
        "UPDATE workspaces SET expires_at = ?2, revoked = ?3 WHERE id = ?1",
        params![w.id, w.expires_at, w.revoked],
    )?;
    Ok(())
}

/// Revokes a workspace key (no more registrations with it; agents already
/// registered keep their device keys). Returns whether the workspace exists
/// for that tenant.
pub fn revoke_workspace(tx: &Transaction, tenant_id: &str, id: &str) -> rusqlite::Result<bool> {
    let n = tx.execute(
        "UPDATE workspaces SET revoked = 1 WHERE id = ?1 AND tenant_id = ?2",
        params![id, tenant_id],
    )?;
    Ok(n == 1)
}

/// Marks installations of a tenant revoked (`revoked = true`) or reinstated
/// (`false`, which also clears `offboarded`), dropping the sessions of
/// revoked ones at once. Returns the ids not found in the tenant (nothing is
/// changed then).
pub fn set_revoked(
    tx: &Transaction,
    tenant_id: &str,
    ids: &[String],
    revoked: bool,
) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for id in ids {
        let known: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM installations WHERE id = ?1 AND tenant_id = ?2")
            .and_then(|mut s| s.query_row([id, tenant_id], |r| r.get(0)).optional())
            .map_err(storage)?;
        if known.is_none() {
            missing.push(id.clone());
        }
    }
    if !missing.is_empty() {
        return Ok(missing);
    }
    for id in ids {
        let sql = if revoked {
            "UPDATE installations SET revoked = 1 WHERE id = ?1"
        } else {
            "UPDATE installations SET revoked = 0, offboarded = 0 WHERE id = ?1"
        };
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([id]))
            .map_err(storage)?;
        if revoked {
            SqliteStore { tx }.drop_sessions(id)?;
        }
    }
    Ok(missing)
}

/// Marks installations offboarded (the named ones, or every installation of
/// the tenant's partner integration) and drops their sessions; returns how
/// many were marked.
pub fn mark_offboarded(
    tx: &Transaction,
    tenant_id: &str,
    partner_id: &str,
    ids: Option<&[String]>,
) -> Result<usize> {
    let targets: Vec<String> = match ids {
        Some(ids) => ids.to_vec(),
        None => SqliteStore { tx }
            .installations_where(
                "tenant_id = ?1 AND partner_id = ?2",
                &[&tenant_id, &partner_id],
            )?
            .into_iter()
            .map(|i| i.id)
            .collect(),
    };
    for id in &targets {
        tx.prepare_cached(
            "UPDATE installations SET offboarded = 1 WHERE id = ?1 AND tenant_id = ?2 AND partner_id = ?3",
        )
        .and_then(|mut s| s.execute([id, tenant_id, partner_id]))
        .map_err(storage)?;
        SqliteStore { tx }.drop_sessions(id)?;
    }
    Ok(targets.len())
}

/// All installations of a tenant.
pub fn installations_of(tx: &Transaction, tenant_id: &str) -> Result<Vec<Installation>> {
    SqliteStore { tx }.installations_where("tenant_id = ?1 ORDER BY created_at, id", &[&tenant_id])
}

/// An alert row for the portal.
pub struct AlertRow {
    /// Row id.
    pub id: i64,
    /// Installation.
    pub installation_id: String,
    /// The alert.
    pub alert: Alert,
}

/// Alerts of a tenant in arrival order.
pub fn alerts_of(tx: &Transaction, tenant_id: &str) -> rusqlite::Result<Vec<AlertRow>> {
    let mut st = tx.prepare_cached("SELECT id, installation_id, title, severity, threat_name, file_path, sha256, url, test, time FROM alerts WHERE tenant_id = ?1 ORDER BY id")?;
    let rows = st.query_map([tenant_id], |r| {
        let sev: String = r.get(3)?;
        let severity = serde_json::from_value(serde_json::Value::String(sev))
            .unwrap_or(Severity::Informational);
        Ok(AlertRow {
            id: r.get(0)?,
            installation_id: r.get(1)?,
            alert: Alert {
                title: r.get(2)?,
                severity,
                threat_name: r.get(4)?,
                file_path: r.get(5)?,
                sha256: r.get(6)?,
                url: r.get(7)?,
                test: r.get(8)?,
                time: r.get(9)?,
            },
        })
    })?;
    rows.collect()
}

/// Deletes expired nonces and sessions; returns rows removed.
pub fn cleanup(conn: &Connection, now: UnixSeconds) -> rusqlite::Result<usize> {
    Ok(
        conn.execute("DELETE FROM nonces WHERE expires_at < ?1", [now])?
            + conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?,
    )
}
