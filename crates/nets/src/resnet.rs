//! ResNet (He et al., "Deep Residual Learning for Image Recognition", 2016) as torchvision builds it:
//! a classifier, or the feature pyramid an encoder gives a UNet decoder.

use crate::layers::{Layers, ParameterBuilder};
use l2l_plugin_sdk::{PluginError, PluginResult};
use tch::Tensor;

/// The ResNets l2l offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResNetDepth {
    /// Basic blocks 2-2-2-2.
    R18,
    /// Basic blocks 3-4-6-3.
    R34,
    /// Bottleneck blocks 3-4-6-3.
    R50,
}

impl ResNetDepth {
    /// 18, 34 or 50.
    pub fn from_layers(layers: u32) -> PluginResult<Self> {
        match layers {
            18 => Ok(Self::R18),
            34 => Ok(Self::R34),
            50 => Ok(Self::R50),
            other => Err(PluginError::Config(format!(
                "ResNet depth must be 18, 34 or 50, found {other}"
            ))),
        }
    }

    fn blocks(self) -> [usize; 4] {
        match self {
            Self::R18 => [2, 2, 2, 2],
            Self::R34 | Self::R50 => [3, 4, 6, 3],
        }
    }

    fn expansion(self) -> i64 {
        if self == Self::R50 {
            4
        } else {
            1
        }
    }
}

/// A ResNet whose weights are named `PREFIX` + torchvision's names.
#[derive(Debug, Clone)]
pub struct ResNet {
    depth: ResNetDepth,
    /// Stages built: 1 (stem) to 5 (all four residual layers).
    stages: usize,
    prefix: String,
    in_channels: i64,
    /// Channels of the stem and the first residual layer; each later layer doubles them.
    width: i64,
}

/// torchvision's width: the stem's and first layer's channels (64, 128, 256, 512 in the four layers).
pub const TORCHVISION_WIDTH: i64 = 64;

impl ResNet {
    /// A ResNet of `depth` taking `in_channels`, with `stages` of its five stages (5 for a classifier),
    /// its weights named with `prefix` (`""` as torchvision, `"encoder."` inside a UNet).
    pub fn new(depth: ResNetDepth, in_channels: i64, stages: usize, prefix: &str) -> PluginResult<Self> {
        if !(1..=5).contains(&stages) {
            return Err(PluginError::Config(format!(
                "encoder depth must be 1..5, found {stages}"
            )));
        }
        Ok(Self {
            depth,
            stages,
            prefix: prefix.to_string(),
            in_channels,
            width: TORCHVISION_WIDTH,
        })
    }

    /// The same ResNet with `width` channels in the stem and first layer instead of torchvision's
    /// 64 (a lighter network, e.g. 16 for ~1/16 of the computation; weights files then no longer fit).
    pub fn with_width(mut self, width: i64) -> PluginResult<Self> {
        if !(4..=256).contains(&width) {
            return Err(PluginError::Config(format!(
                "width must be 4 to 256 channels, found {width}"
            )));
        }
        self.width = width;
        Ok(self)
    }

    /// Channels of residual layer `layer` (0..4) before the bottleneck expansion.
    fn layer_width(&self, layer: usize) -> i64 {
        self.width << layer
    }

