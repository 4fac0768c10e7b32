//! SSIM against scikit-image's `structural_similarity` (fixtures from
//! `tests/fixtures/make_reference_fixtures.py`), and its gradient.

use tch::{Kind, Tensor};

#[test]
fn ssim_equals_scikit_image() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ssim.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for case in cases {
        let shape: Vec<i64> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let tensor = |key: &str| {
            let values: Vec<f64> = case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            Tensor::from_slice(&values).view(shape.as_slice()).unsqueeze(0)
        };
        let (a, b) = (tensor("a"), tensor("b"));
        let got = l2l_ops::ssim(&a, &b).unwrap().double_value(&[]);
        let want = case["ssim"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-10, "{got} vs scikit-image {want}");
        assert!((l2l_ops::ssim(&a, &a).unwrap().double_value(&[]) - 1.0).abs() < 1e-12);
    }
}

#[test]
fn ssim_gradient_matches_finite_differences() {
    let a = Tensor::rand([1, 1, 12, 12], (Kind::Double, tch::Device::Cpu));
    let b = Tensor::rand([1, 1, 12, 12], (Kind::Double, tch::Device::Cpu)).set_requires_grad(true);
    l2l_ops::ssim(&a, &b).unwrap().backward();
    let analytic = b.grad();
    let h = 1e-6;
    for index in [0i64, 13, 77, 143] {
        let at = |delta: f64| {
            let shifted = b.detach().copy();
            let _ = shifted
                .view([-1])
                .get(index)
                .fill_(b.detach().view([-1]).double_value(&[index]) + delta);
            l2l_ops::ssim(&a, &shifted).unwrap().double_value(&[])
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        let exact = analytic.view([-1]).double_value(&[index]);
        assert!(
            (numeric - exact).abs() < 1e-7,
            "element {index}: {exact} vs finite difference {numeric}"
        );
    }
}
