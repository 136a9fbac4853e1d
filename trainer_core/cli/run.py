"""``run CONFIG``: train in the foreground with a progress bar; exit 0 only if the run completed."""

from __future__ import annotations

import sys
import time

from trainer_core.cli import launcher_from
from trainer_core.cli.show import format_metrics

_SHOWN = ("eval_loss", "eval_accuracy", "eval_f1", "eval_precision", "eval_recall")


def run_command_parser(commands):
    parser = commands.add_parser("run", help="train a config in the foreground, with a progress bar")
    parser.add_argument("config", help="YAML or JSON config file")
    parser.add_argument("--name", help="run name")
    parser.set_defaults(func=run_command)
    return parser


def run_command(args) -> int:
    from tqdm import tqdm

    from trainer_core.config import load_config
    from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED

    launcher = launcher_from(args)
    run_id = launcher.launch(load_config(args.config), name=args.name)
    print(f"run {run_id} started; log: {launcher.run_dir(run_id) / 'train.log'}", file=sys.stderr)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, file=sys.stderr)
    seen_evals = 0
    interrupted = False
    try:
        while True:
            try:
                run = launcher.store.get_run(run_id)
                if run["total_steps"] and bar.total != run["total_steps"]:
                    bar.total = run["total_steps"]
                    bar.refresh()
                bar.update(max(0, int(run["step"] or 0) - bar.n))
                evals = launcher.store.get_series(run_id, "eval_loss")
                if len(evals) > seen_evals:
                    seen_evals = len(evals)
                    last = {k: v for k, v in launcher.store.last_metrics(run_id).items() if k in _SHOWN}
                    bar.write(f"epoch {evals['epoch'].iloc[-1] or 0:.2f}: {format_metrics(last)}")
                if run["status"] not in ACTIVE_STATUSES:
                    break
                time.sleep(0.5)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                bar.write("stopping: saving a checkpoint at the next step (Ctrl-C again to leave it running)")
                launcher.stop(run_id)
    except KeyboardInterrupt:
        print(f"\nleft run {run_id} running in the background", file=sys.stderr)
        return 130
    finally:
        bar.close()
    run = launcher.store.get_run(run_id)
    print(f"run {run_id} {run['status']}", file=sys.stderr)
    if run["error"]:
        print(f"error: {run['error']}", file=sys.stderr)
    summary = run.get("summary") or {}
    if summary.get("final_metrics"):
        final = {k: {"value": v} for k, v in summary["final_metrics"].items() if k in _SHOWN}
        print(f"final model on the validation split: {format_metrics(final)}")
    return 0 if run["status"] == COMPLETED else 1
