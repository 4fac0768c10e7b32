//! The `l2l-host` binary as users run it: the main job, `process`, config errors, overrides and the
//! plugin commands.

use l2l_system_tests::{describe, install_testkit, run_host, run_process, workspace_root, write_npy_f32};
use npyz::WriterBuilder;
use std::path::Path;

const PIPELINE: &str = r#"
device = "cpu"
pipeline = ["black_level", "demosaic", "clip"]

[stages.black_level]
kind = "black_level"
black_level = [0.1, 0.1, 0.1, 0.1]

[stages.demosaic]
kind = "demosaic_bilinear"

[stages.clip]
kind = "clip"
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_npy_u16(path: &Path, h: u64, w: u64, value: u16) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = npyz::WriteOptions::<u16>::new()
        .default_dtype()
        .shape(&[h, w])
        .writer(file)
        .begin_nd()
        .unwrap();
    writer.extend(std::iter::repeat_n(value, (h * w) as usize)).unwrap();
    writer.finish().unwrap();
}

fn read_npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let npy = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

#[test]
fn the_chart_job_runs_into_a_new_directory_each_time_and_recovers_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let config = workspace_root().join("configs/chart.toml");
    let config = config.to_str().unwrap();
    let first = run_host(&["run", config, "--set", "device=cpu"], None, dir.path());
    assert!(first.status.success(), "{}", describe(&first));
    let run_dir = dir.path().join("runs/chart-1");
    for file in [
        "report.md",
        "summary.json",
        "config.toml",
        "output.png",
        "ground_truth.png",
        "stages/02-demosaic.png",
    ] {
        assert!(run_dir.join(file).exists(), "{file} missing in {}", run_dir.display());
    }
    let summary: String = std::fs::read_to_string(run_dir.join("summary.json")).unwrap();
    let psnr = parse_psnr(&summary);
    // the pipeline inverts the simulated camera exactly except for demosaicing: well above chance
    assert!(psnr > 22.0, "PSNR {psnr} dB");

    // a wrong gamma in the processing must show in the same measure
    let second = run_host(
        &["run", config, "--set", "device=cpu", "--set", "stages.gamma.gamma=1.0"],
        None,
        dir.path(),
    );
    assert!(second.status.success(), "{}", describe(&second));
    let wrong = parse_psnr(&std::fs::read_to_string(dir.path().join("runs/chart-2/summary.json")).unwrap());
    assert!(wrong < psnr - 5.0, "gamma 1.0 gave {wrong} dB vs {psnr} dB");
    // the first run is untouched
    assert_eq!(std::fs::read_to_string(run_dir.join("summary.json")).unwrap(), summary);
    // camera parameters taken from the chart camera's metadata instead of the config: the same result
    let from_metadata: Vec<&str> = [
        "stages.black_level.from_metadata=true",
        "stages.black_level.black_level=[0.0, 0.0, 0.0, 0.0]",
        "stages.demosaic.cfa_from_metadata=true",
        "stages.white_balance.from_metadata=true",
        "stages.white_balance.gains=[1.0, 1.0, 1.0]",
        "stages.colour_matrix.from_metadata=true",
    ]
    .iter()
    .flat_map(|s| ["--set", s])
    .collect();
    let mut args = vec!["run", config, "--set", "device=cpu"];
    args.extend(from_metadata);
    let third = run_host(&args, None, dir.path());
    assert!(third.status.success(), "{}", describe(&third));
    let by_metadata = parse_psnr(&std::fs::read_to_string(dir.path().join("runs/chart-3/summary.json")).unwrap());
    assert!((by_metadata - psnr).abs() < 1e-6, "{by_metadata} vs {psnr}");
}

