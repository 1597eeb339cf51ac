"""What playing in W costs per frame besides synthesis: motion, directions, truncation, mixing.

.venv/bin/python benchmarks/play.py [--frames 3000]

A 512 px StyleGAN2's W (w_dim 512, 16 layers) with wander, a direction fader,
truncation and two style mixes; the broadcast (16, 512) stays on the CPU here
(on CUDA it is one upload). Bounded by --frames; prints microseconds per frame.
"""

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from models.latent_space import space_for
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from server.commands import parse
from server.play import PlayState


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    options = parser.parse_args()
    torch.set_num_threads(1)
    # The real mapping and W size; synthesis channels kept tiny (it is not measured here).
    config = StyleGAN2Config(img_resolution=512, channel_base=512, channel_max=8)
    generator = StyleGAN2Generator(config=config).eval()
    extras = {"ganspace/components": torch.eye(512)[:8], "ganspace/stdev": torch.ones(8)}
    model = SimpleNamespace(resolution=512, arch="stylegan2", z_dim=512, extras=extras)
    space = space_for(model, generator)
    state = PlayState(space=space)
    for address, value in (
        ("/style/coarse/keyframe", 3),
        ("/style/coarse/amount", 0.5),
        ("/style/fine/keyframe", 5),
        ("/style/fine/amount", 1.0),
        ("/latent/dir/1", 0.3),
        ("/latent/truncation", 0.7),
    ):
        state.apply(parse(address, [value]), 0.0)
    started = time.perf_counter()
    for i in range(options.frames):
        ws = space.broadcast(state.pose(i / 30, 1 / 30))  # type: ignore[attr-defined]
    per_frame = (time.perf_counter() - started) / options.frames
    print(
        f"W play per frame, {tuple(ws.shape)} with 2 mixes, 1 CPU thread: {per_frame * 1e6:.0f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
