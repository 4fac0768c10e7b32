"""The package computes what ``l2l-host process`` computes, and what Python learns reaches it."""

import torch

import l2l
from conftest import raw_mosaic, read_npy, run_host, write_npy

PUBLISHED = "configs/pipelines/menon2007_unsharp_masking_median_denoising.toml"


def test_from_config_equals_process_on_the_same_raw(root, tmp_path):
    for config in ("configs/chart.toml", PUBLISHED, "configs/pipelines/parametrized.toml"):
        mosaic = raw_mosaic()
        write_npy(tmp_path / "raw.npy", mosaic)
        run_host("process", root / config, "--input", tmp_path / "raw.npy", "--output", tmp_path / "out.npy", "--force")
        expected = read_npy(tmp_path / "out.npy")
        pipeline = l2l.Pipeline.from_config(root / config).eval()
        with torch.no_grad():
            got = pipeline(mosaic.view(1, 1, *mosaic.shape[-2:]))[0].permute(1, 2, 0)
        assert torch.equal(got, expected), f"{config}: largest difference {(got - expected).abs().max()}"


def test_an_optimiser_step_from_python_changes_what_process_computes(root, tmp_path):
    config = root / "configs/pipelines/parametrized.toml"
    mosaic = raw_mosaic(seed=1)
    write_npy(tmp_path / "raw.npy", mosaic)
    run_host("process", config, "--input", tmp_path / "raw.npy", "--output", tmp_path / "before.npy")

    pipeline = l2l.Pipeline.from_config(config)
    optimiser = torch.optim.Adam(pipeline.parameters(), lr=0.05)
    batch = mosaic.view(1, 1, *mosaic.shape[-2:])
    loss = pipeline(batch)[:, 0].mean()  # pull the red channel down
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    pipeline.eval()
    with torch.no_grad():
        learned = pipeline(batch)[0].permute(1, 2, 0)
    pipeline.save(tmp_path / "learned.safetensors")

    run_host("process", config, "--input", tmp_path / "raw.npy", "--output", tmp_path / "after.npy",
             "--state", tmp_path / "learned.safetensors")
    before, after = read_npy(tmp_path / "before.npy"), read_npy(tmp_path / "after.npy")
    assert (after - before).abs().max() > 1e-3, "the saved step changed nothing l2l-host computes"
    assert torch.equal(after, learned), f"largest difference {(after - learned).abs().max()}"


def test_state_dict_round_trips_and_names_what_checkpoints_name(root, tmp_path):
    config = root / "configs/pipelines/parametrized.toml"
    first = l2l.Pipeline.from_config(config)
    with torch.no_grad():
        first.white_balance.gains.mul_(1.5)
        first.gamma.gamma.add_(0.3)
    first.save(tmp_path / "state.safetensors")
    state = first.state_dict()
    assert "white_balance.gains" in state and "normalize.running_mean" in state, list(state)

    second = l2l.Pipeline.from_config(config)
    gains = second.white_balance.gains
    second.load(tmp_path / "state.safetensors")
    assert gains is second.white_balance.gains, "loading replaced the parameter the optimiser holds"
    third = l2l.Pipeline.from_config(config)
    third.load_state_dict(state)
    for other in (second, third):
        for name, value in other.state_dict().items():
            assert torch.equal(value, state[name]), name

    broken = dict(state, **{"gamma.gamma": torch.zeros(2)})
    try:
        third.load_state_dict(broken)
    except RuntimeError as err:
        assert "gamma" in str(err) and "shape" in str(err), err
    else:
        raise AssertionError("a mis-shaped tensor loaded")


def test_parameters_are_the_plugins_tensors_after_moving(root):
    pipeline = l2l.Pipeline.from_config(root / "configs/chart.toml").double()
    assert all(p.dtype == torch.float64 for p in pipeline.parameters())
    mosaic = raw_mosaic().double().view(1, 1, 64, 96)
    pipeline(mosaic).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pipeline.parameters())
    with torch.no_grad():
        before = pipeline(mosaic)
        pipeline.gamma.gamma.fill_(1.0)
        assert not torch.equal(before, pipeline(mosaic)), "the plugin does not compute with the moved parameter"


def test_process_refuses_a_state_saved_from_another_pipeline(root, tmp_path):
    write_npy(tmp_path / "raw.npy", raw_mosaic())
    # the parametrized pipeline has stages the published one lacks (blur, normalize); the chart's
    # stages are all in it, but its sharpening stage's parameters are not in the chart's state
    for source, message in (("configs/pipelines/parametrized.toml", "names no stage of this pipeline"),
                            ("configs/chart.toml", "restoring stage `sharpen`")):
        l2l.Pipeline.from_config(root / source).save(tmp_path / "state.safetensors")
        result = run_host("process", root / PUBLISHED, "--input", tmp_path / "raw.npy", "--output", tmp_path / "out.npy",
                          "--state", tmp_path / "state.safetensors", check=False)
        assert result.returncode != 0 and not (tmp_path / "out.npy").exists()
        assert "--state" in result.stderr and message in result.stderr, result.stderr


def test_process_refuses_a_state_with_values_its_stages_do_not_take(root, tmp_path):
    """Issue 26: gamma = NaN wrote an all-NaN image and gamma = 1e30 an all-ones one, both "wrote"."""
    write_npy(tmp_path / "raw.npy", raw_mosaic())
    config = root / "configs/pipelines/parametrized.toml"
    for value, message in ((float("nan"), "1 of its 1 values are NaN or infinite"),
                           (1e30, "expected values in [0.25, 8] (the range its stage declares)")):
        pipeline = l2l.Pipeline.from_config(config)
        with torch.no_grad():
            pipeline.gamma.gamma.fill_(value)
        pipeline.save(tmp_path / "state.safetensors")
        result = run_host("process", config, "--input", tmp_path / "raw.npy", "--output", tmp_path / "out.npy",
                          "--state", tmp_path / "state.safetensors", check=False)
        assert result.returncode != 0 and not (tmp_path / "out.npy").exists(), result.stderr
        assert "restoring stage `gamma`: `gamma`" in result.stderr and message in result.stderr, result.stderr
