"""A scripted performance, logged live and replayed offline at twice the size."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from models.catalog import Catalog
from models.checkpoint import LoadedModel
from server.commands import parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.media.frame import Frame
from server.media.inputs import InputHub
from server.outputs import perflog
from server.outputs.recorder import Recorder
from server.outputs.replay import ReplayError, replay
from tests.conftest import save_tiny_model, tiny_model, tiny_pix2pix

FPS = 30.0


def live_engine(tmp_path: Path, hooks: EngineHooks | None = None) -> tuple[Engine, Recorder]:
    config = RenderConfig(size=32, fps=FPS, device="cpu", threads=1)
    engine = Engine(model=tiny_model(), config=config, device=torch.device("cpu"), hooks=hooks)
    recorder = Recorder(
        engine=engine, folder=tmp_path / "recordings", codec="vp8", request_keyframe=None
    )
    return engine, recorder


# frame -> commands sent before it: jumps (cut, morph, quantized), XY moves, a sequence.
SCRIPT: dict[int, list[tuple[str, list[object]]]] = {
    2: [("/mod/route", ["audio/rms", "/latent/truncation", 0.6])],
    3: [("/record/start", ["perf"])],
    8: [("/keyframe/3/jump", [0.0])],
    14: [("/keyframe/quantize", ["beat"]), ("/keyframe/5/jump", [0.4])],
    25: [("/latent/xy", [0.2, 0.7])],
    26: [("/latent/xy", [0.3, 0.6]), ("/latent/dir/2", [0.5])],
    27: [("/latent/xy", [0.9, 0.1])],
    35: [("/keyframe/7/reshuffle", []), ("/keyframe/7/jump", [0.2])],
    30: [("/output/dim", [0.5]), ("/mod/route", ["audio/mid", "/latent/dir/1", -0.5])],
    40: [("/sequence/step", [0.25]), ("/sequence/length", [4]), ("/sequence/play", [1])],
    50: [("/output/hue", [0.25]), ("/output/blackout", [1, 0.1])],
    60: [("/output/blackout", [0, 0.2])],
    70: [("/latent/wander", [1])],
    85: [("/record/stop", [])],
}


def perform(
    engine: Engine, frames: int, yuv: dict[int, object] | None = None
) -> dict[int, torch.Tensor]:
    """Render `frames` frames on a jittery live clock, sending the script; audio
    features (modulation sources) change every frame, as a live input's would."""
    latents: dict[int, torch.Tensor] = {}
    now = 1000.0
    for i in range(1, frames + 1):
        for address, args in SCRIPT.get(i, []):
            assert engine.submit([parse(address, args)])
        # A live render loop is never exactly periodic: steps of 25..41 ms.
        dt = 1.0 / FPS + 0.008 * ((i * 7) % 5 - 2) / 2
        now += dt
        engine.sources.update({"audio/rms": (i % 10) / 10, "audio/mid": (i % 7) / 7})
        frame = engine.render_at(now, dt)
        if yuv is not None:
            yuv[frame.index] = frame.yuv
        assert frame.latent is not None
        latents[frame.index] = frame.latent.clone()
    return latents


def test_replay_at_twice_the_size_has_the_live_latents_frame_for_frame(tmp_path: Path) -> None:
    engine, recorder = live_engine(tmp_path)
    live = perform(engine, 95)
    recorder.close()
    log = tmp_path / "recordings" / "perf.perf.jsonl"
    start, lines = perflog.read(log)
    assert start["frame"] == 3  # the state after the frame that applied /record/start
    assert [line["i"] for line in lines] == list(range(4, 85))  # 85 applied /record/stop
    assert sum("batches" in line for line in lines) >= 8

    replayed: list[Frame] = []
    count = replay(log, size=64, model=tiny_model(), on_frame=replayed.append)
    assert count == len(lines) == len(replayed)
    for line, frame in zip(lines, replayed, strict=True):
        assert frame.width == frame.height == 64
        assert frame.latent is not None
        assert torch.equal(frame.latent, live[line["i"]]), f"frame {line['i']} differs"
    # The performance really moved: jumps, XY and the tour changed the latent.
    distinct = {tuple(live[i].tolist()) for i in range(4, 85)}
    assert len(distinct) > 40


