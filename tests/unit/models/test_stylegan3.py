"""StyleGAN3 network: NVIDIA's layer plan and filters, reference pictures, transform, fp16.

Reference numbers were taken once with NVIDIA's own stylegan3 code (reference ops,
CPU, fp32) on networks filled by tests/stylegan_weights.fill_weights(seed=7), as
docs/stylegan.md describes; nothing of NVIDIA's is run or stored here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import models.nets.stylegan3 as sg3
from models.catalog import load_model
from models.fastpath import enable
from models.formats.nvidia_pkl import read_pickle
from models.nets.stylegan3 import (
    StyleGAN3Config,
    StyleGAN3Generator,
    lowpass_filter,
    plan_synthesis,
    set_transform,
    synthetic_config,
    transform_matrix,
)
from tests.support.nvidia_pickles import (
    EasyDict,
    stylegan3_attributes,
    stylegan3_class_name,
    write_network_pickle,
)
from tests.support.stylegan_weights import fill_weights

# NVIDIA's kwargs for the tiny reference networks (as their train.py writes them).
EMA_BETA = 0.5 ** (32 / 20000)
TINY = dict(z_dim=32, w_dim=32, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2})
KWARGS: dict[str, dict[str, Any]] = {
    "t32": dict(TINY, c_dim=0, channel_base=1024, channel_max=64, magnitude_ema_beta=EMA_BETA,
                num_fp16_res=4, conv_clamp=256),
    "r32": dict(TINY, c_dim=0, channel_base=2048, channel_max=128, magnitude_ema_beta=EMA_BETA,
                num_fp16_res=4, conv_clamp=256, conv_kernel=1, use_radial_filters=True),
    "t32c": dict(TINY, c_dim=4, channel_base=1024, channel_max=64, magnitude_ema_beta=EMA_BETA,
                 num_fp16_res=4, conv_clamp=256),
    "r64c": dict(TINY, c_dim=5, img_resolution=64, channel_base=2048, channel_max=128,
                 magnitude_ema_beta=EMA_BETA, num_fp16_res=0, conv_clamp=None, conv_kernel=1,
                 use_radial_filters=True),
}  # fmt: skip

TRANSFORMS = {"id": (0.0, (0.0, 0.0)), "rot90": (90.0, (0.0, 0.0)), "rot30": (30.0, (0.1, -0.25))}
# (transform: angle in degrees and translation, seed, sum of ws, ws[0, 0, :3], sum of the uint8
# picture, picture[:, 3, 5] + picture[:, 20, 17]); truncation 0.7, class = seed % c_dim.
REFERENCE: dict[str, list[tuple[Any, ...]]] = {
    "t32": [
        ("id", 0, 126.8916, [0.03133, 0.31551, -0.07401], 437243, [164, 145, 138, 152, 141, 137]),
        ("rot90", 42, 167.9665, [1.1813, 0.56886, -0.4498], 391218, [131, 128, 130, 121, 128, 129]),
        (
            "rot30",
            0,
            126.8916,
            [0.03133, 0.31551, -0.07401],
            437416,
            [164, 143, 137, 152, 141, 137],
        ),
    ],
    "r32": [
        ("id", 0, 126.8916, [0.03133, 0.31551, -0.07401], 436762, [147, 116, 159, 136, 127, 153]),
        ("rot90", 42, 167.9665, [1.1813, 0.56886, -0.4498], 427245, [119, 159, 166, 99, 157, 153]),
        (
            "rot30",
            0,
            126.8916,
            [0.03133, 0.31551, -0.07401],
            435155,
            [145, 117, 157, 138, 133, 162],
        ),
    ],
    "t32c": [
        ("id", 0, 159.2671, [0.49158, -0.29975, -0.21178], 409682, [101, 141, 158, 111, 143, 143]),
        (
            "rot90",
            42,
            176.2729,
            [2.04831, -0.40463, -0.25782],
            446544,
            [155, 133, 148, 155, 134, 150],
        ),
        (
            "rot30",
            0,
            159.2671,
            [0.49158, -0.29975, -0.21178],
            410554,
            [100, 143, 157, 96, 147, 162],
        ),
    ],
    "r64c": [
        ("id", 1, 223.9748, [1.49922, -0.23499, -0.23353], 1787233, [160, 128, 132, 158, 129, 132]),
    ],
}

# NVIDIA's layer names for t32 (r32: the same sizes, twice the channels).
NVIDIA_LAYERS_T32 = [
    "L0_36_64", "L1_36_64", "L2_36_64", "L3_36_64", "L4_36_64", "L5_52_64", "L6_52_64",
    "L7_52_64", "L8_52_64", "L9_52_54", "L10_52_45", "L11_52_38", "L12_52_32", "L13_32_32",
    "L14_32_3",
]  # fmt: skip
NVIDIA_LAYERS_R32 = [
    "L0_36_128", "L1_36_128", "L2_36_128", "L3_36_128", "L4_36_128", "L5_52_128", "L6_52_128",
    "L7_52_128", "L8_52_128", "L9_52_108", "L10_52_91", "L11_52_76", "L12_52_64", "L13_32_64",
    "L14_32_3",
]  # fmt: skip

# NVIDIA's published stylegan3-t-ffhq-1024x1024 generator.
NVIDIA_LAYERS_T1024 = [
    "L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512", "L6_148_512",
    "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51", "L12_1044_32",
    "L13_1024_32", "L14_1024_3",
]  # fmt: skip


def build(case: str) -> StyleGAN3Generator:
    """A reference network: our module with fill_weights(seed=7)."""
    config = StyleGAN3Config.from_nvidia_kwargs(json.loads(json.dumps(KWARGS[case])))
    module = StyleGAN3Generator(config=config).eval()
    module.load_state_dict(fill_weights(module, seed=7), strict=True)
    return module


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """The bytes NVIDIA's gen_images.py saves."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def check_reference(module: torch.nn.Module, case: str) -> None:
    """Every reference row of a case: mapping to 1e-4, pictures within one level."""
    c_dim = int(module.c_dim)  # type: ignore[arg-type]
    for transform, seed, ws_sum, ws_first, u8_sum, pixels in REFERENCE[case]:
        angle, translate = TRANSFORMS[transform]
        set_transform(module, angle_deg=angle, translate=translate)
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, int(module.z_dim)))  # type: ignore[arg-type]
        c = torch.zeros(1, c_dim)
        if c_dim:
            c[0, seed % c_dim] = 1
        with torch.no_grad():
            ws = module.mapping(z, c, truncation_psi=0.7)  # type: ignore[operator]
            img = module.synthesis(ws, noise_mode="const")  # type: ignore[operator]
        np.testing.assert_allclose(ws[0, 0, :3].numpy(), ws_first, atol=1e-4)
        assert abs(float(ws.double().sum()) - ws_sum) < 1e-3
        u8 = to_uint8(img)[0].int()
        got = [int(v) for v in u8[:, 3, 5]] + [int(v) for v in u8[:, 20, 17]]
        assert max(abs(a - b) for a, b in zip(got, pixels, strict=True)) <= 1, (case, seed, got)
        # every pixel at most one level off moves the sum by at most its count; the
        # references agree exactly, so allow a thousandth of that
        assert abs(int(u8.sum()) - u8_sum) <= u8.numel() // 1000 + 1, (case, seed)
    set_transform(module)