fn parse_psnr(summary: &str) -> f64 {
    let start = summary.find("\"psnr_db\":").expect("psnr_db in summary") + "\"psnr_db\":".len();
    summary[start..]
        .trim_start()
        .split([',', '\n', '}'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn process_writes_png_tiff_and_npy_with_the_pipeline_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pipeline.toml", PIPELINE);
    let raw = dir.path().join("raw.npy");
    // 0.55 of full scale everywhere: (0.55 − 0.1) / (1 − 0.1) = 0.5 after black level, in every channel
    write_npy_u16(&raw, 6, 7, (0.55f64 * 65535.0).round() as u16);
    for out in ["out.npy", "out.tiff", "out.png"] {
        let output = run_process(&config, &raw, out, &[], None, dir.path());
        assert!(output.status.success(), "{}", describe(&output));
        assert!(dir.path().join(out).exists());
    }
    let (shape, values) = read_npy_f32(&dir.path().join("out.npy"));
    assert_eq!(shape, [6, 7, 3]);
    for v in values {
        assert!((v - 0.5).abs() < 1e-4, "value {v}");
    }
    let png = std::fs::read(dir.path().join("out.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let tiff = std::fs::read(dir.path().join("out.tiff")).unwrap();
    assert_eq!(&tiff[..2], b"II");
}

#[test]
fn config_errors_name_the_key_and_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!("threds = 2\n{PIPELINE}"),
            vec!["unknown field `threds`", "expected one of"],
        ),
        (
            format!("{PIPELINE}\n[job]\nkind = \"pipelin\"\n"),
            vec!["config key `job.kind`", "unknown variant `pipelin`", "pipeline"],
        ),
        (
            PIPELINE.replace("kind = \"clip\"", "kind = \"clipp\""),
            vec!["unknown stage `clipp`", "available:", "clip", "gamma"],
        ),
        (
            PIPELINE.replace("black_level = [0.1, 0.1, 0.1, 0.1]", "black_levels = 1"),
            vec!["config key `stages.black_level`", "unknown field `black_levels`"],
        ),
        (
            PIPELINE.replace(
                "kind = \"demosaic_bilinear\"",
                "kind = \"demosaic_bilinear\"\ncfa_pattern = \"RGBG\"",
            ),
            vec![
                "config key `stages.demosaic`",
                "cfa_pattern: expected one of",
                "`RGGB`",
                "found `RGBG`",
            ],
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let config = write(dir.path(), &format!("c{index}.toml"), text);
        let output = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
        assert!(!output.status.success(), "case {index} was accepted");
        let err = stderr(&output);
        for needle in expected {
            assert!(err.contains(needle), "case {index}: `{needle}` not in:\n{err}");
        }
        assert!(err.lines().count() <= 10, "case {index}: long error:\n{err}");
    }
    let good = write(dir.path(), "good.toml", PIPELINE);
    let output = run_host(&["validate", good.to_str().unwrap()], None, dir.path());
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn overrides_reach_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pipeline.toml", PIPELINE);
    let raw = dir.path().join("raw.npy");
    write_npy_u16(&raw, 4, 4, (0.55f64 * 65535.0).round() as u16);
    let output = run_process(
        &config,
        &raw,
        "o.npy",
        &["--set", "stages.black_level.black_level=[0.0, 0.0, 0.0, 0.0]"],
        None,
        dir.path(),
    );
    assert!(output.status.success(), "{}", describe(&output));
    let (_, values) = read_npy_f32(&dir.path().join("o.npy"));
    assert!(values.iter().all(|v| (v - 0.55).abs() < 1e-4), "{:?}", &values[..3]);
    let bad = run_host(
        &["validate", config.to_str().unwrap(), "--set", "stages.clip.max=nope"],
        None,
        dir.path(),
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("stages.clip"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn plugins_list_and_inspect_show_kinds_keys_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let output = run_host(&["plugins", "list"], Some(dir.path()), dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    let listing = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "isp-core",
        "demosaic-bilinear",
        "gamma",
        "testkit-plugin",
        "dataset",
        "task-model",
        "libl2l_isp_core.so",
    ] {
        assert!(listing.contains(needle), "`{needle}` not in listing:\n{listing}");
    }
    let output = run_host(&["plugins", "inspect", "gamma"], None, dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "config keys",
        "gamma",
        "default 2.2",
        "epsilon",
        "learnable parameters",
        "shape [1]",
        "trainable true",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
}

#[test]
fn plugins_list_reports_a_refused_file_in_a_few_lines_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libl2l_broken.so"), b"\x7fELF but not really").unwrap();
    let output = run_host(&["plugins", "list"], Some(dir.path()), dir.path());
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("libl2l_broken.so") && err.contains("not a loadable shared library"),
        "{err}"
    );
    assert!(err.lines().count() <= 10, "{err}");
    // the good plugins are still listed
    assert!(String::from_utf8_lossy(&output.stdout).contains("isp-core"));
}

#[test]
fn export_writes_every_pipeline_once_shares_prefixes_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = workspace_root().join("configs/pipelines");
    let a = pipelines.join("menon2007_sharpening_filter_median_denoising.toml");
    let b = pipelines.join("menon2007_sharpening_filter_gaussian_denoising.toml");
    let raws = dir.path().join("raws");
    std::fs::create_dir(&raws).unwrap();
    // 150 rows: export runs each pipeline's own last stages in bands of 64 rows, the last one short
    for name in ["one", "two"] {
        write_npy_f32(
            &raws.join(format!("{name}.npy")),
            150,
            16,
            (0..2400).map(|i| 0.1 + 0.8 * ((i * 37 % 101) as f32 / 101.0)),
        );
    }
    let args = |out: &str| -> Vec<String> {
        [
            "export",
            "--device",
            "cpu",
            "--format",
            "npy",
            "--output",
            out,
            "--input",
            raws.to_str().unwrap(),
            "--pipelines",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |out: &str| {
        let owned = args(out);
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        let output = run_host(&refs, None, dir.path());
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run("out");
    // 2 images × (black level, demosaic, white balance, colour matrix, to YUV, sharpen): shared by both
    assert!(
        first.contains("exported 4 files (0 already there, 12 stage runs shared)"),
        "{first}"
    );
    // the export equals processing each file alone, whole
    for pipeline in [&a, &b] {
        let processed = run_process(pipeline, &raws.join("one.npy"), "alone.npy", &[], None, dir.path());
        assert!(processed.status.success(), "{}", describe(&processed));
        let name = pipeline.file_stem().unwrap().to_str().unwrap();
        let (shape, exported) = read_npy_f32(&dir.path().join(format!("out/{name}/one.npy")));
        assert_eq!(shape, [150, 16, 3]);
        let (_, alone) = read_npy_f32(&dir.path().join("alone.npy"));
        assert_eq!(exported, alone, "{name}");
    }
    // resumable: nothing to do, then only the missing file
    assert!(run("out").contains("exported 0 files (4 already there"));
    std::fs::remove_file(
        dir.path()
            .join("out/menon2007_sharpening_filter_gaussian_denoising/two.npy"),
    )
    .unwrap();
    assert!(run("out").contains("exported 1 files (3 already there"));
    // a truncated output (not empty) is not counted as done: made again, whole
    let cut = dir
        .path()
        .join("out/menon2007_sharpening_filter_gaussian_denoising/one.npy");
    let whole = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    assert!(run("out").contains("exported 1 files (3 already there"));
    assert_eq!(std::fs::read(&cut).unwrap(), whole);
    let record = std::fs::read_to_string(cut.with_file_name(".l2l-producer")).unwrap();
    assert!(record.contains("stages in evaluation mode"), "{record}");

    // on a terminal the progress bar shows, and -q hides it (`script` gives the command a terminal)
    let on_terminal = |quiet: &str| -> String {
        let owned = args("out-tty");
        let command = format!(
            "{} {quiet} {}",
            l2l_system_tests::host_binary().display(),
            owned.join(" ")
        );
        let _ = std::fs::remove_dir_all(dir.path().join("out-tty"));
        let output = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(
        on_terminal("").contains("outputs ["),
        "no progress bar drawn on a terminal"
    );
    let quiet = on_terminal("-q");
    assert!(!quiet.contains("outputs ["), "-q drew a progress bar: {quiet}");
}

#[test]
fn bench_reports_every_stage_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/parametrized.toml");
    let output = run_host(
        &[
            "bench",
            "--pipelines",
            pipeline.to_str().unwrap(),
            "--size",
            "32",
            "--batch",
            "2",
            "--iterations",
            "1",
            "--device",
            "cpu",
            "--json",
            "bench.json",
        ],
        None,
        dir.path(),
    );
    assert!(output.status.success(), "{}", describe(&output));
    let json = std::fs::read_to_string(dir.path().join("bench.json")).unwrap();
    // every stage and the whole pipeline, each with forward and forward+backward throughput
    let stages = l2l_host::config::PipelineSpec::load(&pipeline).unwrap().stages.len();
    assert_eq!(json.matches("\"what\"").count(), stages + 1, "{json}");
    assert_eq!(json.matches("\"backward_mpix_per_s\": null").count(), 0, "{json}");
    assert!(json.contains("\"what\": \"parametrized/demosaic\""), "{json}");
}

/// `bench --task-model` times a training step of a segmentation network (Dice on masks) as well as of a
/// classifier (cross-entropy on labels).
#[test]
fn bench_times_classifiers_and_segmentation_networks() {
    let dir = tempfile::tempdir().unwrap();
    for (config, kind) in [
        ("configs/train/aerial-cars.toml", "unetplusplus"),
        ("configs/train/cells-task.toml", "resnet"),
    ] {
        let config = workspace_root().join(config);
        let args = [
            "bench",
            "--task-model",
            config.to_str().unwrap(),
            "--size",
            "64",
            "--batch",
            "2",
            "--iterations",
            "1",
            "--device",
            "cpu",
        ];
        let output = run_host(&args, None, dir.path());
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains(&format!("task model `{kind}` training step")),
            "{}",
            describe(&output)
        );
    }
}

/// A pipeline whose stages do not fit together (RGB into a demosaicer, a mosaic into an RGB stage) is
/// refused by `validate`, naming both stages and both kinds, before anything runs.
#[test]
fn validate_refuses_stages_that_do_not_fit_together() {
    let dir = tempfile::tempdir().unwrap();
    let rgb_into_demosaicer = PIPELINE.replace(
        "pipeline = [\"black_level\", \"demosaic\", \"clip\"]",
        "pipeline = [\"black_level\", \"demosaic\", \"demosaic_again\", \"clip\"]",
    ) + "\n[stages.demosaic_again]\nkind = \"demosaic_menon2007\"\n";
    let config = write(dir.path(), "rgb_into_demosaicer.toml", &rgb_into_demosaicer);
    let output = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
    assert!(!output.status.success(), "accepted: {}", describe(&output));
    let err = stderr(&output);
    for needle in [
        "stage `demosaic_again` (`demosaic_menon2007`) takes a mosaic",
        "stage `demosaic` (`demosaic_bilinear`) gives a RGB",
    ] {
        assert!(err.contains(needle), "`{needle}` not in:\n{err}");
    }
    let mosaic_into_rgb = PIPELINE.replace(
        "pipeline = [\"black_level\", \"demosaic\", \"clip\"]",
        "pipeline = [\"black_level\", \"wb\", \"demosaic\", \"clip\"]",
    ) + "\n[stages.wb]\nkind = \"white_balance\"\n";
    let config = write(dir.path(), "mosaic_into_rgb.toml", &mosaic_into_rgb);
    let output = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
    let err = stderr(&output);
    assert!(
        !output.status.success()
            && err.contains("stage `wb` (`white_balance`) takes a RGB")
            && err.contains("`black_level`"),
        "{err}"
    );
}

/// The keys a component accepts, as its own config parser lists them when given an unknown key.
fn accepted_keys(
    registry: &l2l_host::plugins::Registry,
    kind: l2l_plugin_api::ComponentKind,
    name: &str,
    plugin: &str,
) -> Vec<String> {
    let mut probe = toml::Table::new();
    probe.insert("l2l_no_such_key".into(), toml::Value::Integer(0));
    let err = match kind {
        l2l_plugin_api::ComponentKind::Stage => registry.build_stage(name, Some(plugin), &probe, "probe").err(),
        l2l_plugin_api::ComponentKind::Dataset => registry.build_dataset(name, Some(plugin), &probe, "probe").err(),
        l2l_plugin_api::ComponentKind::TaskModel => {
            registry.build_task_model(name, Some(plugin), &probe, 2, "probe").err()
        }
    }
    .unwrap_or_else(|| panic!("`{name}` accepted an unknown key"))
    .to_string();
    assert!(err.contains("unknown field `l2l_no_such_key`"), "{name}: {err}");
    if err.contains("there are no fields") {
        return Vec::new();
    }
    let list = err.split("expected ").last().unwrap_or_default();
    list.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every component documents exactly the keys its config accepts (the docs come from the config struct),
/// and `plugins inspect` shows each of them, optional ones not marked required.
#[test]
fn plugins_inspect_shows_every_accepted_key_of_every_component() {
    let dir = tempfile::tempdir().unwrap();
    let registry = l2l_host::plugins::Registry::discover(&[l2l_system_tests::profile_dir()]);
    assert!(
        registry.plugins().len() >= 15,
        "{} plugins found",
        registry.plugins().len()
    );
    for plugin in registry.plugins() {
        let output = run_host(&["plugins", "inspect", &plugin.name], None, dir.path());
        assert!(output.status.success(), "{}", describe(&output));
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        for component in &plugin.components {
            let mut accepted = accepted_keys(&registry, component.kind, &component.name, &plugin.name);
            let mut documented: Vec<String> = component.config_keys.iter().map(|k| k.name.to_string()).collect();
            accepted.sort();
            documented.sort();
            assert_eq!(
                documented, accepted,
                "`{}`: documented keys differ from accepted keys",
                component.name
            );
            let section = text
                .split(&format!("`{}` —", component.name))
                .nth(1)
                .unwrap_or_else(|| panic!("`{}` not in:\n{text}", component.name));
            let section = section.split("\n\n").next().unwrap_or_default();
            for key in component.config_keys.iter() {
                let line = section
                    .lines()
                    .find(|l| l.trim_start().starts_with(&format!("{} ", key.name)))
                    .unwrap_or_else(|| panic!("`{}`: key `{}` not shown:\n{section}", component.name, key.name));
                let column = line.split_whitespace().nth(1).unwrap_or_default();
                assert_eq!(column == "required", key.required, "`{}`: {line}", component.name);
            }
        }
    }
    let output = run_host(&["plugins", "inspect", "resnet"], None, dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    let weights = text
        .lines()
        .find(|l| l.trim_start().starts_with("weights "))
        .expect("resnet's weights key");
    assert!(
        !weights.contains("required") && weights.contains("optional"),
        "{weights}"
    );
    assert!(text.contains("task-model `resnet`"), "{text}");
    let output = run_host(&["plugins", "inspect", "demosaic_bilinear"], None, dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("takes: mosaic [B, 1, H, W]; gives: RGB [B, 3, H, W]"),
        "{text}"
    );
}

/// A per-pixel stage whose values depend on the pixel's position (lens shading) gives the same values
/// through `export` (bands of 64 rows) and `process` (the whole image) when it reads its band's
/// position; the same stage taking every band for the whole image — the trap — differs, so the check
/// can fail.
#[test]
fn a_position_dependent_stage_gives_the_same_values_through_export_and_process() {
    let dir = tempfile::tempdir().unwrap();
    l2l_system_tests::plugins_with_testkit(dir.path());
    write_npy_f32(
        &dir.path().join("raw.npy"),
        150,
        16,
        (0..2400).map(|i| 0.1 + 0.8 * ((i * 37 % 101) as f32 / 101.0)),
    );
    let mut largest = Vec::new();
    for kind in ["vignette", "vignette_unaware"] {
        let config = write(
            dir.path(),
            &format!("{kind}.toml"),
            &format!(
                "plugin_dirs = [\"plugins\"]\ndevice = \"cpu\"\npipeline = [\"black_level\", \"demosaic\", \"shading\"]\n\n\
                 [stages.black_level]\nkind = \"black_level\"\n\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n\n\
                 [stages.shading]\nkind = \"{kind}\"\nk1 = -0.3\n"
            ),
        );
        let processed = run_process(
            &config,
            &dir.path().join("raw.npy"),
            &format!("{kind}-alone.npy"),
            &[],
            None,
            dir.path(),
        );
        assert!(processed.status.success(), "{}", describe(&processed));
        let output = run_host(
            &[
                "export",
                "--device",
                "cpu",
                "--format",
                "npy",
                "--output",
                "out",
                "--input",
                "raw.npy",
                "--pipelines",
                config.to_str().unwrap(),
            ],
            None,
            dir.path(),
        );
        assert!(output.status.success(), "{}", describe(&output));
        let (shape, exported) = read_npy_f32(&dir.path().join(format!("out/{kind}/raw.npy")));
        assert_eq!(shape, [150, 16, 3]);
        let (_, alone) = read_npy_f32(&dir.path().join(format!("{kind}-alone.npy")));
        largest.push(
            exported
                .iter()
                .zip(&alone)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max),
        );
    }
    assert_eq!(
        largest[0], 0.0,
        "the band-aware stage differs between export and process"
    );
    assert!(
        largest[1] > 0.05,
        "the unaware stage should differ in bands, by {}",
        largest[1]
    );
}

/// A library in a named plugin directory whose name lacks the `libl2l_` prefix is not loaded, and the
/// host says so once, with the rule.
#[test]
fn a_library_without_the_plugin_prefix_is_skipped_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let installed = install_testkit(dir.path());
    std::fs::rename(&installed, dir.path().join("libmy_stage.so")).unwrap();
    let output = run_host(
        &["plugins", "list", "--plugin-dir", dir.path().to_str().unwrap()],
        None,
        dir.path(),
    );
    let err = stderr(&output);
    assert!(
        err.contains("skipped 1 library whose name does not start with `libl2l_`") && err.contains("libmy_stage.so"),
        "{err}"
    );
    assert_eq!(err.matches("libmy_stage.so").count(), 1, "{err}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("testkit"),
        "{}",
        describe(&output)
    );
}

/// Output into a pipe the reader has closed (`l2l-host plugins inspect isp-core | head -1`) ends the
/// process quietly, without a panic.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(l2l_system_tests::host_binary())
        .args(["plugins", "inspect", "isp-core"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the reader goes away before the host has written anything
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}

/// `process --until STAGE` runs a prefix of the pipeline: here the mosaic after black-level
/// subtraction, before demosaicing.
#[test]
fn process_until_a_stage_writes_that_stages_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pipeline.toml", PIPELINE);
    let raw = dir.path().join("raw.npy");
    write_npy_u16(&raw, 4, 4, (0.55f64 * 65535.0).round() as u16);
    let output = run_process(&config, &raw, "o.npy", &["--until", "black_level"], None, dir.path());
    assert!(output.status.success(), "{}", describe(&output));
    let (shape, values) = read_npy_f32(&dir.path().join("o.npy"));
    assert_eq!(shape, [4, 4, 1]);
    // (0.55 − 0.1) / (1 − 0.1)
    assert!(values.iter().all(|v| (v - 0.5).abs() < 1e-4), "{values:?}");
    let output = run_process(&config, &raw, "o.npy", &["--until", "demosaik"], None, dir.path());
    let err = stderr(&output);
    assert!(
        !output.status.success() && err.contains("--until `demosaik`") && err.contains("black_level, demosaic, clip"),
        "{err}"
    );
}

/// A plugin's own `tracing` events reach the host's log, named by the plugin, and `-v` / `L2L_LOG`
/// filter them: the testkit warns when `nan_after` turns to NaN and says at debug level when a
/// `vignette` is built.
#[test]
fn a_plugins_log_events_reach_the_host_and_its_filters() {
    let dir = tempfile::tempdir().unwrap();
    l2l_system_tests::plugins_with_testkit(dir.path());
    let config = write(
        dir.path(),
        "c.toml",
        "plugin_dirs = [\"plugins\"]\ndevice = \"cpu\"\npipeline = [\"shading\", \"nan\"]\n\n[stages.shading]\nkind = \"vignette\"\n\n\
         [stages.nan]\nkind = \"nan_after\"\ncalls = 0\n",
    );
    let raw = dir.path().join("raw.npy");
    write_npy_u16(&raw, 4, 4, 1000);
    let run = |env: Option<&str>, extra: &[&str]| -> String {
        let mut command = std::process::Command::new(l2l_system_tests::host_binary());
        command.args(extra).args([
            "process",
            config.to_str().unwrap(),
            "--input",
            raw.to_str().unwrap(),
            "--output",
            "o.npy",
            "--force",
        ]);
        command
            .current_dir(dir.path())
            .env_remove("L2L_LOG")
            .env_remove("L2L_PLUGIN_PATH");
        if let Some(filter) = env {
            command.env("L2L_LOG", filter);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", describe(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let default = run(None, &[]);
    assert!(
        default.contains("testkit_plugin: nan_after: returning NaN from now on shape=[1, 1, 4, 4]"),
        "{default}"
    );
    assert!(!default.contains("vignette built"), "{default}");
    let debug = run(None, &["-vv"]);
    assert!(
        debug.contains("testkit_plugin: vignette built k1=-0.3 k2=0.0"),
        "{debug}"
    );
    let one_plugin = run(Some("error,testkit_plugin=debug"), &[]);
    assert!(
        one_plugin.contains("vignette built") && one_plugin.contains("returning NaN"),
        "{one_plugin}"
    );
    let quiet = run(Some("error"), &[]);
    assert!(!quiet.contains("testkit_plugin"), "{quiet}");
}

/// Values a run would reject are rejected by `validate` already, each naming its key: a thread count
/// that exhausts the machine, a learning rate below zero, a run name that leaves `output_dir`, a
/// parameter far outside its stage's range (σ = 1e19 wiped the image out), a device this machine
/// does not have.
#[test]
fn validate_refuses_what_the_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let train = "[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 8\nsize = 32\n\n[task_model]\nkind = \"resnet\"\n\n\
                 [job]\nkind = \"train\"\nmode = \"static\"\n";
    let cases = [
        (
            format!("threads = 0\n{PIPELINE}"),
            "config key `threads`: expected 1 to 1024",
        ),
        (
            format!("threads = 100000\n{PIPELINE}"),
            "config key `threads`: expected 1 to 1024",
        ),
        (
            format!("{PIPELINE}\n{train}lr = -1.0\n"),
            "config key `job.lr`: expected a learning rate > 0, found -1",
        ),
        (
            format!("{PIPELINE}\n{train}n_splits = 100\n"),
            "config key `job.n_splits`: 100 folds of a data set of 8 samples",
        ),
        (
            format!("{PIPELINE}\n[job]\nkind = \"pipeline\"\nname = \"../../escaped\"\n"),
            "run name `../../escaped`: expected a plain name",
        ),
        (
            PIPELINE.replace(
                "pipeline = [\"black_level\", \"demosaic\", \"clip\"]",
                "pipeline = [\"black_level\", \"demosaic\", \"blur\", \"clip\"]",
            ) + "\n[stages.blur]\nkind = \"denoise_gaussian\"\nsigma = 1e19\n",
            "sigma: expected values in [0.1, 16], found 10000000000000000000",
        ),
        (
            PIPELINE.replace("device = \"cpu\"", "device = \"cuda:3\""),
            "config key `device`: cuda:3",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let config = write(dir.path(), &format!("c{index}.toml"), text);
        let output = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
        let err = stderr(&output);
        assert!(
            !output.status.success() && err.contains(expected),
            "case {index}: `{expected}` not in:\n{err}"
        );
    }
    let escaped = write(
        dir.path(),
        "escape.toml",
        &format!("{PIPELINE}\n[input]\nkind = \"test_chart\"\n[job]\nkind = \"pipeline\"\nname = \"../../escaped\"\n"),
    );
    let output = run_host(&["run", escaped.to_str().unwrap()], None, dir.path());
    assert!(
        !output.status.success() && !dir.path().parent().unwrap().join("escaped-1").exists(),
        "{}",
        describe(&output)
    );
}

/// `process` refuses to write its output over its own raw input, which stays as it was.
#[test]
fn process_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "pipeline.toml", PIPELINE);
    let raw = dir.path().join("raw.npy");
    write_npy_u16(&raw, 4, 4, 1000);
    let before = std::fs::read(&raw).unwrap();
    for output in ["raw.npy", "./raw.npy"] {
        let result = run_process(&config, &raw, output, &[], None, dir.path());
        let err = stderr(&result);
        assert!(
            !result.status.success() && err.contains("that is the raw input"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&raw).unwrap(), before);
    // any other existing file is the user's: replaced only with --force
    std::fs::write(dir.path().join("mine.npy"), b"the user's").unwrap();
    let args = |force: &'static [&'static str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "process",
            config.to_str().unwrap(),
            "--input",
            raw.to_str().unwrap(),
            "--output",
            "mine.npy",
        ]
        .map(String::from)
        .to_vec();
        args.extend(force.iter().map(|s| s.to_string()));
        args
    };
    let refused = run_host(
        &args(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        dir.path(),
    );
    assert!(
        !refused.status.success() && stderr(&refused).contains("--output mine.npy: the file exists; pass --force"),
        "{}",
        describe(&refused)
    );
    assert_eq!(std::fs::read(dir.path().join("mine.npy")).unwrap(), b"the user's");
    let forced = run_host(
        &args(&["--force"]).iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        dir.path(),
    );
    assert!(forced.status.success(), "{}", describe(&forced));
}

/// Shell completions and a man page come from the command line's own definition; output that is not
/// a terminal carries no colour codes.
#[test]
fn completions_man_page_and_plain_piped_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_host(&["completions", "bash"], None, dir.path());
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && script.contains("complete -F _l2l__host") && script.contains("l2l-host"),
        "{script}"
    );
    assert!(script.contains("plugin-env") && script.contains("--until"), "{script}");
    let output = run_host(&["man"], None, dir.path());
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && page.contains(".TH l2l-host") && page.contains("process"),
        "{page}"
    );
    // a warning logged into a pipe: plain text
    let config = write(
        dir.path(),
        "data.toml",
        "device = \"cpu\"\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 4\nsize = 16\n",
    );
    let output = run_host(&["-v", "validate", config.to_str().unwrap()], None, dir.path());
    let err = stderr(&output);
    assert!(!err.is_empty() && !err.contains('\u{1b}'), "{err:?}");
}

/// Two inputs of one stem would be exported to one file: refused, naming both. An edited pipeline's
/// old outputs are made again, and so is an empty output file; an unchanged pipeline's are kept.
#[test]
fn export_never_mixes_up_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["dA", "dB"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        write_npy_u16(&dir.path().join(folder).join("x.npy"), 4, 4, 40000);
    }
    let pipeline = write(
        dir.path(),
        "p.toml",
        &PIPELINE.replace("kind = \"clip\"", "kind = \"clip\"\nmax = 1.0"),
    );
    let export = |inputs: &[&str]| {
        let mut args = vec![
            "export",
            "--device",
            "cpu",
            "--format",
            "npy",
            "--output",
            "out",
            "--pipelines",
            pipeline.to_str().unwrap(),
            "--input",
        ];
        args.extend_from_slice(inputs);
        run_host(&args, None, dir.path())
    };
    let collision = export(&["dA", "dB"]);
    let err = stderr(&collision);
    assert!(
        !collision.status.success() && err.contains("dA/x.npy") && err.contains("dB/x.npy") && err.contains("`x`"),
        "{err}"
    );
    let first = export(&["dA"]);
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("exported 1 files (0 already there"),
        "{}",
        describe(&first)
    );
    let again = export(&["dA"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("exported 0 files (1 already there"),
        "{}",
        describe(&again)
    );
    let (_, before) = read_npy_f32(&dir.path().join("out/p/x.npy"));
    // the pipeline edited: clip at 0.01 instead of 1
    std::fs::write(
        &pipeline,
        PIPELINE.replace("kind = \"clip\"", "kind = \"clip\"\nmax = 0.01"),
    )
    .unwrap();
    let edited = export(&["dA"]);
    assert!(
        String::from_utf8_lossy(&edited.stdout).contains("exported 1 files (0 already there"),
        "{}",
        describe(&edited)
    );
    let (_, after) = read_npy_f32(&dir.path().join("out/p/x.npy"));
    assert!(before != after && after.iter().all(|v| *v <= 0.01), "{after:?}");
    std::fs::write(dir.path().join("out/p/x.npy"), b"").unwrap();
    let emptied = export(&["dA"]);
    assert!(
        String::from_utf8_lossy(&emptied.stdout).contains("exported 1 files (0 already there"),
        "{}",
        describe(&emptied)
    );
}

