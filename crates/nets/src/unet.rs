//! Encoder–decoder segmentation networks on a ResNet encoder, as segmentation_models_pytorch builds
//! them: UNet (Ronneberger et al., 2015) and UNet++ (Zhou et al., "UNet++: A Nested U-Net
//! Architecture", 2018), whose decoder nodes x_{d,l} take every earlier node of their level as skips.

use crate::layers::{Layers, ParameterBuilder};
use crate::resnet::ResNet;
use l2l_plugin_sdk::{PluginError, PluginResult};
use std::collections::HashMap;
use tch::Tensor;

/// Which decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// One decoder block per level, the encoder feature of that level as the skip.
    UNet,
    /// Nested dense skips.
    UNetPlusPlus,
}

/// A ResNet encoder, a UNet or UNet++ decoder and a 3×3 head to `classes` channels; weights named
/// `encoder.*`, `decoder.blocks.*`, `segmentation_head.0.*`.
pub struct UNet {
    encoder: ResNet,
    kind: DecoderKind,
    decoder_channels: Vec<i64>,
    classes: i64,
    /// name → (in, skip, out) of every decoder block, in build order.
    blocks: Vec<(String, i64, i64, i64)>,
}

impl UNet {
    /// A network whose encoder has `decoder_channels.len()` stages below the input.
    pub fn new(encoder: ResNet, kind: DecoderKind, decoder_channels: Vec<i64>, classes: i64) -> PluginResult<Self> {
        let depth = encoder.channels().len() - 1;
        if decoder_channels.len() != depth {
            return Err(PluginError::Config(format!(
                "decoder_channels must have one entry per encoder stage ({depth}), found {}",
                decoder_channels.len()
            )));
        }
        let mut encoder_channels: Vec<i64> = encoder.channels()[1..].to_vec();
        encoder_channels.reverse();
        let mut blocks = Vec::new();
        match kind {
            DecoderKind::UNet => {
                let mut input = encoder_channels[0];
                for (i, &out) in decoder_channels.iter().enumerate() {
                    let skip = encoder_channels.get(i + 1).copied().unwrap_or(0);
                    blocks.push((format!("decoder.blocks.{i}"), input, skip, out));
                    input = out;
                }
            }
            DecoderKind::UNetPlusPlus => {
                let in_channels: Vec<i64> = std::iter::once(encoder_channels[0])
                    .chain(decoder_channels[..depth - 1].iter().copied())
                    .collect();
                let skips: Vec<i64> = encoder_channels[1..]
                    .iter()
                    .copied()
                    .chain(std::iter::once(0))
                    .collect();
                for layer in 0..depth - 1 {
                    for d in 0..=layer {
                        let (input, skip, out) = if d == 0 {
                            (
                                in_channels[layer],
                                skips[layer] * (layer as i64 + 1),
                                decoder_channels[layer],
                            )
                        } else {
                            (skips[layer - 1], skips[layer] * (layer - d + 1) as i64, skips[layer])
                        };
                        blocks.push((format!("decoder.blocks.x_{d}_{layer}"), input, skip, out));
                    }
                }
                blocks.push((
                    format!("decoder.blocks.x_0_{}", depth - 1),
                    in_channels[depth - 1],
                    0,
                    decoder_channels[depth - 1],
                ));
            }
        }
        Ok(Self {
            encoder,
            kind,
            decoder_channels,
            classes,
            blocks,
        })
    }

    /// Adds every weight.
    pub fn build(&self, b: &mut ParameterBuilder<'_>) -> PluginResult<()> {
        self.encoder.build(b)?;
        for (name, input, skip, out) in &self.blocks {
            b.conv_bn_relu(&format!("{name}.conv1"), input + skip, *out, 3)?;
            b.conv_bn_relu(&format!("{name}.conv2"), *out, *out, 3)?;
        }
        let last = *self.decoder_channels.last().unwrap_or(&16);
        b.conv_with_bias("segmentation_head.0", last, self.classes, 3)
    }

    fn block(&self, l: &Layers<'_>, name: &str, x: &Tensor, skip: Option<&Tensor>) -> PluginResult<Tensor> {
        let size = x.size();
        let mut y = x.f_upsample_nearest2d([size[2] * 2, size[3] * 2], None, None)?;
        if let Some(skip) = skip {
            y = Tensor::f_cat(&[&y, skip], 1)?;
        }
        let y = l.conv_bn_relu(&y, &format!("{name}.conv1"), 1, 1)?;
        l.conv_bn_relu(&y, &format!("{name}.conv2"), 1, 1)
    }

    /// Logits `[B, classes, H, W]` for an input `[B, C, H, W]` whose sides divide by 2^depth.
    pub fn forward(&self, l: &Layers<'_>, x: &Tensor) -> PluginResult<Tensor> {
        let depth = self.decoder_channels.len();
        let size = x.size();
        let multiple = 1 << depth;
        if size.len() != 4 || size[2] % multiple != 0 || size[3] % multiple != 0 {
            return Err(PluginError::Input(format!(
                "expected [B, C, H, W] with H and W divisible by {multiple} (encoder depth {depth}), found {size:?}"
            )));
        }
        let mut features = self.encoder.features(l, x)?;
        let _input = features.remove(0);
        features.reverse();
        let decoded = match self.kind {
            DecoderKind::UNet => {
                let mut y = features[0].shallow_clone();
                for (i, (name, ..)) in self.blocks.iter().enumerate() {
                    y = self.block(l, name, &y, features.get(i + 1))?;
                }
                y
            }
            DecoderKind::UNetPlusPlus => {
                let mut dense: HashMap<(usize, usize), Tensor> = HashMap::new();
                for layer in 0..depth - 1 {
                    for d in 0..depth - 1 - layer {
                        let name = |d: usize, l: usize| format!("decoder.blocks.x_{d}_{l}");
                        if layer == 0 {
                            let out = self.block(l, &name(d, d), &features[d], Some(&features[d + 1]))?;
                            dense.insert((d, d), out);
                        } else {
                            let level = d + layer;
                            let mut skips: Vec<&Tensor> = (d + 1..=level).map(|i| &dense[&(i, level)]).collect();
                            skips.push(&features[level + 1]);
                            let skip = Tensor::f_cat(&skips, 1)?;
                            let out = self.block(l, &name(d, level), &dense[&(d, level - 1)], Some(&skip))?;
                            dense.insert((d, level), out);
                        }
                    }
                }
                let last = &dense[&(0, depth - 2)];
                self.block(l, &format!("decoder.blocks.x_0_{}", depth - 1), last, None)?
            }
        };
        l.conv(&decoded, "segmentation_head.0", 1, 1)
    }
}
