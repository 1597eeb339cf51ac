"""Generator output to an encoder-ready frame, on the generator's device.

The frame is converted once, here: resize, RGB -> YUV 4:2:0 (BT.601 limited
range, what VP8 and H.264 expect), uint8. On CUDA all of it runs on the GPU
and one small array is copied back per frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# BT.601 limited range ("studio swing"): Y in 16..235, U and V in 16..240.
_RGB_TO_YUV = torch.tensor(
    [
        [0.257, 0.504, 0.098],
        [-0.148, -0.291, 0.439],
        [0.439, -0.368, -0.071],
    ]
)
_YUV_OFFSET = torch.tensor([16.0, 128.0, 128.0])


def resize(image: Tensor, size: int) -> Tensor:
    """Square-resize (B, 3, H, W) to (B, 3, size, size); a no-op at the same size."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    downscale = size < image.shape[-1]
    mode = "bilinear" if downscale else "bicubic"
    return F.interpolate(
        image, size=(size, size), mode=mode, align_corners=False, antialias=downscale
    )


def to_rgb_uint8(image: Tensor) -> Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    scaled = (image.float().clamp(-1.0, 1.0) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1)


def to_yuv420(image: Tensor) -> Tensor:
    """(1, 3, H, W) in [-1, 1], H and W even -> (H * 3 // 2, W) uint8 planar yuv420p.

    The layout is what `av.VideoFrame.from_ndarray(..., format="yuv420p")` takes:
    the Y plane, then U and V (each H/2 x W/2) packed row after row below it.
    """
    _, _, height, width = image.shape
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even sides, got {width}x{height}")
    rgb = (image[0].float().clamp(-1.0, 1.0) + 1.0) * 127.5  # (3, H, W) 0..255
    matrix = _RGB_TO_YUV.to(rgb.device)
    offset = _YUV_OFFSET.to(rgb.device)
    yuv = torch.einsum("ij,jhw->ihw", matrix, rgb) + offset[:, None, None]  # (3, H, W)
    # Chroma: average each 2x2 block, as the encoder's own downsampler would.
    chroma = F.avg_pool2d(yuv[1:].unsqueeze(0), kernel_size=2).squeeze(0)  # (2, H/2, W/2)
    planes = torch.cat([yuv[0].reshape(-1), chroma.reshape(-1)])  # Y, then U, then V
    return planes.round().clamp(0, 255).to(torch.uint8).reshape(height * 3 // 2, width)
