"""Generator forward speed at batch 1 (fp32 and the fast path): the same as `ganvj bench forward`.

.venv/bin/python benchmarks/forward.py [--model FILE | --synthetic stylegan2-512] [--seconds 5]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.bench.forward import main

if __name__ == "__main__":
    sys.exit(main())
