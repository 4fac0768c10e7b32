"""The package finds plugins as the host does and fails as the host fails: the same one-line
messages for a bad config key, a refused plugin file and stages that do not fit together; a
third party's plugin, built out of tree after the package, is usable without rebuilding it."""

import os
import subprocess
import sys

import pytest
import torch

import l2l
from conftest import ROOT, host_error, raw_mosaic, run_host, write_npy


def test_plugins_lists_what_the_host_lists():
    listed = run_host("plugins", "list").stdout.splitlines()[1:]
    host = {tuple(line.split()[:4]) for line in listed}
    ours = {(row["plugin"], row["kind"], row["component"], row["version"]) for row in l2l.plugins()}
    assert ours == host


def failing_config(tmp_path, text):
    config = tmp_path / "config.toml"
    config.write_text(text)
    write_npy(tmp_path / "raw.npy", raw_mosaic())
    expected = host_error(run_host("process", config, "--input", tmp_path / "raw.npy", "--output", tmp_path / "out.npy", check=False))
    with pytest.raises(l2l.L2LError) as raised:
        l2l.Pipeline.from_config(config)
    return str(raised.value), expected


def test_a_misspelt_stage_key_fails_with_the_hosts_message(tmp_path):
    got, expected = failing_config(tmp_path, 'pipeline = ["gamma"]\n[stages.gamma]\nkind = "gamma"\ngama = 2.0\n')
    assert got == expected
    assert "stages.gamma" in got and "gama" in got, got


def test_stages_that_do_not_fit_fail_with_the_hosts_message(tmp_path):
    got, expected = failing_config(
        tmp_path,
        'pipeline = ["demosaic", "again"]\n[stages.demosaic]\nkind = "demosaic_bilinear"\n[stages.again]\nkind = "demosaic_menon2007"\n',
    )
    assert got == expected
    assert "takes a mosaic" in got, got
    with pytest.raises(l2l.L2LError) as raised:
        l2l.Pipeline(["demosaic_bilinear", "demosaic_menon2007"])
    assert "takes a mosaic" in str(raised.value)


def test_a_refused_plugin_file_is_named_as_the_host_names_it(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "libl2l_broken.so").write_bytes(b"not a shared library")
    got, expected = failing_config(
        tmp_path, 'plugin_dirs = ["plugins"]\npipeline = ["x"]\n[stages.x]\nkind = "no_such_stage"\n'
    )
    assert got == expected
    assert "libl2l_broken.so" in got and "unknown stage `no_such_stage`" in got, got
    with pytest.raises(l2l.L2LError) as raised:
        l2l.plugins([plugins])
    assert "libl2l_broken.so" in str(raised.value)


def test_a_template_plugin_built_out_of_tree_works_from_python(tmp_path):
    built = subprocess.run(
        [str(ROOT / "scripts" / "cargo.sh"), "run", "-q", "-p", "l2l-system-tests", "--example", "build_template", "--", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr
    plugin_dir = os.path.dirname(built.stdout.strip())
    assert any(row["component"] == "exposure" for row in l2l.plugins([plugin_dir]))
    pipeline = l2l.Pipeline([{"kind": "exposure", "ev": 1.0}], plugin_dirs=[plugin_dir])
    image = torch.full((1, 3, 8, 8), 0.25, requires_grad=True)
    out = pipeline(image)
    assert torch.allclose(out, torch.full_like(out, 0.5))
    out.sum().backward()
    (ev,) = pipeline.parameters()
    # d/d ev of sum(x · 2^ev) = sum(x) · 2^ev · ln 2
    assert torch.allclose(ev.grad, torch.tensor([0.25 * 192 * 2.0 * torch.log(torch.tensor(2.0))]))


def test_a_torch_other_than_the_one_l2l_was_built_against_is_refused(tmp_path):
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text('__version__ = "2.12.0"\n')
    (fake / "nn.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-c", "import l2l"], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(tmp_path)),
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: l2l was built against torch 2.13.0") and "this Python has torch 2.12.0" in last, result.stderr
