"""``make bench``: measure the project against its references and write BENCHMARKS.md.

    python -m bench.run                         # every figure (the MRPC recipe alone takes most of an hour)
    python -m bench.run --quick                 # small sizes, to check the suite (kept apart, not reported)
    python -m bench.run --only overhead,store   # some figures; the others keep their last results
    python -m bench.run --report                # only rewrite BENCHMARKS.md from bench/results/

Each figure prints its raw numbers, saves them to ``bench/results/<figure>.json`` (git-ignored), and
BENCHMARKS.md is rebuilt from the latest result of every figure, so figures measured in separate
invocations (a long one left running in the background) end up in one report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

from bench.common import log, machine, save_result

# figure name -> module with measure(**options)
FIGURES = {
    "overhead": "bench.overhead",
    "overhead-concurrent": "bench.overhead_concurrent",
    "mrpc": "bench.mrpc",
    "store": "bench.metrics_path",
    "footprint": "bench.footprint",
    "queue": "bench.queue",
    "watched": "bench.watched",
    "executors": "bench.executors",
}
# `make bench` without --only: the 30-minute footprint run is left to an explicit --only footprint.
DEFAULT = ("overhead", "overhead-concurrent", "store", "watched", "mrpc", "queue")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the suite, not the figures")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT),
        help=f"comma-separated figures among {', '.join(FIGURES)} (default: {','.join(DEFAULT)})",
    )
    parser.add_argument(
        "--pairs", type=int, default=3, help="A/B pairs of the overhead comparison (at least 3)"
    )
    parser.add_argument(
        "--footprint-minutes", type=float, default=30.0, help="how long the Run page stays open"
    )
    parser.add_argument("--report", action="store_true", help="only rebuild BENCHMARKS.md from saved results")
    args = parser.parse_args(argv)

    if not args.report:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in FIGURES]
        if unknown:
            parser.error(f"unknown figure(s) {', '.join(unknown)}; choose among {', '.join(FIGURES)}")
        options = {
            "overhead": {"pairs": args.pairs},
            "overhead-concurrent": {"pairs": args.pairs},
            "watched": {"pairs": args.pairs},
            "footprint": {"minutes": args.footprint_minutes},
        }
        for name in wanted:
            module = importlib.import_module(FIGURES[name])
            log(f"figure {name}: start")
            started = time.monotonic()
            before = machine()
            result = module.measure(quick=args.quick, **options.get(name, {}))
            result["machine"] = before
            result["load_average_after"] = list(machine()["load_average"])
            result["duration_s"] = time.monotonic() - started
            result["command"] = "python -m bench.run --only " + name + (" --quick" if args.quick else "")
            path = save_result(name, result)
            print(json.dumps(result, indent=1, default=str))
            log(f"figure {name}: done in {result['duration_s']:.0f} s, raw numbers in {path}")

    from bench.report import write_report

    path = write_report()
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
