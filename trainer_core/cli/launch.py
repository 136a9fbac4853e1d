"""``launch CONFIG``: start a run in the background and print its id."""

from __future__ import annotations

from trainer_core.cli import launcher_from


def launch_command_parser(commands):
    parser = commands.add_parser("launch", help="start a run in the background and print its id")
    parser.add_argument("config", help="YAML or JSON config file")
    parser.add_argument("--name", help="run name")
    parser.set_defaults(func=launch_command)
    return parser


def launch_command(args) -> int:
    from trainer_core.config import load_config

    launcher = launcher_from(args)
    print(launcher.launch(load_config(args.config), name=args.name))
    return 0
