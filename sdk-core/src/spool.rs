//! The outbox: where submitted events wait until the service acknowledged
//! them, bounded in bytes, events and age, with the in-flight batch recorded so
//! that a restart re-sends the *same* batch (same `batch_id` and `seq`, which
//! the service deduplicates) — never loses it, never stores it twice.
//!
//! The bookkeeping lives here, once; where the bytes go is a [`SpoolStorage`]:
//! [`MemoryStorage`] (default, and in wasm) or the on-disk segment log of
//! [`crate::spool_file`] (feature `spool`).
//!
//! Model: an append-only log of records, each with a global, increasing
//! `index`. A small state document says which prefix is acknowledged
//! (`acked_upto`), which batch is in flight, and which index ranges were
//! dropped because of the bounds. Drops pick the oldest *telemetry* that is not
//! in flight first, then the oldest detection, and are counted by reason.

use crate::encoding::{parse_json, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::telemetry::{Category, Event};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// One stored event record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Global, strictly increasing index.
    pub index: u64,
    /// Category (drop priority).
    pub category: Category,
    /// Local time it was submitted.
    pub time: UnixSeconds,
    /// The event as JSON.
    pub json: Vec<u8>,
}

/// What recovery needs to know of a record (not its bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Index.
    pub index: u64,
    /// Category.
    pub category: Category,
    /// Submission time.
    pub time: UnixSeconds,
    /// Size of the event JSON.
    pub size: u64,
}

/// The in-flight batch, persisted before it is first sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflightRecord {
    /// Batch id (deduplication key at the service).
    pub batch_id: String,
    /// Sequence number.
    pub seq: u64,
    /// RFC 3339 creation time of the batch.
    pub created: String,
    /// The batch holds the live events with `index < upto`.
    pub upto: u64,
    /// Whether the batch was split after a 413 (informational: a split batch
    /// is halved again on a further 413).
    #[serde(default)]
    pub split: bool,
}

/// The persisted bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolState {
    /// Format version.
    pub v: u32,
    /// Every record with `index < acked_upto` is done (acknowledged or dropped).
    pub acked_upto: u64,
    /// Next batch sequence number.
    pub next_seq: u64,
    /// The batch in flight.
    pub inflight: Option<InflightRecord>,
    /// Dropped index ranges `[from, to)` above `acked_upto`.
    pub dropped: Vec<(u64, u64)>,
    /// Drops by `reason/category` since the counters were last reported.
    pub drops: BTreeMap<String, u64>,
    /// Drops by `reason/category` since the spool was created.
    #[serde(default)]
    pub drops_total: BTreeMap<String, u64>,
}

impl Default for SpoolState {
    fn default() -> Self {
        SpoolState {
            v: 1,
            acked_upto: 0,
            next_seq: 1,
            inflight: None,
            dropped: Vec::new(),
            drops: BTreeMap::new(),
            drops_total: BTreeMap::new(),
        }
    }
}

impl SpoolState {
    fn is_dropped(&self, index: u64) -> bool {
        self.dropped.iter().any(|&(a, b)| index >= a && index < b)
    }

    fn add_dropped(&mut self, index: u64) {
        if let Some(last) = self.dropped.iter_mut().find(|r| r.1 == index) {
            last.1 = index + 1;
        } else {
            self.dropped.push((index, index + 1));
        }
    }

    fn prune(&mut self) {
        let upto = self.acked_upto;
        self.dropped.retain(|&(_, b)| b > upto);
    }
}

