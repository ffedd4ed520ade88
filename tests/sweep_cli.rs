//! `tcpsim sweep`, `merge`, `run --plot` and `plot` from the command line: results that do
//! not depend on `--jobs` or on sharding, reproducible members, violations reported with
//! their reproducer, and plots that hold what they claim.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tcpsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpsim")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcpsim-sweep-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const RESUME: &str = "models/resume-after-reconnect.toml";

#[test]
fn sweep_json_is_the_same_for_any_jobs_and_for_merged_shards() {
    let one = tcpsim(&["sweep", RESUME, "--seeds", "0..300", "--jobs", "1", "--format", "json"]);
    let two = tcpsim(&["sweep", RESUME, "--seeds", "0..300", "--jobs", "2", "--format", "json"]);
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    assert_eq!(stdout(&one), stdout(&two), "--jobs must not change the result");
    let dir = scratch("shards");
    let mut files = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let o = tcpsim(&["sweep", RESUME, "--seeds", "0..300", "--shard", &shard, "--jobs", "2", "--format", "json"]);
        assert!(o.status.success());
        let f = dir.join(format!("shard-{k}.json"));
        std::fs::write(&f, &o.stdout).unwrap();
        files.push(f.display().to_string());
    }
    let mut args = vec!["merge", "--format", "json"];
    // Given out of order: the merge orders by seed.
    args.extend(files.iter().rev().map(String::as_str));
    let merged = tcpsim(&args);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    assert_eq!(stdout(&merged), stdout(&one), "merged shards must equal one sweep");
    // A missing shard is an input error naming the missing seed.
    let partial = tcpsim(&["merge", &files[0], &files[2]]);
    assert_eq!(partial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("seed 100 is missing"), "{}", String::from_utf8_lossy(&partial.stderr));
}

