"""Playing a StyleGAN: W keyframes and morphs, truncation, style mixing, noise, SG3 transform,
seeds as NVIDIA draws them; every StyleGAN control refused clearly on a DCGAN."""

from __future__ import annotations

import json

import pytest
import torch

from models.latent_maths import seed_latent
from models.latent_space import WSpace, space_for, style_ranges
from models.nets.stylegan3 import transform_matrix
from server.commands import COMMANDS, ERROR_ADDRESS, Change, parse
from server.play import DIRECTION_SCALE, PlayState
from tests.support.tiny_stylegan import tiny_stylegan


def run(state: PlayState, address: str, *args: object, now: float = 0.0) -> list[Change]:
    return state.apply(parse(address, list(args)), now)


@pytest.fixture(scope="module")
def sg():  # one tiny generator for the module: building it is the slow part
    return tiny_stylegan()


@pytest.fixture
def state(sg) -> PlayState:
    return PlayState(space=space_for(sg, sg.module), model_name=sg.name)


def mapped(sg, seed: int, c: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return sg.module.mapping(seed_latent(seed, sg.module.z_dim)[None], c)[0, 0]


def test_seeds_are_nvidias_randomstate_mapped_to_w(sg, state: PlayState) -> None:
    assert state.dim == sg.module.w_dim and state.space.name == "w"
    # Keyframe n starts as seed n-1 (config seed 0), as `ganvj render tour` numbers them.
    assert torch.allclose(state.bank[0], mapped(sg, 0), atol=1e-6)
    assert torch.allclose(state.bank[5], mapped(sg, 5), atol=1e-6)
    run(state, "/keyframe/morph", 0)
    run(state, "/latent/seed", 42, now=1.0)
    assert torch.allclose(state.latent(1.0, 0.0), mapped(sg, 42), atol=1e-6)
    # The same seed on a DCGAN is the same z NVIDIA's gen_images.py draws.
    dcgan = PlayState(z_dim=512)
    run(dcgan, "/keyframe/morph", 0)
    run(dcgan, "/latent/seed", 42)
    z = dcgan.latent(0.0, 0.0)
    assert torch.allclose(z[:3], torch.tensor([0.49671415, -0.1382643, 0.64768854]))
    assert torch.equal(dcgan.bank[3], seed_latent(3, 512))


def test_reshuffle_draws_a_seed_and_says_which(sg, state: PlayState) -> None:
    changes = run(state, "/keyframe/4/reshuffle")
    (seed,) = changes[0].args
    assert isinstance(seed, int) and state.bank_seeds[3] == seed
    assert torch.allclose(state.bank[3], mapped(sg, seed), atol=1e-6)


def test_keyframes_and_morphs_move_in_w(state: PlayState) -> None:
    run(state, "/keyframe/ease", "linear")
    run(state, "/keyframe/interp", "lerp")
    run(state, "/keyframe/1/jump", 0, now=0.0)
    assert torch.equal(state.latent(0.0, 0.0), state.bank[0])
    run(state, "/keyframe/2/jump", 1.0, now=0.0)
    a, b = state.bank[0], state.bank[1]
    assert torch.allclose(state.latent(0.5, 0.5), (a + b) / 2, atol=1e-6)  # a straight line in W
    assert torch.equal(state.latent(1.0, 0.5), b)
    run(state, "/keyframe/interp", "slerp")
    run(state, "/keyframe/1/jump", 1.0, now=2.0)
    half = state.latent(2.5, 0.5) - state.space.mean  # slerp turns about w_avg
    da, db = a - state.space.mean, b - state.space.mean
    assert half.norm().item() == pytest.approx((da.norm() + db.norm()).item() / 2, rel=1e-4)
    assert not torch.allclose(half, (da + db) / 2, atol=1e-4)  # not a straight line
    # Store keeps the W position; the XY pad blends W corners.
    run(state, "/keyframe/9/store", now=3.0)
    assert torch.equal(state.bank[8], state.bank[0])
    run(state, "/latent/xy", 1.0, 0.0, now=4.0)
    assert torch.allclose(state.latent(5.0, 1.0), state.bank[1], atol=1e-6)


def test_wander_moves_in_w_around_w_avg(state: PlayState) -> None:
    run(state, "/latent/wander", 1)
    points = torch.stack([state.latent(t, 1.0) for t in range(0, 120, 6)])
    assert points.shape[1] == state.dim
    spread = (points - state.space.mean).norm(dim=1).mean()
    typical = (state.bank - state.space.mean).norm(dim=1).mean()
    assert 0.3 * typical < spread < 3 * typical  # it stays where mapped latents live
    assert (points[1:] - points[:-1]).norm(dim=1).max() < typical  # and glides


def test_truncation_pulls_w_toward_w_avg(state: PlayState) -> None:
    run(state, "/keyframe/3/jump", 0)
    w = state.latent(0.0, 0.0)
    w_avg = state.space.mean
    run(state, "/latent/truncation", 0.5)
    assert torch.allclose(state.latent(0.1, 0.1), w_avg + 0.5 * (w - w_avg), atol=1e-6)
    run(state, "/latent/truncation", 0.0)
    assert torch.allclose(state.latent(0.2, 0.1), w_avg)


def test_truncation_equals_nvidias_truncated_mapping(sg, state: PlayState) -> None:
    run(state, "/keyframe/morph", 0)
    run(state, "/latent/truncation", 0.7)
    run(state, "/latent/seed", 7)
    ws = state.space.broadcast(state.pose(0.0, 0.0))  # type: ignore[attr-defined]
    z = seed_latent(7, sg.module.z_dim)[None]
    with torch.no_grad():
        expected = sg.module.mapping(z, None, truncation_psi=0.7)[0]
    assert torch.allclose(ws, expected, atol=1e-5)


def test_style_mixing_takes_layer_ranges_from_another_keyframe(state: PlayState) -> None:
    space = state.space
    assert isinstance(space, WSpace)
    run(state, "/keyframe/1/jump", 0)
    run(state, "/style/coarse/keyframe", 5)
    assert space.broadcast(state.pose(0.0, 0.0)).equal(state.bank[0].expand(space.num_ws, -1))
    run(state, "/style/coarse/amount", 1.0)
    run(state, "/style/fine/keyframe", 6)
    run(state, "/style/fine/amount", 0.5)
    ws = space.broadcast(state.pose(0.1, 0.1))
    lo, hi = space.ranges["coarse"]
    assert torch.allclose(ws[lo:hi], state.bank[4].expand(hi - lo, -1))
    mid = space.ranges["middle"]
    assert torch.equal(ws[mid[0] : mid[1]], state.bank[0].expand(mid[1] - mid[0], -1))
    f0, f1 = space.ranges["fine"]
    assert torch.allclose(ws[f0:f1], ((state.bank[0] + state.bank[5]) / 2).expand(f1 - f0, -1))
    # Truncation after mixing, as NVIDIA truncates each mapped latent before mixing.
    run(state, "/latent/truncation", 0.5)
    ws = space.broadcast(state.pose(0.2, 0.1))
    expected = space.mean + 0.5 * (state.bank[4] - space.mean)
    assert torch.allclose(ws[lo], expected, atol=1e-6)
    # The picture changes with the mix.
    with torch.no_grad():
        mixed = space.render(state.pose(0.3, 0.1))
        run(state, "/style/coarse/amount", 0.0)
        run(state, "/style/fine/amount", 0.0)
        plain = space.render(state.pose(0.4, 0.1))
    assert (mixed - plain).abs().mean() > 1e-3


def test_style_ranges_follow_the_paper_for_stylegan2() -> None:
    assert style_ranges(18, 1024) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}
    assert style_ranges(14, 256) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 14)}
    small = style_ranges(8, 32)  # too few layers for the paper's split: thirds
    assert [b - a for a, b in small.values()] == [3, 2, 3]
    assert style_ranges(16, 512)["fine"] == (8, 16)  # a StyleGAN2 512
    assert style_ranges(16, 512, "stylegan3")["fine"] == (11, 16)  # StyleGAN3: thirds


