"""Sample PNGs of every canvas fill (docs/canvas-*.png), drawn as the live engine draws them.

    python -m benchmarks.canvas_samples [--out docs]

One sheet per model: the shipped default DCGAN, and tiny StyleGAN2 / StyleGAN3
networks with synthetic random weights (tests/support/tiny_stylegan.py; no
trained StyleGAN ships), each at a 16:9 and a 32:9 canvas in every fill mode.
Frames come from models.render.latent_frames, the offline path that equals
the live frame, then yuv420p -> RGB as a viewer decodes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

from models.canvas import FILLS
from models.catalog import default_model_path, load_model
from models.checkpoint import LoadedModel
from models.latent_maths import seed_latent
from models.render import latent_frames
from models.sampling import DEFAULT_SAMPLING, map_to_w, truncate

CANVASES = ((384, 216), (768, 216))  # 16:9 (1920x1080 at a fifth), 32:9 (3840x1080 at a fifth)
LABEL = 18  # px of caption above each frame


def frame_rgb(model: LoadedModel, size: tuple[int, int], fill: str, seed: int) -> np.ndarray:
    """One frame of `seed` at `size` under `fill`, as RGB (H, W, 3)."""
    z = seed_latent(seed, model.z_dim or 1)[None]
    space = "z"
    latent = z[0]
    if model.arch.startswith("stylegan"):
        with torch.no_grad():
            latent = truncate(model, map_to_w(model, z, DEFAULT_SAMPLING), 0.7)[0]
        space = "w"
    (yuv,) = latent_frames(model, iter([latent]), size=size, fill=fill, space=space)
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24")


def sheet(model: LoadedModel, title: str, seed: int) -> Image.Image:
    """Every fill (rows) at each canvas (columns), captioned."""
    pad = 8
    width = sum(w for w, _ in CANVASES) + pad * (len(CANVASES) + 1)
    row_h = max(h for _, h in CANVASES) + LABEL + pad
    out = Image.new("RGB", (width, LABEL + pad + row_h * len(FILLS)), (32, 32, 32))
    draw = ImageDraw.Draw(out)
    draw.text((pad, 4), title, fill=(230, 230, 230))
    for r, fill in enumerate(FILLS):
        x = pad
        y = LABEL + pad + r * row_h
        for w, h in CANVASES:
            rgb = frame_rgb(model, (w, h), fill, seed)
            draw.text((x, y), f"{fill}  {w}x{h} ({w / h:.2f}:1)", fill=(230, 230, 230))
            out.paste(Image.fromarray(rgb), (x, y + LABEL))
            x += w + pad
    return out


def main(argv: list[str] | None = None) -> int:
    """Write docs/canvas-dcgan.png, canvas-stylegan2.png, canvas-stylegan3.png."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    from tests.support.tiny_stylegan import tiny_stylegan  # synthetic weights, said so above

    dcgan = load_model(default_model_path("unconditional"), device="cpu")
    sheets = {
        "canvas-dcgan.png": (dcgan, f"{dcgan.name} (shipped default, {dcgan.resolution} px)"),
        "canvas-stylegan2.png": (
            tiny_stylegan(seed=3),
            "tiny StyleGAN2, 32 px, synthetic random weights (tests/support)",
        ),
        "canvas-stylegan3.png": (
            tiny_stylegan(seed=3, sg3=True),
            "tiny StyleGAN3-T, 32 px, synthetic random weights (tests/support)",
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (model, title) in sheets.items():
        path = args.out / name
        sheet(model, title, args.seed).save(path, optimize=True)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
