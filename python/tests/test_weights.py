"""Task-model weights: the path is the config file's, and a state dict PyTorch wrote with `torch.save`
(`.pth`) loads as its safetensors twin does, giving the same logits."""

import safetensors.torch
import torch

import l2l


def test_a_torch_saved_state_dict_loads_like_its_safetensors_twin_found_beside_the_config(tmp_path, monkeypatch):
    # weights unlike the default initialisation (another seed), so that loading them shows
    source = l2l.TaskModel.from_config(_config(tmp_path, None, seed=7), num_classes=4)
    state = {name: tensor.detach().clone() for name, tensor in source.state_dict().items()}
    (tmp_path / "weights").mkdir()
    torch.save(state, tmp_path / "weights" / "resnet18.pth")
    safetensors.torch.save_file(state, tmp_path / "weights" / "resnet18.safetensors")
    monkeypatch.chdir("/")  # the weights path is the config's, not the working directory's
    from_pth = l2l.TaskModel.from_config(_config(tmp_path, "weights/resnet18.pth"), num_classes=4).eval()
    from_safetensors = l2l.TaskModel.from_config(_config(tmp_path, "weights/resnet18.safetensors"), num_classes=4).eval()
    fresh = l2l.TaskModel.from_config(_config(tmp_path, None), num_classes=4).eval()
    for name, tensor in from_pth.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = from_pth(x)
        assert torch.equal(logits, from_safetensors(x))
        assert torch.equal(logits, source.eval()(x))
        assert not torch.allclose(logits, fresh(x))


def test_a_torch_saved_file_that_is_not_a_state_dict_is_refused_naming_it(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "broken.pth").write_bytes(b"PK\x03\x04 not really a zip")
    try:
        l2l.TaskModel.from_config(_config(tmp_path, "weights/broken.pth"), num_classes=4)
    except l2l.L2LError as raised:
        message = str(raised)
    else:
        raise AssertionError("a broken .pth loaded")
    assert f"{tmp_path}/weights/broken.pth: not a readable PyTorch state dict" in message, message


def _config(tmp_path, weights, seed=0):
    path = tmp_path / f"resnet-{seed}-{str(weights).replace('/', '_')}.toml"
    lines = ["[task_model]", 'kind = "resnet"', "depth = 18", f"seed = {seed}"] + ([f'weights = "{weights}"'] if weights else [])
    path.write_text("\n".join(lines) + "\n")
    return path


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_pth_declaring_gigabytes_in_kilobytes_is_refused_without_reading_them(tmp_path):
    """Issue 26: 20 000 names sharing one storage, and one stride-0 view of 2^28 × 4 values; the
    names are not the network's, so no value is read (before: 7.65 GB and 4.4 GB resident)."""
    (tmp_path / "weights").mkdir()
    shared = torch.zeros(1 << 20)
    torch.save({f"shared.{i}": shared for i in range(20_000)}, tmp_path / "weights" / "shared.pth")
    torch.save({"huge": torch.zeros(1).expand(1 << 28, 4)}, tmp_path / "weights" / "stride0.pth")
    for name, what in [("shared.pth", "not in the network: 20000"), ("stride0.pth", "not in the network: 1 (`huge`)")]:
        before = _peak_rss_mb()
        try:
            l2l.TaskModel.from_config(_config(tmp_path, f"weights/{name}"), num_classes=4)
        except l2l.L2LError as raised:
            message = str(raised)
        else:
            raise AssertionError(f"{name} loaded")
        assert what in message, message
        assert _peak_rss_mb() - before < 500, f"{name}: peak resident memory grew by {_peak_rss_mb() - before:.0f} MB"
