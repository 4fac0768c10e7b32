"""The README's PyTorch training loop runs as printed there, and its loss falls."""

import re
import subprocess
import sys

from conftest import ROOT


def test_the_readme_training_loop_runs_and_its_loss_falls():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- python-training-loop -->\s*```python\n(.*?)```", readme, re.S)
    assert match, "README.md has no ```python block after <!-- python-training-loop -->"
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", match.group(1)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    losses = [float(x) for x in re.findall(r"loss ([0-9.]+)", result.stdout)]
    assert len(losses) >= 3, result.stdout
    assert losses[-1] < 0.5 * losses[0], result.stdout
