"""``python -m trainer_core``: run and manage fine-tuning runs from a terminal.

One module per subcommand, each a ``<name>_command_parser`` / ``<name>_command`` pair.
"""

from __future__ import annotations

import argparse
import os
import sys

from trainer_core.errors import ConfigError, RunNotFoundError, RunStateError


def main(argv: list[str] | None = None) -> int:
    from trainer_core.cli import (
        cluster,
        delete,
        launch,
        list_runs,
        queue,
        rebuild_store,
        resume,
        run,
        show,
        stop,
        sweep,
    )

    parser = argparse.ArgumentParser(
        # The console script's name, or `python -m trainer_core`: both run this.
        prog=_prog(),
        description="Launch, watch and manage fine-tuning runs.",
    )
    parser.add_argument("--home", help="runs folder (default: $TRAINER_CORE_HOME or ./runs)")
    parser.add_argument(
        "--db",
        help="metrics store URL (default: $TRAINER_CORE_DB or sqlite:///<home>/metrics.db); "
        "postgresql://user@host:port/database for one store shared by several machines",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in (
        run.run_command_parser,
        launch.launch_command_parser,
        list_runs.list_command_parser,
        show.show_command_parser,
        stop.stop_command_parser,
        resume.resume_command_parser,
        delete.delete_command_parser,
        queue.queue_command_parser,
        rebuild_store.rebuild_store_command_parser,
        sweep.sweep_command_parser,
        cluster.cluster_command_parser,
    ):
        add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ConfigError, RunNotFoundError, RunStateError) as exc:  # StoreDamagedError is a ConfigError
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith(".py") and name != "-c" else "python -m trainer_core"


def launcher_from(args):
    """The Launcher named by the global --home/--db options, with dead runs reconciled."""
    from trainer_core.runs.launcher import Launcher

    launcher = Launcher(home=args.home, store_url=args.db)
    launcher.reconcile()
    return launcher
