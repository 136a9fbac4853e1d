"""``delete RUN_ID``: remove a run, its folder and its metrics."""

from __future__ import annotations

import sys

from trainer_core.cli import launcher_from


def delete_command_parser(commands):
    parser = commands.add_parser("delete", help="delete a run with its folder and metrics")
    parser.add_argument("run_id")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(func=delete_command)
    return parser


def delete_command(args) -> int:
    launcher = launcher_from(args)
    run = launcher.store.get_run(args.run_id)
    if not args.yes:
        try:
            answer = input(f"delete run {args.run_id} ({run['name']}, {run['status']})? [y/N] ")
        except EOFError:  # no terminal to ask (a script, a pipe, stdin closed)
            print(
                f"\nerror: not deleted: cannot ask for confirmation without input; pass --yes to delete "
                f"run {args.run_id}",
                file=sys.stderr,
            )
            return 2
        if answer.strip().lower() != "y":
            print("not deleted")
            return 1
    launcher.delete(args.run_id)
    print(f"deleted run {args.run_id}")
    return 0
