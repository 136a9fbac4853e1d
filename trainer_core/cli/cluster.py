"""``cluster``: a Ray cluster's nodes and what is free on them (the cluster runs with executor: ray use)."""

from __future__ import annotations

import json


def cluster_command_parser(commands):
    parser = commands.add_parser("cluster", help="show a Ray cluster's nodes and free CPUs/GPUs")
    parser.add_argument(
        "--ray-address", help="the cluster's Jobs address (default: $TRAINER_CORE_RAY_ADDRESS)"
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=cluster_command)
    return parser


def cluster_command(args) -> int:
    from trainer_core.runs.ray_jobs import cluster_status, resolve_address

    status = cluster_status(resolve_address(args.ray_address))
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    where = "this machine" if status["this_machine"] else "other machines too"
    print(f"Ray cluster at {status['address']} ({where})")
    print(
        f"free: {status['free_cpus']:g} of {status['cpus']:g} CPUs, {status['free_gpus']:g} of {status['gpus']:g} GPUs"
    )
    for node in status["nodes"]:
        role = "head" if node["is_head"] else "worker"
        state = "alive" if node["alive"] else "dead"
        print(
            f"  {node['node_id'][:12]}  {node['ip']:<15} {role:<6} {state:<5} "
            f"CPU {node['free_cpus']:g}/{node['cpus']:g}  GPU {node['free_gpus']:g}/{node['gpus']:g}"
        )
    return 0
