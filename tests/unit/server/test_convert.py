"""Frame conversion: colours survive RGB -> yuv420p -> PyAV -> RGB."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from server.convert import resize, to_rgb_uint8, to_yuv420


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
    image = torch.tensor(rgb).reshape(1, 3, 1, 1).expand(1, 3, 16, 24).contiguous()
    yuv = to_yuv420(image)
    assert yuv.shape == (24, 24) and yuv.dtype == torch.uint8
    back = av.VideoFrame.from_ndarray(yuv.numpy(), format="yuv420p").to_ndarray(format="rgb24")
    assert back.shape == (16, 24, 3)
    assert np.abs(back.astype(int) - np.array(expected)).max() <= 3


def test_odd_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        to_yuv420(torch.zeros(1, 3, 15, 16))


def test_resize_and_uint8() -> None:
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert resize(image, 32) is image
    assert resize(image, 64).shape == (1, 3, 64, 64)
    assert resize(image, 16).shape == (1, 3, 16, 16)
    rgb = to_rgb_uint8(image)
    assert rgb.shape == (1, 32, 32, 3) and rgb.dtype == torch.uint8
