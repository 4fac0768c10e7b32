"""`l2l-host predict` gives torchvision's logits for the same weights (a `.pth` torchvision wrote) and
the same processed input."""

import json

import torch
import torchvision

import l2l
from conftest import raw_mosaic, run_host, write_npy


def test_predicted_logits_are_torchvisions_for_the_same_weights_and_input(root, tmp_path):
    torch.manual_seed(3)
    network = torchvision.models.resnet18(num_classes=4)
    with torch.no_grad():  # batch-norm statistics that are not the identity, so that eval mode matters
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    network.eval()
    torch.save(network.state_dict(), tmp_path / "resnet18.pth")
    pipeline = root / "configs/pipelines/bilinear_sharpening_filter_median_denoising.toml"
    config = tmp_path / "predict.toml"
    config.write_text(
        f'include = ["{pipeline}"]\ndevice = "cpu"\n\n'
        '[dataset]\nkind = "synthetic"\ntask = "cells"\ncount = 8\nsize = 32\n\n'
        '[task_model]\nkind = "resnet"\ndepth = 18\nweights = "resnet18.pth"\n'
    )
    mosaics = [raw_mosaic(64, 64, seed) for seed in (1, 2)]
    for index, mosaic in enumerate(mosaics):
        write_npy(tmp_path / f"raw{index}.npy", mosaic)
    run_host("predict", config, "--input", tmp_path / "raw0.npy", tmp_path / "raw1.npy", "--output", tmp_path / "p.json")
    predicted = json.loads((tmp_path / "p.json").read_text())
    processing = l2l.Pipeline.from_config(pipeline).eval()
    for mosaic, sample in zip(mosaics, predicted["samples"]):
        with torch.no_grad():
            expected = network(processing(mosaic.view(1, 1, 64, 64)))[0]
        got = torch.tensor(sample["logits"], dtype=torch.float32)
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got, expected)
        assert torch.allclose(torch.tensor(sample["probabilities"], dtype=torch.float64), torch.softmax(expected.double(), 0), atol=1e-5)
        assert sample["predicted"] == predicted["class_names"][int(expected.argmax())]
