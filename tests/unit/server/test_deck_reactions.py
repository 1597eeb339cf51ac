"""Each deck reacts on its own: deck b's reaction (its input, mode, mix, trigger, state)
renders as deck a's does, answers under /deck/b/..., and leaves deck a's alone."""

from __future__ import annotations

import threading

import av
import numpy as np
import torch

from models.checkpoint import LoadedModel
from server.commands import ERROR_ADDRESS, Change, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.media.inputs import InputHub
from tests.conftest import tiny_model, tiny_pix2pix

CPU = torch.device("cpu")


def picture(rgb: tuple[int, int, int]) -> av.VideoFrame:
    image = np.zeros((48, 64, 3), np.uint8)
    image[:] = rgb
    image[::4] = 255 - np.array(rgb, np.uint8)  # a pattern: pix2pix sees edges
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def open_into(spec: str, hub: InputHub) -> str | None:
    """A deck's source as the server opens one: the hub takes frames from `spec` on."""
    if spec.startswith("bad:"):
        return "cannot open that"
    hub.begin(spec, threading.Event())
    return None


def rig(model: LoadedModel, heard: list[Change]) -> Engine:
    engine = Engine(
        model=model,
        config=RenderConfig(size=32, react_fade_s=0.0, wander_speed=0.0),
        device=CPU,
        pix2pix=tiny_pix2pix(),
        hooks=EngineHooks(on_changes=heard.extend, open_input=open_into),
    )
    engine.start_io = lambda work: work()  # io work (opening a source) at once, in order
    return engine


def send(engine: Engine, now: float, *batch: tuple[str, list[object]]) -> np.ndarray:
    engine.submit([parse(address, args) for address, args in batch])
    return engine.render_at(now, 0.1).yuv


def test_deck_b_reacts_with_its_own_input_exactly_as_deck_a_alone_does() -> None:
    heard: list[Change] = []
    alone = rig(tiny_model(seed=1), [])
    alone.inputs.begin("file:clip.mp4", threading.Event())
    alone.inputs.put(picture((255, 0, 0)), "file:clip.mp4")
    send(alone, 0.0, ("/react/trigger", []))
    expected = send(alone, 0.1)

    mixed = rig(tiny_model(seed=0), heard)
    mixed.set_deck_b(tiny_model(seed=1), 0.0)
    latent_a = send(mixed, 0.0)
    latent_b = send(
        mixed, 0.0, ("/deck/b/react/source", ["file:clip.mp4"]), ("/mix/crossfade", [1.0])
    )
    b = mixed.decks["b"]
    assert b.inputs.source == "file:clip.mp4" and mixed.inputs.source is None
    b.inputs.put(picture((255, 0, 0)), "file:clip.mp4")
    heard.clear()
    send(mixed, 0.0, ("/deck/b/react/trigger", []))
    assert Change("/deck/b/react/state", (1, 1.0, "")) in heard
    assert not any(c.address == "/react/state" for c in heard)
    got = send(mixed, 0.1)
    assert np.array_equal(got, expected)  # deck b alone, reacting, is deck a alone reacting
    assert not np.array_equal(got, latent_b)
    assert mixed.decks["b"].reaction.active and not mixed.reaction.active
    # Deck a goes on without a reaction: at crossfade 0, its latent picture as before.
    assert np.array_equal(send(mixed, 0.2, ("/mix/crossfade", [0.0])), latent_a)
    # Deck b's input gone: its reaction ends with the reason, deck a's never started.
    b.inputs.end("file:clip.mp4", "the file ended")
    heard.clear()
    send(mixed, 0.3)
    assert Change("/deck/b/react/state", (0, 0.0, "no input: the file ended")) in heard


