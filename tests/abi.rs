//! Across the plugin boundary: gradients that reach a plugin's parameters, optimisation from the
//! host, state, all three component kinds, and the refusals of files that must not load.

use l2l_host::plugins::{load_plugin, Registry};
use l2l_system_tests::{install_testkit, plugin_library, table};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

fn isp_core() -> Registry {
    Registry::discover(&[plugin_library("l2l_isp_core")])
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

#[test]
fn gamma_gradient_reaching_the_plugin_matches_the_analytic_derivative() {
    let registry = isp_core();
    let mut stage = registry
        .build_stage("gamma", None, &table("gamma = 2.0"), "test")
        .unwrap();
    stage.to(Device::Cpu, Kind::Double).unwrap();
    let mut params = stage.parameters().unwrap();
    assert_eq!(params.len(), 1);
    let mut gamma = params.remove(0).tensor;

    tch::manual_seed(1);
    let x = Tensor::rand([2, 3, 4, 5], F64) * 0.8 + 0.1;
    let w = Tensor::randn([2, 3, 4, 5], F64);
    let loss = (stage.forward(&x).unwrap() * &w).sum(Kind::Double);
    loss.backward();
    let from_plugin = scalar(&gamma.grad().squeeze());

    // d/dγ x^(1/γ) = x^(1/γ) · ln(x) · (−1/γ²), at γ = 2
    let analytic = scalar(&(x.pow_tensor_scalar(0.5) * x.log() * (-0.25) * &w).sum(Kind::Double));
    assert!(
        (from_plugin - analytic).abs() < 1e-10 * analytic.abs().max(1.0),
        "plugin {from_plugin} vs analytic {analytic}"
    );

    // and a central finite difference, moving the plugin's parameter through the shared handle
    let eps = 1e-6;
    let mut at = |delta: f64| {
        tch::no_grad(|| {
            let _ = gamma.f_add_(&Tensor::from(delta).to_kind(Kind::Double)).unwrap();
            let value = scalar(&(stage.forward(&x).unwrap() * &w).sum(Kind::Double));
            let _ = gamma.f_sub_(&Tensor::from(delta).to_kind(Kind::Double)).unwrap();
            value
        })
    };
    let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
    assert!(
        (from_plugin - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
        "plugin {from_plugin} vs numeric {numeric}"
    );
}

#[test]
fn colour_matrix_gradient_is_the_outer_product_of_weights_and_inputs() {
    let registry = isp_core();
    let mut stage = registry.build_stage("colour_matrix", None, &table(""), "test").unwrap();
    stage.to(Device::Cpu, Kind::Double).unwrap();
    let matrix = stage.parameters().unwrap().remove(0).tensor;
    tch::manual_seed(2);
    let x = Tensor::rand([1, 3, 3, 4], F64);
    let w = Tensor::randn([1, 3, 3, 4], F64);
    (stage.forward(&x).unwrap() * &w).sum(Kind::Double).backward();
    // ∂/∂M[k][c] Σ w_k (M x)_k = Σ_pixels w_k x_c
    let expected = w.view([3, 12]).matmul(&x.view([3, 12]).transpose(0, 1));
    let error = scalar(&(matrix.grad() - expected).abs().max());
    assert!(error < 1e-12, "max gradient error {error}");
}

#[test]
fn adam_steps_from_the_host_on_plugin_parameters_lower_the_loss() {
    let registry = isp_core();
    let mut stage = registry.build_stage("colour_matrix", None, &table(""), "test").unwrap();
    let matrix = stage.parameters().unwrap().remove(0).tensor;
    let mut optimiser = tch::COptimizer::adam(0.05, 0.9, 0.999, 0.0, 1e-8, false).unwrap();
    optimiser.add_parameters(&matrix, 0).unwrap();

    tch::manual_seed(3);
    let x = Tensor::rand([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let target_matrix = Tensor::from_slice(&[1.5f32, -0.3, -0.2, -0.2, 1.4, -0.2, 0.0, -0.4, 1.4]).view([3, 3, 1, 1]);
    let target = x.conv2d(&target_matrix, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let mut losses = Vec::new();
    for _ in 0..60 {
        optimiser.zero_grad().unwrap();
        let loss = (stage.forward(&x).unwrap() - &target).square().mean(Kind::Float);
        loss.backward();
        optimiser.step().unwrap();
        losses.push(scalar(&loss));
    }
    assert!(
        losses[59] < losses[0] * 0.05,
        "loss went from {} to {}",
        losses[0],
        losses[59]
    );
    // the plugin computes with the values the host's optimiser wrote
    let learned = stage.parameters().unwrap().remove(0).tensor;
    let error = scalar(&(learned.view([3, 3, 1, 1]) - target_matrix).abs().max());
    assert!(error < 0.1, "learned matrix is {error} from the target");
}

#[test]
fn state_round_trips_and_wrong_state_is_refused() {
    let registry = isp_core();
    let mut stage = registry
        .build_stage("white_balance", None, &table("gains = [2.0, 1.0, 1.5]"), "test")
        .unwrap();
    let saved = stage.state().unwrap();
    let mut gains = stage.parameters().unwrap().remove(0).tensor;
    let _ = tch::no_grad(|| gains.f_fill_(9.0).unwrap());
    stage.load_state(saved).unwrap();
    assert_eq!(Vec::<f32>::try_from(&gains).unwrap(), vec![2.0, 1.0, 1.5]);
    let err = stage
        .load_state(vec![("gains".into(), Tensor::zeros([4], (Kind::Float, Device::Cpu)))])
        .unwrap_err();
    assert!(err.to_string().contains("expected shape [3], found [4]"), "{err}");
}

#[test]
fn stage_configs_are_checked_by_the_plugin_with_clear_errors() {
    let registry = isp_core();
    let err = registry
        .build_stage("gamma", None, &table("gama = 2.0"), "config key `stages.g`")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config key `stages.g`") && err.contains("unknown field `gama`"),
        "{err}"
    );
    let err = registry
        .build_stage("gamma", None, &table("gamma = -1.0"), "s")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gamma: expected values in [0.25, 8], found -1"), "{err}");
    let err = registry
        .build_stage("no_such_stage", None, &table(""), "s")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown stage `no_such_stage`") && err.contains("gamma"),
        "{err}"
    );
}

#[test]
fn a_panicking_stage_becomes_an_error_and_the_host_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let registry = Registry::discover(&[dir.path().to_path_buf()]);
    let mut stage = registry
        .build_stage("panics", None, &table(""), "config key `stages.p`")
        .unwrap();
    let x = Tensor::zeros([1, 1, 4, 4], (Kind::Float, Device::Cpu));
    let err = stage.forward(&x).unwrap_err().to_string();
    assert!(
        err.contains("panicked at") && err.contains("deliberate test panic"),
        "{err}"
    );
    assert!(err.lines().count() <= 10, "{err}");
    // same stage again, and another component of the same plugin: the plugin still works
    assert!(stage.forward(&x).is_err());
    let mut other = registry.build_stage("wrong_shape", None, &table(""), "s").unwrap();
    assert_eq!(other.forward(&x).unwrap().size(), [1, 1, 4, 3]);
}

#[test]
fn datasets_and_task_models_cross_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let registry = Registry::discover(&[dir.path().to_path_buf()]);
    let dataset = registry.build_dataset("ramp", None, &table("len = 5"), "d").unwrap();
    assert_eq!(dataset.len(), 5);
    assert_eq!(dataset.class_names().unwrap(), ["even", "odd"]);
    let sample = dataset.sample(3).unwrap();
    assert_eq!(sample.raw.size(), [4, 6]);
    assert!((scalar(&sample.raw.mean(Kind::Double)) - 0.6).abs() < 1e-6);
    assert_eq!(sample.target.int64_value(&[]), 1);
    assert_eq!(sample.metadata.black_level, [0.01, 0.02, 0.03, 0.04]);
    let err = dataset.sample(7).err().unwrap().to_string();
    assert!(err.contains("sample 7 out of range"), "{err}");

    let mut model = registry.build_task_model("linear", None, &table(""), 2, "m").unwrap();
    let x = Tensor::ones([3, 3, 4, 4], (Kind::Float, Device::Cpu));
    let logits = model.forward(&x).unwrap();
    assert_eq!(logits.size(), [3, 2]);
    logits.sum(Kind::Float).backward();
    let weight = model.parameters().unwrap().remove(0).tensor;
    // d Σ logits / d W[k][c] = batch × mean of channel c = 3
    assert!((scalar(&weight.grad().mean(Kind::Double)) - 3.0).abs() < 1e-6);
}

fn short(reason: &str) {
    assert!(
        reason.lines().count() <= 10 && reason.len() < 800,
        "refusal too long: {reason}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libl2l_fake.so");
    std::fs::write(&file, "this is not a shared library").unwrap();
    let refusal = load_plugin(&file).err().unwrap();
    assert_eq!(refusal.file, file);
    assert!(
        refusal.reason.contains("not a loadable shared library"),
        "{}",
        refusal.reason
    );
    short(&refusal.reason);
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused() {
    // any shared library this process has mapped that is not a plugin: the C++ runtime libtorch uses
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let library = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libstdc++") || p.contains("libm.so"))
        .expect("a system library mapped into the test process");
    let refusal = load_plugin(std::path::Path::new(library)).err().unwrap();
    assert!(
        refusal
            .reason
            .contains("not an l2l plugin: expected an exported abi_stable root module, found none"),
        "{}",
        refusal.reason
    );
    assert!(
        refusal.reason.contains("`l2l_plugin_sdk::plugin! { stages: [...] }`"),
        "{}",
        refusal.reason
    );
    short(&refusal.reason);
}

#[test]
fn a_missing_file_is_refused_and_named() {
    let refusal = load_plugin(std::path::Path::new("/nonexistent/libl2l_gone.so"))
        .err()
        .unwrap();
    assert!(refusal.reason.contains("no such file"), "{}", refusal.reason);
    let registry = Registry::discover(&["/nonexistent/plugins".into()]);
    let refused = &registry.refused()[0];
    assert_eq!(refused.file, std::path::Path::new("/nonexistent/plugins"));
    assert!(
        refused.reason.contains("no such file or directory"),
        "{}",
        refused.reason
    );
}

#[test]
fn camera_parameters_come_from_the_samples_metadata_when_the_config_says_so() {
    use l2l_host::config::StageSpec;
    use l2l_host::pipeline::Pipeline;
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let registry = Registry::discover(&[dir.path().to_path_buf()]);
    let dataset = registry.build_dataset("ramp", None, &table("len = 4"), "d").unwrap();
    let sample = dataset.sample(2).unwrap();
    let spec = |name: &str, kind: &str, config: &str| StageSpec {
        name: name.into(),
        kind: kind.into(),
        plugin: None,
        config: table(config),
    };
    let from_metadata = [
        spec("black_level", "black_level", "from_metadata = true"),
        spec("demosaic", "demosaic_menon2007", "cfa_from_metadata = true"),
        spec("white_balance", "white_balance", "from_metadata = true"),
        spec("colour_matrix", "colour_matrix", "from_metadata = true"),
    ];
    // the testkit's metadata, written out: BGGR, black [0.01, 0.02, 0.03, 0.04], gains [2, 1, 1.5]
    let explicit = [
        spec("black_level", "black_level", "black_level = [0.01, 0.02, 0.03, 0.04]"),
        spec("demosaic", "demosaic_menon2007", "cfa_pattern = \"BGGR\""),
        spec("white_balance", "white_balance", "gains = [2.0, 1.0, 1.5]"),
        spec("colour_matrix", "colour_matrix", ""),
    ];
    tch::manual_seed(9);
    let mosaic = Tensor::rand([1, 1, 6, 8], (Kind::Float, Device::Cpu)) * 0.8 + 0.1;
    let mut by_metadata = Pipeline::build(&registry, &from_metadata, Device::Cpu).unwrap();
    let err = by_metadata.forward(&mosaic).unwrap_err().to_string();
    assert!(
        err.contains("from_metadata is set") || err.contains("comes from the metadata"),
        "{err}"
    );
    by_metadata.set_camera(&[sample.metadata]).unwrap();
    let mut configured = Pipeline::build(&registry, &explicit, Device::Cpu).unwrap();
    let difference = (by_metadata.forward(&mosaic).unwrap() - configured.forward(&mosaic).unwrap())
        .abs()
        .max();
    assert!(scalar(&difference) < 1e-6, "{}", scalar(&difference));
    // per sample: a batch of two with different black levels
    let mut other = sample.metadata;
    other.black_level = [0.2; 4];
    by_metadata.set_camera(&[sample.metadata, other]).unwrap();
    let batch = Tensor::cat(&[&mosaic, &mosaic], 0);
    let out = by_metadata.forward(&batch).unwrap();
    assert!(
        scalar(&(out.get(0) - out.get(1)).abs().max()) > 0.05,
        "the two samples were processed alike"
    );
}
