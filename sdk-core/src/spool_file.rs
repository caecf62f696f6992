//! The durable spool: an append-only outbox in the agent's data directory
//! (feature `spool`).
//!
//! Layout of `<dir>`:
//! - `seg-<n, 20 digits>.log` — segment files, `n` increasing (for readability it is
//!   the index of the first event the segment was opened for). Each holds framed
//!   records: `u32 LE length | u32 LE CRC-32 (IEEE) of the body | body`, body =
//!   `u64 LE index | u8 kind | i64 LE time | payload`. Kind 0 / 1 is an event
//!   (telemetry / detection; payload = event JSON); kind 0x80 is a *state record*
//!   (index and time 0; payload = the [`SpoolState`] JSON).
//! - `lock` — held with an exclusive file lock while open: one process per spool.
//! - `state.json` — only in spools written by earlier versions (the bookkeeping
//!   was a separate, atomically replaced file); it is migrated into the log on open.
//!
//! **The bookkeeping lives in the log.** The state is appended as a record to the
//! active segment; the last valid state record in the log is the state. So one
//! `fdatasync` of the active segment makes a batch's events *and* its identity
//! durable together (instead of fsyncing the segment, a temp file and the
//! directory), and an acknowledgement is one small `write` with no fsync at all:
//! losing it in a power loss only means the same batch is sent again, which the
//! service answers `duplicate` (it deduplicates by `batch_id`). Every new segment
//! starts with a copy of the current state, so the last segment always holds a
//! state at least as new as the time it was opened; a segment is deleted only
//! after a state that no longer needs it is durable.
//!
//! Recovery: segments are read in order; a torn, zeroed or corrupt tail in the last
//! segment (a crash or power loss mid-append) is truncated away; a corrupt record
//! elsewhere ends that segment's reading and is reported in [`FileSpool::recovery`].
//!
//! Durability ([`Fsync`]): every append is one `write(2)` (one per call, however many
//! events it carries), so a process crash (SIGKILL included) loses nothing already
//! appended. See [`Fsync`] for power loss.
//!
//! All file access goes through [`SpoolIo`], so tests can record the exact
//! sequence of writes and fsyncs and replay power losses at every point of it.

use crate::error::{Error, ErrorCode, Result};
use crate::spool::{Record, RecordMeta, SpoolState, SpoolStorage};
use crate::telemetry::Category;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// When the spool calls fsync. A process crash never loses an accepted event
/// under any policy; the policies differ in what a *power loss* (or kernel
/// crash) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// After every append and every state change: nothing accepted is lost and
    /// no acknowledgement is forgotten (slowest).
    Always,
    /// When a batch is formed (its events and identity in one fsync), before it is
    /// re-identified (split after 413, renumbered), when drops are reported or a
    /// batch is refused, and before a segment is deleted (default). A power loss
    /// may lose the events submitted since the last batch was formed, and may
    /// forget acknowledgements since then (that batch is re-sent; the service
    /// answers `duplicate`). Never a duplicate, never an event lost before it.
    #[default]
    Batch,
    /// Never (process crashes are still safe; power loss may lose or resend
    /// anything not yet written back by the OS).
    Never,
}

/// Segment size at which a new segment starts.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const HEADER: usize = 8;
const BODY_FIXED: usize = 17;
/// Largest record accepted when reading (a corrupt length beyond it ends the segment).
const MAX_RECORD: u32 = 32 * 1024 * 1024;
const KIND_TELEMETRY: u8 = 0;
const KIND_DETECTION: u8 = 1;
const KIND_STATE: u8 = 0x80;
const LEGACY_STATE: &str = "state.json";

