"""``stop RUN_ID``: checkpoint and stop a running run."""

from __future__ import annotations

from trainer_core.cli import launcher_from


def stop_command_parser(commands):
    parser = commands.add_parser("stop", help="checkpoint and stop a run at its next step")
    parser.add_argument("run_id")
    parser.add_argument("--wait", action="store_true", help="wait until the run has stopped")
    parser.add_argument(
        "--force", action="store_true", help="kill the worker now (resumes from the last checkpoint)"
    )
    parser.set_defaults(func=stop_command)
    return parser


def stop_command(args) -> int:
    launcher = launcher_from(args)
    launcher.stop(args.run_id, force=args.force)
    if args.wait:
        run = launcher.wait(args.run_id)
        print(f"run {args.run_id} {run['status']}")
    else:
        print(f"stop requested for run {args.run_id}")
    return 0
