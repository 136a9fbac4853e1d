"""``launch CONFIG``: queue a run (it starts at once if a slot is free) and print its id."""

from __future__ import annotations

import sys

from trainer_core.cli import launcher_from


def launch_command_parser(commands):
    parser = commands.add_parser(
        "launch", help="queue a run in the background (it starts when a slot is free) and print its id"
    )
    parser.add_argument("config", help="YAML or JSON config file")
    parser.add_argument("--name", help="run name")
    parser.add_argument(
        "--priority", type=int, default=0, help="place in the queue: higher starts sooner (default 0)"
    )
    parser.add_argument(
        "--gpus", type=int, dest="num_gpus", help="GPUs the run needs (default: 1 on a GPU machine, else 0)"
    )
    parser.add_argument(
        "--no-queue",
        dest="queue",
        action="store_false",
        help="start now even if every slot is busy (all runs at once, sharing the devices)",
    )
    parser.set_defaults(func=launch_command)
    return parser


def launch_command(args) -> int:
    from trainer_core.config import load_config

    launcher = launcher_from(args)
    run_id = launcher.launch(
        load_config(args.config),
        name=args.name,
        priority=args.priority,
        num_gpus=args.num_gpus,
        queue=args.queue,
    )
    print(run_id)
    entry = launcher.run_queue.entry(run_id)
    if entry is not None:  # stdout stays the id alone, for scripts
        print(f"queued at position {entry['position']}: {entry['reason']}", file=sys.stderr)
    return 0
