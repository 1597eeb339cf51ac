"""The built wheel holds the three packages and the shipped weights, and nothing of the build.

Needs nothing outside this checkout and the test environment: pip builds the
wheel offline (`--no-index`, `--no-build-isolation`) with the setuptools the
environment already has, from a copy of the working tree, so the build's own
`build/` and `*.egg-info` never land in the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "models", "controllers")
# Never copied from the checkout's top: version control, environments, local data
# and what earlier builds left behind. __pycache__ is copied on purpose: the wheel
# must leave it out, not be spared it.
NOT_COPIED = {".git", ".venv", ".node", "build", "data", "runs", "tmp"}


def _not_copied(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO
    return {n for n in names if (top and n in NOT_COPIED) or n.endswith(".egg-info")}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The file list of a wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO, source, ignore=_not_copied, symlinks=True)
    for package in PACKAGES:  # a stale bytecode file in the tree: it must not ship
        cache = source / package / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / "stale.cpython-311.pyc").write_bytes(b"")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--disable-pip-version-check", "--quiet"),
            *("--wheel-dir", str(work / "out"), str(source)),
        ],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=240,
    )
    [wheel] = (work / "out").glob("ganvj-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_the_packages_and_the_weights(wheel_files: list[str]) -> None:
    for package in PACKAGES:
        assert f"{package}/__init__.py" in wheel_files
    assert "server/cli.py" in wheel_files
    assert "server/bench/stream.py" in wheel_files  # `ganvj bench` is a user command
    shipped = sorted(p.name for p in (REPO / "models" / "weights").glob("*.safetensors"))
    assert shipped, "the checkout has no models/weights/*.safetensors"
    in_wheel = sorted(
        Path(name).name
        for name in wheel_files
        if name.startswith("models/weights/") and name.endswith(".safetensors")
    )
    assert in_wheel == shipped


def test_the_wheel_holds_no_tests_tools_or_bytecode(wheel_files: list[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_files}
    assert {top for top in tops if not top.endswith(".dist-info")} == set(PACKAGES)
    unwanted = [
        name
        for name in wheel_files
        if "__pycache__" in name or name.endswith(".pyc") or "docs_gen" in name
    ]
    assert unwanted == []