def test_a_video_deck_shows_its_film_plain_or_through_its_own_reaction() -> None:
    alone = rig(tiny_model(seed=1), [])
    alone.inputs.begin("file:clip.mp4", threading.Event())
    alone.inputs.put(picture((255, 0, 0)), "file:clip.mp4")
    send(alone, 0.0, ("/react/trigger", []))
    expected = send(alone, 0.1)  # deck a's pix2pix on the film

    heard: list[Change] = []
    mixed = rig(tiny_model(seed=0), heard)
    send(mixed, 0.0, ("/deck/b/source", ["file:clip.mp4"]), ("/mix/crossfade", [1.0]))
    assert mixed.deck_b is None  # a video deck: no model on it
    mixed.deck_b_inputs.put(picture((255, 0, 0)), "file:clip.mp4")
    plain = send(mixed, 0.05)  # the film, fitted
    heard.clear()
    send(mixed, 0.05, ("/deck/b/react/mode", ["mirror"]), ("/deck/b/react/trigger", []))
    errors = [str(c.args[1]) for c in heard if c.address == ERROR_ADDRESS]
    assert len(errors) == 1 and "shows its video" in errors[0], errors
    assert not mixed.decks["b"].reaction.active
    send(mixed, 0.05, ("/deck/b/react/mode", ["pix2pix"]), ("/deck/b/react/trigger", []))
    assert Change("/deck/b/react/state", (1, 1.0, "")) in heard
    got = send(mixed, 0.1)
    # No reaction input of its own: its reaction takes its film, as deck a's takes its input.
    assert np.array_equal(got, expected)
    assert not np.array_equal(got, plain)
    assert not mixed.reaction.active  # deck a's reaction never started
    send(mixed, 0.15, ("/deck/b/react/stop", []))
    assert np.array_equal(send(mixed, 0.2), plain)  # the film alone again
    # Through a reaction on the film, its end ends the reaction, with the reason.
    send(mixed, 0.25, ("/deck/b/react/trigger", []))
    mixed.deck_b_inputs.end("file:clip.mp4", "the file ended")
    heard.clear()
    send(mixed, 0.3)
    assert Change("/deck/b/react/state", (0, 0.0, "no input: the file ended")) in heard


def test_each_deck_keeps_its_own_reaction_settings_and_answers_them() -> None:
    heard: list[Change] = []
    engine = rig(tiny_model(seed=0), heard)
    engine.set_deck_b(tiny_model(seed=1), 0.0)
    send(
        engine,
        0.0,
        ("/deck/b/react/mode", ["feedback"]),
        ("/deck/b/react/mix", [0.5]),
        ("/deck/b/react/smoothing", [0.25]),
        ("/deck/b/react/inject", [0.75]),
    )
    assert Change("/deck/b/react/mix", (0.5,)) in heard
    heard.clear()
    queries = ["/react/mode", "/react/mix", "/react/smoothing", "/react/inject", "/react/source"]
    send(engine, 0.1, *[(q, ["?"]) for q in queries], *[(f"/deck/b{q}", ["?"]) for q in queries])
    answers = {c.address: c.args for c in heard}
    assert [answers[q] for q in queries] == [("pix2pix",), (1.0,), (0.0,), (0.0,), ("none",)]
    assert [answers[f"/deck/b{q}"] for q in queries] == [
        ("feedback",),
        (0.5,),
        (0.25,),
        (0.75,),
        ("none",),
    ]
    # Feedback on deck b loops its own frames; deck a's loop stays empty.
    send(engine, 0.2, ("/deck/b/react/trigger", []), ("/mix/crossfade", [0.5]))
    send(engine, 0.3)
    assert engine.decks["b"].reactor._feedback is not None
    assert engine.reactor._feedback is None


def test_bad_reaction_input_on_deck_b_is_an_error_that_changes_nothing() -> None:
    heard: list[Change] = []
    engine = rig(tiny_model(seed=0), heard)
    send(engine, 0.0, ("/deck/b/react/trigger", []))  # nothing loaded on deck b
    send(engine, 0.2, ("/deck/b/react/source", ["bad:thing"]))
    send(engine, 0.3, ("/deck/b/bend/1/rotate", [90.0]))
    errors = [str(c.args[1]) for c in heard if c.address == ERROR_ADDRESS]
    assert len(errors) == 3, errors
    assert "nothing to react on" in errors[0] and "/deck/b/source" in errors[0]
    assert "cannot open" in errors[1] and "no model" in errors[2]
    b = engine.decks["b"]
    assert engine.camera_hub() is engine.inputs  # a refused source does not take the camera
    send(engine, 0.4, ("/deck/b/react/source", ["camera"]))  # the camera page moves to b
    assert engine.camera_hub() is b.inputs
    send(engine, 0.5, ("/deck/b/react/source", ["none"]))  # and comes back to deck a
    assert engine.camera_hub() is engine.inputs
    assert b.inputs.source is None and not b.reaction.active
    assert b.deck is None and engine.deck_b is None  # still costs nothing
    # Without a pix2pix model, deck b's trigger says why, as deck a's does.
    said: list[Change] = []
    plain = Engine(
        model=tiny_model(),
        config=RenderConfig(size=32),
        device=CPU,
        hooks=EngineHooks(on_changes=said.extend),
    )
    plain.set_deck_b(tiny_model(seed=1), 0.0)
    send(plain, 0.0, ("/deck/b/react/trigger", []))
    assert any(c.address == ERROR_ADDRESS and "pix2pix model" in str(c.args[1]) for c in said)
    assert not plain.decks["b"].reaction.active
