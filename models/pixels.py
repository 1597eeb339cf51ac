"""Generator output to pixels, on the generator's device: one resize, one uint8 conversion.

The live engine and the offline renderer both make their frames here, so a
render at the live size is the live frame: RGB -> YUV (BT.601 limited range,
what VP8 and H.264 expect) at the generator's own size, then the planes
scaled to the frame, yuv420p uint8. On CUDA all of it runs on the GPU and one
uint8 frame is copied back. On the CPU the scaling is libswscale's bicubic
through PyAV (SIMD on uint8): a 128 x 224 picture to 1920 x 1080 in about
1 ms on one core, where torch's float bicubic and the rounding of the big
planes took 65 ms (server/bench/stream.py's stage table). (NVIDIA's own
rounding, for parity with gen_images.py, is models.sampling.nvidia_uint8.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import Interpolation
from torch import Tensor


class Grade(Protocol):
    """A colour grade: rgb' = level * clamp(matrix @ rgb + offset, 0, 255), rgb in 0..255."""

    @property
    def matrix(self) -> tuple[tuple[float, float, float], ...]: ...
    @property
    def offset(self) -> tuple[float, float, float]: ...
    @property
    def level(self) -> float: ...
    @property
    def is_identity(self) -> bool: ...


@dataclass(frozen=True)
class Box:
    """Where a picture lies in its frame, in the frame's pixels; outside it, black.

    Every side even, so yuv420p's halved chroma planes cut along the same lines.
    """

    left: int
    top: int
    width: int
    height: int


# BT.601 limited range ("studio swing"): Y in 16..235, U and V in 16..240.
_RGB_TO_YUV = torch.tensor(
    [
        [0.257, 0.504, 0.098],
        [-0.148, -0.291, 0.439],
        [0.439, -0.368, -0.071],
    ]
)
_YUV_OFFSET = torch.tensor([16.0, 128.0, 128.0])
# libswscale's kernel for the CPU scaling: bicubic, as torch's on the GPU path.
# ACCURATE_RND leaves the SIMD path (about 10x slower) for no visible gain.
SWSCALE = Interpolation.BICUBIC


