"""Task-model weights: the path is the config file's, and a PyTorch pickle written by `torch.save`
is refused with the line that converts it (libtorch's reader turns every `state_dict()`, an
OrderedDict, into None)."""

import pytest
import torch

import l2l


def test_a_torch_saved_state_dict_is_refused_with_how_to_convert_it_found_beside_the_config(tmp_path, monkeypatch):
    source = l2l.TaskModel.from_config(_config(tmp_path, None), num_classes=4)
    (tmp_path / "weights").mkdir()
    torch.save(source.state_dict(), tmp_path / "weights" / "resnet18.pth")
    monkeypatch.chdir("/")  # the weights path is the config's, not the working directory's
    with pytest.raises(l2l.L2LError) as raised:
        l2l.TaskModel.from_config(_config(tmp_path, "weights/resnet18.pth"), num_classes=4)
    message = str(raised.value)
    assert f"{tmp_path}/weights/resnet18.pth: a PyTorch pickle (torch.save)" in message, message
    assert "safetensors.torch" in message and "save_file" in message, message


def _config(tmp_path, weights):
    path = tmp_path / "resnet.toml"
    lines = ["[task_model]", 'kind = "resnet"', "depth = 18"] + ([f'weights = "{weights}"'] if weights else [])
    path.write_text("\n".join(lines) + "\n")
    return path
