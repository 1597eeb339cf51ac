"""The test card for an output sent over NDI, drawn on the server (web/testcard.js's twin).

`/output/testcard 1` replaces the picture on every output: the projector pages
draw their card in the page; an NDI output has no page, so its card is drawn
here, on the NDI sender's thread, into a canvas-sized frame where the output's
slice lies, and then goes through the same warp as the picture (corner-pin or
mesh, blend, mask). What it shows is the page's card: a grid in canvas pixels
(16 cells across the canvas, every fourth line brighter, so lines run on across
neighbouring outputs), circles (round when the projector's aspect is right),
the output's name, its edges framed in red with top/bottom/left/right, and its
blend zones hatched. A card is drawn once per mapping and canvas size.
"""

from __future__ import annotations

import math

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from server.media.frame import Frame
from server.outputs.mapping import OutputMapping

BACKGROUND = (0x2A, 0x34, 0x42)
GRID_MAJOR = (0xF0, 0xF0, 0xF0)
GRID_MINOR = (0x8A, 0x96, 0xA8)
CIRCLE = (0xFF, 0xD2, 0x3F)
EDGE = (0xFF, 0x3B, 0x30)
ZONE = (255, 80, 200)
TEXT = (255, 255, 255)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font (Pillow >= 10.1)
    except TypeError:
        return ImageFont.load_default()


def slice_box(mapping: OutputMapping, width: int, height: int) -> tuple[int, int, int, int]:
    """The slice's pixels on the canvas, x0 y0 x1 y1: what the warp's lookup reads."""
    rx, ry, rw, rh = mapping.rect
    x0, y0 = math.floor(rx * width), math.floor(ry * height)
    x1 = min(width, max(x0 + 1, math.ceil((rx + rw) * width)))
    y1 = min(height, max(y0 + 1, math.ceil((ry + rh) * height)))
    return x0, y0, x1, y1


def draw_card(mapping: OutputMapping, width: int, height: int) -> Image.Image:
    """The card for one output's slice, at the slice's own pixel size (RGB)."""
    x0, y0, x1, y1 = slice_box(mapping, width, height)
    cw, ch = x1 - x0, y1 - y0
    card = Image.new("RGB", (cw, ch), BACKGROUND)
    draw = ImageDraw.Draw(card)
    pitch = width / 16  # square grid cells in canvas pixels, counted from the canvas origin
    line = max(1, round(min(cw, ch) / 200))
    for k in range(17):
        colour = GRID_MAJOR if k % 4 == 0 else GRID_MINOR
        x = k * pitch - x0
        if -line <= x <= cw + line:
            draw.line([(x, 0), (x, ch)], fill=colour, width=line)
    for k in range(math.ceil(height / pitch) + 1):
        colour = GRID_MAJOR if k % 4 == 0 else GRID_MINOR
        y = k * pitch - y0
        if -line <= y <= ch + line:
            draw.line([(0, y), (cw, y)], fill=colour, width=line)
    r = 0.45 * min(cw, ch)
    ring = max(2, 2 * line)
    draw.ellipse([cw / 2 - r, ch / 2 - r, cw / 2 + r, ch / 2 + r], outline=CIRCLE, width=ring)
    for fx, fy in ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)):
        cx, cy, q = fx * cw, fy * ch, r / 4
        draw.ellipse([cx - q, cy - q, cx + q, cy + q], outline=CIRCLE, width=ring)
    # Blend zones: tinted and hatched, over the grid.
    left, right, top, bottom = mapping.blend
    zones = [
        (0, 0, left * cw, ch),
        (cw - right * cw, 0, cw, ch),
        (0, 0, cw, top * ch),
        (0, ch - bottom * ch, cw, ch),
    ]
    overlay = Image.new("RGBA", (cw, ch), (0, 0, 0, 0))
    hatch = Image.new("RGBA", (cw, ch), (*ZONE, 64))
    lines = ImageDraw.Draw(hatch)
    for d in range(-ch, cw + ch, 24):
        lines.line([(d, 0), (d + ch, ch)], fill=(255, 120, 220, 150), width=max(1, line))
    for zx0, zy0, zx1, zy1 in zones:
        box = (round(zx0), round(zy0), round(zx1), round(zy1))
        if box[2] > box[0] and box[3] > box[1]:
            overlay.alpha_composite(hatch.crop(box), dest=box[:2])
    card = Image.alpha_composite(card.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(card)
    edge = max(2, round(min(cw, ch) / 60))
    draw.rectangle(
        [edge // 2, edge // 2, cw - 1 - edge // 2, ch - 1 - edge // 2], outline=EDGE, width=edge
    )
    big = _font(max(8, round(min(cw, ch) / 6)))
    draw.text((cw / 2, ch / 2), mapping.name, fill=TEXT, font=big, anchor="mm")
    small = _font(max(8, round(min(cw, ch) / 28)))
    pad = min(cw, ch) / 12
    for label, (x, y) in (
        ("top", (cw / 2, pad)),
        ("bottom", (cw / 2, ch - pad)),
        ("left", (pad * 1.5, ch / 2)),
        ("right", (cw - pad * 1.5, ch / 2)),
    ):
        draw.text((x, y), label, fill=TEXT, font=small, anchor="mm")
    return card


def card_frame(mapping: OutputMapping, like: Frame) -> Frame:
    """A canvas-sized yuv420p frame holding the card where the slice lies (black elsewhere)."""
    canvas = Image.new("RGB", (like.width, like.height), (0, 0, 0))
    x0, y0, _, _ = slice_box(mapping, like.width, like.height)
    canvas.paste(draw_card(mapping, like.width, like.height), (x0, y0))
    video = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
    yuv = video.reformat(format="yuv420p").to_ndarray()
    return Frame(
        index=like.index,
        yuv=yuv,
        width=like.width,
        height=like.height,
        rendered_at=like.rendered_at,
        render_ms=like.render_ms,
        applied_at=like.applied_at,
    )


class CardCache:
    """One output's card, redrawn only when its mapping or the canvas size changes."""

    def __init__(self) -> None:
        self._key: tuple[OutputMapping, int, int] | None = None
        self._yuv: np.ndarray | None = None

    def frame(self, mapping: OutputMapping, like: Frame) -> Frame:
        """The card in place of `like` (its index and times kept, so receivers stay in sync)."""
        key = (mapping, like.width, like.height)
        if key != self._key or self._yuv is None:
            self._yuv, self._key = card_frame(mapping, like).yuv, key
        return Frame(
            index=like.index,
            yuv=self._yuv,
            width=like.width,
            height=like.height,
            rendered_at=like.rendered_at,
            render_ms=like.render_ms,
            applied_at=like.applied_at,
        )