/// `--resume` continues a run killed before its first checkpoint (from the start, in its own
/// directory), and refuses a run whose config.toml was edited since it started unless asked.
#[test]
fn resume_starts_over_without_a_checkpoint_and_refuses_an_edited_config() {
    let dir = tempfile::tempdir().unwrap();
    l2l_system_tests::plugins_with_testkit(dir.path());
    let config = write(
        dir.path(),
        "train.toml",
        "plugin_dirs = [\"plugins\"]\ndevice = \"cpu\"\nthreads = 1\npipeline = [\"demosaic\"]\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n\n\
         [dataset]\nkind = \"ramp\"\nlen = 8\nsize = [8, 8]\n\n[task_model]\nkind = \"linear\"\n\n[job]\nkind = \"train\"\nmode = \"static\"\n\
         epochs = 1\nbatch_size = 2\ntrain_size = 0.5\ntracked_samples = 0\nworkers = 1\n",
    );
    let first = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    assert!(first.status.success(), "{}", describe(&first));
    let run = dir.path().join("runs/train-1");
    // as if killed before the first checkpoint
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    let resumed = run_host(&["run", "--resume", run.to_str().unwrap()], None, dir.path());
    assert!(resumed.status.success(), "{}", describe(&resumed));
    assert!(run.join("checkpoints/fold0.safetensors").is_file());
    let recorded = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(recorded.contains("lr = 0.001"), "{recorded}");
    std::fs::write(run.join("config.toml"), recorded.replace("lr = 0.001", "lr = 0.5")).unwrap();
    let refused = run_host(&["run", "--resume", run.to_str().unwrap()], None, dir.path());
    let err = stderr(&refused);
    assert!(
        !refused.status.success()
            && err.contains("config.toml changed since the run started")
            && err.contains("+ lr = 0.5")
            && err.contains("- lr = 0.001"),
        "{err}"
    );
    let allowed = run_host(
        &["run", "--resume", run.to_str().unwrap(), "--allow-config-change"],
        None,
        dir.path(),
    );
    assert!(
        allowed.status.success() && stderr(&allowed).contains("continuing with it"),
        "{}",
        describe(&allowed)
    );
}

