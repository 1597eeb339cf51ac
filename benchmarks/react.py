"""Reaction latency and fps: the same as `ganvj bench react`."""

import sys

from server.bench.react import main

if __name__ == "__main__":
    sys.exit(main())
