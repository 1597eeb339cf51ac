"""Network bending: operators on feature maps, hooks at synthesis layer N, clusters."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from models.bending import (
    IDENTITY,
    Bender,
    _affine,
    apply_ops,
    compute_clusters,
    layer_count,
    synthesis_layers,
)
from tests.conftest import tiny_model
from tests.support.tiny_stylegan import tiny_stylegan


def _generators() -> dict[str, nn.Module]:
    return {
        "dcgan": tiny_model().module,
        "stylegan2": tiny_stylegan().module,
        "stylegan3": tiny_stylegan(sg3=True).module,
    }


ARCHES = ("dcgan", "stylegan2", "stylegan3")


def _run(module: nn.Module) -> Tensor:
    z = torch.randn(2, module.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return module(z)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_zero_bend_is_bit_identical(arch: str) -> None:
    module = _generators()[arch]
    before = _run(module)
    bender = Bender(module)
    zero = {op: IDENTITY[op] for op in IDENTITY}
    bender.set({(layer, 0): zero for layer in range(1, len(bender.layers) + 1)})
    assert not bender.active  # nothing at rest is inserted at all
    assert torch.equal(_run(module), before)
    bender.set({(2, 0): {"gain": (2.0,)}})
    assert not torch.equal(_run(module), before)
    bender.clear()
    assert torch.equal(_run(module), before)


@pytest.mark.parametrize("arch", ARCHES)
def test_rotating_90_degrees_at_a_layer_is_rotating_its_feature_map(arch: str) -> None:
    """The bent generator equals a forward whose layer-2 output is torch.rot90'd by hand."""
    module = _generators()[arch]
    _, layer = synthesis_layers(module)[1]
    seen: list[Tensor] = []

    def by_hand(_: nn.Module, __: object, output: Tensor) -> Tensor:
        assert output.shape[-1] == output.shape[-2]
        seen.append(output)
        return torch.rot90(output, 1, dims=(-2, -1))

    handle = layer.register_forward_hook(by_hand)
    expected = _run(module)
    handle.remove()
    bender = Bender(module)
    bender.set({(2, 0): {"rotate": (90.0,)}})
    bent = _run(module)
    bender.clear()
    assert seen and torch.equal(bent, expected)
    assert not torch.equal(bent, _run(module))


def test_the_resampled_rotation_turns_the_same_way_as_rot90() -> None:
    x = torch.randn(1, 3, 16, 16)
    resampled = _affine(x, 90.0, 1.0, (0.0, 0.0))
    assert torch.allclose(resampled, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)


def test_operators_do_what_they_say() -> None:
    x = torch.zeros(1, 4, 9, 9)
    x[:, :, 4, 4] = 1.0
    dilated = apply_ops(x, {"dilate": (1.0,)})
    assert float(dilated.sum()) == 4 * 9  # a 3x3 square per channel
    assert float(apply_ops(dilated, {"erode": (1.0,)}).sum()) == 4  # back to the point
    flipped = apply_ops(torch.arange(4.0).reshape(1, 1, 1, 4), {"flip": (1.0,)})
    assert flipped.flatten().tolist() == [3.0, 2.0, 1.0, 0.0]
    ablated = apply_ops(torch.ones(1, 8, 2, 2), {"ablate": (0.5,)})
    assert int((ablated.sum(dim=(0, 2, 3)) == 0).sum()) == 4
    assert torch.equal(apply_ops(torch.ones(1, 8, 2, 2), {"ablate": (0.5,)}), ablated)
    assert torch.equal(apply_ops(x, {"gain": (3.0,)}), x * 3.0)
    moved = apply_ops(torch.eye(8)[None, None], {"translate": (0.25, 0.0)})
    assert torch.allclose(moved[0, 0, 0, 2], torch.tensor(1.0))  # two pixels right
    big = apply_ops(x, {"scale": (2.0,)})
    assert float(big[0, 0, 4, 4]) > 0 and float(big.abs().sum()) > float(x.abs().sum())


def test_a_cluster_bend_touches_only_its_channels() -> None:
    module = tiny_stylegan().module
    clusters = compute_clusters(module, k=4, seed=1, samples=32)
    layer, cluster = 3, 2
    members = clusters.of(layer)[cluster - 1]
    _, target = synthesis_layers(module)[layer - 1]
    outputs: list[Tensor] = []

    def capture(_: nn.Module, __: object, output: Tensor) -> None:
        outputs.append(output)

    handle = target.register_forward_hook(capture)
    _run(module)
    handle.remove()
    bender = Bender(module)
    bender.set({(layer, cluster): {"gain": (0.0,)}}, clusters.of)
    handle = target.register_forward_hook(capture)  # after the bend's hook: sees its output
    _run(module)
    handle.remove()
    bender.clear()
    plain, bent = outputs
    others = [c for c in range(plain.shape[1]) if c not in members.tolist()]
    assert others
    assert torch.equal(bent[:, others], plain[:, others])
    assert float(bent[:, members].abs().sum()) == 0.0 < float(plain[:, members].abs().sum())


def test_clusters_are_stable_for_a_model_and_seed() -> None:
    module = tiny_stylegan().module
    first = compute_clusters(module, k=4, seed=3, samples=32)
    again = compute_clusters(module, k=4, seed=3, samples=32)
    assert first.groups.keys() == again.groups.keys()
    for layer, groups in first.groups.items():
        assert [g.tolist() for g in groups] == [g.tolist() for g in again.of(layer)]
        assert sorted(c for g in groups for c in g.tolist()) == list(
            range(sum(len(g) for g in groups))
        )  # every channel in exactly one cluster


@pytest.mark.parametrize("arch", ARCHES)
def test_the_layer_count_from_a_file_header_matches_the_network(arch: str) -> None:
    module = _generators()[arch]
    config = {"num_layers": 4} if arch == "stylegan3" else {}
    assert layer_count(arch, config, 32) == len(synthesis_layers(module))
