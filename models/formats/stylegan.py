"""Import StyleGAN network pickles into ganvj checkpoints (safetensors + JSON config).

`import_pickle` reads a pickle as data (models.formats.nvidia_pkl), rebuilds the
generator from its `init_kwargs` with our own network code, checks every tensor
name and shape, computes GANSpace directions (PCA of W), and writes one
checkpoint. `cached_import` does this once per file content: the result lives
under the user models folder's `.cache/`, named by the pickle's sha256.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from models.checkpoint import (
    IMPORTED_D_PREFIX,
    CheckpointError,
    config_from_dict,
    file_sha256,
    read_tensors,
    save_checkpoint,
    stored_discriminator,
)
from models.formats import rosinality
from models.formats.nvidia_pkl import (
    PersistentObject,
    PickleError,
    child_class_names,
    pick_generator,
    plain,
    read_pickle,
    state_dict,
)
from models.nets.stylegan2 import (
    FLAVOR_ADA,
    FLAVOR_SG3,
    StyleGAN2Config,
    StyleGAN2Discriminator,
    StyleGAN2DiscriminatorConfig,
    StyleGAN2Generator,
)
from models.nets.stylegan3 import StyleGAN3Config, StyleGAN3Generator

logger = logging.getLogger(__name__)

CACHE_FOLDER = ".cache"
GANSPACE_SAMPLES = 4096  # mapping samples behind the principal components
GANSPACE_COMPONENTS = 64  # directions kept (at most w_dim)
GANSPACE_SEED = 0
# Module classes that make a pickled Generator a stylegan3 (alias-free) network.
STYLEGAN3_MARKERS = {"SynthesisInput"}


@dataclass
class ImportedNetwork:
    """A generator rebuilt from a pickle: our module with the file's weights loaded."""

    arch: str  # "stylegan2" | "stylegan3"
    config: Any  # StyleGAN2Config | StyleGAN3Config
    module: nn.Module  # eval mode, float32, CPU
    source: dict[str, Any]  # file name, sha256, class, flavor


def generator_arch(obj: PersistentObject) -> str:
    """ "stylegan2" or "stylegan3" from the module classes under a pickled Generator."""
    if obj.class_name != "Generator":
        raise PickleError(
            f"unknown architecture: the network is a {obj.class_name!r}, not a StyleGAN Generator"
        )
    if child_class_names(obj) & STYLEGAN3_MARKERS:
        return "stylegan3"
    synthesis = obj.children.get("synthesis")
    if not isinstance(synthesis, PersistentObject) or "b4" not in synthesis.children:
        raise PickleError(
            "unknown architecture: a Generator whose synthesis network has neither "
            "StyleGAN2 blocks (b4, b8, ...) nor a StyleGAN3 input layer"
        )
    return "stylegan2"


def build_generator(arch: str, init_kwargs: dict[str, Any]) -> tuple[Any, nn.Module]:
    """Our config and a fresh generator for a pickled Generator's init_kwargs."""
    kwargs = plain(init_kwargs)
    try:
        if arch == "stylegan2":
            config: Any = StyleGAN2Config.from_nvidia_kwargs(kwargs)
            return config, StyleGAN2Generator(config=config)
        config = StyleGAN3Config.from_nvidia_kwargs(kwargs)
        return config, StyleGAN3Generator(config=config)
    except (ValueError, TypeError) as exc:
        raise PickleError(f"unsupported {arch} generator settings: {exc}") from exc


def convert_pickle(path: Path | str) -> ImportedNetwork:
    """Read a StyleGAN pickle as data and load its generator into our module (CPU, fp32)."""
    path = Path(path)
    network = read_pickle(path)
    obj = pick_generator(network)
    try:
        arch = generator_arch(obj)
        config, module = build_generator(arch, obj.init_kwargs)
        tensors = state_dict(obj)
        expected = module.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise PickleError(
                f"tensors do not match a {arch} generator with these settings: "
                f"{len(missing)} missing (first: {missing[:1]}), "
                f"{len(unexpected)} unexpected (first: {unexpected[:1]})"
            )
        for name, tensor in expected.items():
            if tuple(tensors[name].shape) != tuple(tensor.shape):
                raise PickleError(
                    f"tensor {name} has shape {tuple(tensors[name].shape)}, "
                    f"expected {tuple(tensor.shape)}"
                )
        module.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except PickleError as exc:
        raise PickleError(f"{path}: {exc}") from None
    module.eval().requires_grad_(False)
    flavor = FLAVOR_ADA if "synthesis_kwargs" in obj.init_kwargs else FLAVOR_SG3
    source = {
        "name": path.name,
        "sha256": file_sha256(path),
        "format": "nvidia-pickle",
        "class_name": obj.class_name,
        "flavor": flavor if arch == "stylegan2" else "stylegan3",
    }
    return ImportedNetwork(arch=arch, config=config, module=module, source=source)


