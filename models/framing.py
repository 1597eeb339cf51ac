"""Framing: how a picture that is not square becomes the square a model sees.

Letterboxed (black bars) or centre-cropped, as the model's training frames
were. Training data (models.dataset), live input (server/react) and
`ganvj render react` all frame here, so a model sees the same picture live
and offline as it saw in training.
"""

from __future__ import annotations

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.checkpoint import LoadedModel

FITS = ("letterbox", "crop")


def trained_fit(model: LoadedModel) -> str:
    """How the model's training frames were squared: "letterbox" or "crop"."""
    training = model.metadata.get("training", {})
    dataset = training.get("dataset", {}) if isinstance(training, dict) else {}
    fit = dataset.get("fit") if isinstance(dataset, dict) else None
    return fit if fit in FITS else "letterbox"


def fit_square(image: np.ndarray, *, size: int, fit: str) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, letterboxed with black bars or centre-cropped."""
    h, w, _ = image.shape
    if fit == "crop":
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        square = image[y : y + s, x : x + s]
    else:
        s = max(h, w)
        square = np.zeros((s, s, 3), np.uint8)
        y, x = (s - h) // 2, (s - w) // 2
        square[y : y + h, x : x + w] = image
    if square.shape[0] == size:
        return np.ascontiguousarray(square)
    t = (
        torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1)[None].float()
    )  # (1, 3, S, S)
    t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def square_frame(frame: av.VideoFrame, *, size: int, fit: str) -> np.ndarray:
    """A decoded video frame -> (size, size, 3) uint8, framed as live input is.

    One swscale call scales it (keeping its aspect) and converts it to RGB;
    then `fit_square` adds the black bars or crops, as for the training data.
    Live reactions and `render react` both frame their input here.
    """
    width, height = frame.width, frame.height
    scale = size / (max(width, height) if fit == "letterbox" else min(width, height))
    scaled_w = max(1, round(width * scale))
    scaled_h = max(1, round(height * scale))
    rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24").to_ndarray()
    return fit_square(np.ascontiguousarray(rgb), size=size, fit=fit)


def frame_tensor(frame: av.VideoFrame, *, size: int, fit: str, device: torch.device) -> Tensor:
    """A decoded video frame -> (1, 3, size, size) in [-1, 1] on `device`, framed by `fit`."""
    square = square_frame(frame, size=size, fit=fit)  # (size, size, 3)
    tensor = torch.from_numpy(square).to(device).permute(2, 0, 1)[None].float()
    return tensor / 127.5 - 1.0
