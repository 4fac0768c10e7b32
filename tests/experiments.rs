//! The experiments end to end through `l2l-host run`.

use l2l_system_tests::{run_host, workspace_root};

/// A model trained behind the published pipeline and tested behind the same pipeline with the red and
/// blue white-balance gains swapped — a colour drift on a task where stain colour tells classes apart —
/// must score better on the diagonal.
#[test]
fn drift_synthesis_finds_a_drift_that_must_be_there() {
    let dir = tempfile::tempdir().unwrap();
    let published = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    std::fs::write(
        dir.path().join("swapped.toml"),
        format!("include = [{published:?}]\n\n[stages.white_balance]\ngains = [1.73079425, 1.0, 2.86653646]\n"),
    )
    .unwrap();
    let config = format!(
        "device = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 64\nsize = 64\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"drift_synthesis\"\npipelines = [{published:?}]\n\
         test_pipelines = [{published:?}, \"swapped.toml\"]\ntest_intensities = [100, 10]\n\n[job.train]\nmode = \"static\"\nepochs = 10\nbatch_size = 8\n\
         n_splits = 1\ntrain_size = 0.75\ntracked_samples = 0\naugmentation = \"weak\"\nworkers = 2\n\n\
         [job.corruptions]\ntables = [\"cifar10\", \"imagenet\"]\nseverities = [1, 5]\n"
    );
    std::fs::write(dir.path().join("drift.toml"), config).unwrap();
    let out = run_host(&["run", "drift.toml"], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = dir.path().join("runs/drift-synthesis-1");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let row = results["matrix"]["mean"][0].as_array().unwrap();
    let (own, drifted) = (row[0].as_f64().unwrap(), row[1].as_f64().unwrap());
    assert!(own >= drifted + 0.25, "diagonal {own}, under drift {drifted}");
    for file in [
        "report.md",
        "drift_matrix.png",
        "drop_matrix.png",
        "training/bilinear_sharpening_filter_median_denoising-1/checkpoints/fold0.safetensors",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    // the report shows the matrix of results.json
    assert!(
        report.contains("Mean drop under pipeline drift") && report.contains(&format!("{own:.3} [")),
        "{report}"
    );
    // every cell carries its bootstrap interval, around the value
    let cell = &results["statistics"]["cells"][0][0];
    let (low, value, high) = (
        cell["low"].as_f64().unwrap(),
        cell["value"].as_f64().unwrap(),
        cell["high"].as_f64().unwrap(),
    );
    assert!(low <= value && value <= high && (value - own).abs() < 1e-12, "{cell}");
    // the corruption baseline: all ten corruptions, each model behind its own pipeline, with intervals
    assert_eq!(
        results["statistics"]["corruption_drops"].as_array().unwrap().len(),
        20,
        "ten corruptions, two tables"
    );
    assert!(results["statistics"]["mean_corruption_drop"]["high"].as_f64().is_some());
    assert!(results["statistics"]["ratio"]["value"].as_f64().is_some());
    // intensity drift: at the job's own intensity (100) the same samples give the diagonal exactly
    let intensities = results["statistics"]["intensities"].as_array().unwrap();
    assert_eq!(intensities.len(), 2);
    assert_eq!(intensities[0][0].as_f64(), Some(100.0));
    assert!(
        (intensities[0][1][0]["value"].as_f64().unwrap() - own).abs() < 1e-12,
        "{intensities:?} vs {own}"
    );
    assert!(intensities[1][1][0]["high"].as_f64().is_some());
    assert!(run.join("intensity_drift.png").is_file() && report.contains("## Intensity drift"));
    assert!(run.join("drift_vs_corruption.png").is_file() && report.contains("common corruptions"));
}

/// The frozen model's accuracy falls under an attack on the white balance alone, scored on held-out
/// images the search never saw, while the output stays within the SSIM budget of the default (a
/// tighter budget keeps it closer), and nothing but the white balance changes.
#[test]
fn forensics_breaks_a_frozen_model_with_a_close_processing() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/parametrized.toml");
    let config = format!(
        "device = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 64\nsize = 64\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"forensics\"\npipeline = {pipeline:?}\n\
         groups = [\"white_balance\"]\nssim_budgets = [0.98, 0.9]\nsteps = 40\npatience = 5\nlr = 0.005\nsamples = 8\n\n[job.train]\nmode = \"static\"\nepochs = 10\n\
         batch_size = 8\ntrain_size = 0.75\ntracked_samples = 0\naugmentation = \"weak\"\nworkers = 2\n"
    );
    std::fs::write(dir.path().join("forensics.toml"), config).unwrap();
    let out = run_host(&["run", "forensics.toml"], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = dir.path().join("runs/forensics-1");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    // the budget 0.9 search, then the 0.98 one
    let (tight, group) = (&results["groups"][0], &results["groups"][1]);
    assert_eq!(
        (tight["ssim_budget"].as_f64(), group["ssim_budget"].as_f64()),
        (Some(0.98), Some(0.9))
    );
    let (default, adversarial, ssim) = (
        group["default_metric"].as_f64().unwrap(),
        group["adversarial_metric"].as_f64().unwrap(),
        group["ssim"].as_f64().unwrap(),
    );
    assert!(adversarial < default, "held-out accuracy {default} → {adversarial}");
    // kept to the budget on the fitted images; the held-out images within a little of it
    assert!(group["fit_ssim"].as_f64().unwrap() >= 0.88 && ssim >= 0.85, "{group}");
    assert!(
        tight["ssim"].as_f64().unwrap() >= ssim,
        "the tighter budget is not closer: {results}"
    );
    assert_eq!(
        (group["fit_samples"].as_u64(), group["samples"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(group["models"].as_u64(), Some(1));
    assert!(group["steps"][0].as_u64().unwrap() <= 40);
    let changed: Vec<&str> = group["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(changed, ["white_balance.gains"]);
    assert!((group["drop"]["value"].as_f64().unwrap() - (default - adversarial)).abs() < 1e-12);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("## SSIM budget") && report.contains("| white_balance |"),
        "{report}"
    );
    assert!(run.join("attack_white_balance.png").is_file() && report.contains("attack_white_balance.png"));
    assert!(results["stage_gradients"].as_array().unwrap().len() >= 10);
    for file in ["report.md", "forensics.png", "stage_gradients.png", "drop_vs_ssim.png"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
}

/// Joint training moves the processing's parameters, and every mode's curve has a point per epoch.
#[test]
fn optimisation_moves_the_processing_and_draws_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = workspace_root().join("configs/pipelines");
    let config = format!(
        "device = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 32\nsize = 64\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"optimisation\"\nmodes = [\"parametrized\", \"static\"]\n\
         static_pipeline = {:?}\nparametrized_pipeline = {:?}\n\n[job.train]\nmode = \"static\"\nepochs = 2\nbatch_size = 8\n\
         n_splits = 2\ntrain_size = 0.75\ntracked_samples = 0\nworkers = 2\n",
        pipelines.join("bilinear_sharpening_filter_median_denoising.toml"),
        pipelines.join("parametrized.toml")
    );
    std::fs::write(dir.path().join("optimisation.toml"), config).unwrap();
    let out = run_host(&["run", "optimisation.toml"], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = dir.path().join("runs/optimisation-1");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let curves = results["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 2);
    for curve in curves {
        assert_eq!(curve["mean"].as_array().unwrap().len(), 2, "{curve}");
        assert_eq!(curve["std"].as_array().unwrap().len(), 2, "{curve}");
    }
    let (tensors, _) = l2l_host::train::checkpoint::read_with_metadata(
        &run.join("training/parametrized-1/checkpoints/fold1.safetensors"),
    )
    .unwrap();
    let value = |name: &str| tensors.iter().find(|(n, _)| n == name).unwrap().1.shallow_clone();
    assert!(
        (value("processor.gamma.gamma").double_value(&[0]) - 2.2).abs() > 1e-6,
        "gamma did not move"
    );
    let gains = value("processor.white_balance.gains");
    assert!(
        (gains.double_value(&[0]) - 2.86653646).abs() > 1e-6,
        "white balance did not move"
    );
    for file in ["report.md", "learning_curves.png"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
}

/// A drift synthesis over all twelve published pipelines opens its dataset once (not once per
/// training) and reads each pipeline file once, as the `-v` log counts them.
#[test]
fn a_drift_synthesis_over_twelve_pipelines_opens_its_dataset_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut pipelines: Vec<String> = std::fs::read_dir(workspace_root().join("configs/pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with("parametrized"))
        })
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    pipelines.sort();
    assert_eq!(pipelines.len(), 12, "{pipelines:?}");
    let config = format!(
        "device = \"cpu\"\nthreads = 1\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 8\nsize = 32\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"drift_synthesis\"\npipelines = [{}]\n\n\
         [job.train]\nmode = \"static\"\nepochs = 1\nbatch_size = 4\nn_splits = 1\ntrain_size = 0.5\ntracked_samples = 0\nworkers = 1\n",
        pipelines.join(", ")
    );
    std::fs::write(dir.path().join("twelve.toml"), config).unwrap();
    // the job is planned once: each pipeline file read once, by validate and by run alike (before, a
    // run read each of them four times: plugin search, check, planned trainings, experiment)
    let read_once = |log: &str| {
        for pipeline in &pipelines {
            let path = pipeline.trim_matches('"');
            assert_eq!(
                log.matches(&format!("read pipeline file {path} ")).count(),
                1,
                "{path}:\n{log}"
            );
        }
        assert_eq!(log.matches("read pipeline file").count(), 12, "{log}");
    };
    let validated = run_host(&["-v", "validate", "twelve.toml"], None, dir.path());
    let log = String::from_utf8_lossy(&validated.stderr);
    assert!(validated.status.success(), "{log}");
    read_once(&log);
    let out = run_host(&["-v", "run", "twelve.toml"], None, dir.path());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    read_once(&log);
    assert_eq!(log.matches("opened the dataset").count(), 1, "{log}");
    assert_eq!(log.matches("drift synthesis: training behind").count(), 12, "{log}");
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("runs/drift-synthesis-1/results.json")).unwrap())
            .unwrap();
    assert_eq!(results["matrix"]["mean"].as_array().unwrap().len(), 12);
}

/// A forensics job on the testkit: lens shading after demosaicing, the `ramp` data set and the `linear`
/// model — small enough to train in a second. The pipeline file brings its plugin along
/// (`plugin_dirs` relative to itself).
fn testkit_forensics(dir: &std::path::Path, groups: &str, pipeline: &str) -> std::path::PathBuf {
    let plugins = dir.join("pipelines/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    l2l_system_tests::install_testkit(&plugins);
    std::fs::write(
        dir.join("pipelines/shading.toml"),
        "plugin_dirs = [\"plugins\"]\npipeline = [\"demosaic\", \"shading\"]\n\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n\n\
         [stages.shading]\nkind = \"vignette\"\nk1 = -0.3\n",
    )
    .unwrap();
    let config = format!(
        "device = \"cpu\"\nthreads = 1\n\n[dataset]\nkind = \"ramp\"\nlen = 8\nsize = [16, 16]\n\n[task_model]\nkind = \"linear\"\n\n[job]\n\
         kind = \"forensics\"\npipeline = \"{pipeline}\"\ngroups = {groups}\nsteps = 20\nlr = 1.0\nsimilarity_weight = 0.0\n\
         distance = \"l2\"\nsamples = 2\n\n[job.train]\nmode = \"static\"\nepochs = 1\nbatch_size = 2\ntrain_size = 0.5\n\
         tracked_samples = 0\nworkers = 1\n"
    );
    let path = dir.join("forensics.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The search pushes hard (Adam, lr 1, no similarity term) on parameters whose stage declares a range
/// of [−0.9, 1]: they end inside it, at its edge, and the report says so.
#[test]
fn a_forensics_search_never_leaves_a_parameters_declared_range() {
    let dir = tempfile::tempdir().unwrap();
    testkit_forensics(dir.path(), "[\"shading\"]", "pipelines/shading.toml");
    let out = run_host(&["run", "forensics.toml"], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = dir.path().join("runs/forensics-1");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("results.json")).unwrap()).unwrap();
    let parameters = results["groups"][0]["parameters"].as_array().unwrap();
    assert_eq!(parameters.len(), 2, "{parameters:?}");
    let mut at_an_edge = 0;
    for parameter in parameters {
        assert_eq!(parameter["bounds"], serde_json::json!([-0.9, 1.0]), "{parameter}");
        let after = parameter["after"][0].as_f64().unwrap();
        assert!((-0.9..=1.0).contains(&after), "{parameter}");
        if (after + 0.9).abs() < 1e-9 || (after - 1.0).abs() < 1e-9 {
            at_an_edge += 1;
        }
    }
    assert!(
        at_an_edge > 0,
        "the search never reached the range's edge, so the test shows nothing: {parameters:?}"
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("kept in [-0.9, 1]") && report.contains("Per parameter"),
        "{report}"
    );
    assert!(
        results["parameter_attribution"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "shading.k1"),
        "{results}"
    );
}

/// `validate` checks the whole job — the pipeline it names, every group — and `run` refuses the same
/// before it trains anything (no run directory is left).
#[test]
fn a_forensics_job_with_a_misspelled_group_or_a_missing_pipeline_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[\"shadin\"]",
            "pipelines/shading.toml",
            "`shadin` names no learnable parameter",
        ),
        ("[\"shading\"]", "pipelines/missing.toml", "missing.toml"),
    ];
    for (groups, pipeline, expected) in cases {
        let config = testkit_forensics(dir.path(), groups, pipeline);
        for command in ["validate", "run"] {
            let out = run_host(&[command, config.to_str().unwrap()], None, dir.path());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success() && err.contains(expected), "{command}: {err}");
            assert!(
                err.contains("job.groups") || err.contains("job.pipeline"),
                "{command}: {err}"
            );
        }
        assert!(!dir.path().join("runs").exists(), "a run directory was left behind");
    }
    let config = testkit_forensics(dir.path(), "[\"shading\", \"all\"]", "pipelines/shading.toml");
    let out = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A training only the data can rule out — here mode `none` hands a UNet++ of depth 5 the packed raw at
/// 48², which is not divisible by 32 — is refused by `validate` and by `run` before the first of the
/// job's trainings starts (no run directory), naming the experiment and the training; the same job
/// at 128² passes `validate`.
#[test]
fn a_training_the_task_model_cannot_take_is_refused_before_any_training_starts() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let config = |size: u32| {
        format!(
            "device = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"aerial_cars\"\ncount = 8\nsize = {size}\n\n\
             [task_model]\nkind = \"unetplusplus\"\nencoder = 18\nencoder_width = 4\ndecoder_channels = [16, 8, 8, 4, 4]\n\n\
             [job]\nkind = \"experiments\"\n\n[job.drift_synthesis]\npipelines = [{pipeline:?}]\n\n[job.drift_synthesis.train]\n\
             mode = \"static\"\nepochs = 1\nbatch_size = 2\nn_splits = 1\ntracked_samples = 0\n\n[job.optimisation]\nmodes = [\"static\", \"none\"]\n\
             static_pipeline = {pipeline:?}\nparametrized_pipeline = {pipeline:?}\n\n[job.optimisation.train]\nmode = \"static\"\nepochs = 1\nbatch_size = 2\n\
             n_splits = 1\ntracked_samples = 0\n"
        )
    };
    std::fs::write(dir.path().join("odd.toml"), config(96)).unwrap();
    for command in ["validate", "run"] {
        let out = run_host(&[command, "odd.toml"], None, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} accepted it");
        assert!(
            err.contains("[job.optimisation] processing mode none")
                && err.contains("divisible by 32")
                && err.contains("[2, 3, 48, 48]"),
            "{command}: {err}"
        );
    }
    assert!(!dir.path().join("runs").exists(), "a run directory was left behind");
    std::fs::write(dir.path().join("even.toml"), config(128)).unwrap();
    let out = run_host(&["validate", "even.toml"], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("trainings: 3, each tried on two samples"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The quickstart as a new user runs it: its models learn (every drift-matrix diagonal cell ≥ 0.90,
/// every optimisation mode's final accuracy ≥ 0.70 and static ≥ 0.90, on the held-out test part) and
/// forensics finds a group that drops the accuracy by ≥ 0.30 while the image stays at SSIM ≥ 0.90;
/// every verdict has its interval, which carries two training seeds; the trivial predictors' levels
/// are stated; every plot is written.
#[test]
fn the_quickstart_learns_and_states_its_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let config = workspace_root().join("configs/quickstart.toml");
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = dir.path().join("runs/quickstart-1");
    let read = |experiment: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(run.join(experiment).join("results.json")).unwrap()).unwrap()
    };
    let drift = read("drift-synthesis-1");
    assert!(
        drift["statistics"]["seeds"].as_u64().unwrap() >= 2,
        "{}",
        drift["statistics"]
    );
    assert_eq!(drift["raw"]["scored_on_test"], true);
    let (train, test) = (
        drift["matrix"]["train"].as_array().unwrap(),
        drift["matrix"]["test"].as_array().unwrap(),
    );
    for (i, name) in train.iter().enumerate() {
        let j = test.iter().position(|t| t == name).unwrap();
        let cell = &drift["statistics"]["cells"][i][j];
        assert!(
            cell["value"].as_f64().unwrap() >= 0.90,
            "diagonal cell of {name}: {cell}"
        );
        assert!(cell["low"].as_f64().unwrap() <= cell["value"].as_f64().unwrap());
    }
    let optimisation = read("optimisation-1");
    let finals = optimisation["finals"].as_array().unwrap();
    assert_eq!(finals.len(), 4, "every mode, neural_network and none included");
    for mode in finals {
        let accuracy = mode["final_metric"]["value"].as_f64().unwrap();
        let floor = if mode["mode"] == "static" { 0.90 } else { 0.70 };
        assert!(accuracy >= floor, "{}: final accuracy {accuracy}", mode["mode"]);
    }
    let forensics = read("forensics-1");
    let found = forensics["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["drop"]["value"].as_f64().unwrap() >= 0.30 && g["ssim"].as_f64().unwrap() >= 0.90);
    assert!(
        found,
        "no group drops the accuracy by 0.30 at SSIM ≥ 0.9: {}",
        forensics["groups"]
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("Trivial predictors on the same samples: majority class 0.2"),
        "{report}"
    );
    assert!(
        report.contains("SD between seeds") && report.contains("seed SD"),
        "{report}"
    );
    for png in [
        "drift-synthesis-1/drift_matrix.png",
        "drift-synthesis-1/drop_matrix.png",
        "drift-synthesis-1/drift_vs_corruption.png",
        "forensics-1/forensics.png",
        "forensics-1/stage_gradients.png",
        "optimisation-1/learning_curves.png",
    ] {
        assert!(run.join(png).is_file() && report.contains(png), "{png}");
    }
    // the verdict sentences carry their intervals
    let ratio = report
        .lines()
        .find(|l| l.starts_with("The corruption drop is") || l.contains("is not defined here"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        ratio.contains("not defined") || (ratio.contains('[') && ratio.contains(']')),
        "{ratio}"
    );
    let drop = report
        .lines()
        .find(|l| l.starts_with("Mean drop under pipeline drift"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(drop.contains('[') && drop.contains(']'), "{drop}");
}
