//! Every scenario shipped in `models/` loads and validates, says what question it answers, and
//! the two named in the issue have the shape the issue asks for.

use std::path::{Path, PathBuf};
use tcpsim::scenario::{load, AppSpec, FaultKind, Scenario};
use tcpsim::time::Dur;

fn models() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("models/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn model(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

#[test]
fn every_model_loads_and_validates() {
    let files = models();
    assert!(
        files.len() >= 12,
        "expected the default, lossy-partition and the seed questions, found {files:?}"
    );
    for path in files {
        let s = load(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(s.name, stem, "{}: `name` should be the file's name", path.display());
        assert!(!s.description.is_empty(), "{}: needs a description", path.display());
    }
}

#[test]
fn every_model_opens_with_the_question_it_answers() {
    for path in models() {
        let text = std::fs::read_to_string(&path).unwrap();
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(header.len() >= 3, "{}: needs a header comment", path.display());
        assert!(
            header[0].starts_with("# Question"),
            "{}: header should start with `# Question`",
            path.display()
        );
    }
}

#[test]
fn default_is_two_hosts_a_10ms_link_and_a_100kb_transfer() {
    let s = model("default.toml");
    assert_eq!(s.hosts.len(), 2);
    assert_eq!(s.links.len(), 1);
    assert_eq!(s.links[0].delay.unwrap().lo(), Dur(10 * MS));
    assert!(s.duration.0 <= Dur(30 * S));
    let client = s.apps.iter().find_map(|a| match a {
        AppSpec::Client { bytes, close, to, .. } => Some((*bytes, *close, to.clone())),
        _ => None,
    });
    assert_eq!(client, Some((100_000, true, "server:8080".to_string())));
}

#[test]
fn the_compiled_in_default_is_models_default_toml() {
    let built_in = tcpsim::scenario::default_scenario().unwrap_or_else(|e| panic!("{e}"));
    let on_disk = model("default.toml");
    assert_eq!(serde_json::to_value(&built_in).unwrap(), serde_json::to_value(&on_disk).unwrap());
}

#[test]
fn lossy_partition_loses_2_percent_and_partitions_from_5_to_15_s() {
    let s = model("lossy-partition.toml");
    let link = &s.links[0];
    assert_eq!(link.loss.map(|p| p.lo), Some(0.02));
    assert!(link.jitter.is_some_and(|j| j.lo() > Dur(0)));
    let faults: Vec<(FaultKind, u64)> =
        s.faults.iter().map(|f| (f.kind, f.at.unwrap().lo().as_nanos())).collect();
    assert_eq!(faults, [(FaultKind::Partition, 5 * S), (FaultKind::Heal, 15 * S)]);
    assert!(s.apps.iter().any(|a| matches!(a, AppSpec::Client { bytes, .. } if *bytes > 0)));
}
