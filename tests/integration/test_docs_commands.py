"""The README's and docs/recipe.md's `sh` blocks run as printed, with tiny sizes.

Each command runs in a scratch folder holding a copy of models/weights (the
recipe's --export writes there), with the flags in OVERRIDES given smaller
values: the one documented mechanism (recipe.md, "Tested as printed").
Commands that serve, need a GPU or a file only the reader has are in SKIPPED,
each with its reason; any other `ganvj` command must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "docs" / "recipe.md"]

# flag -> the value the test gives it: seconds of video, steps and batches a CPU does at once.
# Sizes stay as printed: the encoder step needs the DCGAN the recipe exported, at 128 px.
OVERRIDES = {
    "--seconds": "1",
    "--steps": "2",
    "--time-limit": "60",
    "--checkpoint-every": "1",
    "--sample-every": "1",
    "--batch-size": "2",
    "--batch": "2",
    "--rate": "5",
    "--frames-per-step": "2",
    "--keyframes": "2",
}

# A command's start -> why the test does not run it.
SKIPPED = {
    "./scripts/serve": "starts a server (tests/integration/test_offline_start.py runs it)",
    "./scripts/test": "runs the whole suite",
    ". .venv/bin/activate": "the shell's PATH (the test calls the same ganvj directly)",
    "ganvj serve": "starts a server",
    "ganvj dataset film.mp4": "film.mp4 is the reader's own video",
    "ganvj train dcgan data/film-128": "needs the reader's film dataset",
    "ganvj render tour tour.mp4": "needs the reader's trained model",
    "ganvj render images --model network-snapshot.pkl": "needs the reader's NVIDIA pickle",
    "ganvj render replay": "needs a recording from a performance",
    "ganvj bench": "benchmarks: minutes each, some need a browser or JACK",
    "cp runs/": "copies a model the reader trained into their own models folder",
    ".venv/bin/python benchmarks/": "benchmarks: minutes each",
}


def commands(doc: Path) -> list[str]:
    """Every command of the doc's sh blocks: continuations joined, comments dropped."""
    text = doc.read_text()
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def skip_reason(command: str) -> str | None:
    return next((why for start, why in SKIPPED.items() if command.startswith(start)), None)


def with_overrides(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word in OVERRIDES:
            out[i + 1] = OVERRIDES[word]
    return out


def test_every_command_is_run_or_skipped_for_a_reason(tmp_path: Path) -> None:
    ran: list[str] = []
    (tmp_path / "models").mkdir()
    shutil.copytree(REPO / "models" / "weights", tmp_path / "models" / "weights")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for doc in DOCS:
        for command in commands(doc):
            if skip_reason(command):
                continue
            argv = shlex.split(command, comments=True)
            if argv[0] == "ganvj":
                argv = [sys.executable, "-m", "server.cli", *with_overrides(argv[1:])]
            else:
                assert argv[0] == "cp", f"{doc.name}: no rule for {command!r}"
            done = subprocess.run(
                argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{doc.name}: {command}\n{done.stderr[-3000:]}"
            ran.append(command)
    assert len(ran) >= 10  # the recipe's steps, not only skips


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_the_docs_have_sh_blocks_and_name_no_commit(doc: Path) -> None:
    found = commands(doc)
    assert found
    assert not [c for c in found if c.startswith("git show")]  # steps need no history
