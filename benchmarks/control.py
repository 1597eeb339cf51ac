"""Control-to-frame latency: the same as `ganvj bench control`."""

import sys

from server.bench.control import main

if __name__ == "__main__":
    sys.exit(main())
