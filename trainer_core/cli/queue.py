"""``queue``: this machine's waiting runs, in the order they start; move or cancel one."""

from __future__ import annotations

from trainer_core.cli import launcher_from


def queue_command_parser(commands):
    parser = commands.add_parser(
        "queue", help="list the waiting runs (position, why they wait); move or cancel one"
    )
    actions = parser.add_subparsers(dest="queue_action", metavar="ACTION")
    actions.add_parser("list", help="the waiting runs in the order they start (the default)")
    move = actions.add_parser("move", help="move a waiting run in the queue")
    move.add_argument("run_id")
    where = move.add_mutually_exclusive_group(required=True)
    for name in ("up", "down", "top", "bottom"):
        where.add_argument(f"--{name}", dest="move", action="store_const", const=name, help=f"move it {name}")
    where.add_argument("--priority", type=int, help="give it this priority (higher starts sooner)")
    cancel = actions.add_parser(
        "cancel", help="take a waiting run out of the queue (it can be resumed later)"
    )
    cancel.add_argument("run_id")
    parser.set_defaults(func=queue_command)
    return parser


def queue_command(args) -> int:
    launcher = launcher_from(args)  # also starts whatever fits now
    queue = launcher.run_queue
    action = args.queue_action or "list"
    if action == "move":
        queue.move(args.run_id, move=args.move, priority=args.priority)
    elif action == "cancel":
        queue.cancel(args.run_id)
        print(f"run {args.run_id} removed from the queue (stopped; `resume` queues it again)")
        return 0
    entries = queue.entries()
    print(f"{queue.host}: {queue.inventory.describe()}")
    if not entries:
        print("no run is waiting")
        return 0
    print(f"{'POS':>3}  {'RUN ID':<23} {'PRIORITY':>8}  {'GPUS':>4}  {'NAME':<24} WHY")
    for e in entries:
        gpus = "-" if e["num_gpus"] is None else e["num_gpus"]
        place = "ray" if e["position"] is None else e["position"]  # a Ray run waits for the cluster
        print(f"{place:>3}  {e['id']:<23} {e['priority']:>8}  {gpus:>4}  {e['name'][:24]:<24} {e['reason']}")
    return 0
