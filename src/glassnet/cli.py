"""The `glassnet` command line: `glassnet --version`; anything else prints help."""

from __future__ import annotations

import argparse
import sys


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("glassnet")
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def main(argv=None) -> int:
    """Runs the command line on `argv` (default: sys.argv[1:]); returns an exit code."""
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description="glassnet: a Keras-compatible deep-learning library on NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"glassnet {_version()}")
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
