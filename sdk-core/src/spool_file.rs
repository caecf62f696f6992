//! The durable spool: an append-only outbox in the agent's data directory
//! (feature `spool`).
//!
//! Layout of `<dir>`:
//! - `seg-<first index, 20 digits>.log` — segment files of framed records:
//!   `u32 LE length | u32 LE CRC-32 (IEEE) of the body | body`, body =
//!   `u64 LE index | u8 category | i64 LE time | event JSON`.
//! - `state.json` — the outbox bookkeeping ([`SpoolState`]), replaced atomically
//!   (write, fsync, rename, fsync directory).
//! - `lock` — held with an exclusive file lock while open: one process per spool.
//!
//! Recovery: segments are read in order; a torn or corrupt tail in the last
//! segment (a crash mid-append) is truncated away; a corrupt record elsewhere
//! ends that segment's reading and is reported in [`FileSpool::recovery`].
//! A segment is deleted only once every record in it is acknowledged or dropped.
//!
//! Durability ([`Fsync`]): every append is a `write(2)`, so a process crash
//! (SIGKILL included) loses nothing already appended. `Fsync::Batch` (default)
//! also fsyncs before a batch is first sent and whenever the state changes, so
//! after a power loss at most the events submitted since the last batch are
//! lost; `Fsync::Always` fsyncs every append; `Fsync::Never` leaves it to the OS.

use crate::error::{Error, ErrorCode, Result};
use crate::spool::{Record, RecordMeta, SpoolState, SpoolStorage};
use crate::telemetry::Category;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// When the spool calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// After every append (survives power loss for every accepted event; slowest).
    Always,
    /// Before a batch is first sent and with every state change (default).
    #[default]
    Batch,
    /// Never (process crashes are still safe; power loss may lose recent events).
    Never,
}

/// Segment size at which a new segment starts.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
const HEADER: usize = 8;
const BODY_FIXED: usize = 17;
/// Largest record accepted when reading (a corrupt length beyond it ends the segment).
const MAX_RECORD: u32 = 32 * 1024 * 1024;

/// What recovery found when the spool was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of torn tail truncated from the last segment.
    pub truncated_bytes: u64,
    /// Segments in which a corrupt record stopped reading early.
    pub corrupt_segments: u32,
}

struct Segment {
    first: u64,
    last: Option<u64>,
    path: PathBuf,
    len: u64,
}

/// The on-disk spool storage.
pub struct FileSpool {
    dir: PathBuf,
    fsync: Fsync,
    segment_bytes: u64,
    segments: Vec<Segment>,
    active: Option<File>,
    // index -> (segment position in `segments` by first index, offset, length)
    locations: BTreeMap<u64, (u64, u64, u32)>,
    dirty: bool,
    recovery: Recovery,
    _lock: File,
}

fn io_err(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("{what}: {e}"))
}

fn crc32(data: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE 802.3, reflected), table built once.
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
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
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Creates `dir` (and parents) readable by the owner only: queued events can be
/// sensitive (paths, hashes, URLs), like the credential next to them.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)
            .map_err(|e| io_err("create spool directory", e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("restrict spool directory", e))?;
    }
    #[cfg(not(unix))]
    b.create(dir)
        .map_err(|e| io_err("create spool directory", e))?;
    Ok(())
}

/// Opens a file created with owner-only permissions.
fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.log")
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
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

impl FileSpool {
    /// Opens (or creates) a spool in `dir`.
    pub fn open(dir: impl AsRef<Path>, fsync: Fsync) -> Result<FileSpool> {
        FileSpool::open_with(dir, fsync, DEFAULT_SEGMENT_BYTES)
    }

