"""``show RUN_ID``: status, progress, last and best metrics of one run."""

from __future__ import annotations

import json
import time

from trainer_core.cli import launcher_from


def show_command_parser(commands):
    parser = commands.add_parser("show", help="show one run: status, progress, last and best metrics")
    parser.add_argument("run_id")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=show_command)
    return parser


def format_metrics(metrics: dict) -> str:
    return "  ".join(f"{k}={_fmt(v['value'])}" for k, v in sorted(metrics.items()))


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show_command(args) -> int:
    from trainer_core.tracking.status import run_progress

    launcher = launcher_from(args)
    run = launcher.store.get_run(args.run_id)
    progress = run_progress(run)
    last = launcher.store.last_metrics(args.run_id)
    best = launcher.store.best_metrics(args.run_id, keys=[k for k in last if k.startswith("eval_")])
    if args.json:
        out = {
            k: run[k]
            for k in (
                "id",
                "name",
                "status",
                "created_at",
                "started_at",
                "finished_at",
                "pid",
                "host",
                "error",
                "run_dir",
            )
        }
        out.update(progress=progress, last_metrics=last, best_metrics=best, summary=run["summary"])
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"run      {run['id']}  ({run['name']})")
    print(f"status   {run['status']}")
    total = progress["total_steps"] or "?"
    eta = f", ETA {progress['eta_s']:.0f} s" if progress["eta_s"] is not None else ""
    print(
        f"progress step {progress['step']}/{total} ({progress['fraction'] * 100:.1f}%), epoch {progress['epoch'] or 0:.2f}{eta}"
    )
    if run["started_at"]:
        print(f"started  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run['started_at']))}")
    if run["error"]:
        print(f"error    {run['error']}")
    if last:
        print(f"last     {format_metrics(last)}")
    if best:
        print(f"best     {format_metrics(best)}")
    print(f"folder   {run['run_dir']}")
    return 0
