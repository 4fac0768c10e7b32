//! The third-party path: the stage template built outside the workspace with cargo, loaded by the
//! unchanged, already-built host; and the plugins the host must refuse — built against another
//! plugin-API version, another type layout, another libtorch.

use l2l_host::plugins::load_plugin;
use l2l_system_tests::{build_template, describe, run_host, run_process, ApiVariant};
use std::path::Path;

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "`{from}` not found in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

fn refusal_via_cli(plugin: &Path, work: &Path) -> String {
    let output = run_host(&["plugins", "list"], Some(plugin), work);
    assert!(
        !output.status.success(),
        "the host accepted {}:\n{}",
        plugin.display(),
        describe(&output)
    );
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        err.contains(&plugin.display().to_string()),
        "the refusal does not name the file:\n{err}"
    );
    assert!(err.lines().count() <= 10, "refusal longer than 10 lines:\n{err}");
    err
}

#[test]
fn the_template_builds_out_of_tree_and_the_host_runs_its_stage() {
    let work = tempfile::tempdir().unwrap();
    let plugin = build_template(work.path(), ApiVariant::Unchanged, &[], "exposure");
    let plugin_dir = plugin.parent().unwrap();

    let listed = run_host(&["plugins", "list"], Some(plugin_dir), work.path());
    assert!(listed.status.success(), "{}", describe(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("exposure"),
        "{}",
        describe(&listed)
    );
    let inspected = run_host(&["plugins", "inspect", "exposure"], Some(plugin_dir), work.path());
    assert!(
        String::from_utf8_lossy(&inspected.stdout).contains("Exposure change in stops"),
        "{}",
        describe(&inspected)
    );

    // the plugin's stage in a pipeline: a mosaic of 0.25 through `exposure` at +1 EV is 0.5
    let config = work.path().join("c.toml");
    std::fs::write(
        &config,
        "device = \"cpu\"\npipeline = [\"demosaic\", \"brighten\"]\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n[stages.brighten]\nkind = \"exposure\"\nev = 1.0\n",
    )
    .unwrap();
    let raw = work.path().join("raw.tiff");
    write_gray16_tiff(&raw, 6, 8, 16384);
    let output = run_process(&config, &raw, "out.npy", &[], Some(plugin_dir), work.path());
    assert!(output.status.success(), "{}", describe(&output));
    let npy = npyz::NpyFile::new(std::fs::File::open(work.path().join("out.npy")).unwrap()).unwrap();
    let values = npy.into_vec::<f32>().unwrap();
    assert_eq!(values.len(), 6 * 8 * 3);
    assert!(values.iter().all(|v| (v - 0.5).abs() < 1e-4), "{:?}", &values[..4]);
}

/// A 16-bit single-channel TIFF, the Raw-Microscopy mosaic format, written field by field (baseline TIFF 6.0).
fn write_gray16_tiff(path: &Path, h: u16, w: u16, value: u16) {
    let pixels = h as u32 * w as u32;
    let data_offset = 8u32;
    let ifd_offset = data_offset + pixels * 2;
    let mut bytes: Vec<u8> = b"II*\0".to_vec();
    bytes.extend(ifd_offset.to_le_bytes());
    for _ in 0..pixels {
        bytes.extend(value.to_le_bytes());
    }
    let entries: [(u16, u16, u32, u32); 8] = [
        (256, 3, 1, w as u32),    // width
        (257, 3, 1, h as u32),    // height
        (258, 3, 1, 16),          // bits per sample
        (259, 3, 1, 1),           // no compression
        (262, 3, 1, 1),           // black is zero
        (273, 4, 1, data_offset), // strip offset
        (278, 3, 1, h as u32),    // rows per strip
        (279, 4, 1, pixels * 2),  // strip byte count
    ];
    bytes.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, count, value) in entries {
        bytes.extend(tag.to_le_bytes());
        bytes.extend(kind.to_le_bytes());
        bytes.extend(count.to_le_bytes());
        if kind == 3 {
            bytes.extend((value as u16).to_le_bytes());
            bytes.extend([0, 0]);
        } else {
            bytes.extend(value.to_le_bytes());
        }
    }
    bytes.extend(0u32.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_plugin_built_against_the_previous_plugin_api_version_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let previous = |copy: &Path| {
        edit(
            &copy.join("plugin-api/Cargo.toml"),
            "version = \"0.5.0\"",
            "version = \"0.4.0\"",
        )
    };
    let plugin = build_template(work.path(), ApiVariant::Modified(&previous), &[], "api_v4");
    let refusal = load_plugin(&plugin)
        .err()
        .expect("a plugin built against plugin API 0.4.0 loaded");
    assert_eq!(refusal.reason.lines().count(), 1, "not one line: {}", refusal.reason);
    assert!(
        refusal.reason.contains("plugin API version mismatch"),
        "{}",
        refusal.reason
    );
    assert!(
        refusal.reason.contains("0.4.0") && refusal.reason.contains("0.5.0"),
        "{}",
        refusal.reason
    );
    let err = refusal_via_cli(&plugin, work.path());
    assert!(err.contains("plugin API version mismatch"), "{err}");
}

#[test]
fn a_plugin_built_against_another_type_layout_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let widen = |copy: &Path| {
        // the plugin API's version stays the same; one struct that crosses the boundary grows a field
        edit(
            &copy.join("plugin-api/src/ffi.rs"),
            "    pub trainable: bool,\n}",
            "    pub trainable: bool,\n    /// Added by the layout test.\n    pub learning_rate_scale: f32,\n}",
        );
        edit(
            &copy.join("crates/plugin-sdk/src/export.rs"),
            "trainable: p.trainable,\n",
            "trainable: p.trainable,\n                    learning_rate_scale: 1.0,\n",
        );
    };
    let plugin = build_template(work.path(), ApiVariant::Modified(&widen), &[], "layout");
    let refusal = load_plugin(&plugin).err().expect("a plugin with another layout loaded");
    assert!(refusal.reason.contains("type layout mismatch"), "{}", refusal.reason);
    let err = refusal_via_cli(&plugin, work.path());
    assert!(err.contains("type layout mismatch"), "{err}");
}

