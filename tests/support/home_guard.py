"""A test run never touches the performer's home: HOME goes to a temp folder, and a guard checks.

`pytest_configure` runs before collection and before any fixture: it points
HOME and the XDG base folders at a fresh temporary folder (subprocesses such as
`ganvj serve` inherit them), so ganvj's `~/.local/share/ganvj` state, tokens,
shows and models land there. It also notes every file under the real home's
ganvj folders; `pytest_sessionfinish` compares and fails the run (exit status
1, the paths printed) if any was made, changed or removed meanwhile.

tests/conftest.py takes these hooks; a pytest run can also load this module
alone with `-p tests.support.home_guard` (its own test does).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# What ganvj (or a library it drives) may write under a home, relative to it.
WATCHED = (
    ".local/share/ganvj",  # server.state_dir, inputs.media_dir, the models folder
    ".config/ganvj",
    ".cache/ganvj",
    ".local/state/ganvj",
)
# The base folders set to the temporary home. XDG_RUNTIME_DIR is left alone: it
# holds sockets of running services (JACK, PulseAudio), not a user's files.
XDG = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_DATA_HOME": ".local/share",
    "XDG_CACHE_HOME": ".cache",
    "XDG_STATE_HOME": ".local/state",
}
# Read by ganvj and pointing into a home; unset so the default under the temp home holds.
UNSET = ("GANVJ_MODELS_DIR",)

Snapshot = dict[str, tuple[int, int] | None]

_saved: dict[str, str | None] = {}
_state: dict[str, object] = {}


def snapshot(home: Path) -> Snapshot:
    """Every path under the watched folders with its (mtime_ns, size); None for a missing root."""
    found: Snapshot = {}
    for watched in WATCHED:
        root = home / watched
        if not root.exists():
            found[watched] = None
            continue
        for path in [root, *root.rglob("*")]:
            stat = path.lstat()
            found[str(path.relative_to(home))] = (stat.st_mtime_ns, stat.st_size)
    return found


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The paths made, changed or removed between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def pytest_configure(config: pytest.Config) -> None:
    """Point HOME and the XDG folders at a fresh temporary home; note the real one's files."""
    real = Path(os.environ.get("HOME") or Path.home())
    temp = Path(tempfile.mkdtemp(prefix="ganvj-test-home-"))
    _state.update(real=real, temp=temp, before=snapshot(real))
    settings: dict[str, str | None] = {"HOME": str(temp)}
    settings.update({name: str(temp / sub) for name, sub in XDG.items()})
    settings.update(dict.fromkeys(UNSET))
    for name, value in settings.items():
        _saved[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the real home's ganvj folders changed while it ran."""
    real = _state.get("real")
    if not isinstance(real, Path):
        return
    before = _state["before"]
    assert isinstance(before, dict)
    paths = changed(before, snapshot(real))
    if not paths:
        return
    lines = [f"home guard: the test run wrote into the real home {real}:"]
    lines += [f"  {real / p}" for p in paths]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the environment back and remove the temporary home."""
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved.clear()
    temp = _state.pop("temp", None)
    if isinstance(temp, Path):
        shutil.rmtree(temp, ignore_errors=True)
    _state.clear()
