"""scripts/install and scripts/serve on an installed tree need no package index.

At a venue there is no network. The test copies the checkout's scripts and
sources into a temporary tree with a venv of its own, so nothing it does can
touch the checkout's .venv: that venv is made offline from this interpreter's
base Python and sees the checkout venv's packages through one
`site.addsitedir` line, as if they had been installed there. Every run has
`PIP_NO_INDEX=1` and an index URL nothing listens on. The first `scripts/install`
installs ganvj itself (a new pyproject.toml: no stamp yet) with no build
isolation, the second installs nothing, and `scripts/serve` then answers
/api/status.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OFFLINE = {
    "PIP_NO_INDEX": "1",
    "PIP_INDEX_URL": "http://127.0.0.1:9/",  # the discard port: nothing answers
    "PIP_FIND_LINKS": "",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def offline_tree(root: Path) -> Path:
    """A copy of what scripts/install builds from, with a venv that sees this one's packages."""
    tree = root / "ganvj"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("scripts", "server", "models", "controllers"):
        shutil.copytree(REPO / name, tree / name, ignore=ignore)
    base = Path(sys.base_prefix) / "bin" / "python3"
    # No pip or setuptools of its own: this interpreter's, through the .pth line below.
    venv = [str(base), "-m", "venv", "--without-pip", str(tree / ".venv")]
    subprocess.run(venv, check=True, timeout=120)
    own = subprocess.run(
        [
            str(tree / ".venv/bin/python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = sysconfig.get_path("purelib")  # this interpreter's: torch, aiohttp, setuptools...
    assert Path(ours) in {Path(p) for p in site.getsitepackages()}
    (Path(own) / "ganvj_test_base.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return tree


def run_script(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(tree / "scripts" / args[0]), *args[1:]],
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_install_then_serve_with_no_package_index(tmp_path: Path) -> None:
    tree = offline_tree(tmp_path)
    first = run_script(tree, "install")
    assert first.returncode == 0, first.stderr
    assert ". .venv/bin/activate" in first.stdout  # how to call plain `ganvj`, said once
    stamp = (tree / ".venv/.ganvj-install").read_text()
    assert (tree / ".venv/bin/ganvj").is_file()

    again = run_script(tree, "install")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "" and again.stderr == ""  # installed: pip is not even asked
    assert (tree / ".venv/.ganvj-install").read_text() == stamp

    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n[osc]\nport = 0\n')
    port = free_port()
    log = tmp_path / "serve.log"
    command = ["bash", str(tree / "scripts/serve"), "--config", str(config),
               "--host", "127.0.0.1", "--port", str(port), "--size", "32", "--no-qr"]  # fmt: skip
    with log.open("w") as err:
        serve = subprocess.Popen(
            command, env={**os.environ, **OFFLINE}, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while answer is None:
            assert serve.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "serve did not answer /api/status"
            time.sleep(0.5)
            answer = status(port)
        assert answer["model"]  # the shipped default model, served
    finally:
        serve.terminate()  # its own PID: scripts/serve execs ganvj
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert ". .venv/bin/activate" in log.read_text()
