"""The process exits cleanly while io work (a model load, a cluster computation) still runs:
the work finishes first, rather than torch aborting the interpreter on its way down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Starts io work through the engine's own starter and leaves at once, as a server that
# stops while a cluster computation is running does.
SCRIPT = """
import torch
from server.engine import _daemon_thread

def work():
    x = torch.randn(256, 256)
    for _ in range(400):
        x = torch.tanh(x @ x) * 0.5
    print("io work finished", flush=True)

_daemon_thread(work)
print("leaving", flush=True)
"""


def test_exit_waits_for_io_work_and_ends_cleanly() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["leaving", "io work finished"]
    assert "terminate called" not in done.stderr