def test_replay_at_the_live_size_gives_the_live_pictures_bit_for_bit(tmp_path: Path) -> None:
    """Latent motion, audio modulation and the master grade (dim, hue, blackout) replay."""
    engine, recorder = live_engine(tmp_path)
    pictures: dict[int, object] = {}
    perform(engine, 95, pictures)
    recorder.close()
    log = tmp_path / "recordings" / "perf.perf.jsonl"
    start, lines = perflog.read(log)
    assert start["routes"] == [["/mod/route", ["audio/rms", "/latent/truncation", 0.6]]]
    assert sum("sources" in line for line in lines) > 50
    replayed: list[Frame] = []
    replay(log, size=32, model=tiny_model(), on_frame=replayed.append)
    dimmed = 0
    for line, frame in zip(lines, replayed, strict=True):
        live = pictures[line["i"]]
        assert (frame.yuv == live).all(), f"frame {line['i']} differs"  # type: ignore[union-attr]
        dimmed += line["i"] > 50 and frame.yuv[:32].mean() < 20
    assert dimmed >= 3  # the blackout fade is in the pictures


def test_replay_at_another_rate_lands_jumps_on_the_same_time(tmp_path: Path) -> None:
    engine, recorder = live_engine(tmp_path)
    perform(engine, 95)
    recorder.close()
    log = tmp_path / "recordings" / "perf.perf.jsonl"
    replayed: list[Frame] = []
    count = replay(log, size=32, fps=60.0, model=tiny_model(), on_frame=replayed.append)
    _, lines = perflog.read(log)
    seconds = lines[-1]["t"] - lines[0]["t"] + lines[0]["dt"]
    assert abs(count - seconds * 60) <= 2
    # The cut on live frame 8 (a 0 s jump to keyframe 3) shows in the replay at
    # its time on the 60 fps grid: frames before it differ from frames after.
    assert not torch.equal(replayed[0].latent, replayed[-1].latent)  # type: ignore[arg-type]


def test_a_log_with_a_bad_line_is_refused_with_the_line_number(tmp_path: Path) -> None:
    engine, recorder = live_engine(tmp_path)
    perform(engine, 20)
    recorder.close()
    log = tmp_path / "recordings" / "perf.perf.jsonl"
    text = log.read_text().splitlines()
    text[3] = json.dumps(
        {
            "type": "frame",
            "i": 7,
            "t": 1.0,
            "dt": 0.03,
            "batches": [[["/keyframe/99/jump", [], None]]],
        }
    )
    bad = tmp_path / "bad.perf.jsonl"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(ReplayError, match="99"):
        replay(bad, size=32, model=tiny_model())
    (tmp_path / "junk.jsonl").write_text("not json\n")
    with pytest.raises(ReplayError, match=r"junk\.jsonl:1"):
        replay(tmp_path / "junk.jsonl", size=32, model=tiny_model())


def test_recording_name_with_a_path_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    errors: list[object] = []
    engine, recorder = live_engine(tmp_path, EngineHooks(on_changes=errors.extend))
    engine.submit([parse("/record/start", ["../escape"])])
    engine.render_at(1.0, 1 / FPS)
    assert not recorder.recording
    assert any("recording name" in str(c.args) for c in errors)  # type: ignore[attr-defined]
    assert not (tmp_path / "recordings").exists() or not any((tmp_path / "recordings").iterdir())


def test_render_replay_command_writes_the_video_at_the_asked_size(tmp_path: Path) -> None:
    import av

    from models.catalog import default_model_path, load_model
    from server.cli import main

    # The shipped model, so the log names a model file the command can load.
    config = RenderConfig(size=32, fps=FPS, device="cpu", threads=1)
    engine = Engine(
        model=load_model(default_model_path("unconditional")),
        config=config,
        device=torch.device("cpu"),
    )
    recorder = Recorder(
        engine=engine, folder=tmp_path / "recordings", codec="vp8", request_keyframe=None
    )
    now = 50.0
    engine.submit([parse("/record/start", ["cli"])])
    for i in range(20):
        if i == 8:
            engine.submit([parse("/keyframe/2/jump", [0.0])])
        now += 1 / FPS
        engine.render_at(now, 1 / FPS)
    recorder.close()
    log = tmp_path / "recordings" / "cli.perf.jsonl"
    out = tmp_path / "replay.mp4"
    assert main(["render", "replay", str(log), str(out), "--size", "64"]) == 0
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 19  # frames 2..20: the log starts after /record/start's frame
    assert frames[0].shape == (64, 64, 3)
    assert main(["render", "replay", str(log), str(out), "--size", "64"]) == 2  # no overwrite
    assert main(["render", "replay", str(log), str(out), "--size", "63", "--force"]) == 2


