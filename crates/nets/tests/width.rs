//! A narrower ResNet (the `width` / `encoder_width` keys of quick runs) is the checked full-width
//! network with every channel count scaled: stem and first layer `width`, each later layer doubled,
//! and a UNet decoder that takes the narrower skips.

use l2l_nets::{DecoderKind, Layers, ParameterBuilder, ResNet, ResNetDepth, UNet};
use l2l_plugin_sdk::ParameterSet;
use tch::{Kind, Tensor};

#[test]
fn a_narrow_encoder_scales_every_channel_count_and_its_unet_still_runs() {
    let encoder = ResNet::new(ResNetDepth::R18, 3, 5, "encoder.")
        .unwrap()
        .with_width(16)
        .unwrap();
    assert_eq!(encoder.channels(), vec![3, 16, 16, 32, 64, 128]);
    let network = UNet::new(encoder, DecoderKind::UNetPlusPlus, vec![64, 32, 16, 16, 8], 1).unwrap();
    let mut params = ParameterSet::new();
    network.build(&mut ParameterBuilder { params: &mut params }).unwrap();
    let shape = |name: &str| {
        params
            .get(name)
            .unwrap_or_else(|e| panic!("no tensor {name}: {e}"))
            .size()
    };
    assert_eq!(shape("encoder.conv1.weight"), vec![16, 3, 7, 7]);
    assert_eq!(shape("encoder.layer1.0.conv1.weight"), vec![16, 16, 3, 3]);
    assert_eq!(shape("encoder.layer4.0.conv1.weight"), vec![128, 64, 3, 3]);
    assert_eq!(shape("encoder.layer4.0.downsample.0.weight"), vec![128, 64, 1, 1]);
    // the deepest decoder block joins the 128-channel bottom with the 64-channel skip above it
    assert_eq!(shape("decoder.blocks.x_0_0.conv1.0.weight"), vec![64, 128 + 64, 3, 3]);
    let input = Tensor::rand([2, 3, 64, 64], (Kind::Float, tch::Device::Cpu));
    let output = network
        .forward(
            &Layers {
                params: &params,
                train: false,
            },
            &input,
        )
        .unwrap();
    assert_eq!(output.size(), vec![2, 1, 64, 64]);
    assert_eq!(i64::try_from(output.isfinite().all()).unwrap(), 1);
    for width in [3, 257] {
        let err = ResNet::new(ResNetDepth::R18, 3, 5, "")
            .unwrap()
            .with_width(width)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("width must be 4 to 256") && err.contains(&width.to_string()),
            "{err}"
        );
    }
}
