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
from models.pixels import Box, Grade, resize, to_yuv420

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
        return pad(image, fit_box(w, h, width, height), width, height)
    if fill == "mirror":
        if width * h >= height * w:
            return widen(image, h, max(w, round(h * width / height)), mode="symmetric")
        return widen(image, max(h, round(w * height / width)), w, mode="symmetric")
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def fit_box(w: int, h: int, width: int, height: int) -> Box:
    """Where `fit` puts a w x h picture in a width x height frame: as large as fits, centred.

    Sides and offsets are even (yuv420p's chroma is halved); a side that fills
    the frame is the frame's own, odd or not.
    """
    scale = min(width / w, height / h)
    inner_w = _even_within(w * scale, width)
    inner_h = _even_within(h * scale, height)
    return Box(
        _even_floor((width - inner_w) / 2), _even_floor((height - inner_h) / 2), inner_w, inner_h
    )


def _even_within(length: float, full: int) -> int:
    """`length` rounded to an even number of pixels, or `full` where it fills the frame."""
    if round(length) >= full:
        return full
    return min(full, max(2, 2 * round(length / 2)))


def _even_floor(length: float) -> int:
    return 2 * int(length // 2)


def pad(image: Tensor, box: Box, width: int, height: int) -> Tensor:
    """The picture scaled into `box` of a black width x height picture: bars made in floats."""
    inner = resize(image, (box.height, box.width))
    canvas = torch.full(
        (*image.shape[:-2], height, width), -1.0, dtype=image.dtype, device=image.device
    )
    canvas[..., box.top : box.top + box.height, box.left : box.left + box.width] = inner
    return canvas


def place_boxed(image: Tensor, width: int, height: int, fill: str) -> tuple[Tensor, Box | None]:
    """`place`, with `fit`'s bars left to the frame conversion: the picture as it is, and its box.

    The live frame and offline renders take this path: the letterbox is then
    made on the uint8 planes (models.pixels.to_yuv420), with sharp edges and no
    float work at the frame's size; `place`'s float bars are for thumbnails and
    for a picture mixed with another deck's.
    """
    if fill == "fit":
        return image, fit_box(image.shape[-1], image.shape[-2], width, height)
    return place(image, width, height, fill), None


def frame_yuv(
    image: Tensor, width: int, height: int, fill: str, grade: Grade | None = None
) -> Tensor:
    """A picture framed by `fill` and converted to a width x height yuv420p frame (uint8)."""
    placed, box = place_boxed(image, width, height, fill)
    return to_yuv420(placed, (width, height), grade, box)


def canvas_size(size: tuple[int, int], resolution: int) -> tuple[int, int]:
    """(width, height) of a canvas setting; (0, 0) (native) = the model's own square."""
    width, height = size
    return (width, height) if width and height else (resolution, resolution)
