"""`ganvj import` and `ganvj render images|grid|tour|walk` on StyleGAN pickles and DCGANs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from PIL import Image

from models.catalog import default_model_path, list_models, load_model
from models.checkpoint import read_tensors
from models.cli import main
from models.latent_maths import seed_latent
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.sampling import Sampling, SamplingError, generate, nvidia_uint8, parse_seed_range
from tests.support.nvidia_pickles import (
    perturb,
    seeded_stylegan2,
    stylegan3_sg2_kwargs,
    write_network_pickle,
)


def read_png(path: Path) -> np.ndarray:
    """A PNG file back to (H, W, C) uint8 through Pillow."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as picture:
        array = np.asarray(picture)
    return array if array.ndim == 3 else array[..., None]


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(folder))
    return folder


@pytest.fixture
def stylegan(models_dir: Path) -> tuple[Path, StyleGAN2Generator]:
    """A conditional 16 px StyleGAN2 pickle (stylegan3 repo layout) and its source module."""
    kwargs = stylegan3_sg2_kwargs(
        z_dim=8, c_dim=3, w_dim=8, img_resolution=16, channel_base=128, channel_max=16
    )
    generator = seeded_stylegan2(kwargs, seed=3, noise_seed=4)
    path = write_network_pickle(models_dir / "faces.pkl", generator, init_kwargs=kwargs)
    return path, generator


def test_import_writes_a_checkpoint_with_ganspace(
    stylegan: tuple[Path, StyleGAN2Generator], tmp_path: Path, capsys: Any
) -> None:
    pkl, _ = stylegan
    out = tmp_path / "faces.safetensors"
    assert main(["import", str(pkl), "--out", str(out), "--samples", "512"]) == 0
    assert "stylegan2, 16 px" in capsys.readouterr().out
    assert main(["import", str(pkl), "--out", str(out)]) == 2  # no silent overwrite
    assert "already exists" in capsys.readouterr().err
    meta, tensors = read_tensors(out)
    assert meta["arch"] == "stylegan2" and meta["kind"] == "unconditional"
    assert (meta["w_dim"], meta["c_dim"], meta["resolution"]) == (8, 3, 16)
    assert meta["num_ws"] == StyleGAN2Generator(config=StyleGAN2Config(**meta["config"])).num_ws
    assert meta["source"]["name"] == "faces.pkl" and len(meta["source"]["sha256"]) == 64
    components = tensors["extra/ganspace/components"]
    stdev = tensors["extra/ganspace/stdev"]
    assert components.shape == (8, 8) and stdev.shape == (8,)
    assert torch.allclose(components @ components.T, torch.eye(8), atol=1e-4)
    assert bool((stdev[:-1] >= stdev[1:]).all()) and float(stdev[0]) > 0
    assert main(["import", str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "m.st")]) == 2


def test_pkl_is_converted_once_and_cached_by_content(
    stylegan: tuple[Path, StyleGAN2Generator], models_dir: Path
) -> None:
    pkl, generator = stylegan
    listed = {m.name: m for m in list_models([models_dir])}
    assert (listed["faces"].arch, listed["faces"].resolution) == ("pickle", 0)
    first = load_model(pkl)
    listed = {m.name: m for m in list_models([models_dir])}
    assert (listed["faces"].arch, listed["faces"].resolution) == ("stylegan2", 16)
    cache = sorted((models_dir / ".cache").glob("*.safetensors"))
    assert len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    second = load_model(pkl)
    assert cache[0].stat().st_mtime_ns == stamp  # reused, not rewritten
    assert (first.name, first.arch, first.path) == ("faces", "stylegan2", pkl)
    z = seed_latent(5, 8)[None]
    with torch.no_grad():
        assert torch.equal(second.module(z), generator(z))
    # New content, new cache entry; the old one stays for the old file.
    perturb(generator, 9)
    write_network_pickle(
        pkl, generator, init_kwargs=stylegan3_sg2_kwargs(
            z_dim=8, c_dim=3, w_dim=8, img_resolution=16, channel_base=128, channel_max=16
        )
    )  # fmt: skip
    load_model(pkl)
    assert len(list((models_dir / ".cache").glob("*.safetensors"))) == 2