# How each case is written: snapshot or bare generator, pickle protocol, numpy module name
# (numpy 1 wrote numpy.core, numpy 2 writes numpy._core).
LAYOUTS = {
    "t32": (True, 4, "numpy._core"),
    "r32": (True, 3, "numpy.core"),
    "t32c": (False, 4, "numpy.core"),
    "r64c": (True, 4, "numpy._core"),
}


def write_pickle(case: str, path: Path) -> Path:
    """A network pickle in NVIDIA's format holding the reference network of a case."""
    snapshot, protocol, numpy_module = LAYOUTS[case]
    return write_network_pickle(
        path,
        build(case),
        init_kwargs=stylegan3_init_kwargs(KWARGS[case]),
        class_name=stylegan3_class_name,
        attributes=stylegan3_attributes,
        snapshot=snapshot,
        protocol=protocol,
        numpy_module=numpy_module,
    )


def stylegan3_init_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """init_kwargs as stylegan3's train.py records them (mapping_kwargs an EasyDict)."""
    return {**kwargs, "mapping_kwargs": EasyDict(kwargs["mapping_kwargs"])}


@pytest.mark.parametrize("case", list(REFERENCE))
def test_imported_pickle_draws_nvidia_reference_pictures(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path / "models"))
    path = write_pickle(case, tmp_path / f"{case}.pkl")
    network = read_pickle(path)
    # the globals a real SG3 pickle uses, numpy arrays (layer sizes) included
    numpy_module = LAYOUTS[case][2]
    for name in ("multiarray._reconstruct", "multiarray.scalar"):
        assert f"{numpy_module}.{name}" in network.globals_seen
    assert {"numpy.ndarray", "torch_utils.persistence._reconstruct_persistent_obj"} <= (
        network.globals_seen
    )
    loaded = load_model(path)  # converted once, cached by content
    assert loaded.arch == "stylegan3" and loaded.kind == "unconditional"
    assert loaded.metadata["config"] == dataclasses.asdict(
        StyleGAN3Config.from_nvidia_kwargs(KWARGS[case])
    )
    assert loaded.metadata["num_ws"] == 16 and loaded.metadata["c_dim"] == KWARGS[case]["c_dim"]
    check_reference(loaded.module, case)


