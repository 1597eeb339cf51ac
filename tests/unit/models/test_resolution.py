"""One range of resolutions: the help texts, the CLI's errors and the configs all read it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from models.cli import register
from models.dataset import DatasetConfig, DatasetError
from models.nets.dcgan import DCGANConfig
from models.nets.pix2pix import Pix2PixConfig
from models.resolution import MAX_RESOLUTION, MIN_RESOLUTION, RESOLUTIONS, check_resolution


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ganvj")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        run([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


OUT_OF_RANGE = [MIN_RESOLUTION // 2, MAX_RESOLUTION * 2, 100]


def test_the_range_is_the_one_the_text_names() -> None:
    assert f"a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}" == RESOLUTIONS
    for r in (MIN_RESOLUTION, 64, MAX_RESOLUTION):
        check_resolution(r)
    for r in OUT_OF_RANGE:
        with pytest.raises(ValueError, match=RESOLUTIONS):
            check_resolution(r)


@pytest.mark.parametrize(
    "argv",
    [["dataset", "v.mp4", "--out", "d"], ["train", "dcgan"], ["train", "pix2pix"],
     ["train", "stylegan2"]],
)  # fmt: skip
def test_every_help_text_names_the_range(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(argv, capsys)
    assert RESOLUTIONS in text
    assert "64..1024" not in text and "8..1024" not in text


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_the_cli_refuses_what_the_help_does_not_offer(
    bad: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["dataset", "none.mp4", "--out", f"{tmp_path}/d", "--size", str(bad)]) == 2
    assert f"--size must be {RESOLUTIONS}, got {bad}" in capsys.readouterr().err
    for model in ("dcgan", "pix2pix", "stylegan2"):
        argv = ["train", model, "none", "--run", f"{tmp_path}/r", "--resolution", str(bad)]
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert f"--resolution must be {RESOLUTIONS}, got {bad}" in err
        assert err.count("\n") == 1


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_configs_refuse_the_same_range(bad: int) -> None:
    with pytest.raises(ValueError, match=RESOLUTIONS):
        DCGANConfig(resolution=bad)
    with pytest.raises(ValueError, match=RESOLUTIONS):
        Pix2PixConfig(resolution=bad)
    with pytest.raises(DatasetError, match=RESOLUTIONS):
        DatasetConfig(size=bad)
