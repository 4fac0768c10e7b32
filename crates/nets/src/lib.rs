//! Network code shared by l2l's network plugins (`model-resnet`, `model-unetpp`, `processor-nn`): the
//! layers, a ResNet (18/34/50) that is both a classifier and an encoder, the UNet and UNet++ decoders,
//! ImageNet input normalisation, and loading initial weights from a safetensors file.
//!
//! Every weight lives in the plugin's [`ParameterSet`] under the name PyTorch gives it
//! (torchvision's `layer1.0.conv1.weight`, segmentation_models_pytorch's
//! `decoder.blocks.x_0_0.conv1.0.weight` …), so weights exported from PyTorch load by name and the
//! host's optimiser and checkpoints see every tensor. Batch-norm running statistics are
//! non-trainable entries of the same set, updated in place in training mode.
//!
//! Not here: training (the host's), datasets, or anything that crosses the plugin boundary.

mod layers;
mod normalization;
mod resnet;
mod unet;
mod weights;

pub use layers::{Layers, ParameterBuilder};
pub use normalization::{InputNormalization, IMAGENET_MEAN, IMAGENET_STD};
pub use resnet::{ResNet, ResNetDepth, TORCHVISION_WIDTH};
pub use unet::{DecoderKind, UNet};
pub use weights::load_initial_weights;
