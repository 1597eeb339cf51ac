"""StyleGAN2 pickles of every layout import exactly: NVIDIA's own numbers, reproduced here.

Each config below was built once with NVIDIA's code (stylegan2-ada-pytorch, and
stylegan3's `stylegan2` config) in a scratch folder, as docs/stylegan.md
describes: `torch.manual_seed(1)`, the Generator, then the Discriminator, then
`perturb(G, 5)`. Our modules draw their initial weights in the same order, so
the same recipe rebuilds the same weights here; our test writer pickles them in
NVIDIA's format and the importer reads them back. The REFERENCE numbers are
what NVIDIA's code printed for those networks (seed, truncation psi,
noise_mode='const', fp32; images saved as gen_images.py saves them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_model
from models.formats.nvidia_pkl import pick_generator, read_pickle, state_dict
from models.formats.stylegan import convert_pickle, import_pickle, load_discriminator
from models.latent_maths import seed_latent
from models.nets.stylegan2 import (
    StyleGAN2Config,
    StyleGAN2Discriminator,
    StyleGAN2DiscriminatorConfig,
    StyleGAN2Generator,
)
from tests.support.nvidia_pickles import (
    EasyDict,
    perturb,
    stylegan2_ada_kwargs,
    stylegan3_sg2_kwargs,
    write_network_pickle,
)

# name -> (layout, generator kwargs, discriminator kwargs)
CONFIGS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "ada_skip32": (
        "ada",
        dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, mapping_layers=2,
             channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None,
             architecture="skip"),
        dict(channel_base=256, channel_max=32, architecture="resnet", num_fp16_res=0),
    ),
    "ada_cond_resnet64_fp16": (
        "ada",
        dict(z_dim=16, c_dim=4, w_dim=24, img_resolution=64, mapping_layers=3,
             channel_base=512, channel_max=32, num_fp16_res=2, conv_clamp=256,
             architecture="resnet"),
        dict(channel_base=512, channel_max=32, architecture="resnet", num_fp16_res=2),
    ),
    "ada_orig128_gray": (
        "ada",
        dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=128, img_channels=1, mapping_layers=1,
             channel_base=512, channel_max=16, num_fp16_res=4, conv_clamp=256,
             architecture="orig"),
        dict(channel_base=512, channel_max=16, architecture="resnet", num_fp16_res=4),
    ),
    "sg3sg2_256_fp16": (
        "sg3",
        dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=256, mapping_layers=2,
             channel_base=1024, channel_max=32, num_fp16_res=4, conv_clamp=256),
        dict(channel_base=1024, channel_max=32, num_fp16_res=4),
    ),
    "sg3sg2_1024_cond": (
        "sg3",
        dict(z_dim=8, c_dim=3, w_dim=8, img_resolution=1024, mapping_layers=2,
             channel_base=2048, channel_max=8, num_fp16_res=4, conv_clamp=256),
        dict(channel_base=2048, channel_max=8, num_fp16_res=4),
    ),
}  # fmt: skip

# What NVIDIA's code gave for these networks: per (seed, psi) the mean of the uint8
# image, six uint8 values at flat indices k * size // 7 (k = 1..6) and ws[0, -1, :3];
# and D's logit for the seed-0 image with class 0. Seeds draw their class as seed % c_dim.
REFERENCE: dict[str, dict[str, Any]] = {
    "ada_skip32": {
        (0, 1.0): (156.708, [99, 120, 255, 0, 0, 255], [-0.37599, -0.18715, 0.8079]),
        (42, 0.7): (108.517, [116, 132, 188, 19, 27, 150], [0.25911, -0.51134, 0.02482]),
        "d_logit": 0.76428,
    },
    "ada_cond_resnet64_fp16": {
        (0, 1.0): (163.01, [131, 194, 250, 212, 154, 135], [-0.38179, -0.10046, -0.05296]),
        (42, 0.7): (184.487, [6, 0, 136, 109, 239, 182], [0.09163, -0.23921, -0.22023]),
        "d_logit": -0.07468,
    },
    "ada_orig128_gray": {
        (0, 1.0): (181.704, [246, 237, 130, 255, 255, 107], [0.52566, -0.02384, -0.16014]),
        (42, 0.7): (204.738, [195, 102, 255, 255, 255, 248], [0.19788, -0.18707, 0.06925]),
        "d_logit": -0.08681,
    },
    "sg3sg2_256_fp16": {
        (0, 1.0): (84.961, [0, 0, 255, 0, 0, 255], [-0.40154, -0.5629, 3.94235]),
        (42, 0.7): (48.851, [42, 0, 82, 0, 165, 245], [1.32782, -0.36903, 0.79294]),
        "d_logit": -2.12456,
    },
    "sg3sg2_1024_cond": {
        (0, 1.0): (170.897, [128, 125, 255, 0, 87, 171], [-0.12346, 0.07247, -0.03231]),
        (42, 0.7): (162.745, [127, 95, 255, 42, 88, 166], [0.21751, 0.09371, 0.18673]),
        "d_logit": -0.01952,
    },
}

# Key counts of NVIDIA's G_ema.state_dict() / D.state_dict() for these configs.
NVIDIA_KEY_COUNTS = {
    "ada_skip32": (75, 37),
    "ada_cond_resnet64_fp16": (90, 64),
    "ada_orig128_gray": (91, 55),
    "sg3sg2_256_fp16": (132, 64),
    "sg3sg2_1024_cond": (172, 100),
}


def build_networks(name: str) -> tuple[dict[str, Any], StyleGAN2Generator, StyleGAN2Discriminator]:
    """The recipe behind REFERENCE: seed 1, G, then D, then perturb(G, 5)."""
    layout, g_kwargs, d_kwargs = CONFIGS[name]
    make = stylegan2_ada_kwargs if layout == "ada" else stylegan3_sg2_kwargs
    init_kwargs = make(**g_kwargs)
    config = StyleGAN2Config.from_nvidia_kwargs(init_kwargs)
    torch.manual_seed(1)
    generator = StyleGAN2Generator(config=config).eval()
    d_config = StyleGAN2DiscriminatorConfig(
        c_dim=config.c_dim,
        img_resolution=config.img_resolution,
        img_channels=config.img_channels,
        conv_clamp=256,
        **d_kwargs,
    )
    discriminator = StyleGAN2Discriminator(config=d_config).eval()
    perturb(generator, 5)
    return init_kwargs, generator, discriminator


def one_hot(c_dim: int, index: int) -> torch.Tensor | None:
    if c_dim == 0:
        return None
    c = torch.zeros([1, c_dim])
    c[0, index % c_dim] = 1.0
    return c


@pytest.mark.parametrize("name", list(CONFIGS))
def test_imported_pickle_reproduces_nvidia_reference(name: str, tmp_path: Path) -> None:
    init_kwargs, generator, discriminator = build_networks(name)
    layout = CONFIGS[name][0]
    # Old protocol-3 files with numpy.core names, and new protocol-4 ones with numpy._core.
    protocol, numpy_module = (3, "numpy.core") if layout == "ada" else (4, "numpy._core")
    path = write_network_pickle(
        tmp_path / f"{name}.pkl",
        generator,
        init_kwargs=init_kwargs,
        discriminator=discriminator,
        protocol=protocol,
        numpy_module=numpy_module,
    )
    imported = convert_pickle(path)
    module: Any = imported.module
    assert imported.arch == "stylegan2"
    assert imported.source["flavor"] == layout
    n_g, n_d = NVIDIA_KEY_COUNTS[name]
    assert len(module.state_dict()) == n_g
    with torch.no_grad():
        for (seed, psi), (mean, pixels, w_tail) in (
            (k, v) for k, v in REFERENCE[name].items() if isinstance(k, tuple)
        ):
            z = seed_latent(seed, module.z_dim)[None]
            ws = module.mapping(z, one_hot(module.c_dim, seed), truncation_psi=psi)
            assert torch.allclose(ws[0, -1, :3], torch.tensor(w_tail), atol=1e-4)
            img = module.synthesis(ws, noise_mode="const")
            u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
            flat = u8.flatten().numpy().astype(int)
            got = [int(flat[k * flat.size // 7]) for k in range(1, 7)]
            assert np.abs(np.array(got) - np.array(pixels)).max() <= 2, (got, pixels)
            assert abs(flat.mean() - mean) < 0.05

        # The snapshot's D comes back too, with NVIDIA's key layout and logits.
        d_obj = read_pickle(path).root["D"]
        d_state = state_dict(d_obj)
        assert len(d_state) == n_d
        discriminator.load_state_dict(d_state, strict=True)
        if module.img_resolution > 256:
            return  # a 1024 px D takes seconds on a CPU; the smaller ones check the maths
        z = seed_latent(0, module.z_dim)[None]
        c = one_hot(module.c_dim, 0)
        image = module(z, c, noise_mode="const")
        # NVIDIA's logit came from a batch of 4 copies; minibatch stddev of identical
        # samples equals that of one sample, so one is enough.
        logit = discriminator(image, c)
        assert logit.shape == (1, 1)
        assert abs(float(logit[0, 0]) - REFERENCE[name]["d_logit"]) < 1e-3


def test_bare_generator_pickle_and_state_dict_keys(tmp_path: Path) -> None:
    init_kwargs, generator, _ = build_networks("ada_cond_resnet64_fp16")
    path = write_network_pickle(tmp_path / "bare.pkl", generator, init_kwargs=init_kwargs,
                                snapshot=False)  # fmt: skip
    obj = pick_generator(read_pickle(path))
    keys = state_dict(obj)
    # A few of NVIDIA's names, verbatim.
    for key in (
        "synthesis.b4.const",
        "synthesis.b8.skip.weight",
        "synthesis.b64.conv1.noise_const",
        "synthesis.b64.torgb.affine.bias",
        "mapping.embed.weight",
        "mapping.w_avg",
    ):
        assert key in keys
    assert keys.keys() == generator.state_dict().keys()


def test_truncation_pulls_toward_w_avg_and_cutoff_spares_fine_layers() -> None:
    _, generator, _ = build_networks("ada_skip32")
    z = seed_latent(3, generator.z_dim)[None]
    with torch.no_grad():
        free = generator.mapping(z, None)
        at_avg = generator.mapping(z, None, truncation_psi=0.0)
        half = generator.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    w_avg = generator.mapping.w_avg
    assert torch.allclose(at_avg, w_avg.expand_as(at_avg))
    assert torch.allclose(half[:, :2], w_avg + 0.5 * (free[:, :2] - w_avg), atol=1e-6)
    assert torch.equal(half[:, 2:], free[:, 2:])


def test_noise_modes_differ_and_const_is_repeatable() -> None:
    _, generator, _ = build_networks("ada_skip32")
    z = seed_latent(1, generator.z_dim)[None]
    with torch.no_grad():
        const_a = generator(z, noise_mode="const")
        const_b = generator(z, noise_mode="const")
        none = generator(z, noise_mode="none")
        rand = generator(z, noise_mode="random")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(const_a, none)
    assert not torch.allclose(const_a, rand)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(generator.mapping(z, None), noise_mode="loud")


def test_config_from_nvidia_kwargs_refuses_what_it_cannot_build() -> None:
    kwargs = stylegan2_ada_kwargs(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, mystery=1)
    with pytest.raises(ValueError, match="mystery"):
        StyleGAN2Config.from_nvidia_kwargs(kwargs)
    with pytest.raises(ValueError, match="img_resolution"):
        StyleGAN2Config.from_nvidia_kwargs(
            stylegan3_sg2_kwargs(z_dim=8, c_dim=0, w_dim=8, img_resolution=48)
        )
    with pytest.raises(ValueError, match="architecture"):
        StyleGAN2Config(architecture="fancy")
    # Defaults differ by repository: stylegan3 clamps at 256 and flags 4 fp16 resolutions.
    sg3 = StyleGAN2Config.from_nvidia_kwargs(
        stylegan3_sg2_kwargs(z_dim=8, c_dim=0, w_dim=8, img_resolution=32)
    )
    ada = StyleGAN2Config.from_nvidia_kwargs(
        stylegan2_ada_kwargs(z_dim=8, c_dim=0, w_dim=8, img_resolution=32)
    )
    assert (sg3.conv_clamp, sg3.num_fp16_res) == (256, 4)
    assert (ada.conv_clamp, ada.num_fp16_res) == (None, 0)
    assert StyleGAN2Config(**sg3.to_dict()) == sg3


def test_import_can_keep_the_discriminator_for_fine_tuning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    init_kwargs, generator, discriminator = build_networks("ada_cond_resnet64_fp16")
    d = discriminator.config
    d_kwargs = {  # as stylegan2-ada-pytorch's train.py passes them
        "c_dim": d.c_dim,
        "img_resolution": d.img_resolution,
        "img_channels": d.img_channels,
        "architecture": d.architecture,
        "channel_base": d.channel_base,
        "channel_max": d.channel_max,
        "num_fp16_res": d.num_fp16_res,
        "conv_clamp": d.conv_clamp,
        "block_kwargs": EasyDict(),
        "mapping_kwargs": EasyDict(),
        "epilogue_kwargs": EasyDict(mbstd_group_size=d.mbstd_group_size),
    }
    path = write_network_pickle(
        tmp_path / "snap.pkl",
        generator,
        init_kwargs=init_kwargs,
        discriminator=discriminator,
        discriminator_kwargs=d_kwargs,
    )
    out = import_pickle(path, tmp_path / "snap.safetensors", samples=64, discriminator=True)
    restored = load_discriminator(out)
    assert restored.config == discriminator.config  # NVIDIA's stylegan2-ada defaults read back
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    c = torch.eye(4)[:2]
    with torch.no_grad():
        assert torch.equal(restored(image, c), discriminator(image, c))
    assert load_model(out).arch == "stylegan2"  # live play ignores the extra tensors
    plain = import_pickle(path, tmp_path / "plain.safetensors", samples=64)
    with pytest.raises(CheckpointError, match="no discriminator"):
        load_discriminator(plain)
    bare = write_network_pickle(
        tmp_path / "bare.pkl", generator, init_kwargs=init_kwargs, snapshot=False
    )
    with pytest.raises(CheckpointError, match="no discriminator"):
        import_pickle(bare, tmp_path / "bare.safetensors", samples=64, discriminator=True)
