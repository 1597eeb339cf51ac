"""`ganvj bench gpu --quick` runs here, bounded in time, and says it is reduced."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_bench_gpu_quick_writes_one_table_and_says_it_is_reduced(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "bench", "gpu", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,  # the bound: --quick is seconds long on two busy cores
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "--quick: REDUCED run on cpu, not GPU figures" in text
    assert text.count("| what | item | path |") == 1  # one table
    for row in ("| forward | quick-stylegan2-64 (64 px) | fp32 |", "| encode | 320x180@60 | vp8 |"):
        assert row in text
    assert "| encode | 320x180@60 | h264_nvenc |" in text  # a row either way
    assert "skipped in --quick" in text
    assert text in done.stdout
