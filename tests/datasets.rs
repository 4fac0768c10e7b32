//! Datasets end to end: generated data laid out on disk as the published sets (16-bit TIFFs + label
//! file; DNGs + PNG masks written by l2l and decoded by rawloader) and read back by the real loaders;
//! the batch loader; the `dataset` commands.

use l2l_host::config::ComponentSpec;
use l2l_host::data::datasets::{self, Layout};
use l2l_host::data::{Loader, LoaderOptions};
use l2l_host::plugins::Registry;
use l2l_system_tests::{profile_dir, run_host};
use std::sync::Arc;
use tch::Kind;

fn registry() -> Registry {
    Registry::discover(&[profile_dir()])
}

fn spec(kind: &str, config: &str) -> ComponentSpec {
    ComponentSpec {
        kind: kind.into(),
        plugin: None,
        config: l2l_system_tests::table(config),
    }
}

fn values(t: &tch::Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
}

#[test]
fn microscopy_layout_reads_back_what_was_generated() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let synthetic = spec("synthetic", "task = \"cells\"\ncount = 24\nsize = 32\n");
    datasets::write_layout(&registry, &synthetic, Layout::Microscopy, dir.path(), &[100, 5], false).unwrap();
    let config = format!("root = {:?}\nintensity = 5\n", dir.path());
    let loaded = datasets::open(&registry, &spec("raw_microscopy", &config), &[]).unwrap();
    let generated = datasets::open(&registry, &synthetic, &[("intensity", toml::Value::Float(5.0))]).unwrap();
    assert_eq!(loaded.class_names(), generated.class_names());
    assert_eq!(loaded.labels().unwrap(), generated.labels().unwrap());
    for i in [0, 7, 23] {
        let (a, b) = (loaded.sample(i).unwrap(), generated.sample(i).unwrap());
        let max_diff = values(&a.raw)
            .iter()
            .zip(values(&b.raw))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(max_diff <= 0.5 / 65535.0 + 1e-7, "sample {i}: {max_diff}");
        assert_eq!(a.target.int64_value(&[]), b.target.int64_value(&[]));
        assert_eq!(a.metadata.intensity, 5.0);
    }
}

#[test]
fn drone_layout_is_real_dng_that_rawloader_reads_with_the_camera() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let synthetic = spec(
        "synthetic",
        "task = \"aerial_cars\"\ncount = 4\nsize = 64\ncar_probability = 1.0\ncfa_pattern = \"GBRG\"\n",
    );
    datasets::write_layout(&registry, &synthetic, Layout::Drone, dir.path(), &[100], false).unwrap();
    let generated = datasets::open(&registry, &synthetic, &[]).unwrap();
    // tiles as large as the images: one tile per image with cars, in file order
    let config = format!("root = {:?}\ntile_size = 64\n", dir.path());
    let loaded = datasets::open(&registry, &spec("raw_drone", &config), &[]).unwrap();
    assert_eq!(loaded.len(), 4);
    for i in 0..4 {
        let (a, b) = (loaded.sample(i).unwrap(), generated.sample(i).unwrap());
        let max_diff = values(&a.raw)
            .iter()
            .zip(values(&b.raw))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(max_diff <= 1.0 / 65535.0, "sample {i}: {max_diff}");
        assert!(a.target.equal(&b.target), "mask {i}");
        let (read, made) = (a.metadata, b.metadata);
        assert_eq!(read.cfa_pattern, made.cfa_pattern);
        for (x, y) in read.black_level.iter().zip(made.black_level) {
            assert!((x - y).abs() < 1e-4, "{read:?} vs {made:?}");
        }
        for (x, y) in read
            .white_balance
            .iter()
            .zip(made.white_balance)
            .chain(read.colour_matrix.iter().zip(made.colour_matrix))
        {
            assert!((x - y).abs() < 1e-4, "{read:?} vs {made:?}");
        }
    }
}