/// One open file of the spool (a segment). Implemented by the real files of
/// [`OsIo`] and by test doubles that record or fail operations.
pub trait SpoolFileIo: Send {
    /// Current length in bytes.
    fn size(&mut self) -> io::Result<u64>;
    /// Fills `buf` from offset `off` (an error if the file is shorter).
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Appends all of `data` at the end with a single write.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The file-system operations of the spool: the seam between the segment log
/// and the OS. [`OsIo`] is the real one; a recording implementation lets tests
/// replay every prefix of the operation sequence as a power loss would leave it.
pub trait SpoolIo: Send {
    /// Creates `dir` (and parents) if missing, readable by the owner only.
    fn create_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Takes the exclusive lock of the spool in `dir`, held while the guard lives
    /// (`WouldBlock` if another process holds it).
    fn lock(&mut self, dir: &Path) -> io::Result<Box<dyn Send>>;
    /// Names of the entries of `dir`.
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a file for reading and appending; creates it (owner-only) if `create`.
    fn open(&mut self, path: &Path, create: bool) -> io::Result<Box<dyn SpoolFileIo>>;
    /// Reads a whole file (`NotFound` if it does not exist).
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>>;
    /// Deletes a file.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable (created and deleted files).
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsIo;

struct OsFile(File);

impl SpoolFileIo for OsFile {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.0.read_exact_at(buf, off)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                match self.0.seek_read(&mut buf[done..], off + done as u64)? {
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => done += n,
                }
            }
            Ok(())
        }
        #[cfg(not(any(unix, windows)))]
        {
            use std::io::Seek;
            self.0.seek(io::SeekFrom::Start(off))?;
            self.0.read_exact(buf)
        }
    }
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        // Opened with O_APPEND: one write(2) per call for any size the kernel
        // takes at once (write_all only loops on a short write).
        self.0.write_all(data)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// Opens a file created with owner-only permissions.
fn private_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

impl SpoolIo for OsIo {
    /// Queued events can be sensitive (paths, hashes, URLs), like the
    /// credential next to them: the directory is owner-only.
    fn create_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            b.mode(0o700);
            b.create(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        }
        #[cfg(not(unix))]
        b.create(dir)
    }
    fn lock(&mut self, dir: &Path) -> io::Result<Box<dyn Send>> {
        let f = private_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))?;
        match f.try_lock() {
            Ok(()) => Ok(Box::new(f)),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn list(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
    }
    fn open(&mut self, path: &Path, create: bool) -> io::Result<Box<dyn SpoolFileIo>> {
        let f = private_options()
            .read(true)
            .append(true)
            .create(create)
            .open(path)?;
        Ok(Box::new(OsFile(f)))
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        File::open(path)?.read_to_end(&mut v)?;
        Ok(v)
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        #[cfg(not(unix))]
        let _ = dir;
        Ok(())
    }
}

/// What recovery found when the spool was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of torn tail truncated from the last segment.
    pub truncated_bytes: u64,
    /// Segments in which a corrupt record stopped reading early.
    pub corrupt_segments: u32,
}

struct Segment {
    id: u64,
    last: Option<u64>,
    path: PathBuf,
    len: u64,
    file: Box<dyn SpoolFileIo>,
}

#[derive(Clone, Copy)]
struct Loc {
    seg: u64,
    /// Offset of the frame (header) in the segment.
    off: u64,
    /// Body length.
    len: u32,
    category: Category,
    time: i64,
}

/// The on-disk spool storage.
pub struct FileSpool {
    dir: PathBuf,
    io: Box<dyn SpoolIo>,
    fsync: Fsync,
    segment_bytes: u64,
    /// In id order; the last one is the active (appended) segment.
    segments: Vec<Segment>,
    locations: BTreeMap<u64, Loc>,
    /// Appends since the last fsync of the active segment.
    dirty: bool,
    /// The newest state, as stored (copied into every new segment).
    state_json: Option<Vec<u8>>,
    /// Lower bound of the next event index (names a segment opened by a state save).
    next_hint: u64,
    acked_hint: u64,
    recovery: Recovery,
    _lock: Box<dyn Send>,
}

fn io_err(what: &str, e: io::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("{what}: {e}"))
}

