"""The reaction envelope against a simulated clock."""

from __future__ import annotations

import pytest

from server.react.reaction import Ramp, Reaction


def test_ramp_is_exact_at_both_ends() -> None:
    ramp = Ramp(0.2, 1.0, at=10.0, seconds=0.5)
    assert ramp.value(9.0) == 0.2
    assert ramp.value(10.25) == pytest.approx(0.6)
    assert ramp.value(10.5) == 1.0
    assert Ramp(0.0, 1.0, at=0.0, seconds=0.0).value(0.0) == 1.0


def test_trigger_fades_in_and_back_out_after_its_time() -> None:
    reaction = Reaction(fade_seconds=0.5)
    assert reaction.level(0.0) == 0.0
    reaction.trigger(1.0, seconds=3.0)
    assert reaction.level(1.25) == pytest.approx(0.5)
    assert reaction.level(1.5) == 1.0
    reaction.update(3.9, input_age=0.0, source_ended=None)
    assert reaction.active
    reaction.update(4.1, input_age=0.0, source_ended=None)
    assert not reaction.active and reaction.reason == "finished"
    # The fade out starts exactly at the end time, not at the frame that noticed it.
    assert reaction.level(4.25) == pytest.approx(0.5)
    assert reaction.level(4.5) == 0.0


def test_stop_early_fades_from_the_current_level() -> None:
    reaction = Reaction(fade_seconds=1.0)
    reaction.trigger(0.0)
    reaction.stop(0.5)  # half way in
    assert reaction.level(0.5) == pytest.approx(0.5)
    assert reaction.level(1.0) == pytest.approx(0.25)
    assert reaction.level(1.5) == 0.0
    assert reaction.reason == "stopped"


@pytest.mark.parametrize(
    ("age", "ended", "reason"),
    [
        (None, "the camera disconnected", "no input: the camera disconnected"),
        (None, None, "no input"),
        (2.5, None, "input stalled for 2.5 s"),
    ],
)
def test_a_lost_or_stalled_source_falls_back_with_a_reason(
    age: float | None, ended: str | None, reason: str
) -> None:
    reaction = Reaction(stall_seconds=1.0)
    reaction.trigger(0.0)
    reaction.update(5.0, input_age=age, source_ended=ended)
    assert not reaction.active and reaction.reason == reason


def test_feedback_does_not_need_a_live_source() -> None:
    reaction = Reaction(mode="feedback")
    reaction.trigger(0.0)
    reaction.update(5.0, input_age=None, source_ended="the camera disconnected")
    assert reaction.active
    with pytest.raises(ValueError, match="unknown reaction mode"):
        reaction.set_mode("kaleidoscope")


def test_weight_includes_mix() -> None:
    reaction = Reaction(fade_seconds=0.0)
    reaction.mix = 0.25
    reaction.trigger(0.0)
    assert reaction.weight(0.0) == 0.25
