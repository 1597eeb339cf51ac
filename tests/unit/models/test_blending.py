"""Model blending: endpoints exact, halfway the weights interpolated by hand, mismatches named."""

from __future__ import annotations

import torch

from models.blending import MAPPING, Blend, group_layers, layer_of, mismatch
from tests.conftest import tiny_model
from tests.support.tiny_stylegan import tiny_stylegan


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_endpoints_are_exact_and_halfway_is_the_lerp() -> None:
    a, b = tiny_stylegan(seed=0).module, tiny_stylegan(seed=1).module
    own, other = _state(a), _state(b)
    blend = Blend(a, b, "partner")
    layers = layer_of(list(own), a)
    for layer in range(0, blend.layers + 1):
        blend.set(layer, 1.0)
    blend.apply()
    now = a.state_dict()
    for key in own:
        assert torch.equal(now[key], other[key] if key in layers else own[key]), key
    for layer in range(0, blend.layers + 1):
        blend.set(layer, 0.5)
    blend.apply()
    now = a.state_dict()
    for key in layers:
        if own[key].is_floating_point():
            by_hand = own[key] + 0.5 * (other[key] - own[key])
            scale = float(own[key].abs().max() + other[key].abs().max())
            assert torch.allclose(now[key], by_hand, rtol=0, atol=1e-6 * scale), key  # rounding
    blend.restore()
    assert all(torch.equal(a.state_dict()[k], own[k]) for k in own)


def test_a_group_moves_only_its_layers() -> None:
    a, b = tiny_stylegan(seed=0).module, tiny_stylegan(seed=1).module
    own = _state(a)
    blend = Blend(a, b, "partner")
    groups = group_layers(blend.layers)
    for layer in groups["fine"]:
        blend.set(layer, 1.0)
    blend.apply()
    layers = layer_of(list(own), a)
    for key, layer in layers.items():
        moved = not torch.equal(a.state_dict()[key], own[key])
        if layer not in groups["fine"] or layer == MAPPING:
            assert not moved, key
    assert any(not torch.equal(a.state_dict()[k], own[k]) for k in own)


def test_a_mismatched_partner_is_named() -> None:
    sg2, sg3 = tiny_stylegan().module, tiny_stylegan(sg3=True).module
    assert mismatch(sg2, sg2, arch=("stylegan2",) * 2, resolution=(32, 32)) is None
    assert "architecture" in str(
        mismatch(sg2, sg3, arch=("stylegan2", "stylegan3"), resolution=(32, 32))
    )
    assert "resolution" in str(mismatch(sg2, sg2, arch=("stylegan2",) * 2, resolution=(32, 64)))
    small, wide = tiny_model().module, tiny_model(resolution=64).module
    why = mismatch(small, wide, arch=("dcgan",) * 2, resolution=(32, 32))
    assert why is not None and "tensor" in why
