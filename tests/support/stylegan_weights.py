"""Deterministic, realistic-looking weights for tiny StyleGAN test networks.

Values come from numpy's RandomState (stable across platforms and versions), one
stream per tensor name, so the scratch comparison against NVIDIA's code (see
docs/stylegan.md) and the CI tests fill the very same numbers.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn

# Designed from the config, never random: kept as the module built them.
DESIGNED = ("up_filter", "down_filter", "transform", "resample_filter")


def fill_weights(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """A state dict for `module` whose values depend only on (seed, tensor name, shape)."""
    state = module.state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in DESIGNED:
            out[name] = tensor.clone()
            continue
        rng = np.random.RandomState((seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32)
        shape = tuple(tensor.shape)
        owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
        lr = float(getattr(owner, "bias_gain", 1.0))  # equalised-lr layers store param / lr
        if leaf == "magnitude_ema":
            value = rng.uniform(0.5, 2.0, size=shape)
        elif leaf == "w_avg":
            value = rng.randn(*shape) * 0.3
        elif leaf == "freqs":
            # inside the disc of the input's bandwidth, as the network draws them
            f = rng.randn(*shape)
            r = np.sqrt((f**2).sum(axis=1, keepdims=True))
            value = f / (r * np.exp(r**2) ** 0.25) * float(getattr(owner, "bandwidth", 1.0))
        elif leaf == "phases":
            value = rng.uniform(-0.5, 0.5, size=shape)
        elif name.endswith("input.affine.bias"):
            value = np.array([1.0, 0.0, 0.0, 0.0]) + rng.randn(*shape) * 0.2
        elif name.endswith("affine.bias"):
            value = 1.0 + rng.randn(*shape) * 0.1
        elif leaf == "bias":
            value = rng.randn(*shape) * 0.1 / lr
        elif leaf == "weight":
            value = rng.randn(*shape) / lr
        else:
            value = rng.randn(*shape) * 0.1
        out[name] = torch.tensor(value, dtype=tensor.dtype).reshape(shape)
    return out
