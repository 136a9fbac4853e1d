"""Figure 1, cross-check: the same A/B pairs as bench/overhead.py, but A and B train at the same time.

On a shared machine the load changes within minutes, so two runs done one after the other can differ by
tens of percent for reasons neither side controls. Started together, each in its own session (so the
scheduler gives each the same share), both sides see the same load for the whole run and the ratio of
their throughputs is what the project costs. CPU seconds are not reported here: this process's child
accounting cannot tell two concurrent children apart.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import log, median
from bench.overhead import DATA, TRAINING, plain_once, project_once


def measure(quick: bool = False, pairs: int = 3) -> dict[str, Any]:
    data = dict(DATA)
    if quick:
        data.update(max_train_samples=160, max_eval_samples=48)
        pairs = min(pairs, 1)
    results = []
    for i in range(pairs):
        dirs = [Path(tempfile.mkdtemp(prefix=f"bench-concurrent-{side}-")) for side in ("plain", "project")]
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                plain = pool.submit(plain_once, dirs[0], data)
                project = pool.submit(project_once, dirs[1], data)
                a, b = plain.result(), project.result()
        finally:
            for folder in dirs:
                shutil.rmtree(folder, ignore_errors=True)
        for side in (a, b):
            side.pop("cpu_s", None)
            side.pop("launch_cpu_s", None)
        results.append((a, b))
        log(
            f"concurrent pair {i + 1}/{pairs}: plain {a['train_samples_per_second']} samples/s, "
            f"project {b['train_samples_per_second']} samples/s, same scores {a['scores'] == b['scores']}"
        )
    ratios = [b["train_samples_per_second"] / a["train_samples_per_second"] for a, b in results]
    wall = [b["wall_s"] / a["wall_s"] for a, b in results]
    return {
        "quick": quick,
        "pairs": pairs,
        "data": data,
        "training": TRAINING,
        "plain_runs": [a for a, _ in results],
        "project_runs": [b for _, b in results],
        "samples_per_second_ratios": ratios,
        "wall_ratios": wall,
        "samples_per_second_ratio_median": median(ratios),
        "wall_ratio_median": median(wall),
        "identical_scores": all(a["scores"] == b["scores"] for a, b in results),
    }
