//! Known divergences: the rows of `traces/KNOWN-DIVERGENCES.md`'s `## Replay` table, each a
//! divergence between the model and a committed capture with its explained cause. `tcpsim
//! replay` marks a divergence that is listed there as known and says why; only unknown ones
//! fail the replay (exit status 1).
//!
//! A row is `| trace | side | connection | segment | fields | cause |`, `trace` being the
//! capture's directory relative to the file's (`readiness/peer-fin` for
//! `traces/readiness/peer-fin/capture.pcap` beside `traces/KNOWN-DIVERGENCES.md`), and
//! `segment` one index or a range `A-B` of them (every one of which diverges alike: after a
//! divergence the comparison goes on, and one cause often explains a run of segments).

use super::report::ReplayReport;
use std::path::{Path, PathBuf};

/// The file's usual name, looked for beside the capture's directory and above it.
pub const FILE_NAME: &str = "KNOWN-DIVERGENCES.md";

/// One explained divergence.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    trace: String,
    side: String,
    connection: usize,
    segments: std::ops::RangeInclusive<usize>,
    fields: String,
    cause: String,
}

/// The known divergences of one file.
#[derive(Clone, Debug, Default)]
pub struct Known {
    path: PathBuf,
    rows: Vec<Row>,
}

impl Known {
    /// Reads the `## Replay` table of the file at `path`; an error names the file and line.
    pub fn load(path: &Path) -> Result<Known, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {}", path.display(), crate::output::io_text(&e)))?;
        let mut rows = Vec::new();
        let mut inside = false;
        for (n, line) in text.lines().enumerate() {
            if let Some(h) = line.strip_prefix("## ") {
                inside = h.trim() == "Replay";
                continue;
            }
            let header = line.starts_with("| trace") || line.starts_with("| --") || line.starts_with("|--");
            if !inside || !line.starts_with('|') || header {
                continue;
            }
            let at = || format!("{}:{}", path.display(), n + 1);
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            let [trace, side, connection, segment, fields, cause] = cells[..] else {
                return Err(format!("{}: a row of the Replay table has 6 cells, this one {}", at(), cells.len()));
            };
            let number = |what: &str, v: &str| v.parse::<usize>().map_err(|_| format!("{}: {what} `{v}` is not a number", at()));
            let segments = match segment.split_once('-') {
                Some((a, b)) => number("segment", a)?..=number("segment", b)?,
                None => number("segment", segment).map(|n| n..=n)?,
            };
            rows.push(Row {
                trace: trace.to_string(),
                side: side.to_string(),
                connection: number("connection", connection)?,
                segments,
                fields: fields.to_string(),
                cause: cause.to_string(),
            });
        }
        Ok(Known { path: path.to_path_buf(), rows })
    }

    /// The file for a capture at `pcap`: `KNOWN-DIVERGENCES.md` in its directory or the
    /// nearest one above it.
    pub fn find_for(pcap: &Path) -> Option<PathBuf> {
        let dir = std::fs::canonicalize(pcap).ok()?.parent()?.to_path_buf();
        dir.ancestors().map(|d| d.join(FILE_NAME)).find(|p| p.is_file())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The capture's name in the table: its directory relative to the file's.
    fn trace_of(&self, pcap: &Path) -> Option<String> {
        let base = std::fs::canonicalize(self.path.parent()?).ok()?;
        let dir = std::fs::canonicalize(pcap).ok()?.parent()?.to_path_buf();
        Some(dir.strip_prefix(&base).ok()?.to_string_lossy().into_owned())
    }

    /// Marks each divergence of `report` (a replay of `pcap`) that the file lists, with its
    /// cause (none, for a capture outside the file's directory).
    pub fn mark(&self, pcap: &Path, report: &mut ReplayReport) {
        report.known_file = Some(self.path.display().to_string());
        let Some(trace) = self.trace_of(pcap) else { return };
        for d in &mut report.divergences {
            let fields = d.divergence.fields.join(",");
            let row = self.rows.iter().find(|r| {
                r.trace == trace
                    && r.side == d.side.name()
                    && r.connection == d.divergence.connection
                    && r.segments.contains(&d.divergence.segment)
                    && r.fields == fields
            });
            d.known = row.map(|r| r.cause.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_file_reads_and_a_bad_row_is_named() {
        let k = Known::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/traces/KNOWN-DIVERGENCES.md"))).unwrap();
        assert!(k.rows.iter().any(|r| r.trace == "readiness/sndbuf-full" && r.side == "server" && r.fields == "time"));
        assert!(k.rows.iter().all(|r| ["client", "server"].contains(&r.side.as_str()) && !r.cause.is_empty()));
        assert!(k.rows.iter().any(|r| r.segments.start() < r.segments.end()), "a range of segments reads");
        let dir = std::env::temp_dir().join(format!("tcpsim-known-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join(FILE_NAME);
        std::fs::write(&bad, "## Replay\n\n| trace | side |\n| --- | --- |\n| a | client | x | 1 | time | why |\n").unwrap();
        let e = Known::load(&bad).unwrap_err();
        assert!(e.ends_with(":5: connection `x` is not a number"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
