"""Show files: round trip, atomic writes, corrupt files kept and reported."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable

import pytest

from server.commands import parse
from server.play import PlayState
from server.showfile import Show, ShowFileError, ShowSaver, dumps, load, loads, save


def test_round_trip_with_a_play_state(tmp_path):
    state = PlayState(z_dim=12)
    state.apply(parse("/keyframe/ease", ["linear"]), 0.0)
    show = Show(settings={"/react/mix": [0.5]}, models={"dcgan64": state.snapshot()})
    path = tmp_path / "show.json"
    save(path, show)
    loaded = load(path)
    assert loaded == show
    other = PlayState(z_dim=12, seed=3)
    other.restore(loaded.models["dcgan64"], 0.0)
    assert other.easing == "linear" and bool((other.bank == state.bank).all())
    assert loads(dumps(show)) == show  # export and import


def test_a_stylegan_entry_keeps_w_keyframes(tmp_path):
    text = '{"version": 1, "models": {"sg": {"space": "w", "w_dim": 2, "keyframes": [[1, 2]]}}}'
    show = loads(text)
    assert show.models["sg"]["keyframes"] == [[1, 2]] and show.models["sg"]["space"] == "w"


def test_missing_file_is_none(tmp_path):
    assert load(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"version": 2}',
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, "x"]]}}}',
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1]]}}}',
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, NaN]]}}}',
        '{"version": 1, "settings": {"/a": 1}}',
        '{"version": 1, "models": {"m": {"space": "u", "u_dim": 1, "keyframes": [[1]]}}}',
        '{"version": 1, "models": {"m": {"space": "w", "z_dim": 2, "keyframes": [[1, 2]]}}}',
    ],
)
def test_corrupt_file_is_reported_and_kept(tmp_path, text):
    path = tmp_path / "show.json"
    path.write_text(text)
    with pytest.raises(ShowFileError):
        load(path)
    assert path.read_text() == text
    assert (tmp_path / "show.json.bad").read_text() == text


def test_save_is_atomic_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "show.json"
    save(path, Show(settings={"/keyframe/interp": ["lerp"]}))
    before = path.read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        save(path, Show(settings={"/keyframe/interp": ["slerp"]}))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["show.json"]  # no temp left behind
    assert json.loads(before)["version"] == 1


HUGE = "1" + "0" * 400  # 10^400 as a JSON integer: no float holds it


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, 2]], '
        '"settings": {"/latent/speed": [' + HUGE + "]}}}}",
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, 2]], '
        '"settings": {"/latent/speed": [NaN]}}}}',
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, ' + HUGE + "]]}}}",
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, 1e39]]}}}',
        '{"version": 1, "settings": {"/react/mix": [' + HUGE + "]}}",
        '{"version": 1, "settings": {"/react/mix": [Infinity]}}',
        '{"version": 1, "models": {"m": {"z_dim": 2, "keyframes": [[1, 2]], '
        '"settings": {"/no/such/address": [1]}}}}',
        '{"version": 1, "patch": [["/mod/route", ["audio/rms", "/latent/speed", ' + HUGE + "]]]}",
    ],
    ids=[
        "setting 10^400",
        "setting NaN",
        "keyframe 10^400",
        "keyframe over float32",
        "show setting 10^400",
        "show setting Infinity",
        "unknown setting",
        "patch 10^400",
    ],
)
def test_an_import_with_a_number_out_of_reach_is_refused_with_a_clear_error(text):
    # Every value is checked here, at the edge, so none reaches the engine.
    with pytest.raises(ShowFileError, match=r"imported show: .*(finite|too large|unknown)"):
        loads(text, "imported show")


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` holds; fail after `timeout` (a bound, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def test_a_save_that_fails_for_any_reason_is_reported_once_and_retried(tmp_path):
    path = tmp_path / "show.json"
    save(path, Show())
    before = path.read_text()
    errors: list[str] = []
    bad = Show(models={"m": {"z_dim": 1, "keyframes": [[float("nan")]], "settings": {}}})
    saver = ShowSaver(path, bad, asyncio.get_running_loop(), on_error=errors.append)
    saver.RETRY_SECONDS = 0.05  # the backoff's first step, short for the test
    saver.replace(bad)
    await eventually(lambda: bool(errors))
    await asyncio.sleep(0.3)  # several retries: still one report
    assert errors == [saver.error] and "could not be saved" in errors[0]
    assert saver.status()["saved"] is False and path.read_text() == before
    good = Show(models={"m": {"z_dim": 1, "keyframes": [[0.5]], "settings": {}}})
    saver.replace(good)  # the next valid change is saved
    await eventually(lambda: saver.status()["saved"] is True)
    assert json.loads(path.read_text())["models"]["m"]["keyframes"] == [[0.5]]
    await saver.flush()
