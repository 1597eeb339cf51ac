"""`ganvj train stylegan2` as a user runs it: Ctrl-C saves, and the file plays live and offline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from websockets.asyncio.client import connect

from models.checkpoint import load_model, read_tensors
from models.cli import main as models_main
from server.lifecycle import running
from tests.conftest import server_config, tiny_model
from tests.integration.test_stylegan_live import load_watching, luma_in
from tests.unit.models.test_train_stylegan2 import TINY, TRAIN, write_folder

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
TINY_FLAGS = [
    "--resolution", "32", "--z-dim", "16", "--w-dim", "16", "--channel-base", "256",
    "--channel-max", "32", "--batch", "4", "--threads", "1", "--log-every", "1",
    "--checkpoint-every", "1000", "--sample-every", "1000", "--no-check",
]  # fmt: skip


def loss_rows(run: Path) -> int:
    try:
        return max(len((run / "loss.csv").read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


def test_ctrl_c_leaves_a_loadable_checkpoint_that_resumes(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "frames", count=8)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "server.cli", "train", "stylegan2", str(data),
               "--run", str(run), "--steps", "100000", *TINY_FLAGS]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while loss_rows(run) < 2:  # training is under way
            assert proc.poll() is None, proc.communicate()[0][-2000:]
            assert time.monotonic() < deadline, "no training steps within 180 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output[-2000:]
    assert "interrupted at step" in output
    model = load_model(run / "model.safetensors")
    step = model.metadata["training"]["step"]
    assert model.arch == "stylegan2" and step >= 2
    # The resumable checkpoint has the same step, and training continues from it.
    meta, _ = read_tensors(run / "last.safetensors")
    assert meta["training"]["step"] == step
    from models.train_stylegan2 import StyleGAN2Recipe, train_stylegan2

    resumed = train_stylegan2(
        data, run, recipe=StyleGAN2Recipe(), train=replace(TRAIN, steps=step + 1),
        resume=True, changed=(),
    )  # fmt: skip
    assert resumed.step == step + 1
    assert load_model(run / "model.safetensors").metadata["training"]["step"] == step + 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A StyleGAN2 trained for a few steps (in process) on generated frames."""
    from models.train_stylegan2 import train_stylegan2

    root = tmp_path_factory.mktemp("sg2live")
    data = write_folder(root / "frames", count=8)
    train_stylegan2(
        data, root / "run", recipe=replace(TINY, resolution=32), train=replace(TRAIN, steps=2)
    )
    return root / "run" / "model.safetensors"


def test_the_trained_file_renders_offline(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "pictures"
    code = models_main(
        ["render", "images", "--model", str(trained), "--seeds", "0-1", "--outdir", str(out)]
    )
    assert code == 0
    a, b = (np.asarray(Image.open(out / f"seed{s:04d}.png")) for s in (0, 1))
    assert a.shape == (32, 32, 3) and np.abs(a.astype(int) - b).mean() > 1


async def test_the_trained_file_plays_in_the_live_server(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "mine.safetensors").write_bytes(trained.read_bytes())
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(models))
    async with running(server_config(HOST, size=64), model=tiny_model(resolution=32)) as server:
        engine = server.engine
        async with connect(f"ws://{HOST}:{server.port}/ws") as ws:
            frames = await load_watching(ws, engine, "mine")
            assert engine.model.name == "mine" and engine.model.arch == "stylegan2"
            assert len(frames) > 10 and min(f.mean() for f in frames) > 16  # never black
            # Frames change when the performer jumps between keyframes.
            await ws.send(json.dumps({"address": "/latent/wander", "args": [0]}))
            await ws.send(json.dumps({"address": "/keyframe/1/jump", "args": [0.0]}))
            still = await luma_in(engine, 0.6)
            await ws.send(json.dumps({"address": "/keyframe/4/jump", "args": [0.0]}))
            moved = await luma_in(engine, 0.6)
    assert np.abs(moved - still).mean() > 1.0
