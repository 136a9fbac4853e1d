"""``launch CONFIG``: queue a run (it starts at once if a slot is free) and print its id."""

from __future__ import annotations

import sys

from trainer_core.cli import launcher_from

# Options named as the config fields they set.
RAY_OPTIONS = ("executor", "ray_address", "num_workers", "use_gpu", "storage_path")


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
    ray = parser.add_argument_group("Ray cluster (override the config's executor fields)")
    ray.add_argument(
        "--executor", choices=("local", "ray"), help="where the run trains (default: the config's)"
    )
    ray.add_argument("--ray-address", help="the cluster's Jobs address, e.g. http://head-node:8265")
    ray.add_argument("--num-workers", type=int, help="Ray Train workers")
    ray.add_argument("--use-gpu", action="store_true", default=None, help="one GPU per Ray Train worker")
    ray.add_argument("--storage-path", help="a folder every node and this machine reach (a shared mount)")
    parser.set_defaults(func=launch_command)
    return parser


def launch_command(args) -> int:
    from trainer_core.config import load_config

    launcher = launcher_from(args)
    config = load_config(args.config)
    given = {key: getattr(args, key) for key in RAY_OPTIONS if getattr(args, key) is not None}
    if given:  # the same checks as the file's own values: the config is built again with them
        from trainer_core.config import config_from_dict

        config = config_from_dict({**config.to_dict(), **given})
    run_id = launcher.launch(
        config,
        name=args.name,
        priority=args.priority,
        num_gpus=args.num_gpus,
        queue=args.queue,
    )
    print(run_id)
    entry = launcher.run_queue.entry(run_id)
    if entry is not None:  # stdout stays the id alone, for scripts
        where = "queued" if entry["position"] is None else f"queued at position {entry['position']}"
        print(f"{where}: {entry['reason']}", file=sys.stderr)
    return 0
