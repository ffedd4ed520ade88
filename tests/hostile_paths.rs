//! `tcpsim run --trace/--pcap` pointed at paths that are not plain files: a FIFO, a device
//! (`/dev/null` itself, behind a stand-in bound over it in a private mount namespace), a
//! symbolic link, a directory, a full file system, and a run killed half-way. Whatever
//! happens, nothing but regular files may change: each test snapshots the directory it
//! works in (type, inode, link target of every entry) and compares.
//!
//! Devices, mounts and namespaces need root, which the project's machines and CI have; as
//! another user these tests fail, saying so, rather than pass without checking.
#![cfg(target_os = "linux")]

mod scenario_text;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tcpsim");

fn tcpsim(args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("tcpsim runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpsim-hostile-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn need_root() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (mknod, mount, unshare)");
}

/// Every entry of `dir` that is not a regular file: its kind, inode and link target.
fn non_regular(dir: &Path) -> BTreeMap<String, (String, u64, Option<PathBuf>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let m = fs::symlink_metadata(e.path()).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char device"
            } else if ft.is_dir() {
                "directory"
            } else {
                return None;
            };
            let target = ft.is_symlink().then(|| fs::read_link(e.path()).unwrap());
            Some((e.file_name().to_string_lossy().into_owned(), (kind.to_string(), m.ino(), target)))
        })
        .collect()
}

