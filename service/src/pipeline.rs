//! The partner API's request pipeline: read-only key lookups for the
//! verification phase, and the single **writer** that commits requests in
//! groups.
//!
//! Group commit: the writer thread takes every request queued (up to
//! [`Pipeline::max_group`]), runs them one after another in **one** SQLite
//! transaction, each inside its own `SAVEPOINT` (a request whose answer is a
//! 5xx — a store error — is rolled back to its savepoint alone; the others
//! keep their effects and answers), then commits once (one fsync with
//! `synchronous=FULL`) and only then answers all of them. Nothing is
//! acknowledged before it is durable: if the commit fails, every request of
//! the group is answered `storage` (5xx) and the client retries; a retried
//! batch that did land is answered `duplicate`.
//!
//! The expensive, stateless part of ingest (base64, gzip, JSON, signature) is
//! done before a request is queued ([`ServiceRole::prepare_ingest`], with the
//! installation key read through a [`Readers`] connection: WAL lets readers
//! run beside the writer), so the writer only does the state checks and the
//! inserts.

use crate::db::{self, SqliteStore};
use crate::Clock;
use edrlink_core::error::{Error, ErrorCode, Result};
use edrlink_core::http::{problem, HttpRequest, HttpResponse};
use edrlink_core::service::{Installation, PreparedIngest, ServiceRole, ServiceStore};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Tuning of the partner-API pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    /// Most requests committed in one transaction.
    pub max_group: usize,
    /// Requests waiting for the writer before new ones wait to be queued
    /// (backpressure on the connection instead of unbounded memory).
    pub queue: usize,
    /// Ingest envelopes verified at the same time, outside the writer.
    pub verifiers: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Pipeline {
            max_group: 512,
            queue: 4096,
            verifiers: 2 * cores,
        }
    }
}

/// One unit of writer work.
pub enum Work {
    /// A whole partner request, decided by [`ServiceRole::handle`].
    Handle(HttpRequest),
    /// The second phase of an ingest ([`ServiceRole::commit_ingest`]).
    Ingest(PreparedIngest),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<HttpResponse>,
}

/// Runs `works` as one group: one immediate transaction, one savepoint per
/// request (rolled back alone when its answer is a 5xx), one commit; returns
/// the answers in order, each valid only because the commit succeeded (a
/// failed commit turns every answer into a `storage` problem). This is
/// exactly what the writer thread does with each group it dequeues.
pub fn commit_group(
    conn: &mut Connection,
    role: &ServiceRole,
    works: Vec<Work>,
    now: i64,
) -> Vec<HttpResponse> {
    let n = works.len();
    let failed_all = |e: &Error| (0..n).map(|_| role.refusal(e, now)).collect::<Vec<_>>();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed_all(&db::storage(e)),
    };
    let mut out = Vec::with_capacity(n);
    for w in works {
        if let Err(e) = tx.execute_batch("SAVEPOINT request") {
            out.push(role.refusal(&db::storage(e), now));
            continue;
        }
        let mut store = SqliteStore { tx: &tx };
        // A panic (a bug) fails its own request only, not the writer.
        let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match w {
            Work::Handle(req) => role.handle(&mut store, &req, now),
            Work::Ingest(p) => role.commit_ingest(&mut store, p, now),
        }))
        .unwrap_or_else(|_| {
            role.refusal(
                &Error::new(ErrorCode::Internal, "request handling failed"),
                now,
            )
        });
        let end = if resp.status >= 500 {
            "ROLLBACK TO request; RELEASE request"
        } else {
            "RELEASE request"
        };
        match tx.execute_batch(end) {
            Ok(()) => out.push(resp),
            Err(e) => {
                // The savepoint could not be closed: the transaction is in an
                // unknown state, so nothing of this group may be acknowledged.
                drop(tx);
                return failed_all(&db::storage(e));
            }
        }
    }
    match tx.commit() {
        Ok(()) => out,
        Err(e) => failed_all(&db::storage(e)),
    }
}

/// The writer: a thread that owns the write side of the database between
/// admin transactions and commits queued partner requests in groups.
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Writer {
    pub(crate) fn start(
        db: Arc<Mutex<Connection>>,
        role: Arc<ServiceRole>,
        clock: Clock,
        cfg: Pipeline,
    ) -> std::io::Result<Writer> {
        let (tx, mut rx) = mpsc::channel::<Job>(cfg.queue.max(1));
        let max_group = cfg.max_group.max(1);
        let thread = std::thread::Builder::new()
            .name("edrlink-writer".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < max_group {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (works, replies): (Vec<Work>, Vec<_>) =
                        jobs.into_iter().map(|j| (j.work, j.reply)).unzip();
                    let answers = {
                        let mut conn = db.lock().unwrap_or_else(|e| e.into_inner());
                        commit_group(&mut conn, &role, works, clock.now())
                    };
                    for (reply, a) in replies.into_iter().zip(answers) {
                        // A client that went away gets nothing; its batch stays stored
                        // and a re-send is answered `duplicate`.
                        let _ = reply.send(a);
                    }
                }
            })?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `work` and waits for its answer (sent after the group's commit).
    pub(crate) async fn submit(&self, work: Work) -> HttpResponse {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            return problem(&stopping(), None);
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(Job { work, reply }).await.is_err() {
            return problem(&stopping(), None);
        }
        drop(tx);
        answer.await.unwrap_or_else(|_| {
            problem(
                &Error::new(ErrorCode::Internal, "the writer ended before answering"),
                None,
            )
        })
    }

    /// Stops taking work, lets the writer answer what is queued, and waits for it.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            if t.join().is_err() {
                tracing::error!("writer thread panicked");
            }
        }
    }
}

fn stopping() -> Error {
    Error::new(ErrorCode::ServiceUnavailable, "the service is stopping").with_retry_after(1)
}

/// Read-only connections for lookups outside the writer (WAL: readers see
/// the last commit and never block it). An in-memory database has no second
/// connection: lookups then share the writer's.
pub(crate) struct Readers {
    path: Option<PathBuf>,
    writer: Arc<Mutex<Connection>>,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: Option<PathBuf>, writer: Arc<Mutex<Connection>>) -> Self {
        Readers {
            path,
            writer,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(c)
    }

    /// The installation whose current key has this key id.
    pub(crate) fn installation_by_key(&self, key_id: &str) -> Result<Option<Installation>> {
        let lookup = |c: &Connection| -> Result<Option<Installation>> {
            let tx = c.unchecked_transaction().map_err(db::storage)?;
            SqliteStore { tx: &tx }.installation_by_key(key_id)
        };
        let Some(path) = &self.path else {
            return lookup(&self.writer.lock().unwrap_or_else(|e| e.into_inner()));
        };
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => Self::open(path).map_err(db::storage)?,
        };
        let r = lookup(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < 16 {
            idle.push(conn);
        }
        r
    }
}
