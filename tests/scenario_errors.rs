//! Malformed scenarios: each fixture in `tests/fixtures/scenarios/bad/` marks the line where
//! the loader must report its error with a trailing comment
//! `# error: FIELD @COLUMN: MESSAGE` (FIELD `-` when there is none, as for TOML syntax
//! errors; MESSAGE a part of the expected message). Each fixture is its own test.

use std::path::{Path, PathBuf};
use tcpsim::scenario::{load, parse, ErrorKind, ScenarioError};

const MARKER: &str = "  # error: ";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/bad").join(format!("{name}.toml"))
}

/// What a fixture's marker expects.
struct Expected {
    line: usize,
    col: usize,
    field: Option<String>,
    message: String,
}

fn expected(text: &str) -> Expected {
    let marked: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
        .filter_map(|(i, l)| l.split_once(MARKER).map(|(_, m)| (i + 1, m)))
        .collect();
    assert_eq!(marked.len(), 1, "a fixture marks exactly one line");
    let (line, marker) = marked[0];
    let (field, rest) = marker.split_once(" @").expect("marker: FIELD @COL: MESSAGE");
    let (col, message) = rest.split_once(": ").expect("marker: FIELD @COL: MESSAGE");
    Expected {
        line,
        col: col.parse().expect("column is a number"),
        field: (field != "-").then(|| field.to_string()),
        message: message.to_string(),
    }
}

fn check(name: &str) -> ScenarioError {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let want = expected(&text);
    let err = load(&path).expect_err("a malformed scenario is rejected");
    let shown = err.to_string();
    assert_eq!(err.file(), path.display().to_string(), "{shown}");
    assert_eq!(err.line(), Some(want.line), "{shown}");
    assert_eq!(err.column(), Some(want.col), "{shown}");
    assert_eq!(err.field(), want.field.as_deref(), "{shown}");
    assert!(err.message().contains(&want.message), "message should contain {:?}: {shown}", want.message);
    let prefix = match &want.field {
        Some(f) => format!("{}:{}:{}: {f}: ", path.display(), want.line, want.col),
        None => format!("{}:{}:{}: ", path.display(), want.line, want.col),
    };
    assert!(shown.starts_with(&prefix), "{shown:?} should start with {prefix:?}");
    assert!(!shown.contains('\n'), "one line: {shown:?}");
    err
}

macro_rules! fixtures {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { check($file); })*

        /// Every fixture on disk has its test above, and every test its fixture.
        #[test]
        fn every_fixture_has_a_test() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/bad");
            let mut on_disk: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let mut listed: Vec<String> = vec![$($file.to_string()),*];
            listed.sort();
            assert_eq!(on_disk, listed);
        }
    };
}

