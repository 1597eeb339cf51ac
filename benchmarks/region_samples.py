"""A sample PNG of per-region latents (docs/canvas-regions.png), drawn as the live render draws it.

    python -m benchmarks.region_samples [--out docs]

For the shipped default DCGAN and a tiny StyleGAN2 / StyleGAN3 with synthetic
random weights (tests/support/tiny_stylegan.py), at 32:9 (3840x1080 at a
fifth): keyframe A alone, keyframe B alone, then 2 regions (A | B) and 3
regions (A | B | C) on one canvas (models.regions.render_regions, then the
one shared resize to the canvas, as the engine frames `native`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from models.catalog import default_model_path, load_model
from models.checkpoint import LoadedModel
from models.latent_space import Pose, space_for
from models.pixels import resize, to_rgb_uint8
from models.regions import RAMP, render_regions

CANVAS = (768, 216)  # 3840x1080 at a fifth
LABEL = 18  # px of caption above each frame
SEEDS = (7, 8, 9)  # keyframes A, B, C


def frame(model: LoadedModel, poses: list[Pose]) -> Image.Image:
    """The canvas with these poses as regions, left to right."""
    space = space_for(model, model.module.eval())
    width, height = CANVAS
    with torch.no_grad():
        picture = render_regions(space, poses, width / height).float()
        rgb = to_rgb_uint8(resize(picture, (height, width)))[0]
    return Image.fromarray(rgb.numpy())


def sheet(model: LoadedModel, title: str) -> Image.Image:
    """A alone, B alone, A | B, A | B | C, one under the other, captioned."""
    space = space_for(model, model.module.eval())
    a, b, c = (Pose(latent) for latent in space.seeds(list(SEEDS)))
    rows = (
        ("keyframe A alone (one region)", [a]),
        ("keyframe B alone", [b]),
        ("/canvas/regions 2: A | B", [a, b]),
        ("/canvas/regions 3: A | B | C", [a, b, c]),
    )
    pad = 8
    width, height = CANVAS
    out = Image.new("RGB", (width + 2 * pad, LABEL + pad + len(rows) * (height + LABEL + pad)))
    out.paste((32, 32, 32), (0, 0, *out.size))
    draw = ImageDraw.Draw(out)
    draw.text((pad, 4), title, fill=(230, 230, 230))
    for r, (caption, poses) in enumerate(rows):
        y = LABEL + pad + r * (height + LABEL + pad)
        draw.text((pad, y), caption, fill=(230, 230, 230))
        out.paste(frame(model, poses), (pad, y + LABEL))
    return out


def main(argv: list[str] | None = None) -> int:
    """Write docs/canvas-regions.png: the three sheets side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    from tests.support.tiny_stylegan import tiny_stylegan  # synthetic weights, said so above

    dcgan = load_model(default_model_path("unconditional"), device="cpu")
    sheets = [
        sheet(dcgan, f"{dcgan.name} (shipped default, {dcgan.resolution} px)"),
        sheet(tiny_stylegan(seed=3), "tiny StyleGAN2, 32 px, synthetic random weights"),
        sheet(tiny_stylegan(seed=3, sg3=True), "tiny StyleGAN3-T, 32 px, synthetic weights"),
    ]
    width = sum(s.width for s in sheets)
    out = Image.new("RGB", (width, max(s.height for s in sheets)))
    x = 0
    for part in sheets:
        out.paste(part, (x, 0))
        x += part.width
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "canvas-regions.png"
    out.save(path, optimize=True)
    print(f"wrote {path} (ramps {RAMP:g} of a region wide)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
