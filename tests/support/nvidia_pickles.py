"""Write network pickles in NVIDIA's format from our own modules (test data, made here).

NVIDIA's stylegan2-ada-pytorch and stylegan3 pickle every network module as
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where meta holds
the module's source, class name and state (the nn.Module `__dict__`). This
writer emits the same globals (that function, `dnnlib.util.EasyDict`,
`numpy.(_)core.multiarray.scalar`, tensors through torch's own reducers) from
any nn.Module tree, with a placeholder `module_src`, so tests exercise the
reader on the real format without committing a file that embeds NVIDIA's code.
Class names come from a caller-given function, so SG3 trees work the same way.
"""

from __future__ import annotations

import collections
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from models.nets.stylegan2 import StyleGAN2Config, StyleGAN2Generator

PLACEHOLDER_SRC = "# module source placeholder written by ganvj's tests\n"
PERSISTENCE_VERSION = 6

# Generator tree: our class name -> the name NVIDIA's pickle uses.
STYLEGAN2_CLASS_NAMES = {
    "StyleGAN2Generator": "Generator",
    "StyleGAN2Discriminator": "Discriminator",
}


def stylegan2_class_name(module: nn.Module) -> str:
    """NVIDIA's class name for one of our StyleGAN2 modules (most share the name)."""
    name = type(module).__name__
    return STYLEGAN2_CLASS_NAMES.get(name, name)


class EasyDict(dict[str, Any]):
    """Pickled as dnnlib.util.EasyDict."""


def _reconstruct_persistent_obj(meta: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("stand-in: only its name is written")


def _scalar(dtype: Any, data: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("stand-in: only its name is written")


def _reconstruct(cls: Any, shape: Any, dtype_code: Any) -> Any:  # pragma: no cover
    raise AssertionError("stand-in: only its name is written")


class _Persistent:
    """One module as persistence pickles it: reduce to (_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reconstruct_persistent_obj, (self.meta,))


class _Scalar:
    """A numpy scalar written under a chosen numpy module name."""

    def __init__(self, value: np.generic) -> None:
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_scalar, (self.value.dtype, self.value.tobytes()))


class _NvidiaPickler(pickle._Pickler):  # type: ignore[misc,name-defined]
    """The pure-Python pickler, with our stand-ins written under NVIDIA's global names."""

    def __init__(self, file: io.BytesIO, *, protocol: int, numpy_module: str) -> None:
        super().__init__(file, protocol=protocol)
        self.names = {
            id(_reconstruct_persistent_obj): (
                "torch_utils.persistence",
                "_reconstruct_persistent_obj",
            ),
            id(EasyDict): ("dnnlib.util", "EasyDict"),
            id(_scalar): (f"{numpy_module}.multiarray", "scalar"),
            id(_reconstruct): (f"{numpy_module}.multiarray", "_reconstruct"),
        }

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return _Scalar(obj).__reduce__()
        if type(obj) is np.ndarray:
            # as numpy pickles arrays: _reconstruct(ndarray, (0,), b"b"), then BUILD with
            # (version, shape, dtype, fortran order, raw bytes)
            return (_reconstruct, (np.ndarray, (0,), b"b"), obj.__reduce__()[2])
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if id(obj) not in self.names:
            super().save_global(obj, name)
            return
        module, qualname = self.names[id(obj)]
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode() + b"\n" + qualname.encode() + b"\n")
        self.memoize(obj)

    dispatch: ClassVar[dict[Any, Any]] = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]
    dispatch[type(_scalar)] = save_global
    dispatch[type] = save_global


def persistent_tree(
    module: nn.Module,
    *,
    class_name: Callable[[nn.Module], str],
    init_kwargs: dict[str, Any] | None = None,
    module_src: str = PLACEHOLDER_SRC,
    extra_state: dict[str, Any] | None = None,
    attributes: Callable[[nn.Module], dict[str, Any]] | None = None,
) -> _Persistent:
    """A module and its children as persistence objects, state laid out like nn.Module's.

    `attributes(module)` gives each module's plain attributes as NVIDIA's class holds
    them (numpy arrays and floats among them), for every module of the tree.
    """
    children = collections.OrderedDict(
        (
            name,
            persistent_tree(
                child, class_name=class_name, module_src=module_src, attributes=attributes
            ),
        )
        for name, child in module._modules.items()
        if child is not None
    )
    state: dict[str, Any] = {
        "training": False,
        "_parameters": collections.OrderedDict(
            (k, v) for k, v in module._parameters.items() if v is not None
        ),
        "_buffers": collections.OrderedDict(
            (k, v) for k, v in module._buffers.items() if v is not None
        ),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": collections.OrderedDict(),
        "_forward_hooks": collections.OrderedDict(),
        "_modules": children,
        "_init_args": (),
        "_init_kwargs": EasyDict(init_kwargs or {}),
    }
    # Plain attributes the way NVIDIA's modules hold them: numpy floats among them.
    for key in ("weight_gain", "bias_gain", "act_gain"):
        if hasattr(module, key):
            state[key] = np.float64(getattr(module, key))
    if attributes is not None:
        state.update(attributes(module))
    state.update(extra_state or {})
    meta = {
        "type": "class",
        "version": PERSISTENCE_VERSION,
        "module_src": module_src,
        "class_name": class_name(module),
        "state": state,
    }
    return _Persistent(meta)


def dumps(obj: Any, *, protocol: int = 4, numpy_module: str = "numpy._core") -> bytes:
    """Pickle bytes of a tree built by persistent_tree (or a snapshot dict of them)."""
    buffer = io.BytesIO()
    _NvidiaPickler(buffer, protocol=protocol, numpy_module=numpy_module).dump(obj)
    return buffer.getvalue()