/// Where the spool's bytes live.
pub trait SpoolStorage: Send {
    /// Appends a record (the storage frames and checksums it).
    fn append(&mut self, rec: &Record) -> Result<()>;
    /// Appends records in order, as one write where the storage can (a `submit`
    /// of many events costs one system call, not one per event).
    fn append_many(&mut self, recs: &[Record]) -> Result<()> {
        recs.iter().try_for_each(|r| self.append(r))
    }
    /// Makes every append so far durable (fsync for files).
    fn sync(&mut self) -> Result<()>;
    /// Lists every record with `index >= from`, in index order (recovery).
    fn scan(&mut self, from: u64) -> Result<Vec<RecordMeta>>;
    /// Reads the given records (by index), in order.
    fn read(&mut self, indexes: &[u64]) -> Result<Vec<Record>>;
    /// Loads the state document (`None` on first use).
    fn load_state(&mut self) -> Result<Option<SpoolState>>;
    /// Atomically replaces the state document and makes it, and every append
    /// before it, durable (as far as the storage's fsync policy goes).
    fn save_state(&mut self, state: &SpoolState) -> Result<()>;
    /// Replaces the state document without waiting for it to be durable: a
    /// process crash keeps it, a power loss may return the previous state.
    /// Used where losing the change is harmless (an acknowledgement: the batch
    /// is re-sent and the service answers `duplicate`; a drop counter).
    fn save_state_unsynced(&mut self, state: &SpoolState) -> Result<()> {
        self.save_state(state)
    }
    /// Frees storage of every record with `index < upto` (e.g. whole segments).
    fn release(&mut self, upto: u64) -> Result<()>;
}

/// Default bound of queued events (PROTOCOL §9.5, §21); the client's
/// `max_queue_events` default is this same constant.
pub const DEFAULT_MAX_EVENTS: u64 = 100_000;

/// Bounds of the outbox. Defaults (PROTOCOL §9.5): 100 000 events, 100 MiB, 7 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of queued events.
    pub max_bytes: u64,
    /// Most queued events.
    pub max_events: u64,
    /// Oldest queued event, seconds.
    pub max_age: i64,
    /// What to do when full.
    pub when_full: WhenFull,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 100 * 1024 * 1024,
            max_events: DEFAULT_MAX_EVENTS,
            max_age: 7 * 86_400,
            when_full: WhenFull::RefuseNew,
        }
    }
}

/// What to do with a new event when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse the new event with `queue_full` — except that a detection still
    /// displaces queued telemetry, which is always dropped first.
    #[default]
    RefuseNew,
    /// Drop the oldest telemetry first, then the oldest detection.
    DropOldest,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u64,
    category: Category,
    time: UnixSeconds,
    size: u64,
}

/// The outbox.
pub struct Outbox {
    storage: Box<dyn SpoolStorage>,
    limits: Limits,
    state: SpoolState,
    live: VecDeque<Entry>,
    bytes: u64,
    next_index: u64,
    /// A lower bound of the submission time of every queued event: while the
    /// oldest possible one is within the age bound, `push` skips the expiry scan.
    time_floor: UnixSeconds,
}

impl core::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outbox")
            .field("events", &self.live.len())
            .field("bytes", &self.bytes)
            .field("state", &self.state)
            .finish()
    }
}

impl Outbox {
    /// An in-memory outbox.
    pub fn in_memory(limits: Limits) -> Outbox {
        Outbox::open(Box::new(MemoryStorage::default()), limits)
            .expect("memory storage cannot fail")
    }

    /// Opens an outbox over `storage`, recovering its state.
    pub fn open(mut storage: Box<dyn SpoolStorage>, limits: Limits) -> Result<Outbox> {
        let state = storage.load_state()?.unwrap_or_default();
        let mut live = VecDeque::new();
        let mut bytes = 0;
        let mut next_index = state.acked_upto;
        for r in storage.scan(state.acked_upto)? {
            next_index = next_index.max(r.index + 1);
            if state.is_dropped(r.index) {
                continue;
            }
            bytes += r.size;
            live.push_back(Entry {
                index: r.index,
                category: r.category,
                time: r.time,
                size: r.size,
            });
        }
        if let Some(inf) = &state.inflight {
            next_index = next_index.max(inf.upto);
        }
        // A dropped index is never reused, even if its record never reached storage.
        if let Some(&(_, end)) = state.dropped.iter().max_by_key(|r| r.1) {
            next_index = next_index.max(end);
        }
        let time_floor = live
            .iter()
            .map(|e| e.time)
            .min()
            .unwrap_or(UnixSeconds::MAX);
        Ok(Outbox {
            storage,
            limits,
            state,
            live,
            bytes,
            next_index,
            time_floor,
        })
    }

