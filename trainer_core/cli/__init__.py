"""``python -m trainer_core``: run and manage fine-tuning runs from a terminal.

One module per subcommand, each a ``<name>_command_parser`` / ``<name>_command`` pair.
"""

from __future__ import annotations

import argparse
import sys

from trainer_core.errors import ConfigError, RunNotFoundError, RunStateError


def main(argv: list[str] | None = None) -> int:
    from trainer_core.cli import delete, launch, list_runs, resume, run, show, stop

    parser = argparse.ArgumentParser(
        prog="python -m trainer_core", description="Launch, watch and manage fine-tuning runs."
    )
    parser.add_argument("--home", help="runs folder (default: $TRAINER_CORE_HOME or ./runs)")
    parser.add_argument("--db", help="metrics store URL (default: sqlite:///<home>/metrics.db)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, launch, list_runs, show, stop, resume, delete):
        module.register(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RunNotFoundError, RunStateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def launcher_from(args):
    """The Launcher named by the global --home/--db options, with dead runs reconciled."""
    from trainer_core.runs.launcher import Launcher

    launcher = Launcher(home=args.home, store_url=args.db)
    launcher.reconcile()
    return launcher