/// The smaller things a user should hear about: a plugin directory that does not exist, files an
/// export skips, `-q` keeping warnings out, examples in the help, an image side of 0 for `bench`.
#[test]
fn what_is_skipped_or_missing_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "p.toml",
        &format!("plugin_dirs = [\"no-such-dir\"]\n{PIPELINE}"),
    );
    let output = run_host(&["validate", config.to_str().unwrap()], None, dir.path());
    let err = stderr(&output);
    assert!(
        err.contains("no-such-dir") && err.contains("no such file or directory"),
        "{err}"
    );
    let quiet = run_host(&["-q", "validate", config.to_str().unwrap()], None, dir.path());
    assert!(
        quiet.status.success() && !stderr(&quiet).contains("no-such-dir"),
        "{}",
        describe(&quiet)
    );
    std::fs::create_dir(dir.path().join("raws")).unwrap();
    write_npy_u16(&dir.path().join("raws/a.npy"), 4, 4, 40000);
    std::fs::write(dir.path().join("raws/notes.txt"), "not a raw file").unwrap();
    let output = run_host(
        &[
            "export",
            "--device",
            "cpu",
            "--format",
            "npy",
            "--output",
            "out",
            "--input",
            "raws",
            "--pipelines",
            config.to_str().unwrap(),
        ],
        None,
        dir.path(),
    );
    let err = stderr(&output);
    assert!(
        output.status.success()
            && err.contains("skipped 1 file(s) that are not raw files")
            && err.contains("notes.txt"),
        "{}",
        describe(&output)
    );
    let help = run_host(&["run", "--help"], None, dir.path());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("Examples:\n  l2l-host run configs/quickstart.toml"),
        "{}",
        describe(&help)
    );
    let bench = run_host(
        &["bench", "--pipelines", config.to_str().unwrap(), "--size", "0"],
        None,
        dir.path(),
    );
    assert!(
        !bench.status.success() && stderr(&bench).contains("0 is not in 2..=65536"),
        "{}",
        describe(&bench)
    );
}

