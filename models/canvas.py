"""The canvas: how a generator's picture becomes a frame of any shape (W x H).

`native`: the generator paints the canvas's shape itself (`paint`): DCGAN and
StyleGAN2 widen their first feature map, StyleGAN3 samples its Fourier input
over a wider grid (models/nets/*, each an `aspect` keyword that leaves the
square picture untouched). The picture comes back at about the canvas's
aspect and the one shared resize (models.pixels) scales it to W x H.

The other fills take the square picture as it is (`place`):
`crop` cuts the middle band out, `fit` letterboxes it with black bars,
`stretch` scales it to the canvas, `mirror` tiles it outward with mirrored
copies. Live (server/engine.py) and offline (models/render.py) frame here, so
a render at the live size is the live frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from models.fills import FILLS
from models.nets.ops import widen
from models.pixels import resize

FALLBACK = "crop"  # what `native` does where the network cannot paint the shape


def aspect_of(width: int, height: int) -> float:
    """The canvas's width / height."""
    return width / height


def paints_any_aspect(module: nn.Module) -> bool:
    """True for a generator that paints a canvas of any shape itself (`native`)."""
    part = getattr(module, "synthesis", module)
    return bool(getattr(type(part), "PAINTS_ANY_ASPECT", False))


def effective_fill(fill: str, module: nn.Module | None) -> str:
    """The fill a generator gets: `native` falls back to FALLBACK where it cannot paint it."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    if fill == "native" and (module is None or not paints_any_aspect(module)):
        return FALLBACK
    return fill


def paint_aspect(fill: str, width: int, height: int) -> float:
    """The aspect to ask the generator for: the canvas's under `native`, else 1 (square)."""
    return aspect_of(width, height) if fill == "native" else 1.0


def aspect_kwargs(aspect: float) -> dict[str, Any]:
    """Keyword arguments for a generator call: none for a square, so it runs as it always did."""
    return {} if aspect == 1.0 else {"aspect": aspect}


def place(image: Tensor, width: int, height: int, fill: str) -> Tensor:
    """A picture (B, C, h, w) in [-1, 1] -> the canvas's shape, by `fill`'s geometry.

    Returns a picture at the canvas's aspect, still at about the generator's
    scale (the frame conversion scales it to W x H once), except `fit`, whose
    black bars are made at W x H so their edges stay sharp. `native` and
    `stretch` return the picture as it is: the conversion scales it to W x H.
    """
    if fill in ("native", "stretch"):
        return image
    h, w = image.shape[-2], image.shape[-1]
    if fill == "crop":
        if width * h >= height * w:  # the canvas is wider: keep every column
            rows = max(1, round(w * height / width))
            top = (h - rows) // 2
            return image[..., top : top + rows, :]
        cols = max(1, round(h * width / height))
        left = (w - cols) // 2
        return image[..., :, left : left + cols]
    if fill == "fit":
        scale = min(width / w, height / h)
        inner_w = min(width, round(w * scale))
        inner_h = min(height, round(h * scale))
        inner = resize(image, (inner_h, inner_w))
        canvas = torch.full(
            (*image.shape[:-2], height, width), -1.0, dtype=image.dtype, device=image.device
        )
        top, left = (height - inner_h) // 2, (width - inner_w) // 2
        canvas[..., top : top + inner_h, left : left + inner_w] = inner
        return canvas
    if fill == "mirror":
        if width * h >= height * w:
            return widen(image, h, max(w, round(h * width / height)), mode="symmetric")
        return widen(image, max(h, round(w * height / width)), w, mode="symmetric")
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def canvas_size(size: tuple[int, int], resolution: int) -> tuple[int, int]:
    """(width, height) of a canvas setting; (0, 0) (native) = the model's own square."""
    width, height = size
    return (width, height) if width and height else (resolution, resolution)