def test_layer_plan_and_filters_match_nvidia() -> None:
    t32, r32 = build("t32"), build("r32")
    assert t32.synthesis.layer_names == NVIDIA_LAYERS_T32
    assert r32.synthesis.layer_names == NVIDIA_LAYERS_R32
    assert t32.num_ws == 16 and t32.mapping.num_ws == 16
    state = r32.state_dict()
    # radial (2D) down filters everywhere but the critically sampled layers and ToRGB
    assert state["synthesis.L0_36_128.down_filter"].shape == (12, 12)
    assert state["synthesis.L12_52_64.down_filter"].shape == (12,)
    assert state["synthesis.L5_52_128.up_filter"].shape == (24,)  # 16 -> 64 samples: x4
    assert "synthesis.L14_32_3.up_filter" not in state  # ToRGB: no filters
    # values NVIDIA's scipy-based design gives
    np.testing.assert_allclose(
        state["synthesis.L0_36_128.down_filter"][5, 3:9].numpy(),
        [0.01854216, 0.03053336, 0.03875488, 0.03875488, 0.03053336, 0.01854216],
        atol=1e-7,
    )
    np.testing.assert_allclose(
        state["synthesis.L5_52_128.up_filter"][6:12].numpy(),
        [0.03028362, 0.05131236, 0.0747529, 0.09721614, 0.1149508, 0.12474386],
        atol=1e-7,
    )
    f = lowpass_filter(numtaps=12, cutoff=2.0, width=2 * (2**2.1 - 2), fs=16)
    assert f is not None
    np.testing.assert_allclose(
        f[:6].numpy(),
        [-0.0022257117, -0.0047337052, 0.01348749, 0.0755722014, 0.1713357121, 0.2465640134],
        atol=1e-7,
    )
    assert lowpass_filter(numtaps=1, cutoff=1.0, width=1.0, fs=4) is None


def test_rotating_the_input_by_90_degrees_rotates_the_picture() -> None:
    # stylegan3-r is equivariant to rotation: turning the input turns the whole picture
    module = build("r32")
    ws = module.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, 32)), None)
    with torch.no_grad():
        features = module.synthesis.input(ws[:, 0])
        picture = module.synthesis(ws)
        set_transform(module, angle_deg=90)
        features_90 = module.synthesis.input(ws[:, 0])
        picture_90 = module.synthesis(ws)
    torch.testing.assert_close(
        features_90, torch.rot90(features, 1, dims=(2, 3)), atol=1e-5, rtol=0
    )
    diff = (to_uint8(picture_90).int() - to_uint8(torch.rot90(picture, 1, dims=(2, 3))).int()).abs()
    assert int(diff.max()) <= 1
    assert float((picture_90 - picture).abs().max()) > 0.05  # it did turn


def test_translate_and_zoom_move_the_input_features() -> None:
    module = build("t32")
    w = module.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, 32)), None)[:, 0]
    layer = module.synthesis.input
    with torch.no_grad():
        base = layer(w)  # (1, C, 36, 36)
        set_transform(module, translate=(0.25, 0.0))
        shifted = layer(w)
        set_transform(module, zoom=2.0)
        zoomed = layer(w)
        buffer = layer.transform.clone()
        set_transform(module)
        again = layer(w)
    assert float((shifted - base).abs().max()) > 0.1
    assert float((zoomed - base).abs().max()) > 0.1
    torch.testing.assert_close(again, base, atol=0, rtol=0)
    # zoom 2 halves every input frequency: the transform is diag(1/2, 1/2, 1)
    torch.testing.assert_close(buffer, torch.diag(torch.tensor([0.5, 0.5, 1.0])))
    m = transform_matrix(angle_deg=30.0, translate=(0.1, -0.25))
    # NVIDIA's make_transform: [[c, s, tx], [-s, c, ty], [0, 0, 1]]; input.transform its inverse
    np.testing.assert_allclose(np.linalg.inv(m)[0], [np.cos(np.pi / 6), 0.5, 0.1], atol=1e-12)
    with pytest.raises(ValueError, match="zoom"):
        transform_matrix(zoom=0.0)
    with pytest.raises(ValueError, match="StyleGAN3"):
        set_transform(torch.nn.Linear(2, 2))