    /// Queued events (including the in-flight batch).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Queued bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Submission time of the oldest queued event.
    pub fn oldest(&self) -> Option<UnixSeconds> {
        self.live.front().map(|e| e.time)
    }

    /// Position in `live` of the first event not in flight (`live` is in index order).
    fn first_waiting(&self) -> usize {
        let upto = self.state.inflight.as_ref().map_or(0, |i| i.upto);
        self.live.partition_point(|e| e.index < upto)
    }

    /// Submission time of the oldest event not in flight.
    pub fn oldest_waiting(&self) -> Option<UnixSeconds> {
        self.live.get(self.first_waiting()).map(|e| e.time)
    }

    /// Events not in flight.
    pub fn waiting(&self) -> usize {
        self.live.len() - self.first_waiting()
    }

    /// The next batch sequence number.
    pub fn next_seq(&self) -> u64 {
        self.state.next_seq
    }

    /// Drops not yet reported to the service (persisted).
    pub fn drops(&self) -> &BTreeMap<String, u64> {
        &self.state.drops
    }

    /// All drops since the spool was created (persisted).
    pub fn drops_total(&self) -> &BTreeMap<String, u64> {
        &self.state.drops_total
    }

    /// The in-flight batch.
    pub fn inflight(&self) -> Option<&InflightRecord> {
        self.state.inflight.as_ref()
    }

    fn count_drop(&mut self, reason: &str, cat: Category) {
        let cat = match cat {
            Category::Telemetry => "telemetry",
            Category::Detection => "detection",
        };
        let key = format!("{reason}/{cat}");
        *self.state.drops_total.entry(key.clone()).or_default() += 1;
        *self.state.drops.entry(key).or_default() += 1;
    }

    /// Counts a drop that happened outside the outbox (e.g. refused by the service).
    pub fn record_drop(&mut self, reason: &str, cat: Category) -> Result<()> {
        self.count_drop(reason, cat);
        self.storage.save_state(&self.state)
    }

    fn drop_entry(&mut self, pos: usize, reason: &str) {
        let e = self.live.remove(pos).expect("position valid");
        self.bytes -= e.size;
        self.state.add_dropped(e.index);
        self.count_drop(reason, e.category);
    }

    fn victim(&self, prefer: Category) -> Option<usize> {
        let upto = self.state.inflight.as_ref().map_or(0, |i| i.upto);
        let free = |e: &Entry| e.index >= upto;
        self.live
            .iter()
            .position(|e| free(e) && e.category == prefer)
            .or_else(|| {
                if prefer == Category::Telemetry {
                    self.live
                        .iter()
                        .position(|e| free(e) && e.category == Category::Detection)
                } else {
                    None
                }
            })
    }

    /// Appends an event, applying the bounds. Durable per the storage's policy
    /// when it returns `Ok`. Errors: `queue_full` when the bounds refuse it
    /// (counted as a drop), `storage`.
    pub fn push(&mut self, event: &Event, now: UnixSeconds) -> Result<()> {
        match self.push_inner(std::slice::from_ref(event), now)?.pop() {
            Some(Some(refusal)) => Err(refusal),
            _ => Ok(()),
        }
    }

    /// Appends events in order with one storage write, applying the bounds to
    /// each as [`push`](Self::push) would. Returns how many were refused
    /// (`queue_full`; each counted as a drop and reported like any other).
    /// On a storage error none of these events is queued.
    pub fn push_many(&mut self, events: &[Event], now: UnixSeconds) -> Result<usize> {
        Ok(self
            .push_inner(events, now)?
            .iter()
            .filter(|r| r.is_some())
            .count())
    }