def convert_rosinality(path: Path | str) -> ImportedNetwork:
    """A rosinality/stylegan2-pytorch .pt (g_ema [+ latent_avg]) in our StyleGAN2 module."""
    path = Path(path)
    config, tensors = rosinality.convert(rosinality.read_checkpoint(path), path=path)
    module = StyleGAN2Generator(config=config)
    expected = module.state_dict()
    # Buffers rosinality does not store (the FIR filters) keep our values.
    for name, tensor in expected.items():
        if name.endswith("resample_filter"):
            tensors[name] = tensor
    missing = sorted(set(expected) - set(tensors))
    shapes = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or shapes:
        raise rosinality.RosinalityError(
            f"{path}: g_ema does not fit a StyleGAN2 config F layout "
            f"(missing {missing[:1]}, wrong shapes {shapes[:1]})"
        )
    module.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    module.eval().requires_grad_(False)
    source = {
        "name": path.name,
        "sha256": file_sha256(path),
        "format": "rosinality",
        "class_name": "Generator",
        "flavor": "rosinality",
    }
    return ImportedNetwork(arch="stylegan2", config=config, module=module, source=source)


def convert_file(path: Path | str) -> ImportedNetwork:
    """A network pickle (.pkl) or a rosinality checkpoint (.pt, .pth) in our module."""
    if Path(path).suffix.lower() in (".pt", ".pth"):
        return convert_rosinality(path)
    return convert_pickle(path)


@torch.no_grad()
def ganspace(
    module: nn.Module,
    *,
    samples: int = GANSPACE_SAMPLES,
    components: int = GANSPACE_COMPONENTS,
    seed: int = GANSPACE_SEED,
    batch: int = 512,
) -> tuple[Tensor, Tensor]:
    """Principal directions of W (Härkönen et al. 2020): components (K, w_dim), stdev (K,).

    W samples come from the mapping network without truncation (classes drawn
    uniformly for a conditional model); the components are the right singular
    vectors of the centred samples, strongest first.
    """
    mapping: Any = module.mapping
    z_dim, c_dim, w_dim = int(module.z_dim), int(module.c_dim), int(module.w_dim)  # type: ignore[arg-type]
    device = mapping.w_avg.device  # the live engine asks on the render device
    rng = np.random.RandomState(seed)
    ws = []
    for start in range(0, samples, batch):
        n = min(batch, samples - start)
        z = torch.from_numpy(rng.randn(n, z_dim).astype(np.float32)).to(device)
        c = None
        if c_dim > 0:
            c = torch.zeros([n, c_dim])
            c[torch.arange(n), torch.from_numpy(rng.randint(0, c_dim, size=n))] = 1.0
            c = c.to(device)
        w = mapping(z, c)  # (n, num_ws, w_dim)
        ws.append(w[:, 0].float().cpu())
    w_all = torch.cat(ws)  # (N, w_dim)
    centred = w_all - w_all.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)  # vh (min(N, w_dim), w_dim)
    k = min(components, w_dim, vh.shape[0])
    stdev = s[:k] / max(samples - 1, 1) ** 0.5
    return vh[:k].contiguous(), stdev.contiguous()


def read_discriminator(path: Path | str) -> StyleGAN2Discriminator:
    """A snapshot's D (NVIDIA's StyleGAN2 discriminator, also stylegan3's) in our module."""
    path = Path(path)
    network = read_pickle(path)
    root = network.root
    d_obj = root.get("D") if isinstance(root, dict) else None
    if not isinstance(d_obj, PersistentObject) or d_obj.class_name != "Discriminator":
        raise PickleError(f"{path}: no discriminator (D) in this file: a bare generator?")
    g_obj = pick_generator(network)
    flavor = FLAVOR_ADA if "synthesis_kwargs" in g_obj.init_kwargs else FLAVOR_SG3
    try:
        config = StyleGAN2DiscriminatorConfig.from_nvidia_kwargs(
            plain(d_obj.init_kwargs), flavor=flavor
        )
        module = StyleGAN2Discriminator(config=config)
        module.load_state_dict({k: v.float() for k, v in state_dict(d_obj).items()})
    except (ValueError, TypeError, RuntimeError) as exc:
        raise PickleError(f"{path}: unsupported discriminator: {exc}") from None
    return module.eval().requires_grad_(False)


