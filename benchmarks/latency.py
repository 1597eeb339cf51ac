"""OSC cut to the frame a browser presents, and audio onset to command: `ganvj bench latency`."""

import sys

from server.bench.latency import main

if __name__ == "__main__":
    sys.exit(main())
