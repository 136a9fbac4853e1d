"""``list``: every run with its status and progress."""

from __future__ import annotations

import time

from trainer_core.cli import launcher_from


def list_command_parser(commands):
    parser = commands.add_parser("list", help="list runs")
    parser.add_argument("--status", action="append", help="only runs in this status (repeatable)")
    parser.set_defaults(func=list_command)
    return parser


def list_command(args) -> int:
    from trainer_core.tracking.status import run_progress

    launcher = launcher_from(args)
    runs = launcher.store.list_runs(statuses=args.status)
    if not runs:
        print("no runs yet: start one with `python -m trainer_core run examples/smoke.yaml`")
        return 0
    print(f"{'RUN ID':<23} {'STATUS':<10} {'PROGRESS':>9}  {'CREATED':<16} NAME")
    for run in runs:
        progress = run_progress(run)
        done = f"{progress['fraction'] * 100:5.1f}%" if progress["total_steps"] else "-"
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created_at"]))
        print(f"{run['id']:<23} {run['status']:<10} {done:>9}  {created:<16} {run['name']}")
    return 0
