"""Frame conversion: colours survive RGB -> yuv420p -> PyAV -> RGB."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from models.pixels import resize, to_rgb_uint8, to_yuv420


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
    # same picture, at a fraction of the cost.
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32) * 1.6 - 0.8  # inside the range: no clamping
    fast = to_yuv420(image, 128).int()
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
