#!/usr/bin/env python3
"""How long the workbench takes to answer a parameter change on a 1-MP raw: uploads a 1024×1024 mosaic
to a running `l2l-host serve CONFIG` and times `/api/run` (the request the page makes) after moving
the last stage's first number (only that stage recomputes) and after flipping the demosaicer's
first flag or choice (every stage from the demosaicer on recomputes). Medians of N requests, wall time at the client.

    l2l-host serve configs/pipelines/bilinear_sharpening_filter_median_denoising.toml --port 8080 &
    scripts/serve_latency.py http://127.0.0.1:8080/ [N]
"""

import json
import random
import statistics
import struct
import sys
import time
import urllib.request


def post(url, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={} if raw else {"content-type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.loads(reply.read())


def npy(height, width):
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({height}, {width}), }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    values = [0.1 + 0.8 * random.random() for _ in range(height * width)]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + struct.pack(f"<{len(values)}f", *values)


def main():
    base, rounds = sys.argv[1].rstrip("/"), int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with urllib.request.urlopen(base + "/api/setup") as reply:
        setup = json.loads(reply.read())
    slots = setup["slots"]
    input_id = post(base + "/api/upload?name=one-megapixel.npy", npy(1024, 1024), raw=True)["input"]
    post(base + "/api/run", {"input": input_id, "a": slots})
    last = slots[-1]
    number = next(k["name"] for s in setup["stages"] if s["name"] == last["kind"] for k in s["keys"] if isinstance(k["default"], (int, float)) and not isinstance(k["default"], bool))
    start_value = last["config"].get(number, next(k["default"] for s in setup["stages"] if s["name"] == last["kind"] for k in s["keys"] if k["name"] == number))
    demosaic = next(s for s in slots if s["name"] == "demosaic")
    key = next(k for s in setup["stages"] if s["name"] == demosaic["kind"] for k in s["keys"] if k["choices"][1:] or isinstance(k["default"], bool) and not k["name"].endswith("from_metadata"))
    values = key["choices"][:2] or [True, False]
    for what, change in ((f"{last['name']}.{number}", lambda i: last["config"].__setitem__(number, start_value * (1.0 + 0.01 * (i % 2 + 1)))),
                         (f"demosaic.{key['name']}", lambda i: demosaic["config"].__setitem__(key["name"], values[(i + 1) % 2]))):
        walls, servers, recomputed = [], [], set()
        for i in range(rounds):
            change(i)
            started = time.perf_counter()
            answer = post(base + "/api/run", {"input": input_id, "a": slots})
            walls.append((time.perf_counter() - started) * 1e3)
            servers.append(answer["a"]["millis"])
            recomputed.add(answer["a"]["recomputed"])
        print(f"{what:<22} stages recomputed {sorted(recomputed)}: median {statistics.median(walls):.0f} ms at the client "
              f"(range {min(walls):.0f}–{max(walls):.0f}), {statistics.median(servers):.0f} ms in the server")


if __name__ == "__main__":
    main()
