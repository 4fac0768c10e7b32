//! The run store as MLflow 3's own client reads it: experiments, runs, params, tags, metric histories
//! by step with each point's own time, artifacts — with names that break naive YAML (`: `, ` #`,
//! quotes, Unicode) — and the store migrated to SQLite by MLflow itself.
//!
//! Needs the client (`scripts/mlflow-venv.sh` installs it); `L2L_MLFLOW_PYTHON` names its Python. The
//! test is `#[ignore = "needs MLflow's client …"]`; `.ci/run` sets the variable and runs it with `--ignored`.

use l2l_system_tests::{describe, run_host};
use std::process::Command;

/// Reads the store at argv[1] for experiment argv[2] with MLflow's client and prints what it found
/// as JSON; with argv[3], first migrates the store into that SQLite file and reads the copy.
const READ_STORE: &str = r#"
import json, os, subprocess, sys
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.tracking import MlflowClient
uri = "file://" + sys.argv[1]
if len(sys.argv) > 3:
    db = "sqlite:///" + sys.argv[3]
    subprocess.run([sys.executable, "-m", "mlflow", "migrate-filestore", "--source", sys.argv[1], "--target", db], check=True, capture_output=True)
    uri = db
client = MlflowClient(tracking_uri=uri)
experiments = [e for e in client.search_experiments() if e.name == sys.argv[2]]
runs = client.search_runs([experiments[0].experiment_id]) if experiments else []
run = runs[0] if runs else None
print(json.dumps({
    "experiments": [e.name for e in client.search_experiments()],
    "runs": len(runs),
    "run_name": run.info.run_name if run else None,
    "status": run.info.status if run else None,
    "params": run.data.params if run else {},
    "tags": run.data.tags if run else {},
    "history": [[m.step, m.value, m.timestamp] for m in client.get_metric_history(run.info.run_id, "fold0_validation_accuracy")] if run else [],
    "artifacts": [a.path for a in client.list_artifacts(run.info.run_id)] if run and uri.startswith("file") else [],
}))
"#;

#[test]
#[ignore = "needs MLflow's client: L2L_MLFLOW_PYTHON, a Python with mlflow (scripts/mlflow-venv.sh; .ci/run sets it)"]
fn mlflow_reads_the_run_store_and_migrates_it() {
    let python = std::env::var_os("L2L_MLFLOW_PYTHON")
        .expect("L2L_MLFLOW_PYTHON is not set: a Python with mlflow (scripts/mlflow-venv.sh installs one)");
    let dir = tempfile::tempdir().unwrap();
    l2l_system_tests::plugins_with_testkit(dir.path());
    let experiment = "cells: try #2 \"quoted\" 'single' ünïcode";
    let config = format!(
        "plugin_dirs = [\"plugins\"]\ndevice = \"cpu\"\nthreads = 1\npipeline = [\"demosaic\"]\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n\n\
         [dataset]\nkind = \"ramp\"\nlen = 8\nsize = [8, 8]\n\n[task_model]\nkind = \"linear\"\n\n[job]\nkind = \"train\"\nmode = \"static\"\n\
         epochs = 2\nbatch_size = 2\ntrain_size = 0.5\ntracked_samples = 0\nworkers = 1\nname = \"cells: try #2\"\nexperiment = {}\n",
        toml::Value::String(experiment.into())
    );
    std::fs::write(dir.path().join("train.toml"), config).unwrap();
    let out = run_host(&["run", "train.toml"], None, dir.path());
    assert!(out.status.success(), "{}", describe(&out));
    let store = dir.path().join("runs/mlruns");
    let read = |migrate_to: Option<&str>| -> serde_json::Value {
        let mut command = Command::new(&python);
        command.arg("-c").arg(READ_STORE).arg(&store).arg(experiment);
        if let Some(db) = migrate_to {
            command.arg(dir.path().join(db));
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
    };
    let found = read(None);
    assert_eq!(found["runs"], 1, "{found}");
    assert_eq!(found["run_name"], "cells: try #2-1", "{found}");
    assert_eq!(found["status"], "FINISHED", "{found}");
    assert_eq!(found["params"]["job.lr"], "0.001", "{found}");
    assert_eq!(found["params"]["job.experiment"], experiment, "{found}");
    assert!(
        found["tags"]["mlflow.source.git.commit"].is_string() && found["tags"]["mlflow.user"].is_string(),
        "{found}"
    );
    let history = found["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{found}");
    assert_eq!(
        (history[0][0].as_i64(), history[1][0].as_i64()),
        (Some(1), Some(2)),
        "{found}"
    );
    assert!(
        history[0][2].as_i64() < history[1][2].as_i64(),
        "each epoch's point has its own time: {found}"
    );
    let artifacts: Vec<&str> = found["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        artifacts.contains(&"metrics.csv") && artifacts.contains(&"config.toml"),
        "{found}"
    );
    let migrated = read(Some("mlflow.db"));
    for key in ["runs", "run_name", "status", "params", "history"] {
        assert_eq!(
            migrated[key], found[key],
            "{key} after the migration to SQLite: {migrated}"
        );
    }
}
