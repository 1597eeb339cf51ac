"""PlayState driven by a simulated clock: jumps, morphs, quantization, sequences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from server.commands import COMMANDS, Change, CommandError, parse
from server.play import PlayState
from server.tempo import TempoClock

Z = 16


def run(state: PlayState, address: str, *args: object, now: float = 0.0) -> list[Change]:
    return state.apply(parse(address, list(args)), now)


def test_jump_with_morph_zero_gives_exactly_the_keyframe_next_frame():
    state = PlayState(z_dim=Z)
    state.latent(0.0, 0.0)
    changes = run(state, "/keyframe/3/jump", 0, now=0.01)
    assert Change("/keyframe/current", (3,)) in changes
    assert Change("/latent/wander", (0,)) in changes  # a jump stops wandering
    assert torch.equal(state.latent(0.02, 0.01), state.bank[2])


def test_morph_finishes_exactly_at_its_duration_and_moves_smoothly():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/1/jump", 0, now=0.0)
    run(state, "/keyframe/2/jump", 2.0, now=1.0)
    assert torch.equal(state.latent(1.0, 0.0), state.bank[0])
    middle = state.latent(2.0, 1.0)
    assert not torch.equal(middle, state.bank[0]) and not torch.equal(middle, state.bank[1])
    assert not torch.equal(state.latent(2.999, 0.999), state.bank[1])
    assert torch.equal(state.latent(3.0, 0.001), state.bank[1])
    assert torch.equal(state.latent(10.0, 7.0), state.bank[1])


@pytest.mark.parametrize("interp", ["lerp", "slerp"])
def test_interp_setting_is_used(interp):
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/interp", interp)
    run(state, "/keyframe/ease", "linear")
    run(state, "/keyframe/1/jump", 0, now=0.0)
    run(state, "/keyframe/2/jump", 1.0, now=0.0)
    a, b = state.bank[0], state.bank[1]
    half = state.latent(0.5, 0.5)
    if interp == "lerp":
        assert torch.allclose(half, (a + b) / 2, atol=1e-6)
    else:
        assert half.norm().item() == pytest.approx((a.norm() + b.norm()).item() / 2, rel=1e-4)


def test_quantized_jump_lands_on_the_next_beat():
    tempo = TempoClock(bpm=120.0)  # a beat every 0.5 s from t=0
    state = PlayState(z_dim=Z, tempo=tempo)
    run(state, "/keyframe/quantize", "beat")
    run(state, "/keyframe/1/jump", 0, now=0.0)
    state.latent(0.0, 0.0)
    changes = run(state, "/keyframe/5/jump", 0, now=0.6)
    assert Change("/keyframe/current", (5,)) not in changes  # not yet
    assert torch.equal(state.latent(0.99, 0.39), state.bank[0])
    assert torch.equal(state.latent(1.0, 0.01), state.bank[4])
    assert state.take_changes() == [Change("/keyframe/current", (5,))]


def test_quantized_jump_is_rendered_early_by_the_output_latency():
    tempo = TempoClock(bpm=120.0)
    tempo.lead_seconds = 0.1
    state = PlayState(z_dim=Z, tempo=tempo)
    run(state, "/keyframe/1/jump", 0, now=0.0)
    run(state, "/keyframe/quantize", "bar")
    run(state, "/keyframe/2/jump", 0, now=0.5)
    assert torch.equal(state.latent(1.89, 0.1), state.bank[0])
    assert torch.equal(state.latent(1.9, 0.01), state.bank[1])  # bar at 2.0 s, lead 0.1 s


def test_morph_in_beats_follows_the_tempo():
    state = PlayState(z_dim=Z, tempo=TempoClock(bpm=60.0))
    run(state, "/keyframe/unit", "beats")
    run(state, "/keyframe/1/jump", 0, now=0.0)
    run(state, "/keyframe/2/jump", 4, now=0.0)  # 4 beats at 60 bpm = 4 s
    assert not torch.equal(state.latent(3.9, 3.9), state.bank[1])
    assert torch.equal(state.latent(4.0, 0.1), state.bank[1])


def test_sequence_tours_the_bank_in_order_and_loops():
    state = PlayState(z_dim=Z)
    run(state, "/sequence/length", 3)
    run(state, "/sequence/step", 1.0)
    run(state, "/keyframe/1/jump", 0, now=0.0)
    state.take_changes()
    assert Change("/sequence/play", (1,)) in run(state, "/sequence/play", now=0.0)
    seen = []
    for i in range(1, 8):
        z = state.latent(float(i), 1.0)
        seen.extend(c.args[0] for c in state.take_changes())
        # Each step lands exactly on its keyframe at the end of the step.
        assert torch.equal(z, state.bank[(i % 3)]) or i == 1
    assert seen[:6] == [2, 3, 1, 2, 3, 1]
    assert Change("/sequence/play", (0,)) in run(state, "/sequence/stop", now=8.2)
    run(state, "/keyframe/12/jump", 0, now=8.2)
    run(state, "/sequence/play", 1, now=8.2)
    state.latent(9.2, 1.0)
    assert state.take_changes()[-1] == Change("/keyframe/current", (1,))  # back into the tour
    run(state, "/sequence/stop", now=9.2)
    frozen = state.latent(9.3, 0.1)
    assert torch.equal(state.latent(20.0, 10.7), frozen)


def test_xy_corners_are_the_first_four_keyframes():
    state = PlayState(z_dim=Z)
    for (x, y), k in {(0, 0): 0, (1, 0): 1, (0, 1): 2, (1, 1): 3}.items():
        run(state, "/latent/xy", x, y, now=10.0 * k)
        assert torch.allclose(state.latent(10.0 * k + 1, 1.0), state.bank[k], atol=1e-5)


def test_wander_is_smooth_when_switched_on_and_off():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/1/jump", 0, now=0.0)
    previous = state.latent(0.0, 0.0)
    run(state, "/latent/wander", 1, now=0.0)
    steps = []
    for i in range(1, 300):
        z = state.latent(i / 60, 1 / 60)
        steps.append((z - previous).norm().item())
        previous = z
    run(state, "/latent/wander", 0, now=5.0)
    z = state.latent(5.0 + 1 / 60, 1 / 60)
    steps.append((z - previous).norm().item())
    assert max(steps) < 0.5  # never a jump (the latent's norm is about 4)
    assert torch.equal(state.latent(9.0, 3.0), z)  # off: it holds still


def test_directions_and_truncation_are_layers_on_top():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/1/jump", 0, now=0.0)
    base = state.latent(0.0, 0.0)
    run(state, "/latent/dir/1", 1.0)
    moved = state.latent(0.1, 0.1)
    assert (moved - base).norm().item() == pytest.approx(3.0, rel=1e-4)
    run(state, "/latent/dir/1", 0.0)
    run(state, "/latent/truncation", 0.5)
    assert torch.allclose(state.latent(0.2, 0.1), base * 0.5)
    run(state, "/latent/truncation", 0.0)
    assert torch.equal(state.latent(0.3, 0.1), torch.zeros(Z))


def test_store_reshuffle_seed_next_prev():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/2/jump", 0, now=0.0)
    run(state, "/keyframe/7/store", now=0.1)
    assert torch.equal(state.bank[6], state.bank[1])
    before = state.bank[6].clone()
    run(state, "/keyframe/7/reshuffle")
    assert not torch.equal(state.bank[6], before)
    assert Change("/keyframe/current", (3,)) in run(state, "/keyframe/next", 0, now=1.0)
    assert Change("/keyframe/current", (2,)) in run(state, "/keyframe/prev", 0, now=1.0)
    run(state, "/latent/seed", 42, now=2.0)
    run(state, "/keyframe/morph", 0)
    run(state, "/latent/seed", 42, now=3.0)
    from models.latent_maths import seed_latent

    assert torch.equal(state.latent(3.0, 1.0), seed_latent(42, Z))  # NVIDIA's seed 42


def test_queries_answer_current_values_to_the_asker():
    state = PlayState(z_dim=Z)
    run(state, "/latent/xy", 0.25, 0.75)
    answer = state.apply(parse("/latent/xy", ["?"], origin="tablet"), 0.0)
    assert answer == [Change("/latent/xy", (0.25, 0.75), to="tablet")]
    assert state.query("/keyframe/interp").args == ("slerp",)
    assert state.query("/latent/dir/3").args == (0.0,)
    with pytest.raises(CommandError):
        state.query("/react/mix")
    addresses = {c.address for c in state.state()}
    assert "/tempo/bpm" in addresses and "/latent/dir/8" in addresses


def test_every_play_command_is_handled_and_every_queryable_one_answered():
    state = PlayState(z_dim=Z)
    for spec in COMMANDS:
        if spec.owner != "play":
            continue
        address = spec.pattern.replace("{n}", "1").replace("{k}", "1")
        if spec.settable:
            args = [
                a.choices[0] if a.type == "s" else (a.min or 0) for a in spec.args if not a.optional
            ]
            assert state.handles(parse(address, args))
        if spec.queryable:
            assert state.apply(parse(address, ["?"]), 0.0)[0].address == address


def test_engine_commands_are_not_handled_here():
    state = PlayState(z_dim=Z)
    command = parse("/react/trigger", [])
    assert not state.handles(command)
    with pytest.raises(CommandError):
        state.apply(command, 0.0)
    assert state.handles(parse("/latent/xy", [0, 0]))


def test_a_bundle_applied_between_two_frames_is_seen_whole():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/ease", "linear")
    state.latent(0.0, 0.0)
    bundle = [parse("/keyframe/interp", ["lerp"]), parse("/keyframe/4/jump", [0])]
    for command in bundle:
        state.apply(command, 0.01)
    assert torch.equal(state.latent(0.02, 0.01), state.bank[3])
    assert state.interp == "lerp"
    changes, rest = state.apply_batch(
        [parse("/react/mix", [0.5]), parse("/keyframe/2/jump", [0]), parse("/react/stop", [])], 0.03
    )
    assert [c.address for c in rest] == ["/react/mix", "/react/stop"]
    assert Change("/keyframe/current", (2,)) in changes
    assert torch.equal(state.latent(0.04, 0.01), state.bank[1])


def test_tap_tempo_and_bpm():
    state = PlayState(z_dim=Z)
    assert run(state, "/tempo/tap", now=0.0) == []
    assert run(state, "/tempo/tap", 0.0, now=0.1) == []  # a button release
    assert run(state, "/tempo/tap", 1.0, now=0.5)[0].args[0] == pytest.approx(120.0)
    assert run(state, "/tempo/bpm", 90, now=1.0) == [Change("/tempo/bpm", (90.0,))]
    assert run(state, "/tempo/link", 1) == [Change("/tempo/link", (0,))]  # no Link here


def test_snapshot_restore_round_trip():
    state = PlayState(z_dim=Z)
    run(state, "/keyframe/interp", "lerp")
    run(state, "/latent/dir/2", -0.5)
    run(state, "/tempo/bpm", 97.5)
    run(state, "/keyframe/5/reshuffle")
    data = state.snapshot()
    other = PlayState(z_dim=Z, seed=9)
    other.restore(data, 0.0)
    assert torch.equal(other.bank, state.bank)
    assert other.interp == "lerp" and other.amounts[1] == -0.5 and other.tempo.bpm == 97.5
    with pytest.raises(ValueError):
        other.restore({"keyframes": [[0.0] * (Z + 1)]}, 0.0)
    with pytest.raises(ValueError):
        other.restore({"settings": {"/keyframe/interp": ["cubic"]}}, 0.0)


_SETTABLE = [s for s in COMMANDS if s.owner == "play" and s.settable]
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(spec=st.sampled_from(_SETTABLE), args=st.lists(_values, max_size=3))
def test_well_formed_messages_with_wrong_types_change_no_state(spec, args):
    state = PlayState(z_dim=Z)
    before = state.snapshot(), state.state(), state.latent(0.0, 0.0)
    address = spec.pattern.replace("{n}", "2").replace("{k}", "2")
    try:
        command = parse(address, args)
    except CommandError:
        after = state.snapshot(), state.state(), state.latent(0.0, 0.0)
        assert after[0] == before[0] and after[1] == before[1]
        assert torch.equal(after[2], before[2])
        return
    state.apply(command, 0.0)  # a valid one must apply without error
