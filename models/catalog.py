"""The model catalog: where model files are, what they are called, and how each format loads.

A model is named by its file stem in the model folders (the shipped weights,
then the user's folder) or given by path. A `.safetensors` file loads as is
(models.checkpoint); a StyleGAN network pickle or a rosinality checkpoint is
converted once, cached by content under the user's folder, and loads from
there (models.formats). The catalog sits above both: they never import it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import (
    ARCHITECTURES,
    MAX_CONFIG_INT,
    MAX_RESOLUTION,
    CheckpointError,
    LoadedModel,
    check_encoder_pair,
    read_header,
)
from models.checkpoint import load_model as load_checkpoint
from models.formats.stylegan import CACHE_FOLDER, cached_import, converted_path
from models.names import MODEL_SUFFIXES, is_model_name

logger = logging.getLogger(__name__)

DEFAULT_FILES = {
    "unconditional": "default-dcgan-128.safetensors",
    "image2image": "default-pix2pix-128.safetensors",
    "encoder": "default-encoder-128.safetensors",
    # Not a kind but a role: an image2image model trained on (t, t+k) pairs,
    # which feedback mode iterates to continue the motion.
    "feedback": "default-nextframe-128.safetensors",
}
# Files converted on load (cached by content): NVIDIA network pickles and
# rosinality/stylegan2-pytorch checkpoints.
PICKLE_SUFFIXES = (".pkl", ".pt", ".pth")
DEFAULT_STATE_DIR = "~/.local/share/ganvj"  # server.state_dir's default
NAMES_SHOWN = 8  # names an error lists before "..."


class ModelNotFound(CheckpointError):
    """A model name or path that names no file; the message gives both forms."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model file's header says, read without touching the weights."""

    name: str
    path: Path
    arch: str
    kind: str
    resolution: int
    z_dim: int | None
    size_bytes: int
    metadata: dict[str, Any]
    error: str | None = None  # why the file cannot be loaded (list_models(unreadable=True))


def weights_dir() -> Path:
    """The folder of the shipped default models."""
    return Path(__file__).resolve().parent / "weights"


def user_models_dir(state_dir: Path | str | None = None) -> Path:
    """The user's models folder: $GANVJ_MODELS_DIR, else `state_dir`/models."""
    override = os.environ.get("GANVJ_MODELS_DIR")
    if override:
        return Path(override).expanduser()
    return Path(state_dir or DEFAULT_STATE_DIR).expanduser() / "models"


def cache_dir(user_dir: Path | None = None) -> Path:
    """Where converted pickles are kept, by content hash."""
    return (user_dir if user_dir is not None else user_models_dir()) / CACHE_FOLDER


def default_model_path(kind: str = "unconditional") -> Path:
    """The shipped default model file for a kind."""
    if kind not in DEFAULT_FILES:
        raise ValueError(
            f"unknown model kind {kind!r} (expected one of {', '.join(DEFAULT_FILES)})"
        )
    return weights_dir() / DEFAULT_FILES[kind]


def load_model(
    path: Path | str,
    device: torch.device | str = "cpu",
    *,
    arch: str | None = None,
    cache: Path | None = None,
) -> LoadedModel:
    """Load a model file of any format we read; `arch` (optional) demands one architecture.

    A StyleGAN network pickle (.pkl) or rosinality checkpoint (.pt) is
    converted once and cached by content in `cache` (the user folder's by
    default); the model keeps the source file's name and path.
    """
    source = Path(path)
    if source.suffix.lower() not in PICKLE_SUFFIXES:
        return load_checkpoint(source, device, arch=arch)
    converted = cached_import(source, cache=cache if cache is not None else cache_dir())
    model = load_checkpoint(converted, device, arch=arch)
    return dataclasses.replace(model, name=source.stem, path=source)


