"""Frame conversion: colours survive RGB -> yuv420p -> PyAV -> RGB."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import torch

from models.pixels import (
    resize,
    scale_planes_swscale,
    scale_planes_torch,
    to_rgb_uint8,
    to_yuv,
    to_yuv420,
)


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [
        ((1.0, -1.0, -1.0), (255, 0, 0)),
        ((-1.0, 1.0, -1.0), (0, 255, 0)),
        ((-1.0, -1.0, 1.0), (0, 0, 255)),
        ((-1.0, -1.0, -1.0), (0, 0, 0)),
        ((1.0, 1.0, 1.0), (255, 255, 255)),
        ((0.0, 0.0, 0.0), (128, 128, 128)),
    ],
)
def test_solid_colours_round_trip(
    rgb: tuple[float, float, float], expected: tuple[int, int, int]
) -> None:
    image = torch.tensor(rgb).reshape(1, 3, 1, 1).expand(1, 3, 16, 16).contiguous()
    for size in (None, 16, 64):
        yuv = to_yuv420(image, size)
        side = size or 16
        assert yuv.shape == (side * 3 // 2, side) and yuv.dtype == torch.uint8
        back = av.VideoFrame.from_ndarray(yuv.numpy(), format="yuv420p").to_ndarray(format="rgb24")
        assert back.shape == (side, side, 3)
        assert np.abs(back.astype(int) - np.array(expected)).max() <= 3


def test_odd_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        to_yuv420(torch.zeros(1, 3, 16, 16), 15)
    with pytest.raises(ValueError, match="even"):
        to_yuv420(torch.zeros(1, 3, 16, 16), (32, 17))


def test_a_wide_frame_is_its_own_shape_and_colour() -> None:
    # A canvas of any shape (issue 19): (width, height), planes row after row.
    red = torch.tensor((1.0, -1.0, -1.0)).reshape(1, 3, 1, 1).expand(1, 3, 16, 24).contiguous()
    for size, (w, h) in ((None, (24, 16)), ((64, 36), (64, 36)), ((40, 16), (40, 16))):
        yuv = to_yuv420(red, size)
        assert yuv.shape == (h * 3 // 2, w)
        back = av.VideoFrame.from_ndarray(yuv.numpy(), format="yuv420p").to_ndarray(format="rgb24")
        assert back.shape == (h, w, 3)
        assert np.abs(back.astype(int) - np.array((255, 0, 0))).max() <= 3


def test_converting_then_scaling_matches_scaling_then_converting() -> None:
    # Colour conversion is linear: doing it at the model's size first is the
    # same picture, at a fraction of the cost (with one kernel on both sides:
    # torch's, as the GPU path scales).
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 1.6 - 0.8  # inside the range: no clamping
    fast = scale_planes_torch(to_yuv(image), 128, 128).int()
    slow = to_yuv420(resize(image, 128), 128).int()
    assert (fast[:128] - slow[:128]).abs().float().mean() < 1.0  # luma
    assert (fast - slow).abs().max() <= 24  # bicubic overshoot at sharp edges only


def test_resize_and_uint8() -> None:
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert resize(image, 32) is image
    assert resize(image, 64).shape == (1, 3, 64, 64)
    assert resize(image, 16).shape == (1, 3, 16, 16)
    rgb = to_rgb_uint8(image)
    assert rgb.shape == (1, 32, 32, 3) and rgb.dtype == torch.uint8


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two uint8 pictures, in dB."""
    mse = (a.double() - b.double()).pow(2).mean().item()
    return 10.0 * math.log10(255.0**2 / mse) if mse else math.inf


def smooth_picture(height: int, width: int) -> torch.Tensor:
    """(1, 3, height, width) in [-1, 1]: blobs and ramps, a generator's kind of picture."""
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    r = torch.sin(6.0 * x + 2.0 * y)
    g = torch.cos(5.0 * y - 3.0 * x * y)
    b = torch.sin(9.0 * (x - 0.5) ** 2 + 7.0 * (y - 0.4) ** 2)
    return (torch.stack([r, g, b]) * 0.9)[None]


