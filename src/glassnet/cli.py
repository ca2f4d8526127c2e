"""The `glassnet` command line.

    glassnet --version
    glassnet lab list
    glassnet lab run NAME [NAME ...] [--quick | --smoke] [--out DIR] [--jobs N] [--seeds N]
    glassnet lab all [--quick | --smoke] [--out DIR] [--jobs N] [--seeds N]

`python -m glassnet ...` is the same command.
"""

from __future__ import annotations

import argparse
import sys


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("glassnet")
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        from . import __version__
        return __version__


def _add_run_options(parser):
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="small subsets: every experiment in minutes on 2 cores")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="tiny runs that only check the mechanics (seconds)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the published setups where affordable (the default; long)")
    parser.set_defaults(mode="full")
    parser.add_argument("--out", default="report", metavar="DIR",
                        help="output directory for index.html and results.json "
                             "(default: report)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="worker processes for the independent runs (default: the "
                             "number of CPUs; 1 runs everything in this process)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="seeds per configuration (default: 1 smoke, 3 quick, 5 full)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a claim is not supported")


def _parser():
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description="glassnet: a Keras-compatible deep-learning library on NumPy.")
    parser.add_argument("--version", action="version", version=f"glassnet {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    lab = commands.add_parser(
        "lab", help="run the experiments behind the study notes and write a report",
        description="Experiments that show why initialisation, normalisation, "
                    "activations, optimizers and regularisation matter; each states a "
                    "claim and whether this run supports it.")
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    lab_commands.add_parser("list", help="list the experiments")
    run = lab_commands.add_parser("run", help="run the named experiments")
    run.add_argument("names", nargs="+", metavar="NAME", help="experiment name(s)")
    _add_run_options(run)
    every = lab_commands.add_parser("all", help="run every experiment")
    _add_run_options(every)
    return parser, lab


def _lab_list() -> int:
    from .lab import experiments
    width = max(len(n) for n in experiments.names())
    for name in experiments.names():
        print(f"{name:<{width}}  {experiments.get(name).TITLE}")
    return 0


def _lab_run(names, args) -> int:
    from . import lab
    from .lab import experiments
    unknown = [n for n in names if n not in experiments.names()]
    if unknown:
        print(f"glassnet lab: unknown experiment(s) {', '.join(unknown)}; choose from: "
              f"{', '.join(experiments.names())}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("glassnet lab: --jobs must be at least 1", file=sys.stderr)
        return 2
    entries = lab.run(names, mode=args.mode, out=args.out, jobs=args.jobs, seeds=args.seeds)
    print()
    for e in entries:
        mark = "✓" if e["supported"] else "✗"
        print(f"{mark} {e['experiment']:<20} {e['claim']}")
    failed = any(e["claim"].endswith("could not be summarised") for e in entries)
    if failed:
        return 1
    if args.strict and not all(e["supported"] for e in entries):
        return 1
    return 0


def main(argv=None) -> int:
    """Runs the command line on `argv` (default: sys.argv[1:]); returns an exit code."""
    parser, lab_parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command != "lab":
        parser.print_help()
        return 0
    if args.lab_command == "list":
        return _lab_list()
    if args.lab_command == "run":
        return _lab_run(args.names, args)
    if args.lab_command == "all":
        from .lab import experiments
        return _lab_run(experiments.names(), args)
    lab_parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