#[test]
fn loader_batches_in_order_shuffles_by_seed_and_refuses_mixed_sizes() {
    let registry = registry();
    let dataset = Arc::new(datasets::open(&registry, &spec("synthetic", "count = 10\nsize = 16\n"), &[]).unwrap());
    let options = LoaderOptions {
        batch_size: 4,
        workers: 3,
        prefetch: 2,
        ..Default::default()
    };
    let batches: Vec<_> = Loader::new(dataset.clone(), (0..10).collect(), &options)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        batches.iter().map(|b| b.indices.clone()).collect::<Vec<_>>(),
        [vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    assert_eq!(batches[0].raw.size(), [4, 1, 16, 16]);
    assert_eq!(batches[2].target.size(), [2]);
    // each batch holds exactly the samples it names
    let direct = dataset.sample(5).unwrap();
    assert!(batches[1].raw.get(1).get(0).equal(&direct.raw));
    assert_eq!(batches[1].target.int64_value(&[1]), direct.target.int64_value(&[]));
    let order = |seed| {
        Loader::new(
            dataset.clone(),
            (0..10).collect(),
            &LoaderOptions {
                shuffle_seed: Some(seed),
                drop_last: true,
                ..options.clone()
            },
        )
        .unwrap()
        .flat_map(|b| b.unwrap().indices)
        .collect::<Vec<_>>()
    };
    assert_eq!(order(1), order(1));
    assert_ne!(order(1), order(2));
    assert_eq!(order(1).len(), 8, "drop_last leaves out the short batch");
    // a loader dropped early stops its workers
    let mut early = Loader::new(dataset.clone(), (0..10).collect(), &options).unwrap();
    early.next().unwrap().unwrap();
    drop(early);
    assert!(Loader::new(dataset, vec![11], &options)
        .err()
        .unwrap()
        .to_string()
        .contains("sample 11 is out of range"));

    // samples of two sizes cannot share a batch
    let dir = tempfile::tempdir().unwrap();
    l2l_rawio::write_tiff16(&dir.path().join("big.tiff"), &[1; 64], 8, 8).unwrap();
    l2l_rawio::write_tiff16(&dir.path().join("small.tiff"), &[1; 16], 4, 4).unwrap();
    std::fs::write(dir.path().join("l.csv"), "file,label\nbig.tiff,a\nsmall.tiff,b\n").unwrap();
    let config = format!("root = {:?}\nlabels_csv = \"l.csv\"\n", dir.path());
    let mixed = Arc::new(datasets::open(&registry, &spec("raw_folder", &config), &[]).unwrap());
    let err = Loader::new(mixed, vec![0, 1], &options)
        .unwrap()
        .next()
        .unwrap()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("sample 1 is [4, 4] but sample 0 is [8, 8]; a batch needs one size"),
        "{err}"
    );
}

#[test]
fn dataset_commands_describe_write_and_warn() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cells.toml");
    std::fs::write(&config, "[dataset]\nkind = \"synthetic\"\ncount = 8\nsize = 32\n").unwrap();
    let config = config.to_str().unwrap();
    let out = run_host(&["dataset", "info", config], None, dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("samples: 8") && text.contains("EOS          2 samples"),
        "{text}"
    );

    let out = run_host(
        &[
            "dataset",
            "write",
            config,
            "--layout",
            "microscopy",
            "--output",
            "micro",
            "--intensities",
            "10",
        ],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // written again: refused without --force, nothing touched
    let labels = dir.path().join("micro/labels/Ma190c_annotations.dat");
    std::fs::write(
        &labels,
        std::fs::read_to_string(&labels).unwrap() + "# a note of the user's\n",
    )
    .unwrap();
    let again = run_host(
        &[
            "dataset",
            "write",
            config,
            "--layout",
            "microscopy",
            "--output",
            "micro",
            "--intensities",
            "10",
        ],
        None,
        dir.path(),
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains("already holds 9 file(s)") && err.contains("--force"),
        "{err}"
    );
    assert!(std::fs::read_to_string(&labels)
        .unwrap()
        .contains("a note of the user's"));
    let forced = run_host(
        &[
            "dataset",
            "write",
            config,
            "--layout",
            "microscopy",
            "--output",
            "micro",
            "--intensities",
            "10",
            "--force",
        ],
        None,
        dir.path(),
    );
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(!std::fs::read_to_string(&labels)
        .unwrap()
        .contains("a note of the user's"));
    // break one file; the microscopy loader (paths relative to its config) names it, or skips it with a warning
    let victim = dir.path().join("micro/images/raw_scale010/sample_00003.tiff");
    std::fs::write(&victim, b"II*\0").unwrap();
    let micro = dir.path().join("micro.toml");
    std::fs::write(
        &micro,
        "[dataset]\nkind = \"raw_microscopy\"\nroot = \"micro\"\nintensity = 10\nmin_images_per_class = 1\n",
    )
    .unwrap();
    let micro = micro.to_str().unwrap();
    let out = run_host(&["dataset", "info", micro], None, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("sample_00003.tiff") && err.lines().count() <= 3,
        "{err}"
    );
    let out = run_host(
        &["dataset", "info", micro, "--set", "dataset.skip_invalid=true"],
        None,
        dir.path(),
    );
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{err}");
    assert!(text.contains("samples: 7") && text.contains("warnings: 2"), "{text}");
    assert!(err.contains("skipped 1 invalid"), "{err}");
    // a layout that does not fit the task
    let out = run_host(
        &[
            "dataset",
            "write",
            config,
            "--layout",
            "drone",
            "--output",
            "x",
            "--intensities",
            "100",
        ],
        None,
        dir.path(),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the Drone layout holds segmentation data"));
}