    /// The per-event outcome (`Some(refusal)`), after one append of the accepted.
    fn push_inner(&mut self, events: &[Event], now: UnixSeconds) -> Result<Vec<Option<Error>>> {
        let mut changed = self.expire_inner(now);
        let mut outcome = Vec::with_capacity(events.len());
        let mut recs = Vec::with_capacity(events.len());
        for event in events {
            let json = serde_json::to_vec(event)
                .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
            let size = json.len() as u64;
            let cat = event.category();
            match self.make_room(size, cat) {
                Ok(dropped) => changed |= dropped,
                Err(refusal) => {
                    changed = true;
                    outcome.push(Some(refusal));
                    continue;
                }
            }
            let index = self.next_index;
            self.next_index += 1;
            self.bytes += size;
            self.time_floor = self.time_floor.min(now);
            self.live.push_back(Entry {
                index,
                category: cat,
                time: now,
                size,
            });
            recs.push(Record {
                index,
                category: cat,
                time: now,
                json,
            });
            outcome.push(None);
        }
        // Records first, then the state that may name them as dropped: a crash in
        // between only brings a dropped event back, never drops a new one.
        if let Err(e) = self.storage.append_many(&recs) {
            let first = recs.first().map_or(u64::MAX, |r| r.index);
            let mut i = self.live.len();
            while i > 0 && self.live[i - 1].index >= first {
                i -= 1;
            }
            for e in self.live.drain(i..) {
                self.bytes -= e.size;
            }
            if changed {
                let _ = self.storage.save_state_unsynced(&self.state);
            }
            return Err(e);
        }
        if changed {
            self.storage.save_state_unsynced(&self.state)?;
        }
        Ok(outcome)
    }

    /// Frees room for an event of `size` bytes and category `cat` by the bounds'
    /// rules; `Ok(true)` if something was dropped for it, `Err` if it is refused
    /// (counted).
    fn make_room(&mut self, size: u64, cat: Category) -> std::result::Result<bool, Error> {
        if size > self.limits.max_bytes {
            self.count_drop("too_large", cat);
            return Err(Error::new(
                ErrorCode::QueueFull,
                "event is larger than the whole queue",
            ));
        }
        let mut changed = false;
        while self.live.len() as u64 >= self.limits.max_events
            || self.bytes + size > self.limits.max_bytes
        {
            let victim = match (self.limits.when_full, cat) {
                (WhenFull::DropOldest, _) => self.victim(Category::Telemetry),
                (WhenFull::RefuseNew, Category::Detection) => self
                    .victim(Category::Telemetry)
                    .filter(|&p| self.live[p].category == Category::Telemetry),
                (WhenFull::RefuseNew, Category::Telemetry) => None,
            };
            match victim {
                Some(p) => {
                    self.drop_entry(p, "queue_full");
                    changed = true;
                }
                None => {
                    self.count_drop("queue_full", cat);
                    return Err(Error::new(ErrorCode::QueueFull, "event queue is full"));
                }
            }
        }
        Ok(changed)
    }

    fn expire_inner(&mut self, now: UnixSeconds) -> bool {
        if now.saturating_sub(self.time_floor) <= self.limits.max_age {
            return false;
        }
        let upto = self.state.inflight.as_ref().map_or(0, |i| i.upto);
        let mut changed = false;
        while let Some(p) = self
            .live
            .iter()
            .position(|e| e.index >= upto && now - e.time > self.limits.max_age)
        {
            self.drop_entry(p, "expired");
            changed = true;
        }
        self.time_floor = self
            .live
            .iter()
            .map(|e| e.time)
            .min()
            .unwrap_or(UnixSeconds::MAX);
        changed
    }

