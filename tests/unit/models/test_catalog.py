"""One name for a model everywhere: a file stem in the model folders, or a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.catalog import Catalog, ModelNotFound, shown, user_models_dir
from models.checkpoint import save_checkpoint
from models.cli import main
from models.latent_space import space_for
from models.names import is_model_name
from server.commands import opens_by_path
from server.play import PlayState
from server.showfile import Show, save
from tests.conftest import tiny_model


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user models folder holding `film` (a tiny DCGAN); $GANVJ_MODELS_DIR points at it."""
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(models))
    model = tiny_model(resolution=32, seed=3)
    save_checkpoint(
        models / "film.safetensors",
        arch="dcgan",
        config=model.module.config,
        weights=model.module,
        training={},
    )
    return models


def test_a_name_is_a_bare_stem_and_anything_else_is_a_path() -> None:
    for name in ("film", "default-dcgan-128", "faces_v2"):
        assert is_model_name(name)
    for path in ("", "./film", "../film", "/a/film", "~/film", "a\\b", "film.safetensors", "x.PKL"):
        assert not is_model_name(path)
    assert not opens_by_path("/model/load", ["film"])
    assert opens_by_path("/model/load", ["/tmp/film.safetensors"])
    assert not opens_by_path("/react/trigger", ["/tmp/x"])


def test_the_models_folder_is_state_dir_models_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GANVJ_MODELS_DIR", raising=False)
    assert user_models_dir(tmp_path / "state") == tmp_path / "state" / "models"
    assert user_models_dir() == Path.home() / ".local/share/ganvj/models"
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path / "mine"))
    assert user_models_dir(tmp_path / "state") == tmp_path / "mine"


def test_a_model_resolves_by_name_and_by_path(folder: Path) -> None:
    catalog = Catalog(folder)
    assert catalog.resolve("film") == folder / "film.safetensors"
    assert catalog.resolve(str(folder / "film.safetensors")) == folder / "film.safetensors"
    assert catalog.resolve("default-dcgan-128").parent.name == "weights"  # shipped ones too
    assert catalog.open("film").name == catalog.open(str(folder / "film.safetensors")).name


def test_errors_name_both_forms(folder: Path) -> None:
    catalog = Catalog(folder)
    with pytest.raises(ModelNotFound) as by_name:
        catalog.resolve("gamma")
    assert str(by_name.value) == f"no model named 'gamma' in {shown(folder)} (or give a path)"
    with pytest.raises(ModelNotFound) as by_path:
        catalog.resolve(str(folder / "gone.safetensors"))
    message = str(by_path.value)
    assert "gone.safetensors: no such model file" in message
    assert "or give a model's name" in message and "film" in message


def test_shown_writes_the_home_folder_as_a_tilde() -> None:
    assert shown(Path.home() / ".local/share/ganvj/models") == "~/.local/share/ganvj/models"
    assert shown(Path("/srv/models")) == "/srv/models"


def test_render_images_takes_a_name_or_a_path(folder: Path, tmp_path: Path) -> None:
    def images(spec: str, outdir: Path) -> int:
        return main(["render", "images", "--model", spec, "--seeds", "1", "--outdir", str(outdir)])

    by_name, by_path = tmp_path / "a", tmp_path / "b"
    assert images("film", by_name) == 0
    assert images(str(folder / "film.safetensors"), by_path) == 0
    assert (by_name / "seed0001.png").read_bytes() == (by_path / "seed0001.png").read_bytes()
    assert images("gamma", tmp_path / "c") == 2


def test_render_tour_show_takes_the_model_by_name_or_path(folder: Path, tmp_path: Path) -> None:
    model = Catalog(folder).open("film")
    state = PlayState(space=space_for(model, model.module), model_name=model.name)
    show = tmp_path / "show.json"
    save(show, Show(models={"film": state.snapshot()}))
    for n, spec in enumerate(("film", str(folder / "film.safetensors"))):
        out = tmp_path / f"tour{n}.mp4"
        args = [
            "render",
            "tour",
            str(out),
            "--model",
            spec,
            "--show",
            str(show),
            "--keyframes",
            "2",
        ]
        assert main([*args, "--frames-per-step", "1"]) == 0
        assert out.stat().st_size > 0


def test_ganvj_models_says_where_it_looks(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert f"yours:     {shown(folder)}\n" in out
    assert "shipped:" in out and "film" in out