def resize(image: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize (B, C, H, W) to (B, C, size, size), or to (height, width); a no-op at the same size.

    Down (in either direction): bilinear with antialiasing; up: bicubic.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if image.shape[-1] == width and image.shape[-2] == height:
        return image
    downscale = width < image.shape[-1] or height < image.shape[-2]
    mode = "bilinear" if downscale else "bicubic"
    return F.interpolate(
        image, size=(height, width), mode=mode, align_corners=False, antialias=downscale
    )


def to_255(image: Tensor) -> Tensor:
    """(B, C, H, W) in [-1, 1] -> float32 in 0..255 (clamped), the scale every conversion uses."""
    return (image.float().clamp(-1.0, 1.0) + 1.0) * 127.5


def to_rgb_uint8(image: Tensor) -> Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8, on the image's device."""
    return to_255(image).round().to(torch.uint8).permute(0, 2, 3, 1)


def to_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8 numpy on the CPU (to_rgb_uint8's values)."""
    return to_rgb_uint8(images.detach()).cpu().numpy()


def apply_grade(rgb: Tensor, grade: Grade) -> Tensor:
    """(B, 3, H, W) RGB in 0..255 through the master grade: one 3x3 map, clamp, level."""
    matrix = torch.tensor(grade.matrix, dtype=rgb.dtype, device=rgb.device)
    offset = torch.tensor(grade.offset, dtype=rgb.dtype, device=rgb.device)
    graded = torch.einsum("ij,bjhw->bihw", matrix, rgb) + offset[None, :, None, None]
    return graded.clamp(0.0, 255.0) * grade.level


def to_yuv420(
    image: Tensor,
    size: int | tuple[int, int] | None = None,
    grade: Grade | None = None,
    box: Box | None = None,
) -> Tensor:
    """(1, 3, H, W) in [-1, 1] -> (h * 3 // 2, w) uint8 planar yuv420p.

    `size`: the frame's (width, height), one number for a square, or None for
    the picture's own size. The layout is what
    `av.VideoFrame.from_ndarray(..., format="yuv420p")` takes: the Y plane,
    then U and V (each w/2 x h/2) packed row after row below it.

    Colour conversion is linear, so it runs at the generator's own size and
    only then are the planes scaled: Y to the frame, U and V straight to half
    of it. For a 128 px model shown at 1080p that is a fraction of converting
    at 1080p. The master grade (`grade`) is applied there too, on the same
    device. At the picture's own size nothing is scaled (the chroma halved);
    otherwise a CPU picture is scaled by libswscale (`scale_planes_swscale`),
    any other device's by torch on that device (`scale_planes_torch`).

    `box`: the picture fills only that part of the frame and the rest is black
    (the grade's black, as bars drawn into the picture would be): a letterbox
    made on the uint8 planes, so its edges are sharp and the full-size frame
    costs no float work.
    """
    _, _, height, width = image.shape
    if size is None:
        out_w, out_h = width, height
    elif isinstance(size, int):
        out_w = out_h = size
    else:
        out_w, out_h = size
    if out_w % 2 or out_h % 2:
        raise ValueError(f"yuv420p needs even sides, got {out_w}x{out_h}")
    if box is not None:
        inner = to_yuv420(image, (box.width, box.height), grade)
        black = to_yuv(image.new_full((1, 3, 1, 1), -1.0), grade).round().clamp(0, 255)
        return letterbox_planes(inner, black.flatten().to(torch.uint8), box, out_w, out_h)
    yuv = to_yuv(image, grade)  # (1, 3, H, W) at the picture's size
    if (out_w, out_h) != (width, height) and yuv.device.type == "cpu":
        return scale_planes_swscale(yuv, out_w, out_h)
    return scale_planes_torch(yuv, out_w, out_h)


def letterbox_planes(inner: Tensor, black: Tensor, box: Box, width: int, height: int) -> Tensor:
    """yuv420p `inner` (box-sized) at `box` in a width x height frame of `black` (Y, U, V)."""
    if any(v % 2 for v in (box.left, box.top, box.width, box.height)):
        raise ValueError(f"a letterbox needs even sides and offsets, got {box}")
    if box.left < 0 or box.top < 0 or box.left + box.width > width or box.top + box.height > height:
        raise ValueError(f"{box} does not lie inside a {width}x{height} frame")
    out = inner.new_empty((height * 3 // 2, width))
    pairs = zip(_planes(out, width, height), _planes(inner, box.width, box.height), strict=True)
    for plane, (into, part) in enumerate(pairs):
        step = 1 if plane == 0 else 2  # the chroma planes are halved each way
        into.fill_(black[plane])
        top, left = box.top // step, box.left // step
        into[top : top + part.shape[0], left : left + part.shape[1]] = part
    return out


def _planes(yuv: Tensor, width: int, height: int) -> tuple[Tensor, Tensor, Tensor]:
    """Views of the Y, U and V planes of packed yuv420p (height * 3 // 2, width)."""
    flat = yuv.view(-1)
    luma, quarter = width * height, width * height // 4
    return (
        flat[:luma].view(height, width),
        flat[luma : luma + quarter].view(height // 2, width // 2),
        flat[luma + quarter : luma + 2 * quarter].view(height // 2, width // 2),
    )


def to_yuv(image: Tensor, grade: Grade | None = None) -> Tensor:
    """(B, 3, H, W) in [-1, 1] -> float YUV (BT.601 limited range, 0..255 scale), graded."""
    rgb = to_255(image)  # (B, 3, H, W) 0..255
    if grade is not None and not grade.is_identity:
        rgb = apply_grade(rgb, grade)
    matrix = _RGB_TO_YUV.to(rgb.device)
    offset = _YUV_OFFSET.to(rgb.device)
    return torch.einsum("ij,bjhw->bihw", matrix, rgb) + offset[None, :, None, None]


def scale_planes_torch(yuv: Tensor, width: int, height: int) -> Tensor:
    """(1, 3, H, W) float YUV -> (height * 3 // 2, width) uint8 yuv420p, on yuv's device.

    Y to the frame, U and V straight to half of it (averaging 2x2 blocks when
    downscaling, as the encoder's own downsampler would), with `resize`'s
    kernels; rounded once at the end. The GPU path, and every path at the
    picture's own size.
    """
    luma = resize(yuv[:, :1], (height, width))  # (1, 1, h, w)
    chroma = resize(yuv[:, 1:], (height // 2, width // 2))  # (1, 2, h/2, w/2)
    planes = torch.cat([luma.reshape(-1), chroma.reshape(-1)])  # Y, then U, then V
    return planes.round().clamp(0, 255).to(torch.uint8).reshape(height * 3 // 2, width)


def scale_planes_swscale(yuv: Tensor, width: int, height: int) -> Tensor:
    """(1, 3, H, W) float YUV on the CPU -> (height * 3 // 2, width) uint8 yuv420p by libswscale.

    Rounded to yuv444p at the picture's size, then one SIMD pass scales Y to
    the frame and U, V to half of it (bicubic: SWSCALE; chroma sited at the
    centre, as `scale_planes_torch`). One thread, and a frame of its own per
    call: a VideoFrame's scaler belongs to one thread (FIELD-NOTES).
    """
    planes = yuv[0].round().clamp(0, 255).to(torch.uint8).numpy()  # (3, H, W) yuv444p
    small = av.VideoFrame.from_ndarray(planes, format="yuv444p")
    scaled = small.reformat(
        width=width, height=height, format="yuv420p", interpolation=SWSCALE, threads=1
    )
    return torch.from_numpy(scaled.to_ndarray())  # (h * 3 // 2, w)