    /// Drops events older than the age bound (counted as `expired`).
    pub fn expire(&mut self, now: UnixSeconds) -> Result<()> {
        if self.expire_inner(now) {
            self.storage.save_state_unsynced(&self.state)?;
        }
        Ok(())
    }

    /// Forms the in-flight batch from the oldest events (at most `max_events`
    /// and, beyond the first event, `max_bytes`), makes it durable, and returns
    /// its events. `None` when nothing waits or a batch is already in flight.
    pub fn begin_batch(
        &mut self,
        max_events: usize,
        max_bytes: u64,
        batch_id: String,
        created: String,
    ) -> Result<Option<(InflightRecord, Vec<Event>)>> {
        if self.state.inflight.is_some() || self.live.is_empty() {
            return Ok(None);
        }
        let mut n = 0;
        let mut bytes = 0;
        for e in &self.live {
            if n > 0 && (n >= max_events.max(1) || bytes + e.size > max_bytes) {
                break;
            }
            n += 1;
            bytes += e.size;
        }
        let upto = self.live[n - 1].index + 1;
        let inf = InflightRecord {
            batch_id,
            seq: self.state.next_seq,
            created,
            upto,
            split: false,
        };
        // Persist-then-send: the events and the batch identity are durable first
        // (for the file spool: one fsync covers both, they share the log).
        self.state.inflight = Some(inf.clone());
        if let Err(e) = self.storage.save_state(&self.state) {
            self.state.inflight = None;
            return Err(e);
        }
        let events = self.inflight_events()?;
        Ok(Some((inf, events)))
    }

    /// The events of the in-flight batch (read back from storage).
    pub fn inflight_events(&mut self) -> Result<Vec<Event>> {
        let Some(inf) = &self.state.inflight else {
            return Ok(Vec::new());
        };
        let idx: Vec<u64> = self
            .live
            .iter()
            .take_while(|e| e.index < inf.upto)
            .map(|e| e.index)
            .collect();
        self.read_events(&idx)
    }

    /// Reads and parses the events at `idx` (a corrupt record is a `storage` error).
    fn read_events(&mut self, idx: &[u64]) -> Result<Vec<Event>> {
        self.storage
            .read(idx)?
            .into_iter()
            .map(|r| {
                parse_json::<Event>(&r.json, 16 * 1024 * 1024, "spooled event")
                    .map_err(|e| Error::new(ErrorCode::Storage, e.message().to_owned()))
            })
            .collect()
    }

    /// Every queued event, oldest first (in flight included): for tools and
    /// tests that show what is held.
    pub fn read_all(&mut self) -> Result<Vec<Event>> {
        let idx: Vec<u64> = self.live.iter().map(|e| e.index).collect();
        self.read_events(&idx)
    }

    /// The service acknowledged the in-flight batch (accepted or duplicate)
    /// under `acked_seq`; returns how many events left the outbox.
    pub fn ack_inflight(&mut self, acked_seq: u64) -> Result<u64> {
        let Some(inf) = self.state.inflight.take() else {
            return Ok(0);
        };
        let mut n = 0;
        while self.live.front().is_some_and(|e| e.index < inf.upto) {
            let e = self.live.pop_front().expect("front exists");
            self.bytes -= e.size;
            n += 1;
        }
        self.state.acked_upto = self
            .live
            .front()
            .map_or(inf.upto.max(self.next_index), |e| e.index)
            .max(self.state.acked_upto);
        self.state.next_seq = inf.seq.max(acked_seq) + 1;
        self.state.prune();
        // Not waited for: if a power loss forgets this acknowledgement, the same
        // batch (same `batch_id`) is sent again and the service answers
        // `duplicate`. The next batch's fsync makes it durable anyway.
        self.storage.save_state_unsynced(&self.state)?;
        self.storage.release(self.state.acked_upto)?;
        Ok(n)
    }