def test_render_images_like_gen_images(
    stylegan: tuple[Path, StyleGAN2Generator], tmp_path: Path
) -> None:
    pkl, generator = stylegan
    outdir = tmp_path / "out"
    argv = ["render", "images", "--model", str(pkl), "--seeds", "0-1,42", "--trunc", "0.7"]
    assert main([*argv, "--class", "2", "--outdir", str(outdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == [
        "seed0000.png",
        "seed0001.png",
        "seed0042.png",
    ]
    c = torch.zeros([1, 3])
    c[0, 2] = 1
    with torch.no_grad():
        expected = generator(seed_latent(42, 8)[None], c, truncation_psi=0.7)
    assert np.array_equal(read_png(outdir / "seed0042.png"), nvidia_uint8(expected)[0])


def test_render_images_for_a_dcgan_and_refusals(
    stylegan: tuple[Path, StyleGAN2Generator], tmp_path: Path, capsys: Any
) -> None:
    outdir = tmp_path / "dcgan"
    assert main(["render", "images", "--seeds", "7", "--outdir", str(outdir)]) == 0
    model = load_model(default_model_path("unconditional"))
    with torch.no_grad():
        expected = nvidia_uint8(model.module(seed_latent(7, int(model.z_dim or 0))[None]))[0]
    assert np.array_equal(read_png(outdir / "seed0007.png"), expected)
    cases = [
        (["--trunc", "0.5"], "truncation needs a StyleGAN"),
        (["--class", "1"], "not conditional"),
    ]
    for extra, message in cases:
        assert main(["render", "images", "--seeds", "1", "--outdir", str(outdir), *extra]) == 2
        assert message in capsys.readouterr().err
    pkl, _ = stylegan
    for extra, message in [
        (["--rotate", "10"], "need a StyleGAN3"),
        (["--class", "3"], "has 3 classes"),
        (["--translate", "oops"], "X,Y"),
    ]:
        argv = ["render", "images", "--model", str(pkl), "--seeds", "1", "--outdir", str(outdir)]
        assert main([*argv, *extra]) == 2
        assert message in capsys.readouterr().err


def test_grid_tour_and_walk_take_seeds_and_truncation(
    stylegan: tuple[Path, StyleGAN2Generator], tmp_path: Path
) -> None:
    pkl, _ = stylegan
    common = ["--model", str(pkl), "--fps", "4", "--trunc", "0.6"]
    grid = tmp_path / "grid.mp4"
    assert main(["render", "grid", str(grid), "--seeds", "1-5", "--seconds", "1", *common]) == 0
    tour = tmp_path / "tour.mp4"
    tour_args = ["--seeds", "3,9", "--frames-per-step", "2"]
    assert main(["render", "tour", str(tour), *tour_args, *common, "--size", "32"]) == 0
    walk = tmp_path / "walk.mp4"
    assert main(["render", "walk", str(walk), "--seeds", "4", "--seconds", "1", *common]) == 0
    for path, frames, size in [(grid, 4, (56, 38)), (tour, 4, (32, 32)), (walk, 4, (16, 16))]:
        with av.open(str(path)) as container:
            decoded = list(container.decode(video=0))
        assert len(decoded) == frames
        assert (decoded[0].width, decoded[0].height) == size


def test_truncation_zero_gives_the_average_picture(
    stylegan: tuple[Path, StyleGAN2Generator],
) -> None:
    pkl, _ = stylegan
    model = load_model(pkl)
    sampling = Sampling(truncation_psi=0.0, class_index=1)
    with torch.no_grad():
        a = generate(model, seed_latent(1, 8)[None], sampling)
        b = generate(model, seed_latent(2, 8)[None], sampling)
        free = generate(model, seed_latent(1, 8)[None], Sampling(class_index=1))
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, free, atol=1e-3)


def test_parse_seed_range() -> None:
    assert parse_seed_range("0-3,42") == [0, 1, 2, 3, 42]
    assert parse_seed_range(" 5 ") == [5]
    for bad in ("", "a", "3-1", "-2", "1-99999999"):
        with pytest.raises(SamplingError, match="--seeds"):
            parse_seed_range(bad)
