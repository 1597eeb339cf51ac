"""Two decks and the mixer in the engine: the crossfader's ends are each deck alone, bit for
bit; a blend on known frames; a quantized cut lands on the beat; bad input changes nothing."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
import torch
from torch import nn

from models.canvas import frame_yuv, place
from models.mixing import blend
from models.nets.dcgan import DCGANConfig
from models.pixels import to_yuv420
from server.commands import BLEND_MODES, ERROR_ADDRESS, Change, CommandError, parse
from server.config import RenderConfig
from server.engine import Engine, EngineHooks
from server.media.inputs import InputHub
from server.tempo import TempoClock
from tests.conftest import in_memory, tiny_model

CPU = torch.device("cpu")
FPS = 30.0


class Flat(nn.Module):
    """A generator that paints one known colour whatever its latent."""

    def __init__(self, light: tuple[float, float, float]) -> None:
        super().__init__()
        self.config = DCGANConfig(resolution=32, z_dim=16, ngf=8, max_channels=32)
        # A parameter, as a generator has: the latent space finds the device by it.
        self.colour = nn.Parameter(torch.tensor(light).reshape(1, 3, 1, 1) * 2 - 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.colour.expand(z.shape[0], 3, 32, 32).clone()


def flat(light: tuple[float, float, float]):  # type: ignore[no-untyped-def]
    return in_memory(Flat(light), name="flat", arch="dcgan", kind="unconditional", z_dim=16)


def engine(model=None, heard: list[Change] | None = None) -> Engine:  # type: ignore[no-untyped-def]
    hooks = EngineHooks(on_changes=heard.extend) if heard is not None else None
    return Engine(
        model=model if model is not None else tiny_model(seed=0),
        config=RenderConfig(size=64, fps=FPS),
        device=CPU,
        tempo=TempoClock(bpm=120.0),  # a beat every 0.5 s from monotonic 0
        hooks=hooks,
    )


def with_deck_b(e: Engine, model) -> Engine:  # type: ignore[no-untyped-def]
    e.offer_model(model, parse("/deck/b/model/load", ["tiny"]))
    return e


def frames(e: Engine, times: list[float], before: dict[float, list[tuple[str, list[object]]]]):  # type: ignore[no-untyped-def]
    out = []
    last = 0.0
    for t in times:
        if t in before:
            e.submit([parse(a, args) for a, args in before[t]])
        out.append(e.render_at(t, t - last).yuv)
        last = t
    return out


TIMES = [i / FPS for i in range(12)]


@pytest.mark.parametrize("x", [0.0, 1.0])
def test_the_crossfader_ends_are_each_deck_alone_bit_for_bit(x: float) -> None:
    mixed = with_deck_b(engine(tiny_model(seed=0)), tiny_model(seed=1))
    got = frames(mixed, TIMES, {0.0: [("/mix/crossfade", [x])]})
    alone = frames(engine(tiny_model(seed=int(x))), TIMES, {})
    other = frames(engine(tiny_model(seed=1 - int(x))), TIMES, {})
    assert mixed.deck_b is not None
    for g, a, o in zip(got, alone, other, strict=True):
        assert np.array_equal(g, a)
        assert not np.array_equal(g, o)


def test_halfway_is_the_weighted_sum_and_each_mode_its_formula_on_known_frames() -> None:
    light_a, light_b = (0.2, 0.6, 0.9), (0.7, 0.3, 0.5)
    a = torch.tensor(light_a).reshape(1, 3, 1, 1) * 2 - 1
    b = torch.tensor(light_b).reshape(1, 3, 1, 1) * 2 - 1
    for mode in BLEND_MODES:
        e = with_deck_b(engine(flat(light_a)), flat(light_b))
        e.submit([parse("/mix/crossfade", [0.25]), parse("/mix/blend", [mode])])
        got = e.render_at(0.0, 0.0).yuv
        picture = (a * 0.75 + blend(a, b, mode) * 0.25).expand(1, 3, 32, 32)
        assert np.array_equal(got, to_yuv420(picture, (64, 64)).numpy()), mode


def test_each_deck_has_its_own_fader() -> None:
    e = with_deck_b(engine(flat((0.8, 0.8, 0.8))), flat((0.4, 0.4, 0.4)))
    e.submit([parse("/mix/crossfade", [0.5]), parse("/deck/b/dim", [0.0])])
    got = e.render_at(0.0, 0.0).yuv
    expected = (torch.full((1, 3, 32, 32), 0.8 * 0.5) + 0.0) * 2 - 1
    assert np.array_equal(got, to_yuv420(expected, (64, 64)).numpy())
    assert e.mixer.dims == {"a": 1.0, "b": 0.0}


def test_a_quantized_cut_lands_on_the_next_beat_and_a_fade_runs_over_its_beats() -> None:
    heard: list[Change] = []
    e = with_deck_b(engine(tiny_model(seed=0), heard), tiny_model(seed=1))
    times = [0.0, 0.1, 0.3, 0.49, 0.5, 0.6]
    got = frames(e, times, {0.1: [("/mix/cut", [])]})
    a = frames(engine(tiny_model(seed=0)), times, {})
    b = frames(engine(tiny_model(seed=1)), times, {})
    for i, t in enumerate(times):
        assert np.array_equal(got[i], a[i] if t < 0.5 else b[i]), t
    assert Change("/mix/crossfade", (1.0,)) in heard
    # Back to a over 2 beats (1 s), from the next beat (1.0 s).
    e.submit([parse("/mix/fade", [2.0])])
    e.render_at(0.7, 0.1)
    assert e.mixer.position(0.9) == 1.0
    assert e.mixer.position(1.5) == pytest.approx(0.5)
    assert e.mixer.position(2.0) == 0.0 and e.mixer.crossfade == 0.0


def test_deck_b_costs_nothing_until_loaded_and_bare_addresses_drive_deck_a() -> None:
    heard: list[Change] = []
    e = engine(heard=heard)
    e.submit([parse("/mix/crossfade", [1.0])])  # nothing on deck b: deck a still shows
    alone = engine()
    assert np.array_equal(e.render_at(0.0, 0.0).yuv, alone.render_at(0.0, 0.0).yuv)
    assert e.deck_b is None
    e.submit([parse("/deck/b/latent/seed", [5])])
    e.render_at(0.1, 0.1)
    assert any(c.address == ERROR_ADDRESS and "no model" in str(c.args[1]) for c in heard)
    with_deck_b(e, tiny_model(seed=1))
    e.render_at(0.2, 0.1)
    heard.clear()
    e.submit([parse("/deck/b/latent/seed", [5]), parse("/latent/seed", [7])])
    e.render_at(0.3, 0.1)
    assert e.deck_b is not None and e.deck_b.play.seed == 5 and e.play.seed == 7
    assert Change("/deck/b/latent/seed", (5,)) in heard
    assert Change("/latent/seed", (7,)) in heard
    e.submit([parse("/deck/b/latent/seed", ["?"]), parse("/deck/b/model/load", ["?"])])
    e.render_at(0.4, 0.1)
    assert Change("/deck/b/latent/seed", (5,)) in heard
    assert Change("/deck/b/model/load", ("tiny",)) in heard


@pytest.mark.parametrize(
    ("address", "args"),
    [
        ("/deck/c/latent/seed", [1]),
        ("/deck/b/tempo/bpm", [100.0]),
        ("/mix/crossfade", [1.5]),
        ("/mix/crossfade", [-0.1]),
        ("/mix/blend", ["overlay"]),
        ("/mix/curve", ["s-curve"]),
        ("/mix/fade", [65.0]),
    ],
)
def test_bad_input_is_refused_before_it_reaches_the_engine(
    address: str, args: list[object]
) -> None:
    with pytest.raises(CommandError):
        parse(address, args)


def test_deck_b_crossfades_to_a_new_model_exactly_as_deck_a_does() -> None:
    heard: list[Change] = []
    times = [0.0, 0.1, 0.35, 0.6, 0.85, 1.1, 1.3]
    switch_at = 0.1
    on_a = engine(tiny_model(seed=1))
    on_b = with_deck_b(engine(tiny_model(seed=0), heard), tiny_model(seed=1))
    on_b.submit([parse("/mix/crossfade", [1.0])])
    got_a, got_b = [], []
    for i, t in enumerate(times):
        if t == switch_at:  # the same switch, on deck a alone and on deck b alone
            on_a.offer_model(tiny_model(seed=2), parse("/model/load", ["tiny"]))
            on_b.offer_model(tiny_model(seed=2), parse("/deck/b/model/load", ["tiny"]))
        dt = t - times[i - 1] if i else 0.0
        got_a.append(on_a.render_at(t, dt).yuv)
        got_b.append(on_b.render_at(t, dt).yuv)
    old = frames(engine(tiny_model(seed=1)), times, {})
    for t, a, b, before in zip(times, got_a, got_b, old, strict=True):
        assert np.array_equal(a, b), t
        if switch_at < t < switch_at + Engine.MODEL_FADE_SECONDS:
            assert not np.array_equal(b, before), t  # the fade has begun: not a hold
    assert on_b.decks["b"].fading is None  # the fade is over: the new model alone
    assert not np.array_equal(got_b[-1], old[-1])
    assert Change("/deck/b/model/load", ("tiny",)) in heard
    assert Change("/model/load", ("tiny",)) not in heard


def test_deck_b_plays_on_the_device_render_device_b_names() -> None:
    # One device on this machine: the CPU, named for deck b as a second GPU would be.
    on_cpu = Engine(
        model=tiny_model(seed=0),
        config=RenderConfig(size=64, fps=FPS, device_b="cpu"),
        device=CPU,
        tempo=TempoClock(bpm=120.0),
    )
    with_deck_b(on_cpu, tiny_model(seed=1))
    got = frames(on_cpu, TIMES[:3], {0.0: [("/mix/crossfade", [1.0])]})
    alone = frames(engine(tiny_model(seed=1)), TIMES[:3], {})
    assert all(np.array_equal(g, a) for g, a in zip(got, alone, strict=True))
    assert on_cpu.deck_b is not None and on_cpu.deck_b.device == CPU
    status = on_cpu.stats()
    assert status["deck_b_device"] == "cpu" and status["deck_b_device_note"] is None


def test_a_named_device_that_is_absent_falls_back_to_the_main_one_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if torch.cuda.device_count() > 1:
        pytest.skip("this machine has a second GPU: cuda:1 is there")
    e = Engine(
        model=tiny_model(seed=0),
        config=RenderConfig(size=64, fps=FPS, device_b="cuda:1"),
        device=CPU,
        tempo=TempoClock(bpm=120.0),
    )
    note = e.stats()["deck_b_device_note"]
    assert "render.device_b" in note and "'cuda:1'" in note and "deck b plays on cpu" in note
    assert note in caplog.text
    assert e.decks["b"].device == CPU
    with_deck_b(e, tiny_model(seed=1))  # the show goes on: deck b loads and plays
    got = frames(e, TIMES[:2], {0.0: [("/mix/crossfade", [1.0])]})
    alone = frames(engine(tiny_model(seed=1)), TIMES[:2], {})
    assert all(np.array_equal(g, a) for g, a in zip(got, alone, strict=True))


def test_fit_keeps_its_bars_on_the_planes_mixing_two_generators_in_one_box() -> None:
    light_a, light_b = (0.2, 0.6, 0.9), (0.7, 0.3, 0.5)
    a = torch.tensor(light_a).reshape(1, 3, 1, 1).expand(1, 3, 32, 32) * 2 - 1
    b = torch.tensor(light_b).reshape(1, 3, 1, 1).expand(1, 3, 32, 32) * 2 - 1
    e = Engine(
        model=flat(light_a), config=RenderConfig(size="64x32", fill="fit", fps=FPS), device=CPU
    )
    with_deck_b(e, flat(light_b))
    alone = e.render_at(0.0, 0.0).yuv  # deck a alone: bars drawn on the uint8 planes
    assert np.array_equal(alone, frame_yuv(a, 64, 32, "fit").numpy())
    for mode in BLEND_MODES:  # both in one box: mixed as they are, the bars after
        e.submit([parse("/mix/crossfade", [0.5]), parse("/mix/blend", [mode])])
        mixed = e.render_at(1 / FPS, 1 / FPS).yuv
        picture = a * 0.5 + blend(a, b, mode) * 0.5
        assert np.array_equal(mixed, frame_yuv(picture, 64, 32, "fit").numpy()), mode


def test_a_video_deck_in_another_box_shows_through_the_generator_decks_bars() -> None:
    light = (0.2, 0.6, 0.9)
    square = torch.tensor(light).reshape(1, 3, 1, 1).expand(1, 3, 32, 32) * 2 - 1
    film = np.zeros((48, 64, 3), np.uint8)
    film[:] = (200, 120, 40)

    def open_into(spec: str, hub: InputHub) -> str | None:
        hub.begin(spec, threading.Event())
        return None

    e = Engine(
        model=flat(light),
        config=RenderConfig(size="64x32", fill="fit", fps=FPS),
        device=CPU,
        hooks=EngineHooks(open_input=open_into),
    )
    e.start_io = lambda work: work()  # type: ignore[method-assign]
    e.submit([parse("/deck/b/source", ["file:clip.mp4"]), parse("/mix/crossfade", [0.5])])
    e.render_at(0.0, 0.0)
    e.deck_b_inputs.put(av.VideoFrame.from_ndarray(film, format="rgb24"), "file:clip.mp4")
    mixed = e.render_at(1 / FPS, 1 / FPS).yuv
    # A 4:3 film fills more of the 2:1 canvas than the square: each deck's bars in floats.
    _, shown = e.deck_b_inputs.frames.latest()  # the film as it came in (through yuv420p)
    assert shown is not None
    video = torch.from_numpy(shown.rgb()).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    expected = place(square, 64, 32, "fit") * 0.5 + place(video, 64, 32, "fit") * 0.5
    assert np.array_equal(mixed, to_yuv420(expected, (64, 32)).numpy())
    assert (mixed[:32, 12:14] > 40).all()  # the film through the square's bar
    assert (mixed[:32, :8] == 16).all()  # both decks' bars: black