    /// Gives up on the in-flight batch (refused for good), counting each event.
    pub fn drop_inflight(&mut self, reason: &str) -> Result<u64> {
        let Some(inf) = self.state.inflight.take() else {
            return Ok(0);
        };
        let mut n = 0;
        while self.live.front().is_some_and(|e| e.index < inf.upto) {
            self.drop_entry(0, reason);
            n += 1;
        }
        // The refused batch was never stored: its sequence number is reused.
        self.state.acked_upto = self
            .live
            .front()
            .map_or(inf.upto.max(self.next_index), |e| e.index)
            .max(self.state.acked_upto);
        self.state.prune();
        self.storage.save_state(&self.state)?;
        self.storage.release(self.state.acked_upto)?;
        Ok(n)
    }

    /// Halves the in-flight batch (after a 413): the first half stays in
    /// flight under the same sequence number with a new batch id.
    /// Returns `false` if it cannot be split (a single event).
    pub fn split_inflight(&mut self, new_batch_id: String) -> Result<bool> {
        let Some(inf) = self.state.inflight.as_mut() else {
            return Ok(false);
        };
        let n = self.live.iter().take_while(|e| e.index < inf.upto).count();
        // Halve again on every refusal (a body limit in front of the service
        // may be far below the policy's): the batch shrinks geometrically, so
        // this ends after log2(n) refusals, and only a single event that is
        // still too large is ever dropped.
        if n < 2 {
            return Ok(false);
        }
        inf.upto = self.live[n / 2 - 1].index + 1;
        inf.batch_id = new_batch_id;
        inf.split = true;
        self.storage.save_state(&self.state)?;
        Ok(true)
    }

    /// Re-numbers the in-flight batch and later ones (after `sequence_regression`
    /// or a handshake that shows the service is ahead).
    pub fn resync_seq(&mut self, next: u64) -> Result<()> {
        match self.state.inflight.as_mut() {
            Some(inf) if inf.seq < next => inf.seq = next,
            Some(_) => return Ok(()),
            None if self.state.next_seq < next => self.state.next_seq = next,
            None => return Ok(()),
        }
        self.storage.save_state(&self.state)
    }

    /// Takes the drop counters after they were reported to the service.
    pub fn clear_reported_drops(&mut self, reported: &BTreeMap<String, u64>) -> Result<()> {
        for (k, v) in reported {
            if let Some(c) = self.state.drops.get_mut(k) {
                *c = c.saturating_sub(*v);
            }
        }
        self.state.drops.retain(|_, v| *v > 0);
        self.storage.save_state(&self.state)
    }
}

/// A serializable copy of an in-memory outbox: what hosts without files
/// (browsers, extension service workers) persist — in IndexedDB or
/// `chrome.storage` — and hand back after a restart, so an in-flight batch is
/// resumed with the same identity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// The bookkeeping.
    pub state: SpoolState,
    /// Queued events `(index, category, time, event)`, oldest first.
    pub records: Vec<(u64, Category, UnixSeconds, serde_json::Value)>,
}

impl Outbox {
    /// Takes a snapshot of the queued events and bookkeeping.
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        let idx: Vec<u64> = self.live.iter().map(|e| e.index).collect();
        let records = self
            .storage
            .read(&idx)?
            .into_iter()
            .map(|r| {
                let v = serde_json::from_slice(&r.json)
                    .map_err(|e| Error::new(ErrorCode::Storage, e.to_string()))?;
                Ok((r.index, r.category, r.time, v))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Snapshot {
            state: self.state.clone(),
            records,
        })
    }

    /// An in-memory outbox restored from a snapshot.
    pub fn from_snapshot(snap: Snapshot, limits: Limits) -> Result<Outbox> {
        let mut storage = MemoryStorage::default();
        for (index, category, time, v) in snap.records {
            let json = serde_json::to_vec(&v)
                .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
            storage.append(&Record {
                index,
                category,
                time,
                json,
            })?;
        }
        storage.state = Some(snap.state);
        Outbox::open(Box::new(storage), limits)
    }
}

