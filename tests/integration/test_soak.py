"""CI's short soak: a few thousand hostile OSC packets and websocket messages, 20 viewers
coming and going, the show's disk filling up, a model file vanishing; the server survives
and stored state changes only as the valid commands said."""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.bench.faults import can_mount
from server.bench.netns import ADDRESS, REPO, has_address

pytestmark = pytest.mark.webrtc

# Every phase the quick soak runs, in its table's order; the disk faults need a mount.
PHASES = ["OSC fuzzing", "websocket fuzzing", "viewer churn", "soak"]
DISK_PHASES = ["disk full", "disk read-only"]
LAST_PHASE = "model deleted as it loads"


@pytest.fixture(scope="module")
def soak_run() -> tuple[str, dict[str, str]]:
    """One `--quick` soak for the module: its output and its table's rows by phase."""
    if not has_address(ADDRESS):
        pytest.fail(f"the soak needs {ADDRESS}: run it through scripts/test")
    result = subprocess.run(
        [sys.executable, "-m", "server.bench.soak", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    rows.pop("phase")  # the header
    return out, rows


@pytest.mark.timeout(600)
def test_quick_soak_survives_and_changes_only_what_valid_commands_change(
    soak_run: tuple[str, dict[str, str]],
) -> None:
    out, rows = soak_run
    disk = DISK_PHASES if can_mount() is None else []
    # Every phase ran and has its row: a skipped or lost phase fails here, never passes.
    assert list(rows) == [*PHASES, *disk, LAST_PHASE], out
    assert "BENCH ERROR" not in out, out
    assert "only the valid commands" in rows["OSC fuzzing"], out
    assert "only the valid commands" in rows["websocket fuzzing"], out
    assert "1 viewer(s) left" in rows["viewer churn"] and "OVER" not in rows["viewer churn"], out
    assert "OVER" not in rows["soak"], out
    assert "NO ANSWER" not in rows[LAST_PHASE], out
    assert all(line.rstrip().endswith("| 0 |") for line in rows.values()), out


@pytest.mark.timeout(600)
def test_disk_faults_keep_the_old_show_and_save_after_healing(
    soak_run: tuple[str, dict[str, str]],
) -> None:
    why = can_mount()
    if why is not None:
        pytest.skip(f"the soak's disk faults did not run: {why}")
    out, rows = soak_run
    for fault in DISK_PHASES:
        assert "old file intact; saved after healing" in rows[fault], out
