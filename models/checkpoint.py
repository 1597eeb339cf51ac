"""Checkpoints: safetensors weights plus JSON metadata that rebuilds the model.

A file holds the generator's tensors (and, for training runs, extra tensors
under `extra/`), and one metadata key `ganvj` with JSON:
{"format": 1, "arch", "kind", "config", "resolution", "z_dim", "training", ...}.
Loading parses the header by hand, checks every tensor against the rebuilt
model, and never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file
from torch import Tensor

from models.nets.dcgan import DCGANConfig, DCGANGenerator
from models.nets.encoder import Encoder, EncoderConfig
from models.nets.pix2pix import Pix2PixConfig, UNetGenerator
from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from models.nets.stylegan3 import StyleGAN3Config, StyleGAN3Generator

logger = logging.getLogger(__name__)

FORMAT = 1
METADATA_KEY = "ganvj"
EXTRA_PREFIX = "extra/"
# A StyleGAN2 discriminator rides along as extra tensors in one of two layouts:
# `ganvj import --discriminator` writes `discriminator/*` with metadata
# {"discriminator": {"config": {...}}}; a training run writes `disc.*` (beside
# G and the optimisers) with the config flat under "discriminator".
IMPORTED_D_PREFIX = "discriminator/"
TRAINED_D_PREFIX = "disc."
MAX_HEADER_BYTES = 16 * 1024 * 1024  # a header larger than this is not ours
MAX_RESOLUTION = 1 << 16  # a model file claiming more pixels than this is not ours
MAX_CONFIG_INT = 2**31 - 1  # no config number (widths, sizes, rates) is larger


class CheckpointError(ValueError):
    """A model file that cannot be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class Architecture:
    """How to rebuild the served module of one architecture from its config."""

    kind: str
    config_cls: type
    build: Callable[[Any], nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "dcgan": Architecture("unconditional", DCGANConfig, lambda c: DCGANGenerator(config=c)),
    "pix2pix": Architecture("image2image", Pix2PixConfig, lambda c: UNetGenerator(config=c)),
    "encoder": Architecture("encoder", EncoderConfig, lambda c: Encoder(config=c)),
    "stylegan2": Architecture(
        "unconditional", StyleGAN2Config, lambda c: StyleGAN2Generator(config=c)
    ),
    "stylegan3": Architecture(
        "unconditional", StyleGAN3Config, lambda c: StyleGAN3Generator(config=c)
    ),
}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve: the module in eval mode plus what the file says about it."""

    name: str  # file stem
    path: Path
    arch: str  # "dcgan" | "pix2pix" | "encoder"
    kind: str  # "unconditional" | "image2image" | "encoder"
    module: nn.Module  # eval mode, on the requested device, float32
    resolution: int
    z_dim: int | None  # None for image2image
    metadata: dict[str, Any]  # the whole JSON metadata
    # Extra tensors the player uses (GANSpace "ganspace/components", "ganspace/stdev");
    # training state (discriminator, optimisers) is not kept in memory.
    extras: dict[str, Tensor] = dataclasses.field(default_factory=dict)


def save_checkpoint(
    path: Path,
    *,
    arch: str,
    config: object,
    weights: dict[str, Tensor] | nn.Module,
    training: dict[str, Any],
    extra_tensors: dict[str, Tensor] | None = None,
    half: bool = False,
    extra_metadata: dict[str, Any] | None = None,
) -> None:
    """Write weights and metadata atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}")
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError("config must be a dataclass instance")
    state = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    tensors: dict[str, Tensor] = {}
    for name, tensor in state.items():
        t = tensor.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        tensors[name] = t.contiguous()
    for name, tensor in (extra_tensors or {}).items():
        tensors[EXTRA_PREFIX + name] = tensor.detach().to("cpu").contiguous()
    config_dict = dataclasses.asdict(config)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "arch": arch,
        "kind": ARCHITECTURES[arch].kind,
        "config": config_dict,
        "resolution": config_dict.get("resolution", config_dict.get("img_resolution")),
        "z_dim": config_dict.get("z_dim"),
        "training": training,
    }
    for key, value in (extra_metadata or {}).items():
        if key in meta:
            raise ValueError(f"extra metadata key {key!r} clashes with a reserved key")
        meta[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp_name, metadata={METADATA_KEY: json.dumps(meta)})
        with open(tmp_name, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_header(path: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse a safetensors header: (ganvj metadata, tensor table). Raises CheckpointError."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = _header_length(path, head, size)
            raw = f.read(n)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return _parse_header(path, raw, n, size)


def _header_length(path: Path, head: bytes, size: int) -> int:
    if len(head) < 8:
        raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
    (n,) = struct.unpack("<Q", head[:8])
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise CheckpointError(
            f"{path}: not a safetensors file or truncated (header claims {n} bytes)"
        )
    return int(n)


def _parse_header(
    path: Path, raw: bytes, n: int, size: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a safetensors file (bad header JSON)") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is not an object)")
    file_meta = header.pop("__metadata__", None) or {}
    end = 0
    for name, entry in header.items():
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise CheckpointError(f"{path}: malformed entry for tensor {name!r}") from exc
    if 8 + n + end > size:
        raise CheckpointError(
            f"{path}: truncated: the header promises {8 + n + end} bytes, the file has {size}"
        )
    if not isinstance(file_meta, dict) or METADATA_KEY not in file_meta:
        raise CheckpointError(f"{path}: no ganvj metadata: not a ganvj model file")
    try:
        meta = json.loads(file_meta[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: ganvj metadata is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: ganvj metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unsupported format {meta.get('format')!r} (expected 1)")
    arch = meta.get("arch")
    if arch not in ARCHITECTURES:
        raise CheckpointError(
            f"{path}: unknown architecture {arch!r} (expected one of {', '.join(ARCHITECTURES)})"
        )
    return meta, header


def config_from_dict(cls: type, data: Any, *, path: Path) -> Any:
    """Rebuild a config dataclass from JSON with type and range checks."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: config is not a JSON object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"{path}: unknown {cls.__name__} keys: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        expected = str(fields[name].type)
        base = expected.removesuffix(" | None")
        if value is None and base != expected:
            kwargs[name] = None
            continue
        if base == "tuple[float, ...]":
            ok = isinstance(value, list) and all(_is_type("float", v) for v in value)
            if ok:
                kwargs[name] = tuple(float(v) for v in value)
        else:
            ok = _is_type(base, value)
            if ok:
                kwargs[name] = float(value) if base == "float" else value
        if not ok:
            raise CheckpointError(
                f"{path}: {cls.__name__}.{name} should be {expected} "
                f"(finite, at most {MAX_CONFIG_INT}), got {repr(value)[:40]}"
            )
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise CheckpointError(f"{path}: bad config: {exc}") from exc


def _is_type(name: str, value: Any) -> bool:
    """Whether a JSON value has the config field type called `name`, within bounds.

    Numbers are bounded here, at the edge: JSON's 1e400 is an infinite float and
    10**400 an integer no tensor shape or float can hold.
    """
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "int":
        return number and isinstance(value, int) and abs(value) <= MAX_CONFIG_INT
    if name == "float":
        return number and abs(value) <= MAX_CONFIG_INT and math.isfinite(value)
    return {"bool": isinstance(value, bool), "str": isinstance(value, str)}.get(name, False)


def read_tensors(path: Path | str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Metadata and every tensor of a checkpoint (extras included), on the CPU."""
    path = Path(path)
    # One read into memory, then parse: no memory map (a file truncated or
    # replaced while mapped kills the process with SIGBUS) and no window between
    # checking the header and reading the tensors. Deleting or rewriting a model
    # file while it loads gives a CheckpointError, never a torn model.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    n = _header_length(path, data[:8], len(data))
    meta, _ = _parse_header(path, data[8 : 8 + n], n, len(data))
    try:
        tensors = load_bytes(data)
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: unreadable tensors: {exc}") from exc
    return meta, tensors


def build_module(meta: dict[str, Any], *, path: Path) -> tuple[Any, nn.Module]:
    """The config and a freshly initialised module for a checkpoint's metadata."""
    arch = ARCHITECTURES[meta["arch"]]
    config = config_from_dict(arch.config_cls, meta.get("config"), path=path)
    return config, arch.build(config)


def check_state(module: nn.Module, tensors: dict[str, Tensor], *, path: Path, arch: str) -> None:
    """Raise CheckpointError unless the tensors match the module name for name, shape for shape."""
    expected = module.state_dict()
    got = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (first: {missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors (first: {unexpected[0]})")
        raise CheckpointError(
            f"{path}: tensors do not match a {arch} model with this config: {'; '.join(parts)}"
        )
    for name, tensor in expected.items():
        if tuple(got[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: tensor {name} has shape {tuple(got[name].shape)}, "
                f"a {arch} model with this config needs {tuple(tensor.shape)}"
            )


def load_model(
    path: Path | str, device: torch.device | str = "cpu", *, arch: str | None = None
) -> LoadedModel:
    """Load a .safetensors model file for serving; `arch` (optional) demands one architecture.

    Other formats load through models.catalog, which converts them first.
    """
    path = Path(path)
    meta, tensors = read_tensors(path)
    if arch is not None and meta["arch"] != arch:
        raise CheckpointError(f"{path}: is a {meta['arch']} model, expected a {arch} model")
    config, module = build_module(meta, path=path)
    check_state(module, tensors, path=path, arch=meta["arch"])
    state = {
        k: (v.float() if v.is_floating_point() else v)
        for k, v in tensors.items()
        if not k.startswith(EXTRA_PREFIX)
    }
    module.load_state_dict(state)
    module.to(device).eval()
    kind = ARCHITECTURES[meta["arch"]].kind
    return LoadedModel(
        name=path.stem,
        path=path,
        arch=meta["arch"],
        kind=kind,
        module=module,
        resolution=config.resolution,
        z_dim=None if kind == "image2image" else config.z_dim,
        metadata=meta,
        extras={k: v for k, v in extra_tensors(tensors).items() if k.startswith("ganspace/")},
    )


def extra_tensors(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors saved under `extra_tensors`, with their prefix removed."""
    n = len(EXTRA_PREFIX)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}


def stored_discriminator(
    meta: dict[str, Any], tensors: dict[str, Tensor]
) -> tuple[object, dict[str, Tensor]] | None:
    """The D a checkpoint carries, as (config dict, state dict), in either layout; or None."""
    info = meta.get("discriminator")
    if not isinstance(info, dict):
        return None
    extras = extra_tensors(tensors)
    for prefix, config in ((IMPORTED_D_PREFIX, info.get("config")), (TRAINED_D_PREFIX, info)):
        state = {k[len(prefix) :]: v for k, v in extras.items() if k.startswith(prefix)}
        if state:
            return config, state
    return None


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes (ties an encoder to the generator it inverts)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_encoder_pair(encoder: LoadedModel, generator: LoadedModel) -> None:
    """Raise CheckpointError unless the encoder was trained on exactly this generator file."""
    if encoder.kind != "encoder":
        raise CheckpointError(f"{encoder.path}: is a {encoder.kind} model, not an encoder")
    link = encoder.metadata.get("generator")
    if not isinstance(link, dict) or "sha256" not in link:
        raise CheckpointError(f"{encoder.path}: does not record which generator it inverts")
    # A StyleGAN's encoder predicts w (w_dim wide), a DCGAN's predicts z.
    space = link.get("space", "z")
    latent = generator.z_dim if space == "z" else generator.metadata.get("w_dim")
    if (encoder.resolution, encoder.z_dim) != (generator.resolution, latent):
        raise CheckpointError(
            f"{encoder.path}: {encoder.resolution} px / {space} {encoder.z_dim} does not fit "
            f"{generator.path} ({generator.resolution} px / {space} {latent})"
        )
    try:
        digest = file_sha256(generator.path)
    except OSError as exc:  # the generator's file was deleted or replaced since it loaded
        raise CheckpointError(f"{generator.path}: cannot read: {exc.strerror or exc}") from exc
    if link["sha256"] != digest:
        raise CheckpointError(
            f"{encoder.path}: was trained for {link.get('name')!r}, not for {generator.path}"
        )
