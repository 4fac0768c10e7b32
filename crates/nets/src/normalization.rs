//! What a network does to its input before the first layer: nothing, or ImageNet's per-channel
//! standardisation, which pretrained torchvision and segmentation_models_pytorch weights expect.

use l2l_plugin_sdk::PluginResult;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// ImageNet's RGB channel means (torchvision's `Normalize`, smp's `preprocessing` for "imagenet").
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's RGB channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The `input_normalization` key of a task model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, l2l_plugin_sdk::Choices)]
#[serde(rename_all = "lowercase")]
pub enum InputNormalization {
    /// The pipeline's [0, 1] output as it is (networks trained from scratch).
    #[default]
    None,
    /// (x − mean) / std per channel with ImageNet's statistics: what ImageNet-pretrained weights saw.
    Imagenet,
}

impl InputNormalization {
    /// `input` `[B, 3, H, W]`, normalised.
    pub fn apply(self, input: &Tensor) -> PluginResult<Tensor> {
        Ok(match self {
            InputNormalization::None => input.shallow_clone(),
            InputNormalization::Imagenet => {
                let (kind, device) = (input.kind(), input.device());
                let column = |values: &[f32; 3]| {
                    Tensor::from_slice(values)
                        .f_view([1, 3, 1, 1])?
                        .f_to_kind(kind)?
                        .f_to_device(device)
                };
                input.f_sub(&column(&IMAGENET_MEAN)?)?.f_div(&column(&IMAGENET_STD)?)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_normalisation_follows_its_definition() {
        let input = Tensor::from_slice(&[0.0f32, 0.5, 1.0]).view([1, 3, 1, 1]);
        let output = Vec::<f32>::try_from(InputNormalization::Imagenet.apply(&input).unwrap().flatten(0, -1)).unwrap();
        // torchvision's Normalize(mean, std): (x − mean) / std
        for (got, expected) in output
            .iter()
            .zip([(0.0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (1.0 - 0.406) / 0.225])
        {
            assert!((got - expected).abs() < 1e-6, "{output:?}");
        }
        assert!(InputNormalization::None.apply(&input).unwrap().equal(&input));
    }
}