    fn name(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Channels of the input and of each stage's features (segmentation_models_pytorch's
    /// `out_channels`).
    pub fn channels(&self) -> Vec<i64> {
        let e = self.depth.expansion();
        let mut channels = vec![self.in_channels, self.width];
        channels.extend((0..4).map(|layer| self.layer_width(layer) * e));
        channels.truncate(self.stages + 1);
        channels
    }

    /// Adds every weight.
    pub fn build(&self, b: &mut ParameterBuilder<'_>) -> PluginResult<()> {
        b.conv(&self.name("conv1"), self.in_channels, self.width, 7)?;
        b.batch_norm(&self.name("bn1"), self.width, true)?;
        let mut input = self.width;
        let e = self.depth.expansion();
        for layer in 0..self.stages.saturating_sub(1) {
            for block in 0..self.depth.blocks()[layer] {
                let name = self.name(&format!("layer{}.{block}", layer + 1));
                let (width, stride) = (self.layer_width(layer), if block == 0 && layer > 0 { 2 } else { 1 });
                if self.depth == ResNetDepth::R50 {
                    b.conv(&format!("{name}.conv1"), input, width, 1)?;
                    b.batch_norm(&format!("{name}.bn1"), width, true)?;
                    b.conv(&format!("{name}.conv2"), width, width, 3)?;
                    b.batch_norm(&format!("{name}.bn2"), width, true)?;
                    b.conv(&format!("{name}.conv3"), width, width * e, 1)?;
                    b.batch_norm(&format!("{name}.bn3"), width * e, true)?;
                } else {
                    b.conv(&format!("{name}.conv1"), input, width, 3)?;
                    b.batch_norm(&format!("{name}.bn1"), width, true)?;
                    b.conv(&format!("{name}.conv2"), width, width, 3)?;
                    b.batch_norm(&format!("{name}.bn2"), width, true)?;
                }
                if stride != 1 || input != width * e {
                    b.conv(&format!("{name}.downsample.0"), input, width * e, 1)?;
                    b.batch_norm(&format!("{name}.downsample.1"), width * e, true)?;
                }
                input = width * e;
            }
        }
        Ok(())
    }

    fn block(&self, l: &Layers<'_>, x: &Tensor, name: &str, stride: i64) -> PluginResult<Tensor> {
        let n = |part: &str| format!("{name}.{part}");
        let y = if self.depth == ResNetDepth::R50 {
            let y = l.batch_norm(&l.conv(x, &n("conv1"), 1, 0)?, &n("bn1"))?.f_relu()?;
            let y = l
                .batch_norm(&l.conv(&y, &n("conv2"), stride, 1)?, &n("bn2"))?
                .f_relu()?;
            l.batch_norm(&l.conv(&y, &n("conv3"), 1, 0)?, &n("bn3"))?
        } else {
            let y = l.batch_norm(&l.conv(x, &n("conv1"), stride, 1)?, &n("bn1"))?.f_relu()?;
            l.batch_norm(&l.conv(&y, &n("conv2"), 1, 1)?, &n("bn2"))?
        };
        let identity = if l.params.get(&n("downsample.0.weight")).is_ok() {
            l.batch_norm(&l.conv(x, &n("downsample.0"), stride, 0)?, &n("downsample.1"))?
        } else {
            x.shallow_clone()
        };
        Ok(y.f_add(&identity)?.f_relu()?)
    }

    /// The input and each stage's features: strides 1, 2, 4, 8, 16, 32 (as many as built).
    pub fn features(&self, l: &Layers<'_>, x: &Tensor) -> PluginResult<Vec<Tensor>> {
        let mut features = vec![x.shallow_clone()];
        let stem = l.conv(x, &self.name("conv1"), 2, 3)?;
        let mut y = l.batch_norm(&stem, &self.name("bn1"))?.f_relu()?;
        features.push(y.shallow_clone());
        for layer in 0..self.stages.saturating_sub(1) {
            if layer == 0 {
                y = y.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
            }
            for block in 0..self.depth.blocks()[layer] {
                let stride = if block == 0 && layer > 0 { 2 } else { 1 };
                y = self.block(l, &y, &self.name(&format!("layer{}.{block}", layer + 1)), stride)?;
            }
            features.push(y.shallow_clone());
        }
        Ok(features)
    }

    /// Adds the classifier head `fc` for `classes`.
    pub fn build_head(&self, b: &mut ParameterBuilder<'_>, classes: i64) -> PluginResult<()> {
        b.linear(&self.name("fc"), self.layer_width(3) * self.depth.expansion(), classes)
    }

    /// Class logits `[B, classes]`: the last features, averaged over space, through `fc`.
    pub fn classify(&self, l: &Layers<'_>, x: &Tensor) -> PluginResult<Tensor> {
        let features = self.features(l, x)?;
        let last = features
            .last()
            .ok_or_else(|| PluginError::Input("no features".into()))?;
        let pooled = last.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?;
        l.linear(&pooled, &self.name("fc"))
    }
}