def test_noise_mode_and_strength_reach_synthesis(state: PlayState) -> None:
    space = state.space
    run(state, "/keyframe/1/jump", 0)
    with torch.no_grad():
        const = [space.render(state.pose(0.0, 0.0)) for _ in range(2)]
        assert torch.equal(const[0], const[1])
        run(state, "/style/noise/mode", "random")
        noisy = [space.render(state.pose(0.1, 0.1)) for _ in range(2)]
        assert not torch.equal(noisy[0], noisy[1])
        run(state, "/style/noise/mode", "const")
        run(state, "/style/noise/strength", 0.0)
        quiet = space.render(state.pose(0.2, 0.1))
        run(state, "/style/noise/mode", "none")
        none = space.render(state.pose(0.3, 0.1))
    assert torch.allclose(quiet, none, atol=1e-6)
    assert state.query("/style/noise/mode").args == ("none",)


def test_ganspace_directions_come_from_the_file(sg) -> None:
    components = torch.linalg.qr(torch.randn(16, 16))[0].T[:10]  # (10, w_dim), orthonormal
    stdev = torch.linspace(2.0, 0.5, 10)
    space = WSpace(sg.module, resolution=32, components=components, stdev=stdev)
    state = PlayState(space=space)
    run(state, "/keyframe/1/jump", 0)
    base = state.latent(0.0, 0.0)
    run(state, "/latent/dir/2", 1.0)
    moved = state.latent(0.1, 0.1) - base
    assert torch.allclose(moved, DIRECTION_SCALE * stdev[1] * components[1], atol=1e-5)
    # Without stored components, the principal components of mapped W.
    few = PlayState(space=WSpace(sg.module, resolution=32, components=components[:3],
                                 stdev=stdev[:3]), model_name="few")  # fmt: skip
    refused = run(few, "/latent/dir/4", 0.5)
    assert refused[0].address == ERROR_ADDRESS and "3 directions" in str(refused[0].args[1])
    assert few.amounts[3] == 0.0
    computed = PlayState(space=space_for(sg, sg.module)).directions
    assert computed.shape == (8, 16)
    norms = computed.norm(dim=1)
    assert bool((norms[:-1] >= norms[1:] - 1e-6).all())  # ordered by variance


