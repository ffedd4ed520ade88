//! Output files a verb writes (`--trace`, `--pcap`): never half-written, and never anything
//! but a regular file replaced.
//!
//! What a path names decides how it is written:
//! - `-`: standard output;
//! - an existing FIFO, device, socket (`/dev/null`, `/dev/stdout`, a named pipe): opened and
//!   written in place, as a shell's `>` does; replacing it would turn the device node into a
//!   file (as root, `rename` over `/dev/null` succeeds);
//! - a regular file, or nothing yet: written to a staging file beside it and renamed over it
//!   once the run succeeded, so a failed run leaves the old file as it was;
//! - a symbolic link: what it points to, by the rules above (the link itself is kept);
//! - a directory, a missing directory, an unwritable place: wrong input, named, before
//!   anything runs.
//!
//! Whole files written at once (the plots' pictures, [`write_file`]) are staged and renamed
//! likewise, but only over a regular file or nothing: a picture is never written into a
//! device or a FIFO. Their directory ([`out_dir`]) is created if missing, and refused if
//! something else is there or it cannot be written.
//!
//! A staging file is removed when its [`Output`] is dropped without being committed (every
//! error path, a panic's unwinding) and, through [`install_cleanup_on_signals`], when the
//! process is ended by SIGINT, SIGTERM, SIGHUP or SIGPIPE.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use signals::{register, unregister};
#[cfg(target_os = "linux")]
pub use signals::install_cleanup_on_signals;

/// Why an output path cannot be written (the caller reports it as wrong input).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct OutputError {
    pub path: String,
    pub what: String,
}

fn err(path: &Path, what: impl std::fmt::Display) -> OutputError {
    OutputError { path: path.display().to_string(), what: what.to_string() }
}

/// How an output path is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Stdout,
    /// An existing file that is not a regular file: opened for writing, never replaced.
    InPlace(PathBuf),
    /// A regular file (or none yet) at `dest`: staged beside it, renamed over it at the end.
    Staged(PathBuf),
}

impl Plan {
    /// Decides how `path` is written, or why it cannot be.
    pub fn of(path: &Path) -> Result<Plan, OutputError> {
        if path.as_os_str() == "-" {
            return Ok(Plan::Stdout);
        }
        let target = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(path).map_err(|e| err(path, format!("a symbolic link to nothing that exists ({e})")))?
            }
            _ => path.to_path_buf(),
        };
        match fs::metadata(&target) {
            Ok(m) if m.is_dir() => Err(err(path, "is a directory")),
            Ok(m) if m.is_file() => Ok(Plan::Staged(target)),
            Ok(m) => {
                let ft = m.file_type();
                let special = ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket();
                match special {
                    true => Ok(Plan::InPlace(target)),
                    false => Err(err(path, "is neither a file nor a device")),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = parent_dir(&target);
                match fs::metadata(dir) {
                    Ok(m) if m.is_dir() => Ok(Plan::Staged(target)),
                    Ok(_) => Err(err(path, format!("{} is not a directory", dir.display()))),
                    Err(e) => Err(err(path, format!("directory {}: {}", dir.display(), io_text(&e)))),
                }
            }
            Err(e) => Err(err(path, io_text(&e))),
        }
    }

    /// The file this plan writes, to tell two outputs apart (none for standard output).
    fn identity(&self) -> Option<PathBuf> {
        match self {
            Plan::Stdout => None,
            Plan::InPlace(p) | Plan::Staged(p) => {
                let dir = fs::canonicalize(parent_dir(p)).unwrap_or_else(|_| parent_dir(p).to_path_buf());
                Some(dir.join(p.file_name().unwrap_or_default()))
            }
        }
    }
}