fixtures! {
    drop_every_one => "drop-every-one",
    drop_nth_zero => "drop-nth-zero",
    app_count_zero => "app-count-zero",
    app_negative_at => "app-negative-at",
    app_port_twice => "app-port-twice",
    app_to_bad_port => "app-to-bad-port",
    app_to_no_port => "app-to-no-port",
    app_to_unknown_address => "app-to-unknown-address",
    app_to_unknown_host => "app-to-unknown-host",
    app_unknown_field => "app-unknown-field",
    app_unknown_host => "app-unknown-host",
    bad_probability => "bad-probability",
    delay_range_reversed => "delay-range-reversed",
    direction_probability => "direction-probability",
    direction_without_filter => "direction-without-filter",
    drop_without_filter => "drop-without-filter",
    duplicate_address => "duplicate-address",
    duplicate_host => "duplicate-host",
    duplicate_link => "duplicate-link",
    duplicate_middlebox => "duplicate-middlebox",
    duration_unit => "duration-unit",
    fault_after_end => "fault-after-end",
    fault_missing_link => "fault-missing-link",
    fault_missing_target => "fault-missing-target",
    fault_unknown_host => "fault-unknown-host",
    fault_unknown_kind => "fault-unknown-kind",
    fault_without_at => "fault-without-at",
    host_name_address => "host-name-address",
    fault_wrong_target => "fault-wrong-target",
    filter_without_drop => "filter-without-drop",
    kernel_unknown => "kernel-unknown",
    link_to_itself => "link-to-itself",
    middlebox_unknown_link => "middlebox-unknown-link",
    middlebox_zero_timeout => "middlebox-zero-timeout",
    missing_field => "missing-field",
    negative_delay => "negative-delay",
    observe_unknown => "observe-unknown",
    parallel_links => "parallel-links",
    probability_nan => "probability-nan",
    probability_range => "probability-range",
    queue_zero => "queue-zero",
    script_accept_name_taken => "script-accept-name-taken",
    script_connect_unresolvable => "script-connect-unresolvable",
    script_created_twice => "script-created-twice",
    script_epoll_bad_event => "script-epoll-bad-event",
    script_epoll_on_epoll => "script-epoll-on-epoll",
    script_epoll_unknown => "script-epoll-unknown",
    script_fault_missing_link => "script-fault-missing-link",
    script_fault_with_at => "script-fault-with-at",
    script_missing_field => "script-missing-field",
    script_poll_bad_event => "script-poll-bad-event",
    script_send_len_and_data => "script-send-len-and-data",
    script_send_null_buf_data => "script-send-null-buf-data",
    script_send_nothing => "script-send-nothing",
    script_sendto_nothing => "script-sendto-nothing",
    script_sendto_unresolvable => "script-sendto-unresolvable",
    script_setsockopt_bad_value => "script-setsockopt-bad-value",
    script_setsockopt_readonly => "script-setsockopt-readonly",
    script_socket_unknown_host => "script-socket-unknown-host",
    script_unknown_op => "script-unknown-op",
    script_wrong_type => "script-wrong-type",
    socket_before_creation => "socket-before-creation",
    sockopt_linger_int => "sockopt-linger-int",
    sockopt_unknown => "sockopt-unknown",
    syntax_error => "syntax-error",
    sysctl_unknown => "sysctl-unknown",
    sysctl_wrong_type => "sysctl-wrong-type",
    unknown_field => "unknown-field",
    unknown_host => "unknown-host",
    wrong_type => "wrong-type",
    zero_duration => "zero-duration",
}

#[test]
fn stages_are_told_apart() {
    assert_eq!(check("syntax-error").kind(), ErrorKind::Syntax);
    assert_eq!(check("wrong-type").kind(), ErrorKind::Type);
    assert_eq!(check("duration-unit").kind(), ErrorKind::Type);
    assert_eq!(check("unknown-host").kind(), ErrorKind::Invalid);
}

#[test]
fn the_issue_example_reads_as_specified() {
    let err = check("duration-unit");
    assert!(
        err.to_string().ends_with(
            "link[0].delay: invalid duration: `5xs` has unknown unit `xs` (expected one of ns, us, ms, s, m, h)"
        ),
        "{err}"
    );
    assert!(check("fault-missing-link")
        .to_string()
        .ends_with("fault[0].link: no link named `wan` (links: wire)"));
}

#[test]
fn an_unreadable_file_is_named() {
    let path = fixture("does-not-exist");
    let err = load(&path).expect_err("missing file");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.file(), path.display().to_string());
    assert_eq!(err.line(), None);
    assert!(err.to_string().starts_with(&format!("{}: cannot read scenario: ", path.display())), "{err}");
}

#[test]
fn parse_names_the_given_file() {
    let err = parse("name = \"x\"\nduration = \"1q\"\n", "inline.toml").expect_err("bad unit");
    assert_eq!(err.to_string().split(':').take(3).collect::<Vec<_>>(), ["inline.toml", "2", "12"]);
    assert_eq!(err.field(), Some("duration"));
}

#[test]
fn an_empty_file_needs_a_name() {
    let err = parse("", "empty.toml").expect_err("empty");
    assert_eq!((err.line(), err.field()), (Some(1), Some("name")));
    assert!(err.message().contains("missing field `name`"), "{err}");
}

#[test]
fn a_file_that_is_not_utf8_is_named() {
    let path = std::env::temp_dir().join(format!("tcpsim-scenario-not-utf8-{}.toml", std::process::id()));
    std::fs::write(&path, b"name = \"\xff\"\n").unwrap();
    let err = load(&path).expect_err("not UTF-8");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.file(), path.display().to_string());
    assert!(err.message().contains("UTF-8"), "{err}");
}

#[test]
fn a_directory_is_named() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let err = load(&dir).expect_err("a directory");
    assert_eq!((err.kind(), err.file()), (ErrorKind::Io, dir.display().to_string().as_str()));
}
