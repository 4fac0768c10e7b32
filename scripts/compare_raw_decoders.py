"""Compares l2l's raw decoding with LibRaw's (through rawpy) on camera raw files and prints one
markdown table row per file: the camera, the visible size and its offset in the sensor, the CFA
pattern, the white level each decoder scales by, and how far the values are apart.

l2l's side: `l2l-host process` through a pipeline that only subtracts a zero black level (the mosaic
as decoded, in [0, 1] of l2l's white level, written as .npy) and `l2l-host dataset info` on a
`raw_folder` holding the file (its camera: CFA pattern). LibRaw's side: `raw_image_visible` (the
visible area), `sizes.top_margin/left_margin`, `raw_pattern`/`color_desc`, `white_level`.

    python3 -m venv /tmp/rawcmp && /tmp/rawcmp/bin/pip install rawpy==0.28.0 numpy==2.4.6
    /tmp/rawcmp/bin/python scripts/compare_raw_decoders.py --host target/release/l2l-host RAW...
"""
import argparse
import pathlib
import re
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import rawpy

IDENTITY = """pipeline = ["raw"]
[stages.raw]
kind = "black_level"
black_level = [0.0, 0.0, 0.0, 0.0]
normalize = false
"""


def camera_name(path):
    """Make and model from the file's first TIFF directory (every TIFF-based raw has them)."""
    data = path.read_bytes()[: 1 << 20]
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None:
        return "?"
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    fields = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack(order + "HHII", data[offset + 2 + 12 * i:offset + 14 + 12 * i])
        if tag in (271, 272) and kind == 2:
            raw = data[value:value + n] if n > 4 else data[offset + 10 + 12 * i:offset + 10 + 12 * i + n]
            fields[tag] = raw.rstrip(b"\0").decode(errors="replace").strip()
    make, model = fields.get(271, "?"), fields.get(272, "?")
    return model if model.lower().startswith(make.split()[0].lower()) else f"{make} {model}"


def ours(host, path, work):
    config = work / "identity.toml"
    config.write_text(IDENTITY)
    out = work / "mosaic.npy"
    subprocess.run([host, "process", config, "--input", path, "--output", out, "--force"], check=True, capture_output=True)
    mosaic = np.load(out).astype(np.float64).squeeze()
    folder = work / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(path, folder / path.name)
    (folder / "labels.csv").write_text(f"file,label\n{path.name},x\n")
    (work / "folder.toml").write_text(f'[dataset]\nkind = "raw_folder"\nroot = "{folder}"\nlabels_csv = "labels.csv"\n')
    info = subprocess.run([host, "dataset", "info", work / "folder.toml"], check=True, capture_output=True, text=True).stdout
    cfa = re.search(r"cfa_pattern: (\w+)", info)
    return mosaic, cfa.group(1).upper() if cfa else "?"


def libraw_cfa(raw):
    names = raw.color_desc.decode()
    return "".join(names[c] for c in raw.raw_pattern.flatten())


def row(host, path, work):
    try:
        mosaic, our_cfa = ours(host, path, work)
    except subprocess.CalledProcessError as refused:
        reason = refused.stderr.decode(errors="replace").strip().splitlines()[0].split(": ")[-1]
        try:
            with rawpy.imread(str(path)) as raw:
                libraw = "{1}×{0}".format(*raw.raw_image_visible.shape)
        except rawpy.LibRawError as error:
            libraw = f"refused: {error}"
        return f"| `{path.name}` | {camera_name(path)} | refused: {reason} | {libraw} | – | – | – | – |"
    with rawpy.imread(str(path)) as raw:
        visible = raw.raw_image_visible.astype(np.float64)
        margins = (raw.sizes.top_margin, raw.sizes.left_margin)
        libraw_white = raw.white_level
        cfa = libraw_cfa(raw)
    same_size = mosaic.shape == visible.shape
    if same_size:
        lit = mosaic > 0
        our_white = float(np.median(visible[lit] / mosaic[lit])) if lit.any() else float("nan")
        difference = np.abs(mosaic * our_white - visible)
        values = f"max {difference.max():.3g}, mean {difference.mean():.3g}"
    else:
        our_white, values = float("nan"), "–"
    size = lambda shape: f"{shape[1]}×{shape[0]}"
    return (f"| `{path.name}` | {camera_name(path)} | {size(mosaic.shape)} | {size(visible.shape)} at {margins} | "
            f"{'yes' if same_size else '**no**'} | {our_cfa} / {cfa} | {our_white:.0f} / {libraw_white} | {values} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="target/release/l2l-host")
    parser.add_argument("raws", nargs="+", type=pathlib.Path)
    args = parser.parse_args()
    print("| file | camera | l2l size (W×H) | LibRaw visible (W×H) at (top, left) | same area | CFA l2l / LibRaw | white level l2l / LibRaw | \\|l2l × its white − LibRaw\\| (raw units) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for path in args.raws:
            print(row(pathlib.Path(args.host).resolve(), path.resolve(), pathlib.Path(work)), flush=True)


if __name__ == "__main__":
    main()