    /// Opens with a custom segment size.
    pub fn open_with(dir: impl AsRef<Path>, fsync: Fsync, segment_bytes: u64) -> Result<FileSpool> {
        let dir = dir.as_ref().to_path_buf();
        create_private_dir(&dir)?;
        let lock = private_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(|e| io_err("open lock file", e))?;
        lock.try_lock().map_err(|_| {
            Error::new(
                ErrorCode::Storage,
                format!("spool {} is in use by another process", dir.display()),
            )
        })?;
        let mut firsts: Vec<u64> = fs::read_dir(&dir)
            .map_err(|e| io_err("list spool directory", e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_prefix("seg-")?
                    .strip_suffix(".log")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        firsts.sort_unstable();
        let mut spool = FileSpool {
            dir: dir.clone(),
            fsync,
            segment_bytes: segment_bytes.max(1024),
            segments: Vec::new(),
            active: None,
            locations: BTreeMap::new(),
            dirty: false,
            recovery: Recovery::default(),
            _lock: lock,
        };
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            spool.load_segment(first, i + 1 == count)?;
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

    fn load_segment(&mut self, first: u64, is_last: bool) -> Result<()> {
        let path = self.dir.join(segment_name(first));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err("open segment", e))?;
        let mut data = Vec::new();
        f.read_to_end(&mut data)
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
            let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
            let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
            if len < BODY_FIXED as u32 || len > MAX_RECORD || rest.len() < HEADER + len as usize {
                corrupt = true;
                break;
            }
            let body = &rest[HEADER..HEADER + len as usize];
            if crc32(body) != crc {
                corrupt = true;
                break;
            }
            let index = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
            self.locations.insert(index, (first, off as u64, len));
            last = Some(index);
            off += HEADER + len as usize;
        }
        if corrupt {
            if is_last {
                self.recovery.truncated_bytes += (data.len() - off) as u64;
                f.set_len(off as u64)
                    .map_err(|e| io_err("truncate torn tail", e))?;
                f.sync_all().map_err(|e| io_err("fsync segment", e))?;
            } else {
                self.recovery.corrupt_segments += 1;
            }
        }
        if is_last {
            f.seek(SeekFrom::End(0))
                .map_err(|e| io_err("seek segment", e))?;
            self.active = Some(f);
        }
        self.segments.push(Segment {
            first,
            last,
            path,
            len: off as u64,
        });
        Ok(())
    }

    fn read_body(&self, index: u64) -> Result<Vec<u8>> {
        let &(first, off, len) = self
            .locations
            .get(&index)
            .ok_or_else(|| Error::new(ErrorCode::Storage, "spooled record missing"))?;
        let mut f = File::open(self.dir.join(segment_name(first)))
            .map_err(|e| io_err("open segment", e))?;
        f.seek(SeekFrom::Start(off + HEADER as u64))
            .map_err(|e| io_err("seek segment", e))?;
        let mut body = vec![0u8; len as usize];
        f.read_exact(&mut body)
            .map_err(|e| io_err("read record", e))?;
        Ok(body)
    }

    fn roll(&mut self, first: u64) -> Result<()> {
        if let Some(f) = self.active.take() {
            if self.fsync != Fsync::Never {
                f.sync_all().map_err(|e| io_err("fsync segment", e))?;
            }
        }
        let path = self.dir.join(segment_name(first));
        let f = private_options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err("create segment", e))?;
        if self.fsync != Fsync::Never {
            sync_dir(&self.dir)?;
        }
        self.segments.push(Segment {
            first,
            last: None,
            path,
            len: 0,
        });
        self.active = Some(f);
        Ok(())
    }
}

fn category_byte(c: Category) -> u8 {
    match c {
        Category::Telemetry => 0,
        Category::Detection => 1,
    }
}

fn parse_body(body: &[u8]) -> Result<Record> {
    let bad = || Error::new(ErrorCode::Storage, "corrupt spool record");
    if body.len() < BODY_FIXED {
        return Err(bad());
    }
    Ok(Record {
        index: u64::from_le_bytes(body[0..8].try_into().map_err(|_| bad())?),
        category: if body[8] == 1 {
            Category::Detection
        } else {
            Category::Telemetry
        },
        time: i64::from_le_bytes(body[9..17].try_into().map_err(|_| bad())?),
        json: body[17..].to_vec(),
    })
}