def matrix(**kwargs: object) -> torch.Tensor:
    return torch.as_tensor(transform_matrix(**kwargs), dtype=torch.float32)  # type: ignore[arg-type]


def test_sg3_transform_rotates_and_spins() -> None:
    sg3 = tiny_stylegan(name="tiny-sg3", sg3=True)
    state = PlayState(space=space_for(sg3, sg3.module), model_name=sg3.name)
    assert state.space.transformable and state.query("/model/info").args[3] == 1
    run(state, "/style/noise/mode", "none")
    run(state, "/keyframe/1/jump", 0)
    buffer = sg3.module.synthesis.input.transform
    with torch.no_grad():
        upright = state.space.render(state.pose(0.0, 0.0))
        run(state, "/transform/rotate", 90)
        turned = state.space.render(state.pose(0.0, 0.0))
        assert torch.allclose(buffer, matrix(angle_deg=90.0), atol=1e-6)
        run(state, "/transform/rotate", 0)
        back = state.space.render(state.pose(0.0, 0.0))
    assert (turned - upright).abs().mean() > 1e-3 and torch.allclose(back, upright, atol=1e-5)
    run(state, "/transform/translate", 0.25, -0.5)
    run(state, "/transform/zoom", 2.0)
    state.space.render(state.pose(0.0, 0.0))
    expected = matrix(angle_deg=0.0, translate=(0.25, -0.5), zoom=2.0)
    assert torch.allclose(buffer, expected, atol=1e-6)
    run(state, "/transform/rotate", 90)
    run(state, "/transform/spin", 30.0)
    state.pose(1.0, 0.5)
    assert state.angle == pytest.approx(105.0)
    for _ in range(3):
        state.pose(1.0, 1.0)
    assert state.angle == pytest.approx(-165.0)  # 195 degrees, kept in -180..180
    changes = run(state, "/transform/reset")
    assert Change("/transform/spin", (0.0,)) in changes and state.angle == 0.0
    snapshot = state.snapshot()
    assert "/transform/zoom" in snapshot["settings"]  # type: ignore[operator]


def test_class_for_conditional_models() -> None:
    cond = tiny_stylegan(name="tiny-cond", c_dim=4)
    state = PlayState(space=space_for(cond, cond.module), model_name=cond.name)
    run(state, "/latent/wander", 0)
    run(state, "/keyframe/morph", 0)
    assert run(state, "/latent/class", 2)[-1] == Change("/latent/class", (2,))
    c = torch.eye(4)[2:3]
    assert torch.allclose(state.latent(0.0, 0.0), mapped(cond, 0, c), atol=1e-6)
    refused = run(state, "/latent/class", 4)
    assert refused[0].address == ERROR_ADDRESS and "0..3" in str(refused[0].args[1])
    assert state.label == 2


