"""The home guard: a run that writes into the real home fails; one that keeps to ~ passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The inner tests: ~ is the temporary home, and the real home is where the outer test says.
INNER = """
import os
from pathlib import Path


def test_home_is_a_temporary_folder():
    assert Path.home() != Path(os.environ["REAL_HOME"])
    assert os.environ["XDG_DATA_HOME"] == str(Path.home() / ".local" / "share")
    state = Path("~/.local/share/ganvj").expanduser()
    state.mkdir(parents=True)
    (state / "tokens.json").write_text("{}")


def test_writes_into_the_real_home():
    if os.environ.get("WRITE_REAL"):
        state = Path(os.environ["REAL_HOME"]) / ".local" / "share" / "ganvj"
        (state / "tokens.json").write_text("{}")
"""


def run_inner(tmp_path: Path, *, write_real: bool) -> subprocess.CompletedProcess[str]:
    """A pytest run of INNER with the guard, under a made-up real home holding a show."""
    real = tmp_path / "real-home"
    (real / ".local" / "share" / "ganvj").mkdir(parents=True)
    (real / ".local" / "share" / "ganvj" / "show.json").write_text("{}")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(INNER)
    env = {**os.environ, "HOME": str(real), "REAL_HOME": str(real)}
    env.pop("WRITE_REAL", None)
    if write_real:
        env["WRITE_REAL"] = "1"
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "tests.support.home_guard"),
            *("-p", "no:cacheprovider", "-q", "--rootdir", str(inner), str(inner)),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_that_keeps_to_the_temporary_home_passes(tmp_path: Path) -> None:
    result = run_inner(tmp_path, write_real=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert not (tmp_path / "real-home" / ".local" / "share" / "ganvj" / "tokens.json").exists()


def test_a_run_that_writes_into_the_real_home_fails(tmp_path: Path) -> None:
    result = run_inner(tmp_path, write_real=True)
    written = tmp_path / "real-home" / ".local" / "share" / "ganvj" / "tokens.json"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 passed" in result.stdout  # every test passed: the guard alone failed the run
    assert "home guard: the test run wrote into the real home" in result.stdout
    assert str(written) in result.stdout
