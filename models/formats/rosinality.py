"""Read rosinality/stylegan2-pytorch checkpoints (`.pt`) into our StyleGAN2 layout.

Those files are `torch.save` dicts with `g_ema` (a state dict) and, from the
TF converter, `latent_avg`; training checkpoints add `g`, `d`, optimisers and
`args` (an argparse.Namespace). They are loaded with `torch.load(weights_only=True)`
(Namespace allowed as plain data), never with code.

The network is StyleGAN2 config F with `skip` outputs, so each tensor has an
NVIDIA counterpart: `style.{i+1}` -> `mapping.fc{i}`, `input.input` ->
`synthesis.b4.const`, `conv1`/`to_rgb1` -> `b4`, `convs.{2k}` / `convs.{2k+1}` /
`to_rgbs.{k}` -> `b{8*2^k}.conv0` / `conv1` / `torgb`, `noises.noise_{n}` ->
the layers' `noise_const`, `latent_avg` -> `mapping.w_avg`. The maths agree:
rosinality scales the modulated weight by 1/sqrt(fan_in) before demodulating
(a no-op there) and applies it to the styles of ToRGB, as NVIDIA does.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.checkpoint import CheckpointError
from models.nets.stylegan2 import StyleGAN2Config

ROSINALITY_LR_MLP = 0.01  # rosinality's default for the mapping layers


class RosinalityError(CheckpointError):
    """A .pt file that is not a rosinality StyleGAN2 checkpoint we can read."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load with weights_only (argparse.Namespace allowed as data)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise RosinalityError(f"{path}: no such file") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise RosinalityError(f"{path}: not a readable weights-only checkpoint: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("g_ema"), dict):
        raise RosinalityError(f"{path}: no g_ema state dict: not a rosinality checkpoint")
    return data


def convert(data: dict[str, Any], *, path: Path) -> tuple[StyleGAN2Config, dict[str, Tensor]]:
    """Our config and an NVIDIA-layout state dict from a rosinality checkpoint dict."""
    g: dict[str, Tensor] = data["g_ema"]
    try:
        return _convert(g, data, path=path)
    except (KeyError, ValueError, IndexError) as exc:
        raise RosinalityError(f"{path}: unexpected g_ema layout ({exc})") from None


def _convert(
    g: dict[str, Tensor], data: dict[str, Any], *, path: Path
) -> tuple[StyleGAN2Config, dict[str, Tensor]]:
    style_layers = sorted(int(m[1]) for k in g if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if not style_layers or "input.input" not in g:
        raise RosinalityError(f"{path}: no mapping (style.N) or constant input in g_ema")
    n_mlp = len(style_layers)
    w_dim = int(g["style.1.weight"].shape[0])
    z_dim = int(g["style.1.weight"].shape[1])
    n_convs = len({m[1] for k in g if (m := re.fullmatch(r"convs\.(\d+)\..*", k))})
    log_size = n_convs // 2 + 2
    size = 2**log_size
    channels = {res: int(g[f"convs.{2 * i}.conv.weight"].shape[1]) for i, res in _blocks(size)}
    # rosinality's channels: 512 up to 32 px, then 256 * multiplier at 64 px, halving.
    channel_base = channels[64] * 64 if size >= 64 else 32768
    lr_mlp = ROSINALITY_LR_MLP
    args = data.get("args")
    if isinstance(args, argparse.Namespace) and hasattr(args, "lr_mlp"):
        lr_mlp = float(args.lr_mlp)
    config = StyleGAN2Config(
        z_dim=z_dim,
        w_dim=w_dim,
        img_resolution=size,
        img_channels=int(g["to_rgb1.conv.weight"].shape[1]),
        mapping_layers=n_mlp,
        mapping_lr_multiplier=lr_mlp,
        channel_base=channel_base,
        channel_max=int(g["input.input"].shape[1]),
        num_fp16_res=0,
        conv_clamp=None,
        architecture="skip",
    )
    out: dict[str, Tensor] = {}
    for i, layer in enumerate(style_layers):
        out[f"mapping.fc{i}.weight"] = g[f"style.{layer}.weight"]
        out[f"mapping.fc{i}.bias"] = g[f"style.{layer}.bias"]
    latent_avg = data.get("latent_avg")
    out["mapping.w_avg"] = (
        latent_avg.reshape(w_dim).float() if isinstance(latent_avg, Tensor) else torch.zeros(w_dim)
    )
    out["synthesis.b4.const"] = g["input.input"][0]
    _styled(out, g, "synthesis.b4.conv1", "conv1", g["noises.noise_0"])
    _to_rgb(out, g, "synthesis.b4.torgb", "to_rgb1")
    for i, res in _blocks(size):
        block = f"synthesis.b{res}"
        _styled(out, g, f"{block}.conv0", f"convs.{2 * i}", g[f"noises.noise_{2 * i + 1}"])
        _styled(out, g, f"{block}.conv1", f"convs.{2 * i + 1}", g[f"noises.noise_{2 * i + 2}"])
        _to_rgb(out, g, f"{block}.torgb", f"to_rgbs.{i}")
    return config, out


def _blocks(size: int) -> list[tuple[int, int]]:
    """(index, resolution) of the upsampling blocks: (0, 8), (1, 16), ..."""
    return [(i, 2 ** (i + 3)) for i in range(int(math.log2(size)) - 2)]


def _styled(
    out: dict[str, Tensor], g: dict[str, Tensor], ours: str, theirs: str, noise: Tensor
) -> None:
    out[f"{ours}.weight"] = g[f"{theirs}.conv.weight"][0]  # (1, O, I, k, k) -> (O, I, k, k)
    out[f"{ours}.affine.weight"] = g[f"{theirs}.conv.modulation.weight"]
    out[f"{ours}.affine.bias"] = g[f"{theirs}.conv.modulation.bias"]
    out[f"{ours}.noise_strength"] = g[f"{theirs}.noise.weight"].reshape(())
    out[f"{ours}.noise_const"] = noise.reshape(noise.shape[-2:])
    out[f"{ours}.bias"] = g[f"{theirs}.activate.bias"]


def _to_rgb(out: dict[str, Tensor], g: dict[str, Tensor], ours: str, theirs: str) -> None:
    out[f"{ours}.weight"] = g[f"{theirs}.conv.weight"][0]
    out[f"{ours}.affine.weight"] = g[f"{theirs}.conv.modulation.weight"]
    out[f"{ours}.affine.bias"] = g[f"{theirs}.conv.modulation.bias"]
    out[f"{ours}.bias"] = g[f"{theirs}.bias"].reshape(-1)
