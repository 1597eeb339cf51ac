"""Model blending: a generator's weights interpolated, layer by layer, toward a partner's.

Two models of the same architecture and resolution (a StyleGAN and its
fine-tune, typically) share every tensor's name and shape. Each synthesis
layer (numbered as models.bending numbers them) and the mapping network get an
amount 0..1; a tensor is A's at 0, B's at 1 (copied, not computed) and
`lerp(A, B, t)` between. The originals are kept, so amounts are absolute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from models.bending import synthesis_layers, unwrap

MAPPING = 0  # the mapping network's key among the layer amounts
GROUPS = ("coarse", "middle", "fine")
# Buffers the player sets live (StyleGAN3's input transform): never blended.
_LIVE_BUFFERS = ("synthesis.input.transform",)


class BlendError(ValueError):
    """A partner that does not fit; the message names what differs."""


def mismatch(
    a: nn.Module, b: nn.Module, *, arch: tuple[str, str], resolution: tuple[int, int]
) -> str | None:
    """Why B cannot be blended into A (architecture, resolution, a tensor), or None."""
    if arch[0] != arch[1]:
        return f"architecture differs: {arch[0]} against {arch[1]}"
    if resolution[0] != resolution[1]:
        return f"resolution differs: {resolution[0]} px against {resolution[1]} px"
    sa, sb = unwrap(a).state_dict(), unwrap(b).state_dict()
    for key in sa:
        if key not in sb:
            return f"tensor {key} is missing from the partner"
        if sa[key].shape != sb[key].shape:
            return (
                f"tensor {key} differs in shape: {tuple(sa[key].shape)} "
                f"against {tuple(sb[key].shape)}"
            )
    extra = [key for key in sb if key not in sa]
    if extra:
        return f"the partner has tensor {extra[0]} that this model lacks"
    return None


def layer_of(keys: list[str], module: nn.Module) -> dict[str, int]:
    """Each blendable state-dict key -> its synthesis layer (1-based), or MAPPING (0).

    A block's tensors outside its layers go with a layer of the block: a
    StyleGAN2 block's constant and skip with its first conv, its ToRGB with its
    last; StyleGAN3's Fourier input with layer 1; DCGAN's to_rgb with the last.
    """
    prefixes = [prefix for prefix, _ in synthesis_layers(module)]
    last = len(prefixes)
    found: dict[str, int] = {}
    for key in keys:
        if key in _LIVE_BUFFERS:
            continue
        if key.startswith("mapping."):
            found[key] = MAPPING
            continue
        layer = next((i for i, p in enumerate(prefixes, start=1) if key.startswith(p + ".")), None)
        if layer is None:
            block = re.match(r"(synthesis\.b\d+)\.(\w+)", key)
            if block is not None:  # StyleGAN2: the block's first or last conv
                mine = [i for i, p in enumerate(prefixes, 1) if p.startswith(block[1] + ".")]
                layer = mine[-1] if block[2] == "torgb" else mine[0]
            elif key.startswith("synthesis.input."):
                layer = 1
            elif key.startswith("blocks."):  # DCGAN: the stage's (upsample, conv, norm, relu)
                layer = int(key.split(".")[1]) // 4 + 2
            elif key.startswith("project."):
                layer = 1
            elif key.startswith("to_rgb."):
                layer = last
        if layer is not None:
            found[key] = layer
    return found


def group_layers(layers: int) -> dict[str, range]:
    """Coarse, middle and fine: the synthesis layers cut in thirds, 1-based."""
    a, b = round(layers / 3), round(2 * layers / 3)
    return {
        "coarse": range(1, a + 1),
        "middle": range(a + 1, b + 1),
        "fine": range(b + 1, layers + 1),
    }


class Blend:
    """A generator blended toward a partner: A's originals, B's tensors, amounts per layer."""

    def __init__(self, module: nn.Module, partner: nn.Module, name: str) -> None:
        self.name = name
        self.module = unwrap(module)
        live = self.module.state_dict()
        self._layers = layer_of(list(live), self.module)
        self.layers = len(synthesis_layers(self.module))
        other = unwrap(partner).state_dict()
        self._a = {key: live[key].detach().clone() for key in self._layers}
        self._b = {
            key: other[key].detach().to(live[key].device, live[key].dtype).clone()
            for key in self._layers
        }
        self.amounts: dict[int, float] = {}  # layer (0: mapping) -> 0..1

    def rebase(self) -> None:
        """Take A's tensors again from the module as it is now (another blend just restored).

        A Blend built while another was applied read A's tensors part-blended (and
        on another thread than the one writing them): this reads the originals back.
        """
        live = self.module.state_dict()
        self._a = {key: live[key].detach().clone() for key in self._layers}

    def set(self, layer: int, amount: float) -> None:
        """One layer's amount (0: A, 1: B); MAPPING for the mapping network."""
        if not 0 <= layer <= self.layers:
            raise BlendError(f"layer {layer}: this model has layers 1..{self.layers}")
        self.amounts[layer] = float(amount)

    def apply(self) -> None:
        """Write every blendable tensor into the module from the originals and amounts."""
        live = self.module.state_dict()
        with torch.no_grad():
            for key, layer in self._layers.items():
                live[key].copy_(mix(self._a[key], self._b[key], self.amounts.get(layer, 0.0)))

    def restore(self) -> None:
        """Put A's own weights back."""
        self.amounts = {}
        self.apply()


def mix(a: Tensor, b: Tensor, t: float) -> Tensor:
    """A at 0 and B at 1 exactly; lerp between (integer tensors: A until 1)."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    if not a.is_floating_point():
        return a
    return torch.lerp(a, b, t)


def blended_state(
    a: Mapping[str, Tensor], b: Mapping[str, Tensor], amounts: Mapping[str, float]
) -> dict[str, Tensor]:
    """A state dict with each key's tensor mixed by its amount (0 where not given)."""
    return {key: mix(a[key], b[key], amounts.get(key, 0.0)) for key in a}
