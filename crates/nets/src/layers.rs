//! Layers over a [`ParameterSet`]: building them (names, shapes, PyTorch's initialisations) and
//! running them (looking weights up by name).

use l2l_plugin_sdk::{ParameterSet, PluginResult};
use tch::{Device, Kind, Tensor};

/// Adds named, initialised parameters to a set, the way `torch.nn` initialises them.
pub struct ParameterBuilder<'a> {
    /// The set being filled.
    pub params: &'a mut ParameterSet,
}

impl ParameterBuilder<'_> {
    /// A conv weight `[out, in, k, k]`, He-normal over fan-out (torchvision's ResNet init), no bias.
    pub fn conv(&mut self, name: &str, input: i64, output: i64, kernel: i64) -> PluginResult<()> {
        let std = (2.0 / (output * kernel * kernel) as f64).sqrt();
        let weight = Tensor::f_randn([output, input, kernel, kernel], (Kind::Float, Device::Cpu))?.f_mul_scalar(std)?;
        self.params.add(&format!("{name}.weight"), &weight, true)
    }

    /// A conv with a bias, as `nn.Conv2d` initialises both (uniform ±1/√fan-in).
    pub fn conv_with_bias(&mut self, name: &str, input: i64, output: i64, kernel: i64) -> PluginResult<()> {
        let bound = 1.0 / ((input * kernel * kernel) as f64).sqrt();
        let weight = uniform(&[output, input, kernel, kernel], bound)?;
        self.params.add(&format!("{name}.weight"), &weight, true)?;
        self.params
            .add(&format!("{name}.bias"), &uniform(&[output], bound)?, true)
    }

    /// Batch norm over `channels`: weight 1 and bias 0 when `affine`, running mean 0 and variance 1.
    pub fn batch_norm(&mut self, name: &str, channels: i64, affine: bool) -> PluginResult<()> {
        let options = (Kind::Float, Device::Cpu);
        if affine {
            self.params
                .add(&format!("{name}.weight"), &Tensor::f_ones([channels], options)?, true)?;
            self.params
                .add(&format!("{name}.bias"), &Tensor::f_zeros([channels], options)?, true)?;
        }
        self.params.add(
            &format!("{name}.running_mean"),
            &Tensor::f_zeros([channels], options)?,
            false,
        )?;
        self.params.add(
            &format!("{name}.running_var"),
            &Tensor::f_ones([channels], options)?,
            false,
        )
    }

    /// A fully connected layer `[out, in]` with bias, as `nn.Linear` initialises it.
    pub fn linear(&mut self, name: &str, input: i64, output: i64) -> PluginResult<()> {
        let bound = 1.0 / (input as f64).sqrt();
        self.params
            .add(&format!("{name}.weight"), &uniform(&[output, input], bound)?, true)?;
        self.params
            .add(&format!("{name}.bias"), &uniform(&[output], bound)?, true)
    }
}

fn uniform(shape: &[i64], bound: f64) -> PluginResult<Tensor> {
    Ok(Tensor::f_rand(shape, (Kind::Float, Device::Cpu))?
        .f_mul_scalar(2.0 * bound)?
        .f_sub_scalar(bound)?)
}

/// Runs layers whose weights are looked up by name in a set.
pub struct Layers<'a> {
    /// The weights.
    pub params: &'a ParameterSet,
    /// Training mode: batch norm uses and updates batch statistics.
    pub train: bool,
}

impl Layers<'_> {
    /// `name.weight` (and `name.bias` when present) as a 2-D convolution.
    pub fn conv(&self, x: &Tensor, name: &str, stride: i64, padding: i64) -> PluginResult<Tensor> {
        let weight = self.params.get(&format!("{name}.weight"))?;
        let bias = self.params.get(&format!("{name}.bias")).ok();
        Ok(x.f_conv2d(weight, bias, [stride, stride], [padding, padding], [1, 1], 1)?)
    }

    /// Batch norm `name` (affine when the set holds its weight).
    pub fn batch_norm(&self, x: &Tensor, name: &str) -> PluginResult<Tensor> {
        let p = |k: &str| self.params.get(&format!("{name}.{k}"));
        Ok(x.f_batch_norm(
            p("weight").ok(),
            p("bias").ok(),
            Some(p("running_mean")?),
            Some(p("running_var")?),
            self.train,
            0.1,
            1e-5,
            true,
        )?)
    }

    /// conv → batch norm → ReLU, the unit every network here is made of (`NAME.0` conv, `NAME.1` bn
    /// in segmentation_models_pytorch's naming).
    pub fn conv_bn_relu(&self, x: &Tensor, name: &str, stride: i64, padding: i64) -> PluginResult<Tensor> {
        let y = self.conv(x, &format!("{name}.0"), stride, padding)?;
        Ok(self.batch_norm(&y, &format!("{name}.1"))?.f_relu()?)
    }

    /// `name.weight · x + name.bias`.
    pub fn linear(&self, x: &Tensor, name: &str) -> PluginResult<Tensor> {
        let weight = self.params.get(&format!("{name}.weight"))?;
        let bias = self.params.get(&format!("{name}.bias"))?;
        Ok(x.f_linear(weight, Some(bias))?)
    }
}

impl ParameterBuilder<'_> {
    /// The parameters of [`Layers::conv_bn_relu`] `name` (3×3 or other `kernel`).
    pub fn conv_bn_relu(&mut self, name: &str, input: i64, output: i64, kernel: i64) -> PluginResult<()> {
        self.conv(&format!("{name}.0"), input, output, kernel)?;
        self.batch_norm(&format!("{name}.1"), output, true)
    }
}
