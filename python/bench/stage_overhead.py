"""What a plugin stage called from Python costs over the same op written in PyTorch: white balance
(``x * gains``, the stage's whole computation) on a batch of 8 × 3 × 256², forward alone and forward
+ backward. Calls alternate between the two, and the median of many rounds is reported, so that both
see the same machine load.

    scripts/python.sh bench    (or: python python/bench/stage_overhead.py [--rounds N])
"""

import argparse
import statistics
import time

import torch

import l2l


class TorchWhiteBalance(torch.nn.Module):
    """The stage as a researcher would write it in PyTorch: a module with the gains as parameter."""

    def __init__(self, gains):
        super().__init__()
        self.gains = gains

    def forward(self, x):
        return x * self.gains.view(1, 3, 1, 1)


def measure(pairs, rounds):
    timings = {name: [] for name in pairs}
    for _ in range(10):
        for call in pairs.values():
            call()
    for _ in range(rounds):
        for name, call in pairs.items():
            start = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e3 for name, values in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    stage = l2l.Pipeline([{"kind": "white_balance", "gains": [2.0, 1.0, 1.6]}]).white_balance
    op = TorchWhiteBalance(stage.gains)

    x = 0.1 + 0.8 * torch.rand(8, 3, 256, 256)
    assert torch.equal(op(x), stage(x)), "the PyTorch op is not the plugin's"
    leaf = x.clone().requires_grad_(True)
    # modules as modules (nn.Module's call costs the same on both sides), and the bare calls: the
    # native stage call against the tensor expression
    comparisons = [
        ("module", "forward", stage, op, x, False),
        ("module", "forward+backward", stage, op, leaf, True),
        ("bare call", "forward", stage._calls.forward, op.forward, x, False),
        ("bare call", "forward+backward", stage._calls.forward, op.forward, leaf, True),
    ]
    print(f"white_balance on 8 × 3 × 256², {torch.get_num_threads()} threads, median of {args.rounds} rounds")
    print(f"{'called as':<10} {'pass':<17} {'l2l (ms)':>9} {'torch (ms)':>11} {'overhead':>9}")
    for called_as, label, ours, theirs, inputs, backward in comparisons:
        if backward:
            calls = {"l2l": lambda: ours(inputs).sum().backward(), "torch": lambda: theirs(inputs).sum().backward()}
            result = measure(calls, args.rounds)
        else:
            with torch.no_grad():
                result = measure({"l2l": lambda: ours(inputs), "torch": lambda: theirs(inputs)}, args.rounds)
        overhead = result["l2l"] / result["torch"] - 1
        print(f"{called_as:<10} {label:<17} {result['l2l']:>9.3f} {result['torch']:>11.3f} {overhead:>+8.1%}")


if __name__ == "__main__":
    main()