#[test]
fn run_with_a_members_seed_reproduces_it_exactly() {
    let o = tcpsim(&["sweep", "models/naive-after-reconnect.toml", "--seeds", "0..40", "--format", "json"]);
    let sweep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let members = sweep["members"].as_array().unwrap();
    let lossy = members.iter().find(|m| m["outcomes"]["messages_lost"].as_f64().unwrap() > 0.0).expect("a seed that loses messages");
    let seed = lossy["seed"].as_u64().unwrap().to_string();
    let run = tcpsim(&["run", "models/naive-after-reconnect.toml", "--seed", &seed, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let sink = report["protocols"].as_array().unwrap().iter().find(|p| p["kind"] == "sink").unwrap();
    assert_eq!(sink["lost"].as_array().unwrap().len() as f64, lossy["outcomes"]["messages_lost"].as_f64().unwrap());
}

#[test]
fn a_broken_invariant_exits_1_naming_it_with_time_socket_and_reproducer() {
    let fixture = "tests/fixtures/naive-into-resume-sink.toml";
    let o = tcpsim(&["sweep", fixture, "--seeds", "0..4"]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    assert!(text.contains("invariant exactly-once-in-order: broken in"), "{text}");
    assert!(text.contains("on app 0 (message sink)") && text.contains(" ns "), "{text}");
    let line = text.lines().find(|l| l.trim_start().starts_with("reproduce: ")).expect("a reproducer");
    let cmd: Vec<&str> = line.trim_start().trim_start_matches("reproduce: tcpsim ").split(' ').collect();
    let again = tcpsim(&cmd);
    assert_eq!(again.status.code(), Some(1), "the reproducer fails the same way");
    assert!(stdout(&again).contains("INVARIANT VIOLATED: exactly-once-in-order at "));
    assert!(String::from_utf8_lossy(&again.stderr).contains("reproduce: tcpsim run tests/fixtures/naive-into-resume-sink.toml --seed"));
}

#[test]
fn bad_sweep_options_are_input_errors() {
    for args in [["sweep", RESUME, "--seeds", "9..3"], ["sweep", RESUME, "--seeds", "x"]] {
        assert_eq!(tcpsim(&args).status.code(), Some(2));
    }
    assert_eq!(tcpsim(&["sweep", RESUME, "--seeds", "0..3", "--shard", "3/3"]).status.code(), Some(2));
    let dir = scratch("bad-merge");
    let f = dir.join("not-json.json");
    std::fs::write(&f, "nope").unwrap();
    let o = tcpsim(&["merge", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-json.json"));
}

/// Counts SVG elements drawn in `colour` (plotters writes `stroke="#RRGGBB"`), less the
/// legend's sample.
fn strokes(svg: &str, colour: &str) -> usize {
    svg.matches(&format!("stroke=\"{colour}\"")).count().saturating_sub(1)
}

/// Retransmissions in a pcap, counted by Wireshark's analysis (tshark), independently of
/// the plot code: `tcp.analysis.retransmission` and its fast/spurious kinds, and
/// `tcp.analysis.out_of_order`: the pcap is written as segments are put on the link, at the
/// sender, so nothing is reordered before it and a data segment below the sender's highest
/// sequence is a retransmission; tshark calls it out-of-order by timing alone, when it
/// follows the highest segment within its threshold (at most 3 ms), as the retransmissions
/// RACK and PRR send right behind new data do.
fn tshark_retransmissions(pcap: &Path, src: &str) -> Option<usize> {
    let (ip, port) = src.rsplit_once(':')?;
    let filter = format!(
        "ip.src=={ip} && tcp.srcport=={port} && tcp.len>0 && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission || tcp.analysis.out_of_order)"
    );
    let o = Command::new("tshark").args(["-r", pcap.to_str()?, "-Y", &filter, "-T", "fields", "-e", "frame.number"]).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).lines().count())
}

#[test]
fn plots_of_a_lossy_run_hold_its_retransmissions() {
    let dir = scratch("plots");
    let pcap = dir.join("run.pcap");
    let trace = dir.join("run.jsonl");
    let run = tcpsim(&["run", "models/lossy-partition.toml", "--pcap", pcap.to_str().unwrap(), "--trace", trace.to_str().unwrap(), "--plot", dir.join("run").to_str().unwrap()]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for f in ["time-sequence", "rto", "states"] {
        for ext in ["svg", "png"] {
            let p = dir.join("run").join(format!("{f}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 5_000).unwrap_or(false), "{} missing or blank", p.display());
        }
    }
    // The same plots from the pcap, with what each holds.
    let out = dir.join("from-pcap");
    let o = tcpsim(&["plot", pcap.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(out.join("time-sequence.svg")).unwrap();
    let title = svg.split("time-sequence graph ").nth(1).unwrap().split('<').next().unwrap().to_string();
    let src = title.split(" &gt; ").next().unwrap_or(&title).split(" > ").next().unwrap().to_string();
    let red = strokes(&svg, "#FF0000");
    let blue = strokes(&svg, "#0000FF");
    assert!(blue > 100, "a bulk transfer draws its data segments: {blue}");
    assert!(red > 0, "a lossy link with a partition retransmits");
    match tshark_retransmissions(&pcap, &src) {
        Some(n) => assert_eq!(red, n, "retransmission marks vs tshark's count for {src}"),
        None => panic!("tshark is needed to count retransmissions independently (.ci/run installs it)"),
    }
    // The printed summary says the same.
    assert!(stdout(&o).contains(&format!("{red} retransmission")), "{}", stdout(&o));
    // The trace draws the same time-sequence graph as the pcap of the same run.
    let from_trace = dir.join("from-trace");
    assert!(tcpsim(&["plot", trace.to_str().unwrap(), "--out", from_trace.to_str().unwrap()]).status.success());
    let svg2 = std::fs::read_to_string(from_trace.join("time-sequence.svg")).unwrap();
    assert_eq!(strokes(&svg2, "#FF0000"), red);
}

#[test]
fn sweep_plot_draws_each_outcome() {
    let dir = scratch("sweep-plot");
    let o = tcpsim(&["sweep", "models/heartbeat-vanished-peer.toml", "--seeds", "0..200", "--plot", dir.to_str().unwrap()]);
    assert!(o.status.success());
    let svg = std::fs::read_to_string(dir.join("sweep-detection_s.svg")).unwrap();
    // Histogram bars are filled rectangles; detection spreads over [3, 4] s.
    let bars = svg.matches("<rect").count();
    assert!(bars > 5, "a spread of detection times draws several bars, got {bars}");
    assert!(dir.join("sweep-detection_s.png").exists());
}

/// The fenced block of `docs/cluster.md` that follows the line containing `after`.
fn doc_block(after: &str) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cluster.md")).unwrap();
    let rest = &doc[doc.find(after).unwrap_or_else(|| panic!("`{after}` in docs/cluster.md"))..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

/// The Slurm scripts of `docs/cluster.md`, run as Slurm would run them (the array's
/// environment, one task after another), produce the same result as one sweep; so do the
/// Kubernetes Indexed Job's commands.
#[test]
fn the_cluster_doc_scripts_shard_and_merge_into_one_sweep() {
    let dir = scratch("cluster");
    let bin = Path::new(env!("CARGO_BIN_EXE_tcpsim")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let root = env!("CARGO_MANIFEST_DIR");
    let sbatch = doc_block("`sweep.sbatch`");
    let merge = doc_block("`merge.sbatch`");
    std::fs::write(dir.join("sweep.sbatch"), &sbatch).unwrap();
    std::fs::write(dir.join("merge.sbatch"), &merge).unwrap();
    let scenario = format!("{root}/tests/fixtures/naive-into-resume-sink.toml");
    for task in 0..4 {
        let o = Command::new("bash")
            .arg(dir.join("sweep.sbatch"))
            .current_dir(&dir)
            .env("PATH", &path)
            .env("SCENARIO", &scenario)
            .env("SEEDS", "0..40")
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "4")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        assert!(o.status.success(), "a shard with broken invariants still succeeds: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new("bash").arg(dir.join("merge.sbatch")).current_dir(&dir).env("PATH", &path).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = tcpsim(&["sweep", &scenario, "--seeds", "0..40", "--format", "json"]);
    assert_eq!(whole.status.code(), Some(1), "the fixture breaks an invariant on some seeds");
    assert_eq!(std::fs::read(dir.join("sweep.json")).unwrap(), whole.stdout);

    // The Indexed Job's shard and merge commands, with the pod's environment.
    let yaml = doc_block("## Kubernetes");
    let shard_cmd: String = yaml
        .lines()
        .skip_while(|l| !l.contains("args:"))
        .skip(2)
        .take_while(|l| !l.trim_start().starts_with("volumeMounts"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let merge_cmd = yaml.lines().filter(|l| l.trim_start().starts_with("- tcpsim merge")).map(|l| l.trim_start().trim_start_matches("- ")).next().unwrap().to_string();
    let k8s = dir.join("k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    let pod = |cmd: &str, index: Option<u32>| {
        let cmd = cmd.replace("/shards/", &format!("{}/", k8s.display()));
        let mut c = Command::new("sh");
        c.args(["-c", &cmd]).env("PATH", &path).env("SHARDS", "3").env("SEEDS", "0..40").env("SCENARIO", &scenario);
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        c.output().unwrap()
    };
    for i in 0..3 {
        let o = pod(&shard_cmd, Some(i));
        assert!(o.status.success(), "{shard_cmd}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = pod(&merge_cmd, None);
    assert!(o.status.success(), "{merge_cmd}: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(k8s.join("sweep.json")).unwrap(), whole.stdout);
}
