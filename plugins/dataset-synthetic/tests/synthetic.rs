//! The generator does what it claims: determinism, balance, the noise model, the intensity scale and
//! exact masks.

use l2l_dataset_synthetic::{Synthetic, SyntheticConfig, Task};
use l2l_plugin_sdk::{BuildDataset, Dataset};

fn build(config: SyntheticConfig) -> Synthetic {
    Synthetic::build(config).unwrap()
}

fn raw(dataset: &Synthetic, index: usize) -> Vec<f32> {
    Vec::<f32>::try_from(dataset.sample(index).unwrap().raw.flatten(0, -1)).unwrap()
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let config = SyntheticConfig {
        count: 3,
        size: 32,
        ..Default::default()
    };
    let a = build(config.clone());
    let b = build(config.clone());
    // the same sample, asked for in another order, is identical
    assert_eq!(raw(&a, 2), raw(&b, 2));
    assert_eq!(raw(&a, 0), raw(&b, 0));
    assert_ne!(raw(&a, 0), raw(&a, 1));
    let other = build(SyntheticConfig { seed: 1, ..config });
    assert_ne!(raw(&a, 0), raw(&other, 0));
}

#[test]
fn classes_are_balanced_and_sorted() {
    let dataset = build(SyntheticConfig {
        count: 40,
        size: 32,
        ..Default::default()
    });
    let names = dataset.class_names().unwrap();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let mut counts = vec![0; names.len()];
    for i in 0..40 {
        counts[dataset.sample(i).unwrap().target.int64_value(&[]) as usize] += 1;
    }
    assert_eq!(counts, vec![10; 4]);
}

/// Residuals between a noisy and a noise-free rendering of the same scenes have the variance of the
/// shot + read model, (1 − black)² (λ + σ_read²) / full_well², in dark and bright pixels alike.
#[test]
fn noise_variance_follows_the_shot_and_read_model() {
    for (intensity, read_noise) in [(100.0f32, 3.0), (1.0, 5.0)] {
        let config = SyntheticConfig {
            count: 4,
            size: 128,
            intensity,
            read_noise,
            bit_depth: 16,
            ..Default::default()
        };
        let noisy = build(config.clone());
        let clean = build(SyntheticConfig {
            noise: false,
            ..config.clone()
        });
        let black = f64::from(config.black_level);
        let mut bins = [(0.0, 0.0, 0usize); 2]; // (sum of residual², sum of predicted variance, count)
        let mut residual_sum = 0.0;
        for i in 0..config.count {
            for (n, c) in raw(&noisy, i).into_iter().zip(raw(&clean, i)) {
                let electrons = (f64::from(c) - black) / (1.0 - black) * config.full_well;
                let predicted =
                    (1.0 - black).powi(2) * (electrons + read_noise * read_noise) / config.full_well.powi(2);
                let residual = f64::from(n) - f64::from(c);
                let median_split = usize::from(electrons > 0.6 * f64::from(intensity) / 100.0 * config.full_well);
                let bin = &mut bins[median_split];
                bin.0 += residual * residual;
                bin.1 += predicted;
                bin.2 += 1;
                residual_sum += residual;
            }
        }
        for (measured, predicted, count) in bins {
            assert!(count > 3000, "{count} pixels in a bin");
            eprintln!(
                "intensity {intensity}: measured/predicted variance {:.4} over {count} pixels",
                measured / predicted
            );
            let ratio = measured / predicted;
            assert!(
                (ratio - 1.0).abs() < 0.04,
                "intensity {intensity}: variance ratio {ratio} over {count} pixels"
            );
        }
        let pixels = (config.count * 128 * 128) as f64;
        let mean = residual_sum / pixels;
        let spread = (bins.iter().map(|b| b.0).sum::<f64>() / pixels).sqrt();
        assert!(
            mean.abs() < 4.0 * spread / pixels.sqrt(),
            "noise is biased: mean {mean}"
        );
    }
}

#[test]
fn intensity_scales_the_signal_above_black() {
    let at = |intensity: f32| {
        let dataset = build(SyntheticConfig {
            count: 2,
            size: 64,
            intensity,
            noise: false,
            bit_depth: 16,
            ..Default::default()
        });
        let black = f64::from(SyntheticConfig::default().black_level);
        (0..2)
            .flat_map(|i| raw(&dataset, i))
            .map(|v| f64::from(v) - black)
            .sum::<f64>()
    };
    let full = at(100.0);
    for intensity in [1.0, 5.0, 10.0, 25.0, 50.0, 75.0] {
        let ratio = at(intensity) / full;
        assert!(
            (ratio / (f64::from(intensity) / 100.0) - 1.0).abs() < 0.01,
            "intensity {intensity}: signal ratio {ratio}"
        );
    }
}

#[test]
fn aerial_masks_mark_cars() {
    let dataset = build(SyntheticConfig {
        task: Task::AerialCars,
        count: 12,
        size: 96,
        ..Default::default()
    });
    assert!(dataset.class_names().is_none());
    let mut with_cars = 0;
    for i in 0..12 {
        let sample = dataset.sample(i).unwrap();
        assert_eq!(sample.target.size(), [96, 96]);
        let fraction = sample
            .target
            .to_kind(tch::Kind::Float)
            .mean(tch::Kind::Float)
            .double_value(&[]);
        assert!(fraction < 0.3, "{fraction}");
        let (_, mask) = dataset.scene(i);
        let mask = mask.unwrap();
        assert_eq!(
            mask.iter().map(|&m| i64::from(m)).sum::<i64>(),
            sample.target.sum(tch::Kind::Int64).int64_value(&[])
        );
        with_cars += usize::from(fraction > 0.0);
    }
    assert!((4..12).contains(&with_cars), "{with_cars} of 12 scenes have cars");
}

#[test]
fn bad_config_values_are_refused() {
    for (config, expected) in [
        (
            SyntheticConfig {
                size: 15,
                ..Default::default()
            },
            "size",
        ),
        (
            SyntheticConfig {
                intensity: 0.0,
                ..Default::default()
            },
            "intensity",
        ),
        (
            SyntheticConfig {
                bit_depth: 20,
                ..Default::default()
            },
            "bit_depth",
        ),
        (
            SyntheticConfig {
                colour_matrix: [0.0; 9],
                ..Default::default()
            },
            "singular",
        ),
    ] {
        let err = Synthetic::build(config).err().unwrap().to_string();
        assert!(err.contains(expected), "{err}");
    }
}