def test_replay_of_a_set_with_two_decks_and_the_mixer_is_bit_for_bit(tmp_path: Path) -> None:
    """Deck b loaded mid-set, its own latent moves, the crossfader, a blend mode, a deck
    fader and a cut on the beat: the replay at the live size gives the live pictures."""
    engine, recorder = live_engine(tmp_path)
    b = tiny_model(seed=1)
    script = {
        3: [("/record/start", ["decks"])],
        5: [("/mix/crossfade", [0.3])],
        10: [("/deck/b/keyframe/4/jump", [0.3]), ("/latent/xy", [0.8, 0.2])],
        20: [("/mix/blend", ["screen"]), ("/mix/crossfade", [0.6])],
        30: [("/deck/a/dim", [0.5]), ("/mix/curve", ["power"])],
        40: [("/mix/cut", [])],
        55: [("/mix/fade", [1.0]), ("/deck/b/latent/xy", [0.1, 0.9])],
        70: [("/record/stop", [])],
    }
    pictures: dict[int, object] = {}
    now = 1000.0
    for i in range(1, 75):
        if i == 8:  # deck b's model arrives mid-set, as a load does
            engine.offer_model(b, parse("/deck/b/model/load", ["tiny"]))
        for address, args in script.get(i, []):
            assert engine.submit([parse(address, args)])
        dt = 1.0 / FPS + 0.008 * ((i * 7) % 5 - 2) / 2
        now += dt
        frame = engine.render_at(now, dt)
        pictures[frame.index] = frame.yuv
    recorder.close()
    log = tmp_path / "recordings" / "decks.perf.jsonl"
    start, lines = perflog.read(log)
    assert start["mixer"]["crossfade"] == 0.0 and start["deck_b"] is None
    assert [line.get("deck_b") for line in lines if "deck_b" in line] == ["tiny"]
    replayed: list[Frame] = []
    replay(log, size=32, model=tiny_model(), deck_b=b, on_frame=replayed.append)
    assert len(replayed) == len(lines)
    for line, frame in zip(lines, replayed, strict=True):
        live = pictures[line["i"]]
        assert (frame.yuv == live).all(), f"frame {line['i']} differs"  # type: ignore[union-attr]
    logged = [c[0] for line in lines for batch in line.get("batches", ()) for c in batch]
    assert "/deck/b/keyframe/4/jump" in logged and "/mix/cut" in logged
    assert engine.mixer.crossfade == 0.0  # the cut went to b, the fade came back to a


