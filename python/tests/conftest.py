"""Shared fixtures of the Python package's tests: the checkout, the built host binary (what the
package's results are compared with), and .npy files read and written without numpy."""

import ast
import os
import pathlib
import struct
import subprocess

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST = ROOT / "target" / "debug" / "l2l-host"


@pytest.fixture(scope="session")
def root():
    return ROOT


def run_host(*args, cwd=None, check=True):
    """Runs the built ``l2l-host`` with the default plugin search (no ``L2L_PLUGIN_PATH``)."""
    assert HOST.is_file(), f"{HOST} is missing: run `make build` first"
    env = {k: v for k, v in os.environ.items() if k != "L2L_PLUGIN_PATH"}
    result = subprocess.run([str(HOST), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"l2l-host {' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result


def host_error(result):
    """The one error line ``l2l-host`` printed."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("error: ")


def write_npy(path, tensor):
    """A float32 .npy file (version 1.0) holding ``tensor``."""
    tensor = tensor.detach().to(torch.float32).contiguous()
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple(tensor.shape)}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = struct.pack(f"<{tensor.numel()}f", *tensor.flatten().tolist())
    pathlib.Path(path).write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


def read_npy(path):
    """A little-endian float32 .npy file as a tensor."""
    raw = pathlib.Path(path).read_bytes()
    assert raw[:6] == b"\x93NUMPY", path
    length = struct.unpack("<H", raw[8:10])[0]
    header = ast.literal_eval(raw[10 : 10 + length].decode())
    assert header["descr"] == "<f4" and not header["fortran_order"], header
    values = struct.unpack(f"<{len(raw[10 + length:]) // 4}f", raw[10 + length :])
    return torch.tensor(values, dtype=torch.float32).reshape(header["shape"])


def raw_mosaic(height=64, width=96, seed=0):
    """A smooth random H×W mosaic in [0.1, 0.9] (the same for every caller with the same seed)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, height // 8, width // 8, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return (0.1 + 0.8 * (0.7 * smooth + 0.3 * torch.rand(1, 1, height, width, generator=generator)))[0, 0]
