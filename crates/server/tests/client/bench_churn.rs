//! `quiver bench churn` run as the real binary on the repository's small
//! GloVe sample: rounds are reported and the final exact check passes.

use std::path::Path;

use serde_json::Value;

#[test]
fn bench_churn_reports_rounds_and_verifies() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/glove50-10k/base.fvecs");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "bench", "churn", "--keys", "400", "--rounds", "3", "--batch", "100",
        ])
        .args(["--searches", "10", "--probes", "3", "--json", "--base"])
        .arg(&base)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run quiver bench churn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench churn failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let rounds: Vec<&Value> = lines.iter().filter(|l| l["phase"] == "round").collect();
    assert_eq!(rounds.len(), 3, "{stdout}");
    let upserts: Vec<u64> = rounds
        .iter()
        .map(|r| r["upserts_total"].as_u64().expect("upserts_total"))
        .collect();
    assert!(upserts.windows(2).all(|w| w[0] < w[1]), "{upserts:?}");
    for r in &rounds {
        assert!(r["segments"].as_u64().expect("segments") >= 1, "{r}");
        assert!(
            r["data_dir_bytes"].as_u64().expect("data_dir_bytes") > 0,
            "{r}"
        );
    }
    let summary = lines
        .iter()
        .find(|l| l["phase"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["verified"], true, "{summary}");
    // 5 % of 400 keys are deleted per round.
    assert_eq!(summary["deleted"], 20, "{summary}");
    assert_eq!(summary["count"], 400 - 20, "{summary}");
}