#[test]
fn a_plugin_built_against_another_libtorch_is_refused() {
    let work = tempfile::tempdir().unwrap();
    // an unmodified copy of the plugin API, built with the libtorch tag overridden
    let plugin = build_template(
        work.path(),
        ApiVariant::Modified(&|_| {}),
        &[("L2L_LIBTORCH_VERSION_TAG", "2.99.0+other")],
        "other_torch",
    );
    let refusal = load_plugin(&plugin)
        .err()
        .expect("a plugin built against another libtorch loaded");
    assert!(refusal.reason.contains("libtorch mismatch"), "{}", refusal.reason);
    assert!(
        refusal.reason.contains("2.99.0+other") && refusal.reason.contains(l2l_plugin_api::LIBTORCH_VERSION),
        "{}",
        refusal.reason
    );
    refusal_via_cli(&plugin, work.path());
}

/// The template's own tests — analytic value, float64 gradient check, contract, bands — pass when its
/// author runs `cargo test` out of tree with the environment `l2l-host plugin-env` prints.
#[test]
fn the_templates_own_tests_pass_out_of_tree() {
    let env = l2l_system_tests::plugin_build_env();
    assert!(
        env.iter()
            .any(|(name, value)| name == "LIBTORCH_USE_PYTORCH" && value == "1")
            || env.iter().any(|(name, _)| name == "LIBTORCH"),
        "{env:?}"
    );
    let work = tempfile::tempdir().unwrap();
    let output = l2l_system_tests::test_template(work.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("test result: ok. 4 passed"), "{text}");
}