def find_model(name: str, folders: list[Path] | None = None) -> Path | None:
    """The model file called `name` in the model folders, readable or not.

    `folders` is the shipped weights and the user's folder by default; a
    converted format is looked for in the last one. An unreadable file is
    still returned: loading it then says exactly what is wrong with it, which
    beats "no such model" for a file the performer can see.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    folders = folders if folders is not None else [weights_dir(), user_models_dir()]
    for folder in folders:
        path = folder / f"{name}.safetensors"
        if path.is_file():
            return path
    # A StyleGAN .pkl (or rosinality .pt) in the user's folder: converted once, on load.
    for suffix in PICKLE_SUFFIXES:
        other = folders[-1] / f"{name}{suffix}"
        if other.is_file():
            return other
    return None


def shown(path: Path) -> str:
    """A path as a person writes it: the home folder as `~`."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


@dataclass(frozen=True)
class Catalog:
    """The folders one process looks in for models: the shipped weights, then the user's."""

    user_dir: Path = dataclasses.field(default_factory=user_models_dir)

    @property
    def folders(self) -> list[Path]:
        """Where names are looked up, first match wins."""
        return [weights_dir(), self.user_dir]

    def find(self, name: str) -> Path | None:
        """The file called `name` in the folders, or None."""
        return find_model(name, self.folders)

    def resolve(self, spec: str, *, kind: str = "unconditional") -> Path:
        """The file a name or path means ("" = the shipped default of `kind`); ModelNotFound."""
        if not spec:
            return default_model_path(kind)
        if is_model_name(spec):
            path = self.find(spec)
            if path is None:
                raise ModelNotFound(
                    f"no model named {spec!r} in {shown(self.user_dir)} (or give a path)"
                )
            return path
        path = Path(spec).expanduser()
        if not path.is_file():
            names = self.names()
            listed = ", ".join(names[:NAMES_SHOWN]) + (", ..." if len(names) > NAMES_SHOWN else "")
            raise ModelNotFound(
                f"{spec}: no such model file (or give a model's name, a file stem in "
                f"{shown(self.user_dir)}: {listed or 'none there yet'})"
            )
        return path

    def load(
        self, path: Path | str, device: torch.device | str = "cpu", *, arch: str | None = None
    ) -> LoadedModel:
        """Load a file of any format, converting into this catalog's cache."""
        return load_model(path, device, arch=arch, cache=cache_dir(self.user_dir))

    def open(
        self, spec: str, device: torch.device | str = "cpu", *, kind: str = "unconditional"
    ) -> LoadedModel:
        """Resolve a name or path and load it."""
        return self.load(self.resolve(spec, kind=kind), device)

    def names(self) -> list[str]:
        """The model names the folders hold (file stems), sorted, without duplicates."""
        found = {
            p.stem
            for folder in self.folders
            if folder.is_dir()
            for p in folder.iterdir()
            if p.suffix.lower() in MODEL_SUFFIXES and is_model_name(p.stem)
        }
        return sorted(found)

    def list(self, *, unreadable: bool = False) -> list[ModelInfo]:
        """Every model in the folders, from headers only (`unreadable`: bad files with errors)."""
        return list_models(self.folders, cache=cache_dir(self.user_dir), unreadable=unreadable)


def resolve_model(
    spec: str,
    device: torch.device | str = "cpu",
    *,
    kind: str = "unconditional",
    catalog: Catalog | None = None,
) -> LoadedModel:
    """Load the model a name or path means, or the shipped default of `kind` for ""."""
    return (catalog or Catalog()).open(spec, device, kind=kind)


def reaction_models(
    generator: LoadedModel,
    *,
    pix2pix: str = "",
    encoder: str = "",
    feedback: str = "",
    catalog: Catalog | None = None,
) -> tuple[LoadedModel | None, LoadedModel | None, LoadedModel | None]:
    """pix2pix, the encoder and the feedback model for reactions, where they exist and fit."""
    catalog = catalog or Catalog()
    found_pix2pix = _optional_model(catalog, pix2pix, "image2image")
    found_encoder = _optional_model(catalog, encoder, "encoder")
    found_feedback = _optional_model(catalog, feedback, "image2image", role="feedback")
    if found_encoder is not None:
        try:
            check_encoder_pair(found_encoder, generator)
        except CheckpointError as exc:
            # An encoder inverts one generator; any other would mirror nonsense.
            logger.info("mirror mode is off: %s", exc)
            found_encoder = None
    return found_pix2pix, found_encoder, found_feedback