def write_network_pickle(
    path: Path,
    generator: nn.Module,
    *,
    init_kwargs: dict[str, Any],
    class_name: Callable[[nn.Module], str] = stylegan2_class_name,
    snapshot: bool = True,
    discriminator: nn.Module | None = None,
    discriminator_kwargs: dict[str, Any] | None = None,
    protocol: int = 4,
    numpy_module: str = "numpy._core",
    module_src: str = PLACEHOLDER_SRC,
    attributes: Callable[[nn.Module], dict[str, Any]] | None = None,
) -> Path:
    """A snapshot dict (G, D, G_ema, training_set_kwargs) or a bare generator, as NVIDIA writes."""
    g = persistent_tree(
        generator,
        class_name=class_name,
        init_kwargs=init_kwargs,
        module_src=module_src,
        attributes=attributes,
    )
    root: Any = g
    if snapshot:
        root = {"G": g, "G_ema": g, "augment_pipe": None}
        if discriminator is not None:
            root["D"] = persistent_tree(
                discriminator,
                class_name=class_name,
                init_kwargs=discriminator_kwargs,
                module_src=module_src,
            )
        root["training_set_kwargs"] = EasyDict(path="dataset.zip", use_labels=False)
    path = Path(path)
    path.write_bytes(dumps(root, protocol=protocol, numpy_module=numpy_module))
    return path


def stylegan2_ada_kwargs(
    *,
    z_dim: int,
    c_dim: int,
    w_dim: int,
    img_resolution: int,
    img_channels: int = 3,
    mapping_layers: int = 2,
    **synthesis: Any,
) -> dict[str, Any]:
    """init_kwargs as stylegan2-ada-pytorch's train.py writes them (synthesis kwargs nested)."""
    return {
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "mapping_kwargs": EasyDict(num_layers=mapping_layers),
        "synthesis_kwargs": EasyDict(synthesis),
    }


def stylegan3_sg2_kwargs(**kwargs: Any) -> dict[str, Any]:
    """init_kwargs as stylegan3's train.py writes them for --cfg=stylegan2 (synthesis flat)."""
    flat = stylegan2_ada_kwargs(**kwargs)
    flat.update(flat.pop("synthesis_kwargs"))
    return flat


def seeded_stylegan2(kwargs: dict[str, Any], *, seed: int, noise_seed: int) -> StyleGAN2Generator:
    """Our StyleGAN2 built from NVIDIA init_kwargs, initialised from `seed`, then perturbed."""
    torch.manual_seed(seed)
    generator = StyleGAN2Generator(config=StyleGAN2Config.from_nvidia_kwargs(kwargs)).eval()
    perturb(generator, noise_seed)
    return generator


def perturb(module: nn.Module, seed: int) -> None:
    """Give a fresh network non-trivial noise strengths, biases and w_avg (all zero at init)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if "resample_filter" in name:
                continue
            if name.endswith("w_avg"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)
            elif "noise_strength" in name:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.1)
            elif name.endswith("bias"):
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.2)


# StyleGAN3: our class name -> NVIDIA's (training.networks_stylegan3).
STYLEGAN3_CLASS_NAMES = {"StyleGAN3Generator": "Generator"}


def stylegan3_class_name(module: nn.Module) -> str:
    """NVIDIA's class name for one of our StyleGAN3 modules."""
    name = type(module).__name__
    return STYLEGAN3_CLASS_NAMES.get(name, name)


def stylegan3_attributes(module: nn.Module) -> dict[str, Any]:
    """Plain attributes of NVIDIA's stylegan3 modules: sizes as numpy arrays, rates as floats."""
    plan = getattr(module, "plan", None)
    name = type(module).__name__
    if name == "SynthesisInput":
        return {
            "w_dim": int(module.affine.in_features),  # type: ignore[union-attr,arg-type]
            "channels": int(module.channels),  # type: ignore[arg-type]
            "size": np.broadcast_to(np.asarray(module.size), [2]).copy(),
            "sampling_rate": np.float64(module.sampling_rate),  # type: ignore[arg-type]
            "bandwidth": np.float64(module.bandwidth),  # type: ignore[arg-type]
        }
    if name == "SynthesisLayer" and plan is not None:
        return {
            "w_dim": int(module.affine.in_features),  # type: ignore[union-attr,arg-type]
            "is_torgb": plan.is_torgb,
            "is_critically_sampled": plan.is_critically_sampled,
            "use_fp16": plan.use_fp16,
            "in_channels": plan.in_channels,
            "out_channels": plan.out_channels,
            "in_size": np.array([plan.in_size, plan.in_size]),
            "out_size": np.array([plan.out_size, plan.out_size]),
            "in_sampling_rate": plan.in_sampling_rate,
            "out_sampling_rate": plan.out_sampling_rate,
            "in_cutoff": np.float64(plan.in_cutoff),
            "out_cutoff": np.float64(plan.out_cutoff),
            "in_half_width": np.float64(plan.in_half_width),
            "out_half_width": np.float64(plan.out_half_width),
            "conv_kernel": int(module.kernel),  # type: ignore[arg-type]
            "conv_clamp": module.conv_clamp,
            "up_factor": int(module.up),  # type: ignore[arg-type]
            "down_factor": int(module.down),  # type: ignore[arg-type]
            "padding": list(module.padding),  # type: ignore[arg-type]
        }
    if name == "SynthesisNetwork":
        return {"layer_names": list(module.layer_names), "num_ws": int(module.num_ws)}  # type: ignore[arg-type]
    return {}