/// Storage in memory (wasm, tests, hosts that do not want files).
#[derive(Default)]
pub struct MemoryStorage {
    records: VecDeque<Record>,
    state: Option<SpoolState>,
}

impl SpoolStorage for MemoryStorage {
    fn append(&mut self, rec: &Record) -> Result<()> {
        self.records.push_back(rec.clone());
        Ok(())
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn scan(&mut self, from: u64) -> Result<Vec<RecordMeta>> {
        Ok(self
            .records
            .iter()
            .filter(|r| r.index >= from)
            .map(|r| RecordMeta {
                index: r.index,
                category: r.category,
                time: r.time,
                size: r.json.len() as u64,
            })
            .collect())
    }
    fn read(&mut self, indexes: &[u64]) -> Result<Vec<Record>> {
        indexes
            .iter()
            .map(|i| {
                let pos = self
                    .records
                    .binary_search_by_key(i, |r| r.index)
                    .map_err(|_| Error::new(ErrorCode::Storage, "spooled record missing"))?;
                Ok(self.records[pos].clone())
            })
            .collect()
    }
    fn load_state(&mut self) -> Result<Option<SpoolState>> {
        Ok(self.state.clone())
    }
    fn save_state(&mut self, state: &SpoolState) -> Result<()> {
        self.state = Some(state.clone());
        Ok(())
    }
    fn release(&mut self, upto: u64) -> Result<()> {
        while self.records.front().is_some_and(|r| r.index < upto) {
            self.records.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::GenericEvent;

    fn tele(n: u32) -> Event {
        Event::Generic(GenericEvent {
            time: "2026-11-23T12:00:00Z".into(),
            name: format!("e{n}"),
            data: serde_json::Value::Null,
        })
    }

    fn names(evs: &[Event]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                Event::Generic(g) => g.name.clone(),
                Event::Detection(d) => d.threat_name.clone(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn batch_ack_and_split() {
        let mut o = Outbox::in_memory(Limits::default());
        for i in 0..5 {
            o.push(&tele(i), 0).unwrap();
        }
        let (inf, evs) = o
            .begin_batch(4, u64::MAX, "b1".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!((inf.seq, evs.len()), (1, 4));
        assert!(
            o.begin_batch(4, u64::MAX, "b2".into(), "t".into())
                .unwrap()
                .is_none(),
            "one batch in flight"
        );
        assert!(o.split_inflight("b1a".into()).unwrap());
        assert_eq!(names(&o.inflight_events().unwrap()), ["e0", "e1"]);
        assert!(o.split_inflight("b1b".into()).unwrap(), "halved again");
        assert_eq!(names(&o.inflight_events().unwrap()), ["e0"]);
        assert!(
            !o.split_inflight("b1c".into()).unwrap(),
            "a single event cannot be split"
        );
        assert_eq!(o.ack_inflight(0).unwrap(), 1);
        assert_eq!(o.next_seq(), 2);
        let (inf, evs) = o
            .begin_batch(10, u64::MAX, "b2".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!(
            (inf.seq, names(&evs)),
            (
                2,
                vec!["e1".to_string(), "e2".into(), "e3".into(), "e4".into()]
            )
        );
    }

    #[test]
    fn full_queue_drops_telemetry_before_detections() {
        let mut o = Outbox::in_memory(Limits {
            max_events: 3,
            ..Limits::default()
        });
        o.push(&tele(0), 0).unwrap();
        o.push(&crate::eicar::test_detection(0, "/a"), 0).unwrap();
        o.push(&tele(1), 0).unwrap();
        assert_eq!(
            o.push(&tele(2), 0).unwrap_err().code(),
            ErrorCode::QueueFull
        );
        o.push(&crate::eicar::test_detection(0, "/b"), 0).unwrap();
        assert_eq!(o.drops().get("queue_full/telemetry"), Some(&2));
        let (_, evs) = o
            .begin_batch(10, u64::MAX, "b".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!(names(&evs), ["EICAR-Test-File", "e1", "EICAR-Test-File"]);
    }

    #[test]
    fn in_flight_events_are_never_dropped() {
        let mut o = Outbox::in_memory(Limits {
            max_events: 2,
            when_full: WhenFull::DropOldest,
            ..Limits::default()
        });
        o.push(&tele(0), 0).unwrap();
        o.push(&tele(1), 0).unwrap();
        o.begin_batch(1, u64::MAX, "b".into(), "t".into()).unwrap();
        o.push(&tele(2), 0).unwrap();
        assert_eq!(names(&o.inflight_events().unwrap()), ["e0"]);
        o.ack_inflight(0).unwrap();
        let (_, evs) = o
            .begin_batch(10, u64::MAX, "c".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!(names(&evs), ["e2"]);
        assert_eq!(o.drops().get("queue_full/telemetry"), Some(&1));
    }

    #[test]
    fn snapshot_round_trip_keeps_the_inflight_batch() {
        let mut o = Outbox::in_memory(Limits::default());
        for i in 0..4 {
            o.push(&tele(i), 0).unwrap();
        }
        o.begin_batch(2, u64::MAX, "b1".into(), "t".into()).unwrap();
        let json = serde_json::to_string(&o.snapshot().unwrap()).unwrap();
        let mut back =
            Outbox::from_snapshot(serde_json::from_str(&json).unwrap(), Limits::default()).unwrap();
        assert_eq!(back.inflight().unwrap().batch_id, "b1");
        assert_eq!(names(&back.inflight_events().unwrap()), ["e0", "e1"]);
        assert_eq!(back.len(), 4);
        back.ack_inflight(1).unwrap();
        back.push(&tele(9), 0).unwrap();
        let (_, evs) = back
            .begin_batch(10, u64::MAX, "b2".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!(
            names(&evs),
            ["e2", "e3", "e9"],
            "indexes continue after a restore"
        );
    }

    #[test]
    fn client_defaults_are_the_outbox_defaults() {
        // One source for the bounds (PROTOCOL §9.5: 100 000 events, 100 MiB, 7 days).
        let cfg = crate::client::ClientConfig::new(crate::redeem::DeviceFacts {
            device_id: "d".into(),
            hostname: "h".into(),
            os: "linux".into(),
            os_version: "6".into(),
            product: "p".into(),
            product_version: "1".into(),
        });
        assert_eq!(
            crate::client::PartnerClient::limits(&cfg),
            Limits::default()
        );
        assert_eq!(Limits::default().max_events, 100_000);
    }

    #[test]
    fn push_many_applies_the_bounds_to_each_event() {
        let mut o = Outbox::in_memory(Limits {
            max_events: 3,
            ..Limits::default()
        });
        let evs: Vec<Event> = (0..5).map(tele).collect();
        assert_eq!(o.push_many(&evs, 0).unwrap(), 2, "two refused");
        assert_eq!(o.drops().get("queue_full/telemetry"), Some(&2));
        assert_eq!(names(&o.read_all().unwrap()), ["e0", "e1", "e2"]);
        // A detection in the same call still displaces queued telemetry.
        let mixed = [tele(9), crate::eicar::test_detection(0, "/x")];
        assert_eq!(o.push_many(&mixed, 0).unwrap(), 1);
        assert_eq!(
            names(&o.read_all().unwrap()),
            ["e1", "e2", "EICAR-Test-File"]
        );
    }

    #[test]
    fn old_events_expire() {
        let mut o = Outbox::in_memory(Limits {
            max_age: 10,
            ..Limits::default()
        });
        o.push(&tele(0), 0).unwrap();
        o.push(&tele(1), 5).unwrap();
        o.expire(12).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o.drops().get("expired/telemetry"), Some(&1));
    }
}
