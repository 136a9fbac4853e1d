"""``rebuild-store``: move a damaged metrics store aside and rebuild it from the run folders."""

from __future__ import annotations

import os


def rebuild_store_command_parser(commands):
    parser = commands.add_parser(
        "rebuild-store",
        help="move a damaged metrics store aside and rebuild it from the run folders",
        description="Recover runs, statuses and metric curves from the run folders into the metrics store. "
        "A damaged, empty or missing store is moved aside (never deleted) and rebuilt; a sound one only "
        "gets the runs it lacks. Run folders kept elsewhere (a Ray run's storage_path) are found through "
        "their pointers in the runs folder.",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="PATH",
        help="also recover the run folders in PATH (a storage_path whose runs lost their pointers in the "
        "runs folder too), or the run folder PATH, and point the runs folder at them again; repeatable. "
        "Every run in PATH is taken, including those another runs folder launched",
    )
    parser.set_defaults(func=rebuild_store_command)
    return parser


def rebuild_store_command(args) -> int:
    from trainer_core.runs.rebuild import rebuild_store

    # Not launcher_from(): a Launcher refuses to open the very store this command repairs.
    report = rebuild_store(home=args.home, store_url=args.db, also=args.also)
    for path in report.moved_aside:
        print(f"moved aside: {path}")
    for run in report.recovered:
        source = run["state_file"] or "no trainer_state.json"
        print(f"recovered {run['run_id']}: {run['status']}, {run['points']} metric points ({source})")
    for pointer in report.pointers:
        print(f"pointer: {pointer} -> {os.readlink(pointer)}")
    for skipped in report.skipped:
        print(f"skipped {skipped['run_id']}: {skipped['why']}")
    print(
        f"{report.store_path}: {len(report.recovered)} run(s) recovered, {len(report.kept)} already there, "
        f"{len(report.skipped)} skipped ({report.seconds:.1f} s)"
    )
    return 1 if report.skipped else 0