/// Export runs stages in evaluation mode, as `process` does: a pipeline ending in `normalize` uses
/// its running statistics, not each image's own (before, export normalised every image by itself).
#[test]
fn export_of_a_pipeline_ending_in_normalize_equals_process() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/parametrized.toml");
    let raws = dir.path().join("raws");
    std::fs::create_dir(&raws).unwrap();
    write_npy_f32(
        &raws.join("one.npy"),
        32,
        48,
        (0..32 * 48).map(|i| 0.1 + 0.8 * ((i * 29 % 97) as f32 / 97.0)),
    );
    let output = run_host(
        &[
            "export",
            "--device",
            "cpu",
            "--format",
            "npy",
            "--output",
            "out",
            "--input",
            raws.to_str().unwrap(),
            "--pipelines",
            pipeline.to_str().unwrap(),
        ],
        None,
        dir.path(),
    );
    assert!(output.status.success(), "{}", describe(&output));
    let processed = run_process(&pipeline, &raws.join("one.npy"), "alone.npy", &[], None, dir.path());
    assert!(processed.status.success(), "{}", describe(&processed));
    let (_, exported) = read_npy_f32(&dir.path().join("out/parametrized/one.npy"));
    let (_, alone) = read_npy_f32(&dir.path().join("alone.npy"));
    assert_eq!(exported, alone);
}