def test_a_cpu_frame_is_scaled_by_swscale_close_to_torchs_bicubic() -> None:
    # The CPU path (libswscale bicubic on uint8 planes) and the GPU path (torch's
    # float bicubic) make the same frame up to the kernels' rounding: 1080p from a
    # 128 x 224 picture, as the shipped default paints a 16:9 canvas.
    image = smooth_picture(128, 224)
    yuv = to_yuv(image)
    cpu = to_yuv420(image, (1920, 1080))
    assert torch.equal(cpu, scale_planes_swscale(yuv, 1920, 1080))
    gpu = scale_planes_torch(yuv, 1920, 1080)
    assert cpu.shape == gpu.shape == (1080 * 3 // 2, 1920) and cpu.dtype == torch.uint8
    luma, chroma = slice(0, 1080), slice(1080, None)
    assert psnr(cpu[luma], gpu[luma]) > 50.0  # 55 here; a 1 px shift of U alone is 48.6
    assert psnr(cpu[chroma], gpu[chroma]) > 50.0
    assert (cpu.int() - gpu.int()).abs().max() <= 2
    # Downscaling too (a model larger than the canvas), and odd plane sizes (54 / 2 = 27).
    for width, height in ((64, 36), (96, 54)):
        small = to_yuv420(image, (width, height))
        assert small.shape == (height * 3 // 2, width)
        assert psnr(small, scale_planes_torch(yuv, width, height)) > 45.0


def centre(plane: torch.Tensor, dim: int) -> float:
    """Where along `dim` a plane differs from its background, weighted by how much."""
    weight = (plane.double() - plane.double().median()).abs().sum(dim=1 - dim)
    return float((weight * torch.arange(len(weight))).sum() / weight.sum())


@pytest.mark.parametrize("dim", [0, 1], ids=["row", "column"])
def test_swscale_sites_every_plane_where_torch_does(dim: int) -> None:
    # One coloured line on grey, scaled 8x: its centre lands on the same output
    # pixel in Y and in the half-size U and V on both paths (a chroma plane
    # sited half a pixel off would be 0.5 away).
    image = torch.zeros(1, 3, 16, 16)
    line = (slice(None), slice(None), 5, slice(None)) if dim == 0 else (..., 7)
    image[line] = torch.tensor([0.8, -0.6, 0.4]).reshape(1, 3, 1)
    yuv = to_yuv(image)
    cpu, gpu = scale_planes_swscale(yuv, 128, 128), scale_planes_torch(yuv, 128, 128)
    for frame in (cpu, gpu):
        assert abs(centre(frame[:128], dim) - ((5 if dim == 0 else 7) + 0.5) * 8 + 0.5) < 0.2
    for offset in (128 * 128, 128 * 128 + 64 * 64):  # U, then V
        cpu_plane, gpu_plane = (
            f.reshape(-1)[offset : offset + 64 * 64].reshape(64, 64) for f in (cpu, gpu)
        )
        assert abs(centre(cpu_plane, dim) - centre(gpu_plane, dim)) < 0.15


def test_at_the_pictures_own_size_nothing_is_scaled() -> None:
    # The square default (canvas = model size) is the torch path bit for bit.
    image = smooth_picture(32, 32)
    assert torch.equal(to_yuv420(image), scale_planes_torch(to_yuv(image), 32, 32))
    assert torch.equal(to_yuv420(image, 32), to_yuv420(image))


def test_a_picture_on_another_device_is_converted_and_scaled_there() -> None:
    # The GPU path, checked on a CPU-only machine with torch's `meta` device (shapes,
    # no data): conversion and scaling stay on the picture's device, and what comes
    # back is the one uint8 frame to copy (libswscale would need its data on the CPU).
    picture = torch.zeros(1, 3, 128, 224, device="meta")
    frame = to_yuv420(picture, (1920, 1080))
    assert frame.device.type == "meta"
    assert frame.shape == (1080 * 3 // 2, 1920) and frame.dtype == torch.uint8
