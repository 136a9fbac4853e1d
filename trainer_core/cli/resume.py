"""``resume RUN_ID``: continue a stopped or failed run from its latest checkpoint."""

from __future__ import annotations

from trainer_core.cli import launcher_from


def resume_command_parser(commands):
    parser = commands.add_parser("resume", help="continue a stopped or failed run from its latest checkpoint")
    parser.add_argument("run_id")
    parser.set_defaults(func=resume_command)
    return parser


register = resume_command_parser


def resume_command(args) -> int:
    launcher = launcher_from(args)
    launcher.resume(args.run_id)
    print(f"run {args.run_id} resumed")
    return 0
