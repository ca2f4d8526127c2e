"""`python -m glassnet ...`: the `glassnet` command line (see glassnet.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