_STYLEGAN_ONLY = [
    ("/latent/class", [1], "not conditional"),
    *((f"/style/{r}/keyframe", [2], "needs a StyleGAN") for r in ("coarse", "middle", "fine")),
    *((f"/style/{r}/amount", [0.5], "needs a StyleGAN") for r in ("coarse", "middle", "fine")),
    ("/style/noise/mode", ["random"], "needs a StyleGAN"),
    ("/style/noise/strength", [0.0], "needs a StyleGAN"),
    ("/transform/rotate", [45.0], "needs a StyleGAN3"),
    ("/transform/translate", [0.1, 0.1], "needs a StyleGAN3"),
    ("/transform/zoom", [2.0], "needs a StyleGAN3"),
    ("/transform/spin", [10.0], "needs a StyleGAN3"),
    ("/transform/reset", [], "needs a StyleGAN3"),
]


@pytest.mark.parametrize(("address", "args", "why"), _STYLEGAN_ONLY)
def test_stylegan_controls_on_a_dcgan_change_nothing_and_say_why(address, args, why) -> None:
    state = PlayState(z_dim=16, model_name="plasma")
    before = state.snapshot(), [c for c in state.state()], state.latent(0.0, 0.0)
    changes = state.apply(parse(address, args, origin="tablet"), 0.0)
    assert len(changes) == 1 and changes[0].address == ERROR_ADDRESS
    assert changes[0].to == "tablet" and changes[0].args[0] == address
    assert why in str(changes[0].args[1]) and "plasma" in str(changes[0].args[1])
    after = state.snapshot(), [c for c in state.state()], state.latent(0.0, 0.0)
    assert after[0] == before[0] and after[1] == before[1] and torch.equal(after[2], before[2])


def test_the_dcgan_refusals_cover_every_stylegan_control() -> None:
    new = {s.pattern for s in COMMANDS if s.pattern.startswith(("/style/", "/transform/"))}
    assert new | {"/latent/class"} == {a for a, _, _ in _STYLEGAN_ONLY}


def test_sg2_has_no_transform(state: PlayState) -> None:
    changes = run(state, "/transform/rotate", 10.0)
    assert changes[0].address == ERROR_ADDRESS and "StyleGAN3" in str(changes[0].args[1])
    assert state.query("/model/info").args == ("stylegan2", "w", 0, 0)


def test_w_snapshot_round_trip_and_space_check(sg, state: PlayState) -> None:
    run(state, "/keyframe/5/reshuffle")
    run(state, "/style/middle/keyframe", 3)
    run(state, "/style/middle/amount", 0.25)
    run(state, "/style/noise/mode", "random")
    data = state.snapshot()
    assert data["space"] == "w" and data["w_dim"] == 16
    other = PlayState(space=space_for(sg, sg.module), seed=5)
    other.restore(data, 0.0)
    assert torch.equal(other.bank, state.bank)
    assert other.mix["middle"] == (3, 0.25) and other.noise_mode == "random"
    with pytest.raises(ValueError, match="keyframes are in w"):
        PlayState(z_dim=16).restore(data, 0.0)
    with pytest.raises(ValueError, match="keyframes are in z"):
        other.restore(PlayState(z_dim=16).snapshot(), 0.0)


def test_a_stylegan_set_is_logged_for_replay(sg, state: PlayState) -> None:
    from server.outputs.perflog import capture_play, restore_play

    run(state, "/style/fine/keyframe", 2)
    run(state, "/style/fine/amount", 0.5)
    state.latent(1.0, 1.0)  # wandering in W
    data = json.loads(json.dumps(capture_play(state)))
    other = PlayState(space=space_for(sg, sg.module), seed=3)
    restore_play(other, data)
    assert other.mix == state.mix
    assert torch.equal(other.latent(2.0, 1.0), state.latent(2.0, 1.0))


def test_live_morphs_and_offline_tours_blend_w_alike(state: PlayState) -> None:
    from models.render import tour_latents

    run(state, "/keyframe/1/jump", 0, now=0.0)
    run(state, "/keyframe/2/jump", 1.0, now=0.0)  # slerp, smooth: the defaults of both
    live = state.latent(0.3, 0.3)
    tour = tour_latents(state.bank[:2], frames_per_step=10, loop=False, centre=state.space.mean)
    assert torch.allclose(live, list(tour)[3], atol=1e-5)


def test_the_registry_and_the_networks_name_the_same_ranges_and_noise_modes() -> None:
    # The registry stays free of torch, so it keeps its own copy of these names.
    from models.latent_space import STYLE_RANGES as model_ranges
    from models.nets.ops import NOISE_MODES as model_modes
    from server.commands import NOISE_MODES, STYLE_RANGES

    assert model_modes == NOISE_MODES and model_ranges == STYLE_RANGES