/// `path`'s directory (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// An I/O error as a sentence, without Rust's "(os error N)".
pub fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Plans every output of a run (`(option, path)` pairs) before anything runs: each must be
/// writable, and no two may name the same file (a device may be named twice: `/dev/null`).
pub fn plan_all(outputs: &[(&str, &Path)]) -> Result<Vec<Plan>, OutputError> {
    let mut plans: Vec<Plan> = Vec::with_capacity(outputs.len());
    for (opt, path) in outputs {
        let plan = Plan::of(path)?;
        for (j, other) in plans.iter().enumerate() {
            let same = match (&plan, other) {
                (Plan::Stdout, Plan::Stdout) => true,
                (Plan::Staged(_), Plan::Staged(_)) => plan.identity() == other.identity(),
                _ => false,
            };
            if same {
                return Err(err(path, format!("given to both {} and {opt}", outputs[j].0)));
            }
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Makes `dir` ready for output files: created (with its parents) if missing; refused, named,
/// when something that is not a directory is there or nothing can be created in it (probed
/// by creating and removing a staging file, so it holds for root's exceptions too).
pub fn out_dir(dir: &Path) -> Result<(), OutputError> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(err(dir, "exists and is not a directory")),
        Ok(_) => {}
        Err(_) => fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot be created: {}", io_text(&e))))?,
    }
    let (probe, _) = create_staging(&dir.join("probe")).map_err(|e| err(dir, format!("cannot be written: {}", io_text(&e))))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

/// Writes `bytes` as the whole of `path`: staged beside it and renamed over it, so a reader
/// never sees half a file. Only a regular file (through a symbolic link: its target) or
/// nothing may be at `path`; anything else is refused, named, and left as it was.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let plan = Plan::of(path)?;
    if !matches!(plan, Plan::Staged(_)) {
        return Err(err(path, "exists and is not a regular file"));
    }
    let (out, mut w) = Output::open(&plan, path)?;
    // The writer's own errors already name the path: only their kind is added here.
    w.write_all(bytes).and_then(|_| w.flush()).map_err(|e| err(path, e.kind()))?;
    drop(w);
    out.commit()
}

/// An output being written. Dropped without [`Output::commit`], its staging file is removed.
#[derive(Debug)]
pub struct Output {
    /// The path as the user gave it, for messages.
    shown: String,
    staged: Option<Staging>,
}

#[derive(Debug)]
struct Staging {
    tmp: PathBuf,
    dest: PathBuf,
    slot: usize,
}

impl Output {
    /// Opens the output `plan` describes; `shown` names it in messages.
    pub fn open(plan: &Plan, shown: &Path) -> Result<(Output, Box<dyn Write>), OutputError> {
        let shown_s = shown.display().to_string();
        match plan {
            Plan::Stdout => {
                let w = Named { name: "standard output".into(), inner: io::stdout() };
                Ok((Output { shown: "standard output".into(), staged: None }, Box::new(w)))
            }
            Plan::InPlace(p) => {
                let f = OpenOptions::new().write(true).open(p).map_err(|e| err(shown, io_text(&e)))?;
                Ok((Output { shown: shown_s.clone(), staged: None }, Box::new(Named { name: shown_s, inner: f })))
            }
            Plan::Staged(dest) => {
                let (tmp, f) = create_staging(dest).map_err(|e| err(shown, io_text(&e)))?;
                let slot = register(&tmp);
                let out = Output { shown: shown_s.clone(), staged: Some(Staging { tmp, dest: dest.clone(), slot }) };
                Ok((out, Box::new(Named { name: shown_s, inner: f })))
            }
        }
    }

    /// The path as given (for messages).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Moves a staged file into place; nothing to do for the others.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let Some(s) = self.staged.take() else { return Ok(()) };
        unregister(s.slot);
        fs::rename(&s.tmp, &s.dest).map_err(|e| {
            let _ = fs::remove_file(&s.tmp);
            err(&s.dest, io_text(&e))
        })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(s) = self.staged.take() {
            unregister(s.slot);
            let _ = fs::remove_file(&s.tmp);
        }
    }
}

/// A writer whose errors name the output they happened on ("out.pcap: No space left on
/// device"), so that a message from deep inside a writer says where.
struct Named<W> {
    name: String,
    inner: W,
}

impl<W: Write> Named<W> {
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {}", self.name, io_text(&e)))
    }
}

impl<W: Write> Write for Named<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.named(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.named(e))
    }
}

