"""The patch bay: routes add to the performer's value, triggers fire, bindings validate."""

from __future__ import annotations

import pytest
import torch

from server.commands import CommandError, parse
from server.config import RenderConfig
from server.engine import Engine
from server.patch import Patch, scaled
from tests.conftest import tiny_model


def test_routes_sum_per_target_and_amount_zero_removes() -> None:
    patch = Patch()
    patch.apply(parse("/mod/route", ["audio/bass", "/latent/truncation", 0.4]))
    patch.apply(parse("/mod/route", ["audio/high", "/latent/truncation", -0.2]))
    patch.apply(parse("/mod/route", ["audio/rms", "/react/mix", 1.0]))
    offsets = patch.offsets({"audio/bass": 1.0, "audio/high": 0.5, "audio/rms": 0.0})
    assert offsets == {"/latent/truncation": pytest.approx(0.3)}
    patch.apply(parse("/mod/route", ["audio/bass", "/latent/truncation", 0.0]))
    assert patch.query("/mod/route") == (
        "audio/high",
        "/latent/truncation",
        -0.2,
        "audio/rms",
        "/react/mix",
        1.0,
    )


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["audio/nothing", "/latent/truncation", 0.4], "unknown source"),
        (["audio/bass", "/keyframe/next", 0.4], "not a continuous"),
        (["audio/bass", "/latent/wander", 0.4], "is a switch"),
        (["audio/bass", "/tempo/bpm", 0.4], "cannot be patched"),
        (["audio/bass", "/no/such", 0.4], "unknown address"),
    ],
)
def test_bad_routes_are_refused_and_change_nothing(args: list[object], why: str) -> None:
    patch = Patch()
    patch.apply(parse("/mod/route", ["audio/bass", "/latent/truncation", 0.4]))
    with pytest.raises(CommandError, match=why):
        patch.apply(parse("/mod/route", args))
    assert patch.routes == {("audio/bass", "/latent/truncation"): 0.4}


def test_triggers_fire_commands_and_bindings_need_sensible_targets() -> None:
    patch = Patch()
    patch.apply(parse("/mod/trigger", ["audio/onset", "/keyframe/next"]))
    fired = patch.fire("audio/onset", received=1.5)
    assert [c.address for c in fired] == ["/keyframe/next"] and fired[0].received == 1.5
    assert patch.fire("tempo/beat") == []
    with pytest.raises(CommandError):
        patch.apply(parse("/mod/trigger", ["audio/onset", "/latent/xy"]))
    patch.apply(parse("/midi/bind", ["cc", 1, 7, "/output/dim"]))
    patch.apply(parse("/midi/bind", ["note", 1, 36, "/keyframe/1/jump"]))
    with pytest.raises(CommandError, match=r"0\.\.31"):
        patch.apply(parse("/midi/bind", ["cc14", 1, 40, "/output/dim"]))
    with pytest.raises(CommandError):
        patch.apply(parse("/midi/bind", ["cc", 1, 8, "/model/load"]))
    assert patch.tables.bindings == {
        ("cc", 1, 7): "/output/dim",
        ("note", 1, 36): "/keyframe/1/jump",
    }
    # The patch rebuilds itself from its own commands (what the show file keeps).
    again = Patch()
    for address, args in patch.commands():
        again.apply(parse(address, args))  # type: ignore[arg-type]
    assert again.commands() == patch.commands()


def test_scaling_a_control_position() -> None:
    from server.commands import lookup

    dim = lookup("/output/dim")[0].args[0]
    switch = lookup("/output/invert")[0].args[0]
    current = lookup("/keyframe/current")[0].args[0]
    assert scaled(dim, 0.25) == pytest.approx(0.25)
    assert (scaled(switch, 0.49), scaled(switch, 0.5)) == (0, 1)
    assert (scaled(current, 0.0), scaled(current, 1.0)) == (1, 16)


def test_a_bass_route_moves_truncation_by_its_amount_and_keeps_the_fader() -> None:
    engine = Engine(model=tiny_model(), config=RenderConfig(size=32), device=torch.device("cpu"))
    engine.submit(
        [
            parse("/latent/wander", [0]),
            parse("/keyframe/2/jump", [0.0]),
            parse("/latent/truncation", [0.5]),
            parse("/mod/route", ["audio/bass", "/latent/truncation", 0.4]),
        ]
    )
    plain = engine.render_once().latent
    assert plain is not None
    key = engine.play.bank[1]
    assert torch.allclose(plain, 0.5 * key, atol=1e-5)  # no bass yet: the fader's own value
    for bass, psi in ((1.0, 0.9), (0.5, 0.7)):
        engine.sources.update({"audio/bass": bass})
        shown = engine.render_once().latent
        assert shown is not None
        assert torch.allclose(shown, psi * key, atol=1e-5), bass
    assert engine.play.truncation == 0.5  # the performer's value is untouched
    # A route past the range is clamped to it.
    engine.submit([parse("/mod/route", ["audio/bass", "/latent/truncation", 10.0])])
    engine.sources.update({"audio/bass": 1.0})
    shown = engine.render_once().latent
    assert shown is not None and torch.allclose(shown, 2.0 * key, atol=1e-5)
