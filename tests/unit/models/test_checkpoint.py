"""Checkpoint format: round trips, validation, clear errors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from models.catalog import default_model_path, list_models
from models.checkpoint import (
    CheckpointError,
    extra_tensors,
    load_model,
    read_tensors,
    save_checkpoint,
)
from models.nets.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from models.nets.encoder import Encoder, EncoderConfig
from models.nets.pix2pix import Pix2PixConfig, UNetGenerator

TINY = DCGANConfig(resolution=16, z_dim=8, ngf=8, ndf=8, max_channels=16)


def test_dcgan_shapes_for_every_power_of_two() -> None:
    for resolution in (8, 16, 32, 64):
        config = DCGANConfig(resolution=resolution, z_dim=4, ngf=4, ndf=4, max_channels=8)
        g = DCGANGenerator(config=config).eval()
        d = DCGANDiscriminator(config=config)
        image = g(torch.randn(2, 4))
        assert image.shape == (2, 3, resolution, resolution)
        assert image.abs().max() <= 1.0
        assert d(image).shape == (2,)


def test_channel_cap_bounds_every_layer() -> None:
    g = DCGANGenerator(config=DCGANConfig(resolution=256, ngf=64, max_channels=32))
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    widths = [m.out_channels for m in g.modules() if isinstance(m, convs)]
    assert max(widths) == 32
    assert widths[-1] == 3


@pytest.mark.parametrize("bad", [0, 12, 2048, 4])
def test_bad_resolution_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        DCGANConfig(resolution=bad)


def test_round_trip_reproduces_outputs_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(config=TINY)
    g.train()
    g(torch.randn(4, TINY.z_dim))  # move the batch-norm running statistics off their defaults
    g.eval()
    z = torch.randn(3, TINY.z_dim)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, arch="dcgan", config=TINY, weights=g, training={"step": 7})
    loaded = load_model(path)
    assert loaded.name == "tiny"
    assert (loaded.arch, loaded.kind, loaded.resolution, loaded.z_dim) == (
        "dcgan",
        "unconditional",
        16,
        8,
    )
    assert loaded.metadata["training"] == {"step": 7}
    assert not loaded.module.training
    with torch.no_grad():
        assert torch.equal(loaded.module(z), g(z))


def test_half_storage_loads_as_float32(tmp_path: Path) -> None:
    g = DCGANGenerator(config=TINY).eval()
    path = tmp_path / "half.safetensors"
    save_checkpoint(path, arch="dcgan", config=TINY, weights=g, training={}, half=True)
    _, tensors = read_tensors(path)
    assert tensors["to_rgb.1.weight"].dtype == torch.float16
    loaded = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.module.parameters())
    z = torch.randn(2, TINY.z_dim)
    with torch.no_grad():
        assert torch.allclose(loaded.module(z), g(z), atol=1e-2)


def test_pix2pix_and_encoder_round_trip(tmp_path: Path) -> None:
    p_config = Pix2PixConfig(resolution=16, ngf=4, ndf=4)
    unet = UNetGenerator(config=p_config).eval()
    e_config = EncoderConfig(resolution=16, z_dim=8, nef=4)
    encoder = Encoder(config=e_config).eval()
    save_checkpoint(
        tmp_path / "p.safetensors", arch="pix2pix", config=p_config, weights=unet, training={}
    )
    save_checkpoint(
        tmp_path / "e.safetensors",
        arch="encoder",
        config=e_config,
        weights=encoder,
        training={},
        extra_metadata={"generator": {"name": "g", "sha256": "0" * 64}},
    )
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    p = load_model(tmp_path / "p.safetensors")
    e = load_model(tmp_path / "e.safetensors")
    assert (p.kind, p.z_dim, e.kind, e.z_dim) == ("image2image", None, "encoder", 8)
    assert e.metadata["generator"]["name"] == "g"
    with torch.no_grad():
        assert torch.equal(p.module(x), unet(x))
        assert torch.equal(e.module(x), encoder(x))


def test_extra_tensors_survive_and_do_not_disturb_loading(tmp_path: Path) -> None:
    g = DCGANGenerator(config=TINY)
    path = tmp_path / "run.safetensors"
    extra = {"disc.weight": torch.ones(2, 2)}
    save_checkpoint(path, arch="dcgan", config=TINY, weights=g, training={}, extra_tensors=extra)
    _, tensors = read_tensors(path)
    assert torch.equal(extra_tensors(tensors)["disc.weight"], torch.ones(2, 2))
    load_model(path)


def test_truncated_file_names_file_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_checkpoint(
        path, arch="dcgan", config=TINY, weights=DCGANGenerator(config=TINY), training={}
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*truncated"):
        load_model(path)


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "liar.safetensors"
    unet = UNetGenerator(config=Pix2PixConfig(resolution=16, ngf=4, ndf=4))
    save_checkpoint(path, arch="dcgan", config=TINY, weights=unet, training={})
    with pytest.raises(CheckpointError, match=r"liar\.safetensors.*do not match a dcgan"):
        load_model(path)
    good = tmp_path / "unet.safetensors"
    save_checkpoint(good, arch="pix2pix", config=unet.config, weights=unet, training={})
    with pytest.raises(CheckpointError, match=r"unet\.safetensors.*is a pix2pix model"):
        load_model(good, arch="dcgan")


def test_wrong_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shape.safetensors"
    other = DCGANGenerator(
        config=DCGANConfig(resolution=16, z_dim=8, ngf=4, ndf=8, max_channels=16)
    )
    save_checkpoint(path, arch="dcgan", config=TINY, weights=other, training={})
    with pytest.raises(CheckpointError, match=r"shape\.safetensors.*shape"):
        load_model(path)


def write_raw(path: Path, meta: dict[str, str]) -> None:
    header = json.dumps({"__metadata__": meta}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def test_bad_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.safetensors"
    write_raw(path, {"other": "x"})
    with pytest.raises(CheckpointError, match="no ganvj metadata"):
        load_model(path)
    base = {"format": 1, "arch": "dcgan", "config": {"resolution": 16}, "training": {}}
    write_raw(path, {"ganvj": json.dumps({**base, "arch": "pickle"})})
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_model(path)
    write_raw(path, {"ganvj": json.dumps({**base, "config": {"resolution": 16, "evil": 1}})})
    with pytest.raises(CheckpointError, match="unknown DCGANConfig keys: evil"):
        load_model(path)
    write_raw(path, {"ganvj": json.dumps({**base, "config": {"resolution": "16"}})})
    with pytest.raises(CheckpointError, match="resolution should be int"):
        load_model(path)
    write_raw(path, {"ganvj": json.dumps({**base, "config": {"resolution": 12}})})
    with pytest.raises(CheckpointError, match="power of two"):
        load_model(path)


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.safetensors"
    path.write_text("hello, this is not a model\n")
    with pytest.raises(CheckpointError, match=r"notes\.safetensors.*not a safetensors"):
        load_model(path)


def test_list_models_reads_headers_and_skips_junk(tmp_path: Path) -> None:
    save_checkpoint(
        tmp_path / "a.safetensors",
        arch="dcgan",
        config=TINY,
        weights=DCGANGenerator(config=TINY),
        training={},
    )
    (tmp_path / "junk.safetensors").write_text("junk")
    infos = list_models([tmp_path, tmp_path / "missing"])
    assert [(i.name, i.arch, i.kind, i.resolution, i.z_dim) for i in infos] == [
        ("a", "dcgan", "unconditional", 16, 8)
    ]


def test_default_paths() -> None:
    assert default_model_path().name == "default-dcgan-128.safetensors"
    assert default_model_path("image2image").name == "default-pix2pix-128.safetensors"
    with pytest.raises(ValueError, match="unknown model kind"):
        default_model_path("nonsense")


def test_encoder_pair_check(tmp_path: Path) -> None:
    from models.checkpoint import check_encoder_pair, file_sha256

    g_path, other_path = tmp_path / "g.safetensors", tmp_path / "other.safetensors"
    save_checkpoint(
        g_path, arch="dcgan", config=TINY, weights=DCGANGenerator(config=TINY), training={}
    )
    save_checkpoint(
        other_path,
        arch="dcgan",
        config=TINY,
        weights=DCGANGenerator(config=TINY),
        training={"x": 1},
    )
    e_config = EncoderConfig(resolution=16, z_dim=8, nef=4)
    e_path = tmp_path / "e.safetensors"
    link = {"generator": {"name": "g", "sha256": file_sha256(g_path)}}
    save_checkpoint(
        e_path,
        arch="encoder",
        config=e_config,
        weights=Encoder(config=e_config),
        training={},
        extra_metadata=link,
    )
    encoder = load_model(e_path)
    check_encoder_pair(encoder, load_model(g_path))
    with pytest.raises(CheckpointError, match=r"e\.safetensors.*trained for 'g'"):
        check_encoder_pair(encoder, load_model(other_path))


def test_shipped_encoder_pairs_with_the_shipped_dcgan() -> None:
    """Mirror mode works out of the box: the shipped encoder inverts the shipped generator."""
    from models.checkpoint import check_encoder_pair

    check_encoder_pair(load_model(default_model_path("encoder")), load_model(default_model_path()))