/// Names in `dir`, to find leftover staging files.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_fifo_is_written_in_place_not_replaced() {
    let dir = scratch("fifo");
    let fifo = dir.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let before = non_regular(&dir);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    let out = tcpsim(&["run", "--trace", fifo.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = reader.join().unwrap();
    assert!(got.starts_with(b"{\"t\":"), "the reader got the trace");
    assert_eq!(non_regular(&dir), before);
    assert_eq!(names(&dir), ["pipe"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_device_is_written_in_place_not_replaced() {
    need_root();
    let dir = scratch("device");
    let dev = dir.join("null");
    let c = std::ffi::CString::new(dev.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0, "mknod");
    let before = non_regular(&dir);
    let out = tcpsim(&["run", "--trace", dev.to_str().unwrap(), "--pcap", dev.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(non_regular(&dir), before, "still the same device node");
    assert_eq!(names(&dir), ["null"]);
    fs::remove_dir_all(&dir).unwrap();
}

/// `/dev/null` by its own name: a stand-in device is bound over it in a private mount
/// namespace, so the real one is never at stake, and the stand-in must come out unchanged.
#[test]
fn dev_null_itself_stays_a_device() {
    need_root();
    let dir = scratch("devnull");
    let standin = dir.join("standin");
    let c = std::ffi::CString::new(standin.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) }, 0, "mknod");
    let script = format!(
        "mount --bind {s} /dev/null && {BIN} run --trace /dev/null --pcap /dev/null >/dev/null; echo rc=$?; stat -c '%F %i' /dev/null",
        s = standin.display()
    );
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().expect("unshare runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let ino = fs::metadata(&standin).unwrap().ino();
    assert!(text.contains("rc=0"), "{text} {}", stderr(&out));
    assert!(text.contains(&format!("character special file {ino}")), "the stand-in is still bound there: {text}");
    assert!(fs::metadata(&standin).unwrap().file_type().is_char_device());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_is_kept_and_the_file_it_points_to_written() {
    let dir = scratch("symlink");
    let file = dir.join("real.jsonl");
    fs::write(&file, b"old").unwrap();
    std::os::unix::fs::symlink("real.jsonl", dir.join("link.jsonl")).unwrap();
    let before = non_regular(&dir);
    let out = tcpsim(&["run", "--trace", dir.join("link.jsonl").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(non_regular(&dir), before, "the link is still a link to the same name");
    assert!(fs::read(&file).unwrap().starts_with(b"{\"t\":"), "the file it points to holds the trace");
    assert_eq!(names(&dir), ["link.jsonl", "real.jsonl"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_a_missing_directory_and_one_path_twice_are_wrong_input_before_anything_runs() {
    let dir = scratch("dir");
    fs::create_dir(dir.join("sub")).unwrap();
    let before = non_regular(&dir);
    let ok = dir.join("ok.jsonl");
    let cases: [(Vec<String>, &str); 3] = [
        (vec!["--trace".into(), dir.join("sub").display().to_string()], "is a directory"),
        (vec!["--trace".into(), ok.display().to_string(), "--pcap".into(), dir.join("no/x.pcap").display().to_string()], "no/x.pcap"),
        (vec!["--trace".into(), ok.display().to_string(), "--pcap".into(), ok.display().to_string()], "given to both --trace and --pcap"),
    ];
    for (args, says) in cases {
        let mut a = vec!["run"];
        a.extend(args.iter().map(String::as_str));
        let out = tcpsim(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "nothing ran");
        assert_eq!(names(&dir), ["sub"], "{args:?}: no staging file left behind");
    }
    assert_eq!(non_regular(&dir), before);
    fs::remove_dir_all(&dir).unwrap();
}

/// A 64 KiB tmpfs in a private mount namespace: the pcap does not fit. The run fails with
/// what happened, the old file is as it was and no staging file is left.
#[test]
fn a_full_file_system_fails_the_run_and_keeps_the_old_file() {
    need_root();
    let dir = scratch("full");
    let script = format!(
        "mount -t tmpfs -o size=64k tcpsim-full {d} && echo old > {d}/out.pcap && \
         {BIN} run models/lossy-partition.toml --pcap {d}/out.pcap >/dev/null; echo rc=$?; ls -A {d}; cat {d}/out.pcap",
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unshare runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rc=1"), "{text} {}", stderr(&out));
    assert!(stderr(&out).contains("out.pcap: No space left on device"), "says what happened: {}", stderr(&out));
    let listing: Vec<&str> = text.lines().collect();
    assert_eq!(listing[1..], ["out.pcap", "old"], "only the old file, unchanged: {text}");
    fs::remove_dir_all(&dir).unwrap();
}

/// A run that would go on for a long time, killed by SIGTERM and by SIGINT once its
/// staging file exists: the staging file is removed and the old trace kept.
#[test]
fn a_killed_run_leaves_no_staging_file() {
    let dir = scratch("killed");
    let scenario = dir.join("runaway.toml");
    fs::write(&scenario, runaway()).unwrap();
    let trace = dir.join("run.jsonl");
    for sig in [libc::SIGTERM, libc::SIGINT] {
        fs::write(&trace, b"old").unwrap();
        let mut child = Command::new(BIN)
            .args(["run", scenario.to_str().unwrap(), "--trace", trace.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while names(&dir).len() < 3 {
            assert!(started.elapsed() < Duration::from_secs(60), "no staging file appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "ended by the signal");
        assert_eq!(names(&dir), ["run.jsonl", "runaway.toml"], "signal {sig}: the staging file is gone");
        assert_eq!(fs::read(&trace).unwrap(), b"old");
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A mistake that generates work without end: 100 Gbit/s, 1 µs, 10^15 bytes, a century.
fn runaway() -> String {
    let hosts = scenario_text::two_hosts("runaway", "3153600000s", "1us");
    format!(
        "{hosts}bandwidth = \"100Gbit\"\n\
         [[app]]\nkind = \"server\"\nhost = \"server\"\nport = 80\n\
         [[app]]\nkind = \"client\"\nhost = \"client\"\nto = \"server:80\"\nbytes = 1000000000000000\n"
    )
}

/// The same runaway scenario, bounded: stopped by the event limit, with the report of what
/// was simulated, exit status 1, the trace bounded too.
#[test]
fn a_runaway_scenario_stops_at_its_limits_with_a_report() {
    let dir = scratch("limits");
    let scenario = dir.join("runaway.toml");
    fs::write(&scenario, runaway()).unwrap();
    let out = tcpsim(&["run", scenario.to_str().unwrap(), "--max-events", "20000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopped after 20000 events (--max-events)"), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("STOPPED: stopped after 20000 events") && text.contains("sockets"), "{text}");
    let trace = dir.join("t.jsonl");
    let out = tcpsim(&["run", scenario.to_str().unwrap(), "--trace", trace.to_str().unwrap(), "--max-trace-bytes", "100000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let len = fs::metadata(&trace).unwrap().len();
    assert!((100_000..101_000).contains(&len), "the trace stops just past its bound: {len}");
    let out = tcpsim(&["run", scenario.to_str().unwrap(), "--timeout", "0.5", "--max-events", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("(--timeout)"), "{}", stderr(&out));
    fs::remove_dir_all(&dir).unwrap();
}

/// `tcpsim graph | head -1` and friends: a closed pipe ends the program without a word.
#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    for args in [&["graph"][..], &["table"], &["run", "models/lossy-partition.toml", "--pcap", "-"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{args:?}: {:?}", out.status);
    }
}

#[test]
fn an_existing_capture_directory_is_kept_without_force() {
    let dir = scratch("capture");
    let out = tcpsim(&["capture", "models/readiness/peer-fin.toml", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists (--force writes into it)"), "{}", stderr(&out));
    assert!(names(&dir).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}
