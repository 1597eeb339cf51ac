"""The CLI subcommands: exit codes and one-line errors, through the real parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import pytest

from models.cli import register


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ganvj")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_procedural_dataset_train_render_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "p.mp4"
    assert (
        run(["render", "procedural", str(video), "--size", "32", "--seconds", "1", "--fps", "10"])
        == 0
    )
    assert (
        run(["dataset", str(video), "--out", str(tmp_path / "d"), "--size", "64", "--every", "2"])
        == 0
    )
    assert "5 pictures at 64px as PNG files" in capsys.readouterr().out
    argv = [
        "train",
        "dcgan",
        str(tmp_path / "d"),
        "--run",
        str(tmp_path / "r"),
        "--resolution",
        "16",
        "--z-dim",
        "8",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--export",
        str(tmp_path / "models" / "mine.safetensors"),
    ]
    assert run(argv) == 0
    assert "finished at step 2" in capsys.readouterr().out
    assert (
        run(
            [
                "render",
                "walk",
                str(tmp_path / "w.mp4"),
                "--model",
                str(tmp_path / "models" / "mine.safetensors"),
                "--seconds",
                "0.4",
                "--fps",
                "10",
            ]
        )
        == 0
    )
    with av.open(str(tmp_path / "w.mp4")) as container:
        assert len(list(container.decode(video=0))) == 4
    assert run(["models", "--dir", str(tmp_path / "models")]) == 0
    assert "mine" in capsys.readouterr().out


def test_user_errors_print_one_line_and_return_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert run(["dataset", str(fake), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fake.mp4" in err and "not a video" in err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 4)
    assert run(["render", "walk", str(tmp_path / "o.mp4"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.safetensors" in err
    assert run(["dataset", str(fake), "--out", str(tmp_path / "d"), "--size", "100"]) == 2
    assert "power of two" in capsys.readouterr().err


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        run([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # the same at any terminal width


def test_train_help_lists_each_models_own_flags_and_real_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sg2 = help_text(["train", "stylegan2", "data"], capsys)
    assert "--l1-weight" not in sg2 and "--feature-weight" not in sg2
    assert "--lr LR default 0.0025" in sg2  # the StyleGAN2 recipe's, not DCGAN's
    assert "0: the pretrained model's, else the dataset's" in sg2  # from the field's comment
    pix = help_text(["train", "pix2pix", "data"], capsys)
    assert "--l1-weight" in pix and "--image-weight" not in pix
    assert "--lr LR default 0.0002" in pix
    enc = help_text(["train", "encoder", "g.safetensors"], capsys)
    assert "--feature-weight" in enc and "--l1-weight" not in enc


def test_train_picks_the_device_as_serve_does_by_default() -> None:
    """`--device` defaults to auto: CUDA, then MPS, then CPU (models.device.pick_device)."""
    from models.cli import config_from_args
    from models.device import pick_device
    from models.train import TrainConfig, run_device

    parser = argparse.ArgumentParser(prog="ganvj")
    register(parser.add_subparsers(dest="command", required=True))
    for model in ("dcgan", "stylegan2", "pix2pix", "encoder"):
        args = parser.parse_args(["train", model, "data", "--run", "r"])
        train = config_from_args(TrainConfig, args)
        assert train.device == "auto", model
        assert run_device(train) == pick_device("auto")
    assert run_device(TrainConfig(device="cpu")).type == "cpu"