/// A new file beside `dest`, named after it and this process (`.NAME.PID.partial`), created
/// exclusively: it never opens, follows or truncates anything that was there.
fn create_staging(dest: &Path) -> io::Result<(PathBuf, File)> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let pid = std::process::id();
    for n in 0u32.. {
        let suffix = if n == 0 { String::new() } else { format!(".{n}") };
        let tmp = parent_dir(dest).join(format!(".{name}.{pid}{suffix}.partial"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// Without Linux's signal handling (and libc), staging files are removed on the ordinary
/// paths only.
#[cfg(not(target_os = "linux"))]
fn register(_: &Path) -> usize {
    0
}

#[cfg(not(target_os = "linux"))]
fn unregister(_: usize) {}

#[cfg(not(target_os = "linux"))]
pub fn install_cleanup_on_signals() {}

/// Removing staging files when a signal ends the process.
#[cfg(target_os = "linux")]
mod signals {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::atomic::{AtomicPtr, Ordering};

    /// Staging files to remove if a signal ends the process: C strings leaked while registered,
    /// read by the handler with atomic loads only (async-signal-safe).
    const SLOTS: usize = 8;
    static STAGED: [AtomicPtr<libc::c_char>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

    /// Registers a staging file for removal on a signal; the slot it took (`SLOTS` when all are
    /// taken: then only the ordinary paths remove it).
    pub(super) fn register(tmp: &Path) -> usize {
        let Ok(c) = CString::new(tmp.as_os_str().as_bytes()) else { return SLOTS };
        let raw = c.into_raw();
        for (i, slot) in STAGED.iter().enumerate() {
            if slot.compare_exchange(std::ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return i;
            }
        }
        // SAFETY: `raw` came from `CString::into_raw` above and was published nowhere.
        drop(unsafe { CString::from_raw(raw) });
        SLOTS
    }

    pub(super) fn unregister(slot: usize) {
        let Some(s) = STAGED.get(slot) else { return };
        let raw = s.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !raw.is_null() {
            // SAFETY: every non-null pointer in STAGED came from `CString::into_raw`, and the swap
            // took it out, so it is freed once.
            drop(unsafe { CString::from_raw(raw) });
        }
    }

    extern "C" fn remove_staged_and_die(sig: libc::c_int) {
        for s in &STAGED {
            let p = s.load(Ordering::SeqCst);
            if !p.is_null() {
                // SAFETY: a registered pointer stays valid until unregistered; unlink is
                // async-signal-safe.
                unsafe { libc::unlink(p) };
            }
        }
        // Die of the signal, as the default action would have (the exit status says so).
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    /// Removes registered staging files when SIGINT, SIGTERM, SIGHUP or SIGPIPE ends the
    /// process, then lets the signal end it. SIGPIPE is restored to ending the process (Rust
    /// ignores it): a closed pipe ends the program quietly, as it ends `cat`.
    pub fn install_cleanup_on_signals() {
        let handler = remove_staged_and_die as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            // SAFETY: installing a handler that only makes async-signal-safe calls.
            unsafe { libc::signal(sig, handler) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tcpsim-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn plans_follow_what_the_path_is() {
        let d = tmpdir("plans");
        assert_eq!(Plan::of(Path::new("-")).unwrap(), Plan::Stdout);
        assert_eq!(Plan::of(Path::new("/dev/null")).unwrap(), Plan::InPlace("/dev/null".into()));
        assert!(Plan::of(&d).unwrap_err().to_string().ends_with("is a directory"));
        let f = d.join("f");
        assert_eq!(Plan::of(&f).unwrap(), Plan::Staged(f.clone()));
        assert!(Plan::of(&d.join("no/such")).is_err());
        fs::write(&f, b"x").unwrap();
        std::os::unix::fs::symlink(&f, d.join("l")).unwrap();
        assert_eq!(Plan::of(&d.join("l")).unwrap(), Plan::Staged(fs::canonicalize(&f).unwrap()));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_same_file_twice_is_refused_a_device_twice_is_not() {
        let d = tmpdir("twice");
        let a = d.join("a");
        let e = plan_all(&[("--trace", &a), ("--pcap", &d.join(".").join("a"))]).unwrap_err();
        assert!(e.to_string().contains("given to both --trace and --pcap"), "{e}");
        assert!(plan_all(&[("--trace", Path::new("-")), ("--pcap", Path::new("-"))]).is_err());
        assert!(plan_all(&[("--trace", Path::new("/dev/null")), ("--pcap", Path::new("/dev/null"))]).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_dropped_output_leaves_nothing_a_committed_one_replaces_the_file() {
        let d = tmpdir("commit");
        let f = d.join("out");
        fs::write(&f, b"old").unwrap();
        let (o, mut w) = Output::open(&Plan::of(&f).unwrap(), &f).unwrap();
        w.write_all(b"new").unwrap();
        drop(w);
        drop(o);
        assert_eq!(fs::read(&f).unwrap(), b"old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "the staging file is gone");
        let (o, mut w) = Output::open(&Plan::of(&f).unwrap(), &f).unwrap();
        w.write_all(b"new").unwrap();
        drop(w);
        o.commit().unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"new");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
