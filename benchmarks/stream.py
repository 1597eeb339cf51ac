"""Stream benchmark: the same as `ganvj bench stream`."""

import sys

from server.bench.stream import main

if __name__ == "__main__":
    sys.exit(main())
