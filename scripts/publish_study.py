"""Copies a study's report (report.md and its PNGs, not the bulky results.json or checkpoints) from a
run directory into docs/results/NAME/, under a header that says how to repeat it and where its time
went: each experiment's wall time (its folder's first file to its results.json) and the share of it
spent in training epochs (the runs' metrics.jsonl) against evaluation, corruption, forensics searches.

    python3 scripts/publish_study.py runs/study-cells-1 docs/results/study-cells \
        --command "l2l-host run configs/study-cells.toml" --commit abc1234 --machine "2-core x86-64, CPU"
"""
import argparse
import json
import pathlib
import shutil


def training_seconds(experiment):
    """Seconds of training and validation epochs in the experiment's training runs."""
    total = 0.0
    for metrics in experiment.glob("training/*/metrics.jsonl"):
        for line in metrics.read_text().splitlines():
            total += json.loads(line)["seconds"]
    return total


def wall_seconds(experiment):
    """From the experiment folder's oldest file to its results.json."""
    times = [p.stat().st_mtime for p in experiment.rglob("*") if p.is_file()]
    results = experiment / "results.json"
    return results.stat().st_mtime - min(times) if results.exists() and times else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("target", type=pathlib.Path)
    parser.add_argument("--command", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--machine", required=True)
    args = parser.parse_args()
    if args.target.exists():
        raise SystemExit(f"{args.target} exists; remove it first")
    report = (args.run / "report.md").read_text()
    rows = []
    for experiment in sorted(p for p in args.run.iterdir() if (p / "results.json").exists()):
        wall, training = wall_seconds(experiment), training_seconds(experiment)
        rows.append(f"| {experiment.name} | {wall / 60:.1f} min | {training / 60:.1f} min ({100 * training / wall:.0f} %) | {(wall - training) / 60:.1f} min |")
        for png in experiment.glob("*.png"):
            (args.target / experiment.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(png, args.target / experiment.name / png.name)
    header = (f"# {args.run.name}\n\nCommand `{args.command}`, commit `{args.commit}`, machine: {args.machine}.\n\n"
              "| experiment | wall time | training epochs | the rest (evaluation, corruptions, intensities, searches) |\n"
              "|---|---|---|---|\n" + "\n".join(rows) + "\n\n")
    args.target.mkdir(parents=True, exist_ok=True)
    (args.target / "README.md").write_text(header + report.split("\n", 2)[2])
    print(args.target / "README.md")


if __name__ == "__main__":
    main()
