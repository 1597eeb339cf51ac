"""`ganvj render tour --show FILE`: the W keyframes a performer stored live, drawn offline."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from models.catalog import load_model
from models.cli import main
from models.latent_space import Pose, space_for
from models.pixels import resize, to_uint8
from server.commands import parse
from server.play import PlayState
from server.showfile import Show, save
from tests.support.nvidia_pickles import (
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    write_network_pickle,
)

SIZE = 48


@pytest.fixture
def faces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    kwargs = stylegan2_ada_kwargs(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, channel_base=128, channel_max=16
    )
    generator = seeded_stylegan2(kwargs, seed=5, noise_seed=6)
    return write_network_pickle(tmp_path / "faces.pkl", generator, init_kwargs=kwargs)


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(float) for f in container.decode(video=0)]


def test_tour_from_the_show_draws_the_stored_w_keyframes(faces: Path, tmp_path: Path) -> None:
    model = load_model(faces)
    state = PlayState(space=space_for(model, model.module), model_name=model.name)
    # A performer's set: reshuffles, a stored W position off any seed, a 3-key tour.
    for address, args in (
        ("/keyframe/2/reshuffle", []),
        ("/keyframe/interp", ["lerp"]),
        ("/latent/xy", [0.3, 0.6]),
        ("/sequence/length", [3]),
        ("/sequence/step", [0.12]),
    ):
        state.apply(parse(address, args), 0.0)
    state.latent(1.0, 1.0)
    state.apply(parse("/keyframe/3/store", []), 1.0)
    show = tmp_path / "show.json"
    save(show, Show(models={"faces": state.snapshot()}))
    out = tmp_path / "tour.mp4"
    code = main(["render", "tour", str(out), "--model", str(faces), "--show", str(show)])
    assert code == 0
    assert main(["render", "tour", str(out), "--force", "--model", str(faces), "--show",
                 str(show), "--size", str(SIZE), "--fps", "25"]) == 0  # fmt: skip
    video = frames(out)
    assert len(video) == 3 * 3  # three keyframes, 0.12 s each at 25 fps
    with torch.no_grad():
        expected = [
            to_uint8(resize(state.space.render(Pose(state.bank[k])), SIZE))[0].astype(float)
            for k in range(3)
        ]
    for k in range(3):
        errors = [np.abs(video[3 * k] - e).mean() for e in expected]
        # Keyframe k, through H.264's chroma subsampling of a random network's fine noise.
        assert errors[k] < 0.5 * sorted(errors)[1] and errors[k] == min(errors)
    assert not np.allclose(expected[1], expected[2], atol=8)  # the keyframes differ


def test_a_show_without_this_model_or_in_the_wrong_space_is_refused(
    faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show = tmp_path / "show.json"
    save(show, Show(models={"plasma": PlayState(z_dim=8).snapshot()}))
    out = tmp_path / "tour.mp4"
    assert main(["render", "tour", str(out), "--model", str(faces), "--show", str(show)]) != 0
    assert "no keyframes for model 'faces' (stored: plasma)" in capsys.readouterr().err
    save(show, Show(models={"faces": PlayState(z_dim=8).snapshot()}))
    assert main(["render", "tour", str(out), "--model", str(faces), "--show", str(show)]) != 0
    assert "in z; this stylegan2 plays 8 in w" in capsys.readouterr().err
    assert not out.exists()
