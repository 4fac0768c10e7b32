"""Gradients through every stage of the published pipelines (the 12 static ones and the two
parametrized ones), taken by autograd across the plugin boundary, equal float64 central finite
differences taken here in Python: with respect to each stage's input and to each of its parameters.

Each stage is checked at an input of the shape it receives in its pipeline, with smooth random values
inside (0.1, 0.9): where a stage is not differentiable (clip at 0 and 1, gamma at 0, which a traced
pipeline output sits on exactly) a finite difference measures the kink, not the gradient."""

import pytest
import torch

import l2l
from conftest import ROOT, raw_mosaic

PIPELINES = sorted(p.name for p in (ROOT / "configs" / "pipelines").glob("*.toml"))
STEP = 1e-6
TOLERANCE = 1e-6


def directional_check(loss, value, direction, what):
    """``loss()`` differentiated along ``direction`` of ``value`` (changed in place) by central
    differences, against the gradient autograd left in ``value.grad``."""
    analytic = (value.grad * direction).sum().item()
    with torch.no_grad():
        value.add_(STEP * direction)
        plus = loss().item()
        value.sub_(2 * STEP * direction)
        minus = loss().item()
        value.add_(STEP * direction)
    numeric = (plus - minus) / (2 * STEP)
    assert abs(analytic - numeric) <= TOLERANCE * max(1.0, abs(numeric)), f"{what}: autograd {analytic}, finite difference {numeric}"


def interior_values(shape, generator):
    """Smooth random float64 values in (0.1, 0.9) of ``shape`` ``[B, C, H, W]``."""
    coarse = torch.rand(*shape[:2], shape[2] // 4, shape[3] // 4, generator=generator, dtype=torch.float64)
    smooth = torch.nn.functional.interpolate(coarse, size=tuple(shape[2:]), mode="bilinear", align_corners=False)
    return 0.1 + 0.8 * (0.8 * smooth + 0.2 * torch.rand(shape, generator=generator, dtype=torch.float64))


@pytest.mark.parametrize("file", PIPELINES)
def test_every_stage_gradient_equals_float64_finite_differences(file):
    pipeline = l2l.Pipeline.from_config(ROOT / "configs" / "pipelines" / file).double().eval()
    generator = torch.Generator().manual_seed(7)
    # small, so that no median window's order changes within a finite-difference step; 128²: what
    # the additive stage of parametrized-additive.toml is configured for (it has no median)
    size = 128 if file == "parametrized-additive.toml" else 32
    mosaic = raw_mosaic(size, size, seed=3).double().view(1, 1, size, size)
    with torch.no_grad():
        shapes = [mosaic.shape, *(output.shape for output in pipeline(mosaic, trace=True).values())][:-1]
    for (name, stage), shape in zip(pipeline.named_children(), shapes):
        x = interior_values(shape, generator).requires_grad_(True)
        weights = torch.rand(stage(x).shape, generator=generator, dtype=torch.float64)

        def loss():
            return (stage(x) * weights).sum()

        stage.zero_grad()
        loss().backward()
        directional_check(loss, x, torch.randn(x.shape, generator=generator, dtype=torch.float64), f"{file}: stage `{name}`, input")
        for parameter_name, parameter in stage.named_parameters():
            if parameter.requires_grad:
                direction = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                directional_check(loss, parameter, direction, f"{file}: stage `{name}`, parameter `{parameter_name}`")
