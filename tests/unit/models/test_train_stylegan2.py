"""StyleGAN2 training at 32 px on tiny networks: steps, resume, fine-tuning, conditioning."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_model, read_tensors
from models.images import write_png
from models.nets.stylegan2 import (
    StyleGAN2Discriminator,
    StyleGAN2DiscriminatorConfig,
    StyleGAN2Generator,
)
from models.train import TrainConfig, TrainError
from models.train_stylegan2 import (
    Networks,
    StyleGAN2Recipe,
    StyleGAN2Trainer,
    apply_precision,
    build_networks,
    default_configs,
    precision_for,
    train_stylegan2,
)
from tests.support.nvidia_pickles import (
    EasyDict,
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    write_network_pickle,
)

TINY = StyleGAN2Recipe(
    z_dim=16, w_dim=16, channel_base=256, channel_max=32, r1_every=2, pl_every=2, check=False
)
TRAIN = TrainConfig(
    steps=3,
    batch_size=4,
    lr=0.0025,
    beta1=0.0,
    beta2=0.99,
    checkpoint_every=2,
    sample_every=2,
    log_every=1,
    threads=1,
)


def write_folder(root: Path, count: int = 12, size: int = 32, labels: int = 0) -> Path:
    """Flat colours with a white square somewhere; optional class labels in dataset.json."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    table = []
    for i in range(count):
        image = np.zeros((size, size, 3), np.uint8)
        image[...] = rng.randint(0, 255, 3)
        y, x = rng.randint(0, size * 3 // 4, 2)
        image[y : y + size // 4, x : x + size // 4] = 255
        write_png(root / f"f{i:03d}.png", image)
        table.append([f"f{i:03d}.png", i % labels if labels else 0])
    if labels:
        (root / "dataset.json").write_text(json.dumps({"labels": table}))
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("sg2data") / "frames")


def finite(losses: dict[str, float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses.values())


def test_steps_run_with_finite_losses_and_a_playable_model(folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    recipe = replace(TINY, resolution=32, augment="diffaug", check=True)
    result = train_stylegan2(folder, run, recipe=recipe, train=TRAIN)
    assert result.step == 3 and finite(result.losses)
    assert result.losses["augment_p"] == 1.0  # diffaug: fixed p = 1
    assert result.losses["r1"] > 0 and result.losses["pl"] > 0  # both regularisers ran
    rows = (run / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,seconds,loss_g,loss_d,r1,pl") and len(rows) == 4
    assert (run / "samples" / "step-000002.png").is_file()
    model = load_model(run / "model.safetensors")
    assert model.arch == "stylegan2" and model.resolution == 32 and model.z_dim == 16
    meta = model.metadata
    assert (meta["w_dim"], meta["c_dim"], meta["num_ws"]) == (16, 0, model.module.num_ws)
    assert meta["training"]["step"] == 3 and meta["training"]["kimg"] == pytest.approx(0.012)
    _, tensors = read_tensors(run / "model.safetensors")
    assert tensors["extra/ganspace/components"].shape[1] == 16  # /latent/dir works
    # The sample check ran and recorded its figures.
    for name in ("nearest.png", "loss.png", "report.json"):
        assert (run / "check" / name).is_file()
    report = json.loads((run / "check" / "report.json").read_text())
    assert len(report["nearest"]) == 16 and len(report["colour"]["data"]["mean"]) == 3
    assert meta["training"]["quality"]["nearest_rms_mean"] == report["nearest_rms_mean"]
    with torch.no_grad():
        picture = model.module(torch.randn(2, 16))
    assert picture.shape == (2, 3, 32, 32) and torch.isfinite(picture).all()


def test_resume_continues_steps_and_optimiser_state(folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    recipe = replace(TINY, resolution=32, augment="ada", augment_p=0.5, ada_kimg=0.1)
    train_stylegan2(folder, run, recipe=recipe, train=replace(TRAIN, steps=4))
    meta, before = read_tensors(run / "last.safetensors")
    # G: 4 main steps + path length at steps 0 and 2; D: 4 main + R1 at 0 and 2.
    assert float(before["extra/opt_g.0.step"]) == 6 and float(before["extra/opt_d.0.step"]) == 6
    # ADA moved p from its start, one step of 16 pictures / 100 each way, after 4 steps.
    assert float(before["extra/state.augment_p"]) in (pytest.approx(0.34), pytest.approx(0.66))
    result = train_stylegan2(
        folder, run, recipe=StyleGAN2Recipe(), train=replace(TRAIN, steps=6), resume=True,
        changed=set(),
    )  # fmt: skip
    assert result.step == 6
    meta, after = read_tensors(run / "last.safetensors")
    assert meta["training"]["step"] == 6 and meta["training"]["kimg"] == pytest.approx(0.024)
    # Optimiser state was restored, not rebuilt: counts go on (steps 4 and 5: one reg, at 4).
    assert float(after["extra/opt_g.0.step"]) == 9 and float(after["extra/opt_d.0.step"]) == 9
    # The saved recipe came back (a fresh default would have made a 512-wide network).
    assert meta["config"]["w_dim"] == 16 and meta["training"]["stylegan2"]["ada_kimg"] == 0.1


def test_run_folder_is_not_overwritten(folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_stylegan2(folder, run, recipe=replace(TINY, resolution=32), train=replace(TRAIN, steps=1))
    with pytest.raises(TrainError, match="already exists"):
        train_stylegan2(folder, run, recipe=replace(TINY, resolution=32), train=TRAIN)


def test_labels_train_a_conditional_model(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "labelled", count=8, labels=3)
    run = tmp_path / "run"
    result = train_stylegan2(
        data, run, recipe=replace(TINY, resolution=32), train=replace(TRAIN, steps=2)
    )
    assert finite(result.losses)
    model = load_model(run / "model.safetensors")
    assert model.metadata["c_dim"] == 3 and model.module.c_dim == 3
    meta, _ = read_tensors(run / "last.safetensors")
    assert meta["discriminator"]["c_dim"] == 3
    # --no-cond ignores the labels.
    plain = train_stylegan2(
        data,
        tmp_path / "plain",
        recipe=replace(TINY, resolution=32, cond=False),
        train=replace(TRAIN, steps=1),
    )
    assert load_model(plain.run_dir / "model.safetensors").module.c_dim == 0


def test_channels_last_and_precision_logic_on_cpu(folder: Path) -> None:
    cuda = precision_for(torch.device("cuda"), True)
    assert cuda.fast and cuda.channels_last
    assert not precision_for(torch.device("cuda"), False).fast
    cpu = precision_for(torch.device("cpu"), True)
    assert not cpu.fast and not cpu.channels_last
    # The CUDA settings on CPU modules: flags set, weights channels-last, a step still trains.
    g_config, d_config = default_configs(TINY, resolution=32, c_dim=0, batch=4)
    nets = build_networks(g_config, d_config)
    apply_precision(nets, cuda)
    assert nets.g.synthesis.fast and nets.d.fast
    conv = nets.d.b32.conv0.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    apply_precision(nets, replace(cuda, fast=False))  # fp16 runs only on CUDA tensors anyway
    trainer = StyleGAN2Trainer(
        nets, recipe=TINY, train=TRAIN, device=torch.device("cpu"), rng=torch.Generator()
    )
    trainer.channels_last = True
    losses = trainer.step(torch.rand(4, 3, 32, 32) * 2 - 1, None, None)
    assert finite(losses)


def tiny_snapshot(
    path: Path, *, resolution: int = 32, channels: int = 3, with_d: bool = True
) -> tuple[Path, StyleGAN2Generator, StyleGAN2Discriminator]:
    """An NVIDIA-layout snapshot (G, G_ema, D) written by tests/support/nvidia_pickles.py."""
    kwargs = stylegan2_ada_kwargs(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=resolution, img_channels=channels,
        channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None,
    )  # fmt: skip
    g = seeded_stylegan2(kwargs, seed=3, noise_seed=4)
    d_kwargs = EasyDict(
        c_dim=0, img_resolution=resolution, img_channels=channels, architecture="resnet",
        channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=None, cmap_dim=None,
        block_kwargs=EasyDict(), mapping_kwargs=EasyDict(),
        epilogue_kwargs=EasyDict(mbstd_group_size=4),
    )  # fmt: skip
    d_config = StyleGAN2DiscriminatorConfig(
        img_resolution=resolution, img_channels=channels, channel_base=256, channel_max=32,
        num_fp16_res=0, conv_clamp=None,
    )  # fmt: skip
    d = StyleGAN2Discriminator(config=d_config).eval()
    with torch.no_grad():
        d.b4.out.bias.fill_(0.25)  # a recognisable value to find again
    write_network_pickle(
        path, g, init_kwargs=kwargs,
        discriminator=d if with_d else None, discriminator_kwargs=d_kwargs,
    )  # fmt: skip
    return path, g, d


def test_fine_tunes_from_an_imported_pickle_with_its_discriminator(
    folder: Path, tmp_path: Path
) -> None:
    pkl, g, _ = tiny_snapshot(tmp_path / "pretrained.pkl")
    run = tmp_path / "run"
    recipe = replace(TINY, resume_from=str(pkl), ema_rampup=0.0, ema_kimg=1000.0)
    result = train_stylegan2(folder, run, recipe=recipe, train=replace(TRAIN, steps=2))
    assert finite(result.losses)
    meta, tensors = read_tensors(run / "last.safetensors")
    assert meta["source"]["name"] == "pretrained.pkl" and meta["source"]["discriminator"]
    assert meta["config"]["channel_max"] == 32 and meta["config"]["img_resolution"] == 32
    # G_ema started from the pickle's (a long half-life barely moves it in 2 steps) ...
    start = g.state_dict()["synthesis.b32.torgb.bias"]
    assert torch.allclose(tensors["synthesis.b32.torgb.bias"], start, atol=1e-3)
    # ... and D from the pickle's D, which two steps move only a little.
    assert abs(float(tensors["extra/disc.b4.out.bias"]) - 0.25) < 0.05
    # The result plays like any model file.
    assert load_model(run / "model.safetensors").module.img_resolution == 32


def test_fine_tuning_without_a_discriminator_starts_a_fresh_one(
    folder: Path, tmp_path: Path
) -> None:
    pkl, _, _ = tiny_snapshot(tmp_path / "g-only.pkl", with_d=False)
    result = train_stylegan2(
        folder,
        tmp_path / "run",
        recipe=replace(TINY, resume_from=str(pkl)),
        train=replace(TRAIN, steps=1),
    )
    meta, _ = read_tensors(result.run_dir / "last.safetensors")
    assert meta["source"]["discriminator"] is False
    assert meta["discriminator"]["img_resolution"] == 32


def test_fine_tuning_our_own_run(folder: Path, tmp_path: Path) -> None:
    first = train_stylegan2(
        folder, tmp_path / "a", recipe=replace(TINY, resolution=32), train=replace(TRAIN, steps=1)
    )
    again = train_stylegan2(
        folder,
        tmp_path / "b",
        recipe=replace(TINY, resume_from=str(first.run_dir / "last.safetensors")),
        train=replace(TRAIN, steps=1),
    )
    meta, _ = read_tensors(again.run_dir / "last.safetensors")
    assert meta["source"]["format"] == "ganvj" and meta["source"]["discriminator"]
    assert meta["training"]["step"] == 1  # fine-tuning counts from zero


def test_mismatched_pretrained_models_are_refused_clearly(folder: Path, tmp_path: Path) -> None:
    pkl, _, _ = tiny_snapshot(tmp_path / "p32.pkl")
    with pytest.raises(TrainError, match="draws 32 px pictures, --resolution asks for 64"):
        train_stylegan2(
            folder,
            tmp_path / "r1",
            recipe=replace(TINY, resume_from=str(pkl), resolution=64),
            train=TRAIN,
        )
    grey, _, _ = tiny_snapshot(tmp_path / "grey.pkl", channels=1)
    with pytest.raises(TrainError, match="1-channel pictures; datasets are RGB"):
        train_stylegan2(
            folder, tmp_path / "r2", recipe=replace(TINY, resume_from=str(grey)), train=TRAIN
        )
    # A dataset made at another size (dataset.json says so) asks for --resolution.
    made64 = write_folder(tmp_path / "made64", count=4, size=64)
    (made64 / "dataset.json").write_text(json.dumps({"resolution": 64}))
    with pytest.raises(TrainError, match="holds 64 px ones; pass --resolution 32"):
        train_stylegan2(
            made64, tmp_path / "r3", recipe=replace(TINY, resume_from=str(pkl)), train=TRAIN
        )
    # A broken file is named.
    bad = tmp_path / "torn.pkl"
    bad.write_bytes(pkl.read_bytes()[:100])
    with pytest.raises(TrainError, match=r"torn\.pkl"):
        train_stylegan2(
            folder, tmp_path / "r4", recipe=replace(TINY, resume_from=str(bad)), train=TRAIN
        )


def test_batch_must_fit_the_minibatch_groups(folder: Path, tmp_path: Path) -> None:
    pkl, _, _ = tiny_snapshot(tmp_path / "p.pkl")  # its D compares groups of 4
    with pytest.raises(TrainError, match="groups of 4; use a multiple of 4"):
        train_stylegan2(
            folder,
            tmp_path / "run",
            recipe=replace(TINY, resume_from=str(pkl)),
            train=replace(TRAIN, batch_size=6),
        )


def test_kimg_sets_the_length(folder: Path, tmp_path: Path) -> None:
    result = train_stylegan2(
        folder,
        tmp_path / "run",
        recipe=replace(TINY, resolution=32, kimg=0.008),
        train=replace(TRAIN, steps=1000),
    )
    assert result.step == 2  # 8 pictures at batch 4


def test_networks_dataclass_shapes() -> None:
    g_config, d_config = default_configs(TINY, resolution=32, c_dim=0, batch=6)
    assert d_config.mbstd_group_size == 2  # the largest group dividing 6
    nets: Networks = build_networks(g_config, d_config)
    assert not any(p.requires_grad for p in nets.g_ema.parameters())


def test_fid_without_a_usable_feature_network_fails_before_training(
    folder: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="needs --inception FILE"):
        replace(TINY, metrics="fid")
    bad = tmp_path / "inception.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"inception\.pt: not a torch.export program"):
        train_stylegan2(
            folder,
            tmp_path / "run",
            recipe=replace(TINY, resolution=32, metrics="fid", inception=str(bad)),
            train=TRAIN,
        )
    assert not (tmp_path / "run").exists()  # nothing started


def test_fine_tuning_from_an_import_with_its_discriminator_keeps_that_d(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ganvj import --discriminator`, then `train stylegan2 --resume-from` the file: same D."""
    from models.cli import main
    from models.train_stylegan2 import load_pretrained

    pkl, _, d = tiny_snapshot(tmp_path / "snap.pkl")
    imported = tmp_path / "snap.safetensors"
    argv = ["import", str(pkl), "--out", str(imported), "--samples", "8", "--discriminator"]
    assert main(argv) == 0
    nets = load_pretrained(imported, batch=4)
    assert nets.source is not None and nets.source["discriminator"] is True
    loaded = nets.d.state_dict()
    for name, tensor in d.state_dict().items():
        assert torch.equal(loaded[name].float(), tensor.float()), name
    run = tmp_path / "run"
    argv = ["train", "stylegan2", str(folder), "--run", str(run), "--resume-from", str(imported),
            "--steps", "1", "--batch-size", "4", "--threads", "1", "--device", "cpu",
            "--no-check", "--checkpoint-every", "1000", "--sample-every", "1000"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    meta, tensors = read_tensors(run / "last.safetensors")
    assert meta["source"]["discriminator"] is True
    # One step moves the imported D only a little from its recognisable bias.
    assert abs(float(tensors["extra/disc.b4.out.bias"]) - 0.25) < 0.05