/// CRC-32 (IEEE 802.3, reflected), slicing by 8: spool records are framed with it
/// on every append, so it should cost far less than the `write` it guards.
fn crc32(data: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for (i, slot) in t[0].iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        for k in 1..8 {
            let (done, rest) = t.split_at_mut(k);
            for (slot, &p) in rest[0].iter_mut().zip(done[k - 1].iter()) {
                *slot = (p >> 8) ^ done[0][(p & 0xff) as usize];
            }
        }
        t
    });
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = c ^ u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]);
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Appends one framed record to `buf`; returns the body length.
fn frame_into(buf: &mut Vec<u8>, index: u64, kind: u8, time: i64, payload: &[u8]) -> u32 {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER]);
    buf.extend_from_slice(&index.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(&time.to_le_bytes());
    buf.extend_from_slice(payload);
    let body_len = (buf.len() - start - HEADER) as u32;
    let crc = crc32(&buf[start + HEADER..]);
    buf[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    body_len
}

fn segment_name(id: u64) -> String {
    format!("seg-{id:020}.log")
}

/// Writes `data` to `path` atomically: temp file, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::new(ErrorCode::Storage, "path has no parent"))?;
    let tmp = path.with_extension("tmp");
    {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = o.open(&tmp).map_err(|e| io_err("create temp file", e))?;
        f.write_all(data)
            .map_err(|e| io_err("write temp file", e))?;
        f.sync_all().map_err(|e| io_err("fsync temp file", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io_err("rename", e))?;
    OsIo.sync_dir(dir).map_err(|e| io_err("fsync directory", e))
}

fn category_of(kind: u8) -> Option<Category> {
    match kind {
        KIND_TELEMETRY => Some(Category::Telemetry),
        KIND_DETECTION => Some(Category::Detection),
        _ => None,
    }
}

fn kind_of(c: Category) -> u8 {
    match c {
        Category::Telemetry => KIND_TELEMETRY,
        Category::Detection => KIND_DETECTION,
    }
}

impl FileSpool {
    /// Opens (or creates) a spool in `dir`.
    pub fn open(dir: impl AsRef<Path>, fsync: Fsync) -> Result<FileSpool> {
        FileSpool::open_with(dir, fsync, DEFAULT_SEGMENT_BYTES)
    }

    /// Opens with a custom segment size.
    pub fn open_with(dir: impl AsRef<Path>, fsync: Fsync, segment_bytes: u64) -> Result<FileSpool> {
        FileSpool::open_on(Box::new(OsIo), dir, fsync, segment_bytes)
    }

    /// Opens over the given file-system implementation (fault-injection and
    /// power-loss tests; hosts use [`open`](Self::open)).
    pub fn open_on(
        mut io: Box<dyn SpoolIo>,
        dir: impl AsRef<Path>,
        fsync: Fsync,
        segment_bytes: u64,
    ) -> Result<FileSpool> {
        let dir = dir.as_ref().to_path_buf();
        io.create_dir(&dir)
            .map_err(|e| io_err("create spool directory", e))?;
        let lock = io.lock(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => Error::new(
                ErrorCode::Storage,
                format!("spool {} is in use by another process", dir.display()),
            ),
            _ => io_err("lock spool", e),
        })?;
        let names = io
            .list(&dir)
            .map_err(|e| io_err("list spool directory", e))?;
        let mut ids: Vec<u64> = names
            .iter()
            .filter_map(|n| n.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut spool = FileSpool {
            dir,
            io,
            fsync,
            segment_bytes: segment_bytes.max(1024),
            segments: Vec::new(),
            locations: BTreeMap::new(),
            dirty: false,
            state_json: None,
            next_hint: 0,
            acked_hint: 0,
            recovery: Recovery::default(),
            _lock: lock,
        };
        let count = ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            spool.load_segment(id, i + 1 == count)?;
        }
        spool.next_hint = spool.locations.keys().next_back().map_or(0, |i| i + 1);
        if names.iter().any(|n| n == LEGACY_STATE) {
            if spool.state_json.is_none() {
                spool.migrate_legacy_state()?;
            } else {
                // A migration interrupted after its state record was durable.
                spool
                    .io
                    .remove(&spool.dir.join(LEGACY_STATE))
                    .map_err(|e| io_err("delete old spool state", e))?;
            }
        }
        Ok(spool)
    }

    /// What recovery found.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Spools of earlier versions kept the state in `state.json`: copy it into the
    /// log (durably, unless `Fsync::Never`), then delete the file.
    fn migrate_legacy_state(&mut self) -> Result<()> {
        let path = self.dir.join(LEGACY_STATE);
        let bytes = match self.io.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read spool state", e)),
        };
        let state: SpoolState =
            crate::encoding::parse_json(&bytes, 16 * 1024 * 1024, "spool state")
                .map_err(|e| Error::new(ErrorCode::Storage, e.message().to_owned()))?;
        self.save(&state, true)?;
        self.io
            .remove(&path)
            .map_err(|e| io_err("delete old spool state", e))?;
        if self.fsync != Fsync::Never {
            self.io
                .sync_dir(&self.dir)
                .map_err(|e| io_err("fsync spool directory", e))?;
        }
        Ok(())
    }

    fn load_segment(&mut self, id: u64, is_last: bool) -> Result<()> {
        let path = self.dir.join(segment_name(id));
        let mut file = self
            .io
            .open(&path, false)
            .map_err(|e| io_err("open segment", e))?;
        let size = file.size().map_err(|e| io_err("read segment", e))?;
        let size = usize::try_from(size)
            .map_err(|_| Error::new(ErrorCode::Storage, "segment too large"))?;
        let mut data = vec![0u8; size];
        file.read_at(0, &mut data)
            .map_err(|e| io_err("read segment", e))?;
        let mut off = 0usize;
        let mut last = None;
        let mut corrupt = false;
        while off < data.len() {
            let rest = &data[off..];
            if rest.len() < HEADER {
                corrupt = true;
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if len < BODY_FIXED as u32 || len > MAX_RECORD || rest.len() - HEADER < len as usize {
                corrupt = true;
                break;
            }
            let body = &rest[HEADER..HEADER + len as usize];
            if crc32(body) != crc {
                corrupt = true;
                break;
            }
            let u64_at = |a: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&body[a..a + 8]);
                b
            };
            let index = u64::from_le_bytes(u64_at(0));
            let time = i64::from_le_bytes(u64_at(9));
            let kind = body[8];
            if kind == KIND_STATE {
                self.state_json = Some(body[BODY_FIXED..].to_vec());
            } else if let Some(category) = category_of(kind) {
                self.locations.insert(
                    index,
                    Loc {
                        seg: id,
                        off: off as u64,
                        len,
                        category,
                        time,
                    },
                );
                last = Some(last.map_or(index, |l: u64| l.max(index)));
            } else {
                corrupt = true;
                break;
            }
            off += HEADER + len as usize;
        }
        if corrupt {
            if is_last {
                self.recovery.truncated_bytes += (data.len() - off) as u64;
                file.truncate(off as u64)
                    .map_err(|e| io_err("truncate torn tail", e))?;
                file.sync_data().map_err(|e| io_err("fsync segment", e))?;
            } else {
                self.recovery.corrupt_segments += 1;
            }
        }
        self.segments.push(Segment {
            id,
            last,
            path,
            len: off as u64,
            file,
        });
        Ok(())
    }

    fn segment_mut(&mut self, id: u64) -> Result<&mut Segment> {
        let pos = self
            .segments
            .binary_search_by_key(&id, |s| s.id)
            .map_err(|_| Error::new(ErrorCode::Storage, "spooled record missing"))?;
        Ok(&mut self.segments[pos])
    }

    /// Makes the active segment durable if anything was appended since it last was.
    fn sync_active(&mut self) -> Result<()> {
        if self.dirty && self.fsync != Fsync::Never {
            if let Some(s) = self.segments.last_mut() {
                s.file.sync_data().map_err(|e| io_err("fsync spool", e))?;
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// Starts a new active segment, named at least `hint`, beginning with a copy of
    /// the current state unless `with_state` is false (the caller writes one next).
    fn roll(&mut self, hint: u64, with_state: bool) -> Result<()> {
        // The old segment's state and events must be durable before a newer
        // segment can be the one recovery starts from.
        self.sync_active()?;
        let id = match self.segments.last() {
            Some(s) => hint.max(s.id + 1),
            None => hint,
        };
        let path = self.dir.join(segment_name(id));
        let file = self
            .io
            .open(&path, true)
            .map_err(|e| io_err("create segment", e))?;
        if self.fsync != Fsync::Never {
            self.io
                .sync_dir(&self.dir)
                .map_err(|e| io_err("fsync spool directory", e))?;
        }
        self.segments.push(Segment {
            id,
            last: None,
            path,
            len: 0,
            file,
        });
        if with_state {
            if let Some(json) = self.state_json.take() {
                let mut buf = Vec::with_capacity(HEADER + BODY_FIXED + json.len());
                frame_into(&mut buf, 0, KIND_STATE, 0, &json);
                let r = self.write_active(&buf);
                self.state_json = Some(json);
                r?;
            }
        }
        Ok(())
    }

    /// Makes sure there is an active segment with room; `hint` names a new one.
    fn prepare(&mut self, hint: u64, with_state: bool) -> Result<()> {
        match self.segments.last() {
            Some(s) if s.len < self.segment_bytes => Ok(()),
            _ => self.roll(hint, with_state),
        }
    }

    /// Appends `buf` (whole frames) to the active segment with one write. On a
    /// failed write the segment is cut back to its last whole record, so a later
    /// append never lands behind garbage.
    fn write_active(&mut self, buf: &[u8]) -> Result<()> {
        let s = self
            .segments
            .last_mut()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "no active segment"))?;
        if let Err(e) = s.file.append(buf) {
            if s.file.truncate(s.len).is_err() {
                // Unknown tail: start a fresh segment at the next append.
                s.len = u64::MAX;
            }
            return Err(io_err("append to spool", e));
        }
        s.len += buf.len() as u64;
        self.dirty = true;
        if self.fsync == Fsync::Always {
            self.sync_active()?;
        }
        Ok(())
    }

    fn save(&mut self, state: &SpoolState, durable: bool) -> Result<()> {
        let json = serde_json::to_vec(state)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        let hint = self
            .next_hint
            .max(state.acked_upto)
            .max(state.inflight.as_ref().map_or(0, |i| i.upto));
        self.prepare(hint, false)?;
        let mut buf = Vec::with_capacity(HEADER + BODY_FIXED + json.len());
        frame_into(&mut buf, 0, KIND_STATE, 0, &json);
        self.write_active(&buf)?;
        self.state_json = Some(json);
        self.acked_hint = state.acked_upto;
        if durable {
            self.sync_active()?;
        }
        // A segment that filled up with state records alone is freed here.
        if self.releasable(self.acked_hint) {
            self.release(self.acked_hint)?;
        }
        Ok(())
    }

    /// Whether a segment other than the active one holds nothing below `upto`.
    fn releasable(&self, upto: u64) -> bool {
        let n = self.segments.len().saturating_sub(1);
        self.segments[..n]
            .iter()
            .any(|s| s.last.is_none_or(|l| l < upto))
    }

    /// Reads the bodies of `indexes`, one read per run of adjacent records.
    fn read_bodies(&mut self, indexes: &[u64]) -> Result<Vec<(u64, Loc, Vec<u8>)>> {
        let missing = || Error::new(ErrorCode::Storage, "spooled record missing");
        let mut out = Vec::with_capacity(indexes.len());
        let mut i = 0;
        while i < indexes.len() {
            let first = *self.locations.get(&indexes[i]).ok_or_else(missing)?;
            let mut run = vec![(indexes[i], first)];
            let mut end = first.off + (HEADER as u64) + first.len as u64;
            while let Some(&next) = indexes.get(i + run.len()) {
                match self.locations.get(&next) {
                    Some(l) if l.seg == first.seg && l.off == end => {
                        run.push((next, *l));
                        end = l.off + (HEADER as u64) + l.len as u64;
                    }
                    _ => break,
                }
            }
            let mut data = vec![0u8; (end - first.off) as usize];
            self.segment_mut(first.seg)?
                .file
                .read_at(first.off, &mut data)
                .map_err(|e| io_err("read record", e))?;
            for (index, loc) in &run {
                let a = (loc.off - first.off) as usize + HEADER;
                out.push((*index, *loc, data[a..a + loc.len as usize].to_vec()));
            }
            i += run.len();
        }
        Ok(out)
    }
}