def test_the_log_marks_each_decks_live_input_and_the_replay_says_what_it_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deck b showing a film through pix2pix: every such frame is marked in the log, and
    the replay says how many frames it could not show."""

    def open_into(spec: str, hub: InputHub) -> str | None:
        hub.begin(spec, threading.Event())
        return None

    config = RenderConfig(size=32, fps=FPS, device="cpu", threads=1, react_fade_s=0.0)
    engine = Engine(
        model=tiny_model(),
        config=config,
        device=torch.device("cpu"),
        pix2pix=tiny_pix2pix(),
        hooks=EngineHooks(open_input=open_into),
    )
    engine.start_io = lambda work: work()  # type: ignore[method-assign]
    recorder = Recorder(
        engine=engine, folder=tmp_path / "recordings", codec="vp8", request_keyframe=None
    )
    film = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24")
    script = {
        2: [("/record/start", ["film"])],
        4: [("/deck/b/source", ["file:clip.mp4"]), ("/mix/crossfade", [0.5])],
        8: [("/deck/b/react/trigger", [])],
        12: [("/deck/b/react/stop", [])],
        14: [("/deck/b/source", ["none"])],
        18: [("/record/stop", [])],
    }
    now = 1000.0
    for i in range(1, 20):
        for address, args in script.get(i, []):
            assert engine.submit([parse(address, args)])
        if engine.deck_b_inputs.source is not None:
            engine.deck_b_inputs.put(film, "file:clip.mp4")
        now += 1 / FPS
        engine.render_at(now, 1 / FPS)
    recorder.close()
    log = tmp_path / "recordings" / "film.perf.jsonl"
    start, lines = perflog.read(log)
    assert start["reaction_b"] == {"mode": "pix2pix", "active": False}
    marked = {line["i"] for line in lines if "video_b" in line}
    reacting = {line["i"] for line in lines if "react_b" in line}
    assert len(marked) == 10 and reacting and reacting < marked  # frames 4..13; 8..11
    assert all("react" not in line for line in lines)  # deck a never reacted
    with caplog.at_level(logging.WARNING, logger="server.outputs.replay"):
        replay(log, size=32, model=tiny_model())
    assert "10 frames showed live input" in caplog.text


def bending_engine(tmp_path: Path, models: Path) -> tuple[Engine, Recorder]:
    """A 2:1 live engine that finds the blend partner `partner` in `models`, recording."""
    save_tiny_model(models / "partner.safetensors", seed=2)
    config = RenderConfig(size="64x32", fps=FPS, device="cpu", threads=1)
    engine = Engine(
        model=tiny_model(),
        config=config,
        device=torch.device("cpu"),
        catalog=Catalog(user_dir=models),
    )
    recorder = Recorder(
        engine=engine, folder=tmp_path / "recordings", codec="vp8", request_keyframe=None
    )
    return engine, recorder


def play_set(
    engine: Engine, script: dict[int, list[tuple[str, list[object]]]], frames: int
) -> dict[int, object]:
    """Frames 1..frames-1 with the script sent before each; io work (a partner's load,
    clusters) done 3 frames after it was asked, as an io thread would. The pictures."""
    held: list[tuple[int, Callable[[], None]]] = []
    pictures: dict[int, object] = {}
    now = 1000.0
    for i in range(1, frames):
        due = [work for at, work in held if at == i]
        held[:] = [(at, work) for at, work in held if at != i]
        for work in due:
            work()
        engine.start_io = lambda work, at=i + 3: held.append((at, work))  # type: ignore[misc]
        for address, args in script.get(i, []):
            assert engine.submit([parse(address, args)])
        now += 1.0 / FPS
        frame = engine.render_at(now, 1.0 / FPS)
        pictures[frame.index] = frame.yuv
    return pictures


def same_pictures(
    log: Path, models: Path, pictures: dict[int, object], deck_b: LoadedModel | None = None
) -> int:
    """Replay `log` at the live size and check every frame against the live pictures."""
    _, lines = perflog.read(log)
    replayed: list[Frame] = []
    replay(
        log,
        size="64x32",
        model=tiny_model(),
        deck_b=deck_b,
        catalog=Catalog(user_dir=models),
        on_frame=replayed.append,
    )
    assert len(replayed) == len(lines)
    for line, frame in zip(lines, replayed, strict=True):
        live = pictures[line["i"]]
        assert (frame.yuv == live).all(), f"frame {line['i']} differs"  # type: ignore[union-attr]
    return len(lines)


def test_replay_of_a_set_with_bends_blends_and_the_canvas_is_bit_for_bit(tmp_path: Path) -> None:
    """Bends (a whole layer, a cluster, deck b's), a blend partner loaded off the render
    thread with amounts sent before it landed, regions and a fill change, with a bend and
    regions already set when the recording starts: the replay gives the live pictures."""
    models = tmp_path / "models"
    engine, recorder = bending_engine(tmp_path, models)
    b = tiny_model(seed=1)
    engine.offer_model(b, parse("/deck/b/model/load", ["tiny"]))
    script: dict[int, list[tuple[str, list[object]]]] = {
        2: [("/bend/1/gain", [1.5]), ("/canvas/regions", [2]), ("/mix/crossfade", [0.4])],
        4: [("/record/start", ["bent"])],
        6: [("/bend/2/rotate", [90.0]), ("/canvas/region/2/keyframe", [3, 0.5])],
        9: [("/blend/model", ["partner"]), ("/blend/layers", ["fine", 0.75])],
        14: [("/bend/2/cluster/1/gain", [0.0]), ("/deck/b/bend/1/gain", [2.0])],
        24: [("/canvas/fill", ["mirror"]), ("/blend/layer/1", [0.5])],
        30: [("/bend/reset", []), ("/blend/reset", [])],
        36: [("/record/stop", [])],
    }
    pictures = play_set(engine, script, 40)
    recorder.close()
    log = tmp_path / "recordings" / "bent.perf.jsonl"
    start, lines = perflog.read(log)
    assert ["/bend/1/gain", [1.5]] in start["values"]
    assert ["/canvas/regions", [2]] in start["values"]
    landed = [line["i"] for line in lines if "blend" in line]
    assert len(landed) == 1 and landed[0] > 9  # the partner came frames after it was asked
    # A fresh deck b: the live one's module still carries its bend.
    assert same_pictures(log, models, pictures, deck_b=tiny_model(seed=1)) == len(lines)


def test_a_blend_and_a_cluster_bend_set_before_the_recording_replay_from_its_start(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    engine, recorder = bending_engine(tmp_path, models)
    script: dict[int, list[tuple[str, list[object]]]] = {
        1: [("/blend/model", ["partner"]), ("/blend/layer/2", [0.6])],
        2: [("/bend/2/cluster/2/gain", [0.0])],
        10: [("/record/start", ["before"])],
        14: [("/blend/layer/2", [0.2])],
        18: [("/record/stop", [])],
    }
    pictures = play_set(engine, script, 20)
    recorder.close()
    log = tmp_path / "recordings" / "before.perf.jsonl"
    start, lines = perflog.read(log)
    assert ["/blend/model", ["partner"]] in start["values"]
    assert ["/blend/layer/2", [0.6]] in start["values"]
    assert ["/bend/2/cluster/2/gain", [0.0]] in start["values"]
    assert not any("blend" in line for line in lines)  # it landed before the recording
    assert same_pictures(log, models, pictures) == len(lines)
