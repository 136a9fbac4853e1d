"""``sweep SPEC.yaml`` and ``sweep show|stop|resume|add|delete|list``: hyperparameter sweeps."""

from __future__ import annotations

import json
import sys
import time

from trainer_core.cli import launcher_from

ACTIONS = ("list", "show", "stop", "resume", "add", "delete")


def sweep_command_parser(commands):
    parser = commands.add_parser(
        "sweep",
        help="search hyperparameters with Optuna: sweep SPEC.yaml | show|stop|resume|add|delete ID | list",
        description="sweep SPEC.yaml starts a sweep (base config, search space, budget) and follows it "
        "until its budget is spent (--detach returns at once); the other forms manage one sweep.",
    )
    parser.add_argument("target", help=f"a sweep spec file, or one of: {', '.join(ACTIONS)}")
    parser.add_argument("sweep_id", nargs="?", help="the sweep (for show, stop, resume, add, delete)")
    parser.add_argument("--name", help="sweep name (with a spec file)")
    parser.add_argument("--detach", action="store_true", help="start the sweep and return at once")
    parser.add_argument("--json", action="store_true", help="(show, list) print machine-readable JSON")
    parser.add_argument("--trials", type=int, default=1, help="(add) how many trials to add")
    parser.add_argument("--keep-runs", action="store_true", help="(delete) keep the trials' runs")
    parser.set_defaults(func=sweep_command)
    return parser


def sweep_command(args) -> int:
    from trainer_core.errors import ConfigError
    from trainer_core.sweeps.driver import Sweeps

    sweeps = Sweeps(launcher_from(args))
    if args.target not in ACTIONS:
        return _start(sweeps, args)
    if args.target == "list":
        return _list(sweeps, args)
    if not args.sweep_id:
        raise ConfigError("sweep_id", f"`sweep {args.target}` needs the sweep's id (see `sweep list`)")
    if args.target == "show":
        return _show(sweeps.get(args.sweep_id), args.json)
    if args.target == "stop":
        sweeps.stop(args.sweep_id)
        print(
            f"sweep {args.sweep_id} stopped: running trials stop at their next step, queued ones were cancelled"
        )
    elif args.target == "resume":
        launched = sweeps.resume(args.sweep_id)
        print(f"sweep {args.sweep_id} resumed; {len(launched)} trial(s) launched")
    elif args.target == "add":
        launched = sweeps.add_trials(args.sweep_id, args.trials)
        print(f"sweep {args.sweep_id}: {args.trials} trial(s) added, {len(launched)} launched")
    else:
        sweeps.delete(args.sweep_id, delete_runs=not args.keep_runs)
        print(f"sweep {args.sweep_id} deleted" + (" (its runs kept)" if args.keep_runs else " with its runs"))
    return 0


def _start(sweeps, args) -> int:
    from trainer_core.sweeps.driver import SweepStatus
    from trainer_core.sweeps.spec import load_sweep_spec

    sweep_id = sweeps.create(load_sweep_spec(args.target), name=args.name)
    print(sweep_id)
    if args.detach:
        return 0
    print(
        f"following sweep {sweep_id} (Ctrl-C leaves it running; `sweep stop {sweep_id}` stops it)",
        file=sys.stderr,
    )
    told: set[int] = set()
    try:
        while True:
            detail = sweeps.get(sweep_id)
            for trial in detail["trials"]:
                if trial["number"] not in told and trial["state"] != "running":
                    told.add(trial["number"])
                    print(_trial_line(trial, detail["spec"]["objective"]), file=sys.stderr)
            if detail["status"] != SweepStatus.RUNNING:
                break
            sweeps.launcher.reconcile()
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\nleft sweep {sweep_id} running in the background", file=sys.stderr)
        return 130
    sweep = sweeps.wait(sweep_id)
    return _show(sweeps.get(sweep_id), False) or (0 if sweep["status"] == SweepStatus.COMPLETED else 1)


def _trial_line(trial: dict, objective: str) -> str:
    value = f"{objective}={trial['value']:.4g}" if trial["value"] is not None else trial["status"]
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial["params"].items())
    return f"trial {trial['number']}: {value}  ({params})"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _show(detail: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(detail, indent=2, default=str))
        return 0
    spec = detail["spec"]
    print(f"sweep    {detail['id']}  ({detail['name']})")
    print(f"status   {detail['status']}")
    print(
        f"search   {spec['sampler']} sampler, {spec['pruner']} pruner, {spec['direction']} {spec['objective']}; "
        f"{detail['n_trials']} trials, {detail['parallel']} at a time"
    )
    for trial in detail["trials"]:
        duration = f"{trial['duration_s']:.0f} s" if trial["duration_s"] else ""
        print(
            f"  {_trial_line(trial, spec['objective']):70}  {trial['status']:9} {duration:>7}  {trial['run_id'] or ''}"
        )
    best = detail["best"]
    if best:
        print(
            f"best     trial {best['number']}: {spec['objective']}={best['value']:.4g}, run {best['run_id']}"
        )
    return 0


def _list(sweeps, args) -> int:
    rows = sweeps.list()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no sweeps yet")
    for s in rows:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(s["run_counts"].items()))
        print(f"{s['id']}  {s['status']:9}  {s['name']}  ({counts or 'no trials yet'})")
    return 0