impl SpoolStorage for FileSpool {
    fn append(&mut self, rec: &Record) -> Result<()> {
        self.append_many(std::slice::from_ref(rec))
    }

    fn append_many(&mut self, recs: &[Record]) -> Result<()> {
        let Some(first) = recs.first() else {
            return Ok(());
        };
        self.prepare(first.index, true)?;
        let total: usize = recs
            .iter()
            .map(|r| HEADER + BODY_FIXED + r.json.len())
            .sum();
        let mut buf = Vec::with_capacity(total);
        let mut locs = Vec::with_capacity(recs.len());
        let (seg, base) = {
            let s = self.segments.last().expect("prepared above");
            (s.id, s.len)
        };
        for r in recs {
            let off = base + buf.len() as u64;
            let len = frame_into(&mut buf, r.index, kind_of(r.category), r.time, &r.json);
            locs.push((
                r.index,
                Loc {
                    seg,
                    off,
                    len,
                    category: r.category,
                    time: r.time,
                },
            ));
        }
        self.write_active(&buf)?;
        let s = self.segments.last_mut().expect("prepared above");
        for (index, loc) in locs {
            s.last = Some(s.last.map_or(index, |l| l.max(index)));
            self.next_hint = self.next_hint.max(index + 1);
            self.locations.insert(index, loc);
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.sync_active()
    }

    fn scan(&mut self, from: u64) -> Result<Vec<RecordMeta>> {
        Ok(self
            .locations
            .range(from..)
            .map(|(&index, l)| RecordMeta {
                index,
                category: l.category,
                time: l.time,
                size: (l.len as usize - BODY_FIXED) as u64,
            })
            .collect())
    }

    fn read(&mut self, indexes: &[u64]) -> Result<Vec<Record>> {
        Ok(self
            .read_bodies(indexes)?
            .into_iter()
            .map(|(index, loc, mut body)| {
                body.drain(..BODY_FIXED);
                Record {
                    index,
                    category: loc.category,
                    time: loc.time,
                    json: body,
                }
            })
            .collect())
    }

    fn load_state(&mut self) -> Result<Option<SpoolState>> {
        match &self.state_json {
            None => Ok(None),
            Some(b) => {
                let s: SpoolState = crate::encoding::parse_json(b, 16 * 1024 * 1024, "spool state")
                    .map_err(|e| Error::new(ErrorCode::Storage, e.message().to_owned()))?;
                self.acked_hint = s.acked_upto;
                Ok(Some(s))
            }
        }
    }

    fn save_state(&mut self, state: &SpoolState) -> Result<()> {
        self.save(state, true)
    }

    fn save_state_unsynced(&mut self, state: &SpoolState) -> Result<()> {
        self.save(state, false)
    }

    fn release(&mut self, upto: u64) -> Result<()> {
        // Delete whole segments with nothing at or above `upto`, never the active
        // (last) one, and only once the state that says they are done is durable:
        // otherwise a power loss could bring back an older state whose events are
        // gone. (A deleted segment that a power loss brings back is harmless: its
        // events are below the acknowledged prefix, its state records older.)
        if !self.releasable(upto) {
            return Ok(());
        }
        self.sync_active()?;
        let active = self.segments.pop().expect("releasable needs two segments");
        let mut kept = Vec::with_capacity(self.segments.len() + 1);
        let mut result = Ok(());
        for s in std::mem::take(&mut self.segments) {
            if result.is_ok() && s.last.is_none_or(|l| l < upto) {
                match self.io.remove(&s.path) {
                    Ok(()) => {
                        if s.last.is_some() {
                            self.locations.retain(|_, l| l.seg != s.id);
                        }
                        continue;
                    }
                    Err(e) => result = Err(io_err("delete segment", e)),
                }
            }
            kept.push(s);
        }
        kept.push(active);
        self.segments = kept;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Limits, Outbox};
    use crate::telemetry::{Event, GenericEvent};

    fn ev(n: u32) -> Event {
        Event::Generic(GenericEvent {
            time: "2026-11-23T12:00:00Z".into(),
            name: format!("e{n}"),
            data: serde_json::json!({"pad": "x".repeat(200)}),
        })
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edrlink-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut segs: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        segs.sort();
        segs
    }

    #[test]
    fn crc_matches_known_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Every length around the 8-byte stride agrees with the bitwise definition.
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..data.len() {
            let mut c = !0u32;
            for &b in &data[..n] {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(crc32(&data[..n]), !c, "length {n}");
        }
    }

    #[test]
    fn survives_reopen_and_truncates_torn_tail() {
        let dir = tmpdir("reopen");
        {
            let mut o = Outbox::open(
                Box::new(FileSpool::open_with(&dir, Fsync::Batch, 2048).unwrap()),
                Limits::default(),
            )
            .unwrap();
            for i in 0..20 {
                o.push(&ev(i), 0).unwrap();
            }
            o.begin_batch(5, u64::MAX, "b1".into(), "t".into()).unwrap();
        }
        // Simulate a crash mid-append: garbage at the end of the last segment.
        let segs = segments(&dir);
        assert!(segs.len() > 2, "small segments roll");
        OpenOptions::new()
            .append(true)
            .open(segs.last().unwrap())
            .unwrap()
            .write_all(&[9, 0, 0, 0, 1, 2])
            .unwrap();
        let fs_ = FileSpool::open_with(&dir, Fsync::Batch, 2048).unwrap();
        assert_eq!(fs_.recovery().truncated_bytes, 6);
        let mut o = Outbox::open(Box::new(fs_), Limits::default()).unwrap();
        assert_eq!(o.len(), 20);
        assert_eq!(
            o.inflight().unwrap().batch_id,
            "b1",
            "in-flight batch identity survives"
        );
        assert_eq!(o.inflight_events().unwrap().len(), 5);
        o.ack_inflight(0).unwrap();
        let (inf, evs) = o
            .begin_batch(100, u64::MAX, "b2".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!((inf.seq, evs.len()), (2, 15));
        o.ack_inflight(0).unwrap();
        drop(o);
        let o = Outbox::open(
            Box::new(FileSpool::open_with(&dir, Fsync::Batch, 2048).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert!(o.is_empty());
        assert_eq!(o.next_seq(), 3);
        assert_eq!(segments(&dir).len(), 1, "acknowledged segments are deleted");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_events_are_one_write_and_state_lives_in_the_log() {
        let dir = tmpdir("many");
        let mut o = Outbox::open(
            Box::new(FileSpool::open(&dir, Fsync::Batch).unwrap()),
            Limits::default(),
        )
        .unwrap();
        let evs: Vec<Event> = (0..10).map(ev).collect();
        assert_eq!(o.push_many(&evs, 0).unwrap(), 0, "none refused");
        let (inf, got) = o
            .begin_batch(4, u64::MAX, "b1".into(), "t".into())
            .unwrap()
            .unwrap();
        assert_eq!((inf.seq, got.len()), (1, 4));
        drop(o);
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(!names.iter().any(|n| n == "state.json"), "{names:?}");
        let mut o = Outbox::open(
            Box::new(FileSpool::open(&dir, Fsync::Batch).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(o.inflight().unwrap().batch_id, "b1");
        assert_eq!(o.read_all().unwrap(), evs);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spool_of_an_earlier_version_is_migrated() {
        // The earlier layout: events in seg-<first index>.log, state in state.json.
        let dir = tmpdir("legacy");
        fs::create_dir_all(&dir).unwrap();
        let mut seg = Vec::new();
        for i in 0..3u64 {
            let json = serde_json::to_vec(&ev(i as u32)).unwrap();
            frame_into(&mut seg, i, KIND_TELEMETRY, 7, &json);
        }
        fs::write(dir.join(segment_name(0)), &seg).unwrap();
        let state = SpoolState {
            acked_upto: 1,
            next_seq: 5,
            ..SpoolState::default()
        };
        fs::write(dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        let mut o = Outbox::open(
            Box::new(FileSpool::open(&dir, Fsync::Batch).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert!(!dir.join("state.json").exists(), "migrated into the log");
        assert_eq!((o.len(), o.next_seq()), (2, 5));
        assert_eq!(o.read_all().unwrap(), vec![ev(1), ev(2)]);
        drop(o);
        let o = Outbox::open(
            Box::new(FileSpool::open(&dir, Fsync::Batch).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(
            (o.len(), o.next_seq()),
            (2, 5),
            "the state survives the migration"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_record_kind_ends_reading_without_panic() {
        let dir = tmpdir("kind");
        fs::create_dir_all(&dir).unwrap();
        let mut seg = Vec::new();
        frame_into(
            &mut seg,
            0,
            KIND_TELEMETRY,
            0,
            &serde_json::to_vec(&ev(0)).unwrap(),
        );
        frame_into(&mut seg, 1, 7, 0, b"{}");
        fs::write(dir.join(segment_name(0)), &seg).unwrap();
        let s = FileSpool::open(&dir, Fsync::Batch).unwrap();
        assert_eq!(
            s.recovery().truncated_bytes,
            (HEADER + BODY_FIXED + 2) as u64
        );
        let o = Outbox::open(Box::new(s), Limits::default()).unwrap();
        assert_eq!(o.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_state_record_is_a_storage_error() {
        let dir = tmpdir("badstate");
        fs::create_dir_all(&dir).unwrap();
        let mut seg = Vec::new();
        frame_into(&mut seg, 0, KIND_STATE, 0, b"{\"v\":");
        fs::write(dir.join(segment_name(0)), &seg).unwrap();
        let s = FileSpool::open(&dir, Fsync::Batch).unwrap();
        assert_eq!(
            Outbox::open(Box::new(s), Limits::default())
                .unwrap_err()
                .code(),
            ErrorCode::Storage
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_only_churn_does_not_grow_the_spool() {
        // A full queue refusing every new event writes a state record per refusal;
        // the segments they fill are released.
        let dir = tmpdir("churn");
        let mut o = Outbox::open(
            Box::new(FileSpool::open_with(&dir, Fsync::Never, 2048).unwrap()),
            Limits {
                max_events: 1,
                ..Limits::default()
            },
        )
        .unwrap();
        o.push(&ev(0), 0).unwrap();
        for i in 1..500 {
            assert_eq!(o.push(&ev(i), 0).unwrap_err().code(), ErrorCode::QueueFull);
        }
        assert!(segments(&dir).len() <= 3, "{:?}", segments(&dir));
        drop(o);
        let mut o = Outbox::open(
            Box::new(FileSpool::open_with(&dir, Fsync::Never, 2048).unwrap()),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(o.read_all().unwrap(), vec![ev(0)]);
        assert_eq!(o.drops().get("queue_full/telemetry"), Some(&499));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn spool_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmpdir("perm");
        let mut o = Outbox::open(
            Box::new(FileSpool::open(&dir, Fsync::Batch).unwrap()),
            Limits::default(),
        )
        .unwrap();
        o.push(&ev(1), 0).unwrap();
        o.begin_batch(1, u64::MAX, "b".into(), "t".into()).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o077,
                0,
                "{} is private",
                p.display()
            );
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_process_per_spool() {
        let dir = tmpdir("lock");
        let _a = FileSpool::open(&dir, Fsync::Never).unwrap();
        assert_eq!(
            FileSpool::open(&dir, Fsync::Never).err().unwrap().code(),
            ErrorCode::Storage
        );
    }
}