def test_fp16_layers_render_in_fp32_on_the_cpu() -> None:
    module = build("t32")
    # num_fp16_res=4: layers whose sampling rate x 2**4 exceeds the resolution (here all)
    assert all(getattr(module.synthesis, n).use_fp16 for n in module.synthesis.layer_names)
    big = plan_synthesis(synthetic_config("stylegan3-t-1024"))
    assert [p.name for p in big.layers if not p.use_fp16] == NVIDIA_LAYERS_T1024[:5]
    ws = module.mapping(torch.from_numpy(np.random.RandomState(1).randn(1, 32)), None)
    with torch.no_grad():
        exact = module.synthesis(ws)
        module.synthesis.fast = True  # what the CUDA fast path sets
        fast = module.synthesis(ws)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast, exact, atol=0, rtol=0)


def test_fp16_layers_stay_within_half_precision_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fp16 arithmetic of the CUDA fast path, run on the CPU by letting the CPU count
    # as a half-precision device: the picture moves by rounding, never overflows.
    module = build("t32")
    ws = module.mapping(torch.from_numpy(np.random.RandomState(5).randn(1, 32)), None)
    with torch.no_grad():
        exact = module.synthesis(ws)
        monkeypatch.setattr(sg3, "HALF_DEVICE_TYPES", ("cuda", "cpu"))
        enable(module, torch.device("cuda"))  # the CUDA decision; nothing runs on CUDA
        assert module.synthesis.fast
        half = module.synthesis(ws)
    assert half.dtype == torch.float32 and bool(torch.isfinite(half).all())
    diff = (to_uint8(half).int() - to_uint8(exact).int()).abs()
    assert int(diff.max()) <= 2 and float((diff > 1).float().mean()) < 0.01
    assert not torch.equal(half, exact)  # it really ran in half precision


def test_config_from_nvidia_kwargs() -> None:
    kwargs = dict(KWARGS["r32"], channel_base=np.int64(2048), first_cutoff=np.float64(2))
    config = StyleGAN3Config.from_nvidia_kwargs(kwargs)
    assert config.variant == "stylegan3-r" and config.channel_base == 2048
    assert isinstance(config.first_cutoff, float)
    assert StyleGAN3Config.from_nvidia_kwargs(config.nvidia_kwargs()) == config
    assert StyleGAN3Config(**json.loads(json.dumps(dataclasses.asdict(config)))) == config
    assert StyleGAN3Config.from_nvidia_kwargs(KWARGS["t32"]).variant == "stylegan3-t"
    with pytest.raises(ValueError, match="fused_modconv_default"):
        StyleGAN3Config.from_nvidia_kwargs(dict(KWARGS["t32"], fused_modconv_default=True))
    with pytest.raises(ValueError, match="mapping kwarg 'embed_features'"):
        StyleGAN3Config.from_nvidia_kwargs(
            dict(KWARGS["t32"], mapping_kwargs={"embed_features": 8})
        )
    with pytest.raises(ValueError, match="lack img_channels"):
        StyleGAN3Config.from_nvidia_kwargs(
            {k: v for k, v in TINY.items() if k != "img_channels"} | {"c_dim": 0}
        )
    with pytest.raises(ValueError, match="img_resolution"):
        StyleGAN3Config.from_nvidia_kwargs(dict(KWARGS["t32"], img_resolution=48))
    with pytest.raises(ValueError, match="channel_max"):
        StyleGAN3Config.from_nvidia_kwargs(dict(KWARGS["t32"], channel_max="512"))


def test_synthetic_configs_have_the_official_shape() -> None:
    plan = plan_synthesis(synthetic_config("stylegan3-t-1024"))
    assert (plan.input_size, plan.input_channels) == (36, 512)
    assert [p.name for p in plan.layers] == NVIDIA_LAYERS_T1024
    r = synthetic_config("stylegan3-r-1024")
    assert (r.channel_base, r.channel_max, r.conv_kernel) == (65536, 1024, 1)
    with pytest.raises(ValueError, match="unknown StyleGAN3 config"):
        synthetic_config("stylegan3-x-512")
    with pytest.raises(ValueError, match="resolution"):
        synthetic_config("stylegan3-t-128")


def test_inputs_are_checked() -> None:
    module = build("t32c")
    z = torch.randn(1, 32)
    with pytest.raises(ValueError, match="c must be"):
        module.mapping(z, None)
    with pytest.raises(ValueError, match="z must be"):
        module.mapping(torch.randn(1, 31), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="ws must be"):
        module.synthesis(torch.zeros(1, 3, 32))
    with pytest.raises(ValueError, match="noise_mode"):
        module.synthesis(torch.zeros(1, 16, 32), noise_mode="loud")
    # const, random and none draw the same picture: StyleGAN3 has no noise inputs
    ws = module.mapping(z, torch.eye(4)[:1])
    with torch.no_grad():
        a = module.synthesis(ws, noise_mode="random")
        b = module.synthesis(ws, noise_mode="none")
    torch.testing.assert_close(a, b, atol=0, rtol=0)
