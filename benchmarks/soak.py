"""Soak benchmark: the same as `ganvj bench soak`."""

import sys

from server.bench.soak import main

if __name__ == "__main__":
    sys.exit(main())