impl SpoolStorage for FileSpool {
    fn append(&mut self, rec: &Record) -> Result<()> {
        let needs_roll = match self.segments.last() {
            None => true,
            Some(s) => s.len >= self.segment_bytes,
        };
        if needs_roll || self.active.is_none() {
            self.roll(rec.index)?;
        }
        let mut body = Vec::with_capacity(BODY_FIXED + rec.json.len());
        body.extend_from_slice(&rec.index.to_le_bytes());
        body.push(category_byte(rec.category));
        body.extend_from_slice(&rec.time.to_le_bytes());
        body.extend_from_slice(&rec.json);
        let mut frame = Vec::with_capacity(HEADER + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let f = self.active.as_mut().expect("rolled above");
        f.write_all(&frame)
            .map_err(|e| io_err("append to spool", e))?;
        if self.fsync == Fsync::Always {
            f.sync_data().map_err(|e| io_err("fsync spool", e))?;
        } else {
            self.dirty = true;
        }
        let seg = self.segments.last_mut().expect("rolled above");
        self.locations
            .insert(rec.index, (seg.first, seg.len, body.len() as u32));
        seg.len += frame.len() as u64;
        seg.last = Some(rec.index);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if self.dirty && self.fsync != Fsync::Never {
            if let Some(f) = &self.active {
                f.sync_data().map_err(|e| io_err("fsync spool", e))?;
            }
        }
        self.dirty = false;
        Ok(())
    }

    fn scan(&mut self, from: u64) -> Result<Vec<RecordMeta>> {
        let idx: Vec<u64> = self.locations.range(from..).map(|(i, _)| *i).collect();
        idx.into_iter()
            .map(|i| {
                let r = parse_body(&self.read_body(i)?)?;
                Ok(RecordMeta {
                    index: r.index,
                    category: r.category,
                    time: r.time,
                    size: r.json.len() as u64,
                })
            })
            .collect()
    }

    fn read(&mut self, indexes: &[u64]) -> Result<Vec<Record>> {
        indexes
            .iter()
            .map(|&i| parse_body(&self.read_body(i)?))
            .collect()
    }

    fn load_state(&mut self) -> Result<Option<SpoolState>> {
        match fs::read(self.dir.join("state.json")) {
            Ok(b) => crate::encoding::parse_json(&b, 16 * 1024 * 1024, "spool state")
                .map(Some)
                .map_err(|e| Error::new(ErrorCode::Storage, e.message().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read spool state", e)),
        }
    }

    fn save_state(&mut self, state: &SpoolState) -> Result<()> {
        let json = serde_json::to_vec(state)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        if self.fsync == Fsync::Never {
            let tmp = self.dir.join("state.tmp");
            private_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .and_then(|mut f| f.write_all(&json))
                .map_err(|e| io_err("write spool state", e))?;
            return fs::rename(&tmp, self.dir.join("state.json"))
                .map_err(|e| io_err("rename spool state", e));
        }
        self.sync()?;
        write_atomic(&self.dir.join("state.json"), &json, Some(0o600))
    }

    fn release(&mut self, upto: u64) -> Result<()> {
        // Delete whole segments below `upto`, never the active (last) one.
        while self.segments.len() > 1 {
            let s = &self.segments[0];
            let done = s.last.is_none_or(|l| l < upto);
            if !done {
                break;
            }
            fs::remove_file(&s.path).map_err(|e| io_err("delete segment", e))?;
            let first = s.first;
            self.locations.retain(|_, loc| loc.0 != first);
            self.segments.remove(0);
        }
        Ok(())
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

    #[test]
    fn crc_matches_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
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
        let mut segs: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        segs.sort();
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
        let left = fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count();
        assert_eq!(left, 1, "acknowledged segments are deleted");
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
