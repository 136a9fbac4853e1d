"""``resume RUN_ID``: continue a stopped or failed run from its latest checkpoint."""

from __future__ import annotations

from trainer_core.cli import launcher_from


def resume_command_parser(commands):
    parser = commands.add_parser("resume", help="continue a stopped or failed run from its latest checkpoint")
    parser.add_argument("run_id")
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="if the run's checkpoints are gone, start again from step 0 (clears its curves)",
    )
    parser.set_defaults(func=resume_command)
    return parser


def resume_command(args) -> int:
    launcher = launcher_from(args)
    plan = launcher.resume_plan(args.run_id)
    launcher.resume(args.run_id, restart_from_scratch=args.from_scratch)
    print(f"run {args.run_id} resumed: {plan['message']}")
    return 0