def _optional_model(
    catalog: Catalog, configured: str, kind: str, role: str | None = None
) -> LoadedModel | None:
    path = catalog.resolve(configured, kind=role or kind)
    if not configured and not path.is_file():
        return None
    model = catalog.load(path)  # a configured file that is bad stops the start
    if model.kind != kind:
        raise CheckpointError(f"{path}: is a {model.kind} model, expected {kind}")
    return model


def list_models(
    dirs: list[Path] | None = None, *, cache: Path | None = None, unreadable: bool = False
) -> list[ModelInfo]:
    """Every loadable-looking model file in the folders, from headers only.

    A file whose header cannot be read is skipped, or with `unreadable` listed
    with `error` saying why (arch and kind empty).
    """
    folders = [weights_dir(), user_models_dir()] if dirs is None else dirs
    found: list[ModelInfo] = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        found.extend(_convertible_models(Path(folder), cache or cache_dir()))
        for path in sorted(Path(folder).glob("*.safetensors")):
            try:
                found.append(describe_model(path))
            except CheckpointError as exc:
                logger.warning("skipping %s: %s", path, exc)
                if unreadable:  # named by the file's name only: no server paths to clients
                    why = str(exc).replace(str(path), path.name)
                    found.append(ModelInfo(path.stem, path, "", "", 0, None, 0, {}, why))
    return found


def describe_model(path: Path) -> ModelInfo:
    """What one model file's header says; CheckpointError for anything unusable in it."""
    meta, _ = read_header(path)
    config = meta.get("config") or {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: config is not a JSON object")
    resolution = config.get("resolution", meta.get("resolution", 0))
    z_dim = config.get("z_dim")
    if not _is_int(resolution) or not 0 <= resolution <= MAX_RESOLUTION:
        raise CheckpointError(
            f"{path}: resolution {str(resolution)[:40]} is not a number of pixels"
        )
    if z_dim is not None and not (_is_int(z_dim) and z_dim > 0):
        raise CheckpointError(f"{path}: z_dim {str(z_dim)[:40]} is not a latent size")
    kind = ARCHITECTURES[meta["arch"]].kind
    try:
        size = path.stat().st_size
    except OSError as exc:  # deleted since the header was read
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return ModelInfo(
        name=path.stem,
        path=path,
        arch=meta["arch"],
        kind=kind,
        resolution=resolution,
        z_dim=None if kind == "image2image" else z_dim,
        size_bytes=size,
        metadata=meta,
    )


def _is_int(value: object) -> bool:
    """A JSON integer a config may hold (bool is an int to Python, 10**400 is one to JSON)."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_CONFIG_INT


def _convertible_models(folder: Path, cache: Path) -> list[ModelInfo]:
    """StyleGAN .pkl / .pt files in a folder: described from their cached conversion if any."""
    found = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES):
        converted = converted_path(path, cache=cache)
        meta: dict[str, Any] = {"converted": False}
        arch, resolution, z_dim = "pickle", 0, None
        if converted is not None:
            try:
                meta, _ = read_header(converted)
                arch, resolution = meta["arch"], int(meta.get("resolution") or 0)
                z_dim = (meta.get("config") or {}).get("z_dim")
            except (CheckpointError, KeyError, TypeError, ValueError) as exc:
                logger.warning("cached conversion of %s unreadable: %s", path, exc)
        found.append(
            ModelInfo(
                name=path.stem,
                path=path,
                arch=arch,
                kind="unconditional",
                resolution=resolution,
                z_dim=z_dim,
                size_bytes=path.stat().st_size,
                metadata=meta,
            )
        )
    return found