def load_discriminator(path: Path | str) -> StyleGAN2Discriminator:
    """The discriminator `ganvj import --discriminator` stored in a checkpoint (for fine-tuning)."""
    path = Path(path)
    meta, tensors = read_tensors(path)
    stored = stored_discriminator(meta, tensors)
    if stored is None:
        raise CheckpointError(f"{path}: holds no discriminator (import with --discriminator)")
    config = config_from_dict(StyleGAN2DiscriminatorConfig, stored[0], path=path)
    module = StyleGAN2Discriminator(config=config)
    try:
        module.load_state_dict({k: v.float() for k, v in stored[1].items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: discriminator tensors do not fit: {exc}") from None
    return module


def import_pickle(
    src: Path | str,
    out: Path | str,
    *,
    samples: int = GANSPACE_SAMPLES,
    discriminator: bool = False,
) -> Path:
    """Convert a StyleGAN pickle into a ganvj checkpoint at `out`; returns `out`.

    `discriminator` also keeps the snapshot's D (extra tensors `discriminator/...`),
    so training can fine-tune from the file; live play never loads it.
    """
    if samples < 2:
        raise ValueError(f"GANSpace needs at least 2 mapping samples, got {samples}")
    started = time.monotonic()
    imported = convert_file(src)
    module: Any = imported.module
    components, stdev = ganspace(module, samples=samples)
    extras: dict[str, Tensor] = {"ganspace/components": components, "ganspace/stdev": stdev}
    metadata: dict[str, Any] = {
        "w_dim": int(module.w_dim),
        "num_ws": int(module.num_ws),
        "c_dim": int(module.c_dim),
        "source": imported.source,
        "ganspace": {"samples": samples, "components": int(components.shape[0])},
    }
    if discriminator:
        d = read_discriminator(src)
        extras.update({IMPORTED_D_PREFIX + k: v for k, v in d.state_dict().items()})
        metadata["discriminator"] = {"config": dataclasses.asdict(d.config)}
    out = Path(out)
    save_checkpoint(
        out,
        arch=imported.arch,
        config=imported.config,
        weights=module,
        training={},
        extra_tensors=extras,
        extra_metadata=metadata,
    )
    logger.info(
        "imported %s -> %s (%s, %d px) in %.1f s",
        src,
        out,
        imported.arch,
        module.img_resolution,
        time.monotonic() - started,
    )
    return out


def cached_import(src: Path | str, *, cache: Path) -> Path:
    """The checkpoint converted from this file's content, converting it on first use."""
    src = Path(src)
    try:
        digest = file_sha256(src)
    except OSError as exc:
        raise CheckpointError(f"{src}: cannot read: {exc.strerror or exc}") from exc
    target = cache / f"{digest}.safetensors"
    if not target.is_file():
        try:
            import_pickle(src, target)
        except OSError as exc:
            raise CheckpointError(
                f"{src}: cannot write the converted model to {cache}: {exc.strerror or exc}"
            ) from exc
    _remember(cache, src, digest)
    return target


INDEX_FILE = "index.json"  # source file -> content hash, so listings need no hashing


def _remember(folder: Path, src: Path, digest: str) -> None:
    """Note which cache entry a source file (as it is now: size, mtime) converted to."""
    index = _read_index(folder)
    stat = src.stat()
    index[str(src.resolve())] = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": digest,
    }
    tmp = folder / f".{INDEX_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, folder / INDEX_FILE)
    except OSError as exc:  # a listing then shows the file as not yet converted
        logger.warning("cannot update %s: %s", folder / INDEX_FILE, exc)
        tmp.unlink(missing_ok=True)


def _read_index(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / INDEX_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def converted_path(src: Path, *, cache: Path) -> Path | None:
    """The cached conversion of src if it exists and src has not changed since; no hashing."""
    entry = _read_index(cache).get(str(src.resolve()))
    try:
        stat = src.stat()
    except OSError:
        return None
    if not isinstance(entry, dict) or (entry.get("size"), entry.get("mtime_ns")) != (
        stat.st_size,
        stat.st_mtime_ns,
    ):
        return None
    target = cache / f"{entry.get('sha256')}.safetensors"
    return target if target.is_file() else None