/// `docs/components.md`, every installed component's keys and parameters as `plugins inspect` prints
/// them (sorted, without the machine's file paths): the reference is made from the plugins
/// themselves, never written by hand. `L2L_UPDATE_DOCS=1` rewrites it after a plugin changes.
#[test]
fn the_component_reference_is_what_plugins_inspect_prints() {
    let dir = tempfile::tempdir().unwrap();
    let list = run_host(&["plugins", "list"], None, dir.path());
    assert!(list.status.success(), "{}", describe(&list));
    let mut components: Vec<(String, String, String)> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 3).then(|| (fields[1].to_string(), fields[2].to_string(), fields[0].to_string()))
        })
        .collect();
    components.sort();
    assert!(components.len() >= 20, "{components:?}");
    let mut text = String::from(
        "# Component reference\n\nEvery component the workspace's plugins install, as `l2l-host plugins inspect NAME` \
         prints it (made by `tests/cli.rs`; `L2L_UPDATE_DOCS=1 scripts/cargo.sh test -p l2l-system-tests \
         component_reference` rewrites it).\n",
    );
    for (kind, name, plugin) in &components {
        let inspect = run_host(&["plugins", "inspect", name], None, dir.path());
        assert!(inspect.status.success(), "{}", describe(&inspect));
        let printed = String::from_utf8_lossy(&inspect.stdout);
        let body: Vec<&str> = printed
            .lines()
            .filter(|l| !l.trim_start().starts_with(&format!("plugin {plugin} ")))
            .collect();
        text.push_str(&format!(
            "\n## `{name}` ({kind}, plugin `{plugin}`)\n\n```text\n{}\n```\n",
            body.join("\n")
        ));
    }
    let path = workspace_root().join("docs/components.md");
    if std::env::var_os("L2L_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == text,
        "docs/components.md is not what `plugins inspect` prints; rerun with L2L_UPDATE_DOCS=1"
    );
}
