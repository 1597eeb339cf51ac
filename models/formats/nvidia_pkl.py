"""Read NVIDIA StyleGAN network pickles as data, never as code.

NVIDIA's stylegan2-ada-pytorch and stylegan3 pickle each network as a
`torch_utils.persistence` object: the Python source of its module (`module_src`),
the class name, and the object's state (parameters, buffers, child modules,
`init_kwargs`). Their loader executes that source; this one does not. A
restricted unpickler resolves only an allow-list of globals, each to a function
that builds plain data: persistent objects become `PersistentObject` records,
tensor storages are nested `torch.save` blobs read with `weights_only=True`,
numpy scalars and arrays are rebuilt from bytes. Anything else in the file is
refused with a message naming the global, before it can run.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.checkpoint import CheckpointError

MAX_PICKLE_BYTES = 4 * 1024**3  # a 1024 px snapshot with D is ~ 360 MB
SNAPSHOT_GENERATOR_KEYS = ("G_ema", "G")  # play the moving average when a snapshot has it


class PickleError(CheckpointError):
    """A network pickle that cannot be read; the message names the file and the reason."""


class RefusedGlobalError(PickleError):
    """The pickle asks for a global outside the allow-list; nothing it names was run."""


@dataclass
class PersistentObject:
    """A `torch_utils.persistence` object read as data: its class name and state, never its code."""

    class_name: str
    state: dict[str, Any]
    version: int | None = None
    module_src_chars: int = 0  # the size of the ignored source, for messages

    @property
    def init_kwargs(self) -> dict[str, Any]:
        """The constructor's keyword arguments as pickled."""
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def children(self) -> dict[str, Any]:
        """Child modules by attribute name."""
        return dict(self.state.get("_modules") or {})


class EasyDictData(dict[str, Any]):
    """dnnlib.util.EasyDict read as a plain dict (its attribute access is not needed)."""


@dataclass
class NetworkPickle:
    """What a pickle file held: a snapshot dict or one network, plus where it came from."""

    path: Path
    root: Any
    globals_seen: set[str] = field(default_factory=set)


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """Stand-in for persistence._reconstruct_persistent_obj: keep the state, drop the source."""
    if not isinstance(meta, dict):
        raise PickleError("persistent object metadata is not a dict")
    if meta.get("type") != "class":
        raise PickleError(f"persistent object of type {meta.get('type')!r}, expected 'class'")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise PickleError("persistent object without a class name or a state dict")
    src = meta.get("module_src")
    version = meta.get("version")
    return PersistentObject(
        class_name=class_name,
        state=dict(state),
        version=version if isinstance(version, int) else None,
        module_src_chars=len(src) if isinstance(src, str) else 0,
    )


def _load_storage_bytes(blob: bytes) -> Any:
    """Stand-in for torch.storage._load_from_bytes: a nested torch.save stream, weights only."""
    if not isinstance(blob, bytes | bytearray):
        raise PickleError("tensor storage blob is not bytes")
    try:
        return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise RefusedGlobalError(f"a nested tensor storage was refused: {exc}") from exc


def _numpy_dtype(*args: Any) -> np.dtype[Any]:
    """numpy.dtype(spec, align, copy), refusing object dtypes (they would hold Python objects)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise PickleError("numpy object dtypes are refused")
    return dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy.core.multiarray.scalar: one value of a plain dtype from its raw bytes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise PickleError("numpy scalar with an object or unknown dtype is refused")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise PickleError("numpy scalar with malformed bytes")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """numpy.core.multiarray._reconstruct: an empty ndarray that BUILD then fills."""
    if cls is not np.ndarray:
        raise PickleError("numpy _reconstruct of a class other than ndarray is refused")
    if np.dtype(dtype_code).hasobject:
        raise PickleError("numpy object arrays are refused")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _rebuild_tensor(*args: Any) -> Tensor:
    """torch._utils._rebuild_tensor_v2 without backward hooks (none are needed to read weights)."""
    values = list(args)
    if len(values) >= 6:
        values[5] = collections.OrderedDict()  # backward_hooks: ignore whatever the file says
    return torch._utils._rebuild_tensor_v2(*values)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Tensor:
    """torch._utils._rebuild_parameter, returning a plain tensor (hooks ignored)."""
    if not isinstance(data, Tensor):
        raise PickleError("parameter data is not a tensor")
    return data


def _rebuild_parameter_with_state(
    data: Any, requires_grad: Any = False, backward_hooks: Any = None, state: Any = None
) -> Tensor:
    """torch._utils._rebuild_parameter_with_state (a Parameter with attributes): the tensor only."""
    return _rebuild_parameter(data)


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("dnnlib.util", "EasyDict"): EasyDictData,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): np.ndarray,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose globals come only from ALLOWED_GLOBALS (GLOBAL and STACK_GLOBAL)."""

    def __init__(self, file: io.BytesIO, *, seen: set[str]) -> None:
        super().__init__(file)
        self._seen = seen

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        self._seen.add(f"{module}.{name}")
        if key not in ALLOWED_GLOBALS:
            raise RefusedGlobalError(
                f"refused global {module}.{name}: not on the allow-list of a StyleGAN network "
                "pickle; nothing in the file was run"
            )
        return ALLOWED_GLOBALS[key]

    def persistent_load(self, pid: Any) -> Any:
        raise PickleError("persistent ids are not used by NVIDIA network pickles")


def read_pickle(path: Path | str) -> NetworkPickle:
    """Unpickle a network pickle with the allow-list. Raises PickleError (naming the file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PICKLE_BYTES:
            raise PickleError(f"{path}: {size} bytes is larger than any StyleGAN pickle")
        data = path.read_bytes()
    except OSError as exc:
        raise PickleError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return read_pickle_bytes(data, path=path)


def read_pickle_bytes(data: bytes, *, path: Path) -> NetworkPickle:
    """read_pickle on bytes already in memory."""
    if data[:2] == b"PK":
        raise PickleError(
            f"{path}: a zip archive (torch.save format), not a network pickle; "
            "rosinality .pt files are read by models.formats.rosinality"
        )
    if len(data) < 2 or data[0] != 0x80 or data[1] < 2:
        raise PickleError(f"{path}: not a network pickle (no pickle protocol 2+ header)")
    seen: set[str] = set()
    try:
        root = _RestrictedUnpickler(io.BytesIO(data), seen=seen).load()
    except PickleError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    except EOFError:
        raise PickleError(f"{path}: truncated: the pickle ends early") from None
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError) as exc:
        # Torn files stop mid-opcode: report them as damaged rather than crashing.
        raise PickleError(f"{path}: damaged or truncated pickle: {exc}") from None
    except RuntimeError as exc:
        raise PickleError(f"{path}: unreadable tensor data: {exc}") from None
    return NetworkPickle(path=path, root=root, globals_seen=seen)


def pick_generator(network: NetworkPickle) -> PersistentObject:
    """The generator to play: G_ema of a snapshot dict, or the pickle's one network."""
    root = network.root
    if isinstance(root, PersistentObject):
        return root
    if isinstance(root, dict):
        for key in SNAPSHOT_GENERATOR_KEYS:
            value = root.get(key)
            if isinstance(value, PersistentObject):
                return value
        keys = ", ".join(sorted(str(k) for k in root)) or "none"
        raise PickleError(f"{network.path}: a dict without a generator (G_ema or G); keys: {keys}")
    raise PickleError(
        f"{network.path}: holds a {type(root).__name__}, not a network or a snapshot dict"
    )


def state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, Tensor]:
    """The torch state_dict of a pickled module tree: parameters, persistent buffers, children."""
    out: dict[str, Tensor] = {}
    state = obj.state
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(tensor, Tensor):
                raise PickleError(f"{prefix}{name} is a {type(tensor).__name__}, not a tensor")
            out[prefix + name] = tensor.detach()
    for name, child in obj.children.items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise PickleError(
                f"module {prefix}{name} is a {type(child).__name__}, not a persistent network "
                "module"
            )
        out.update(state_dict(child, prefix=f"{prefix}{name}."))
    return out


def child_class_names(obj: PersistentObject) -> set[str]:
    """Class names of every module under obj (obj included)."""
    names = {obj.class_name}
    for child in obj.children.values():
        if isinstance(child, PersistentObject):
            names |= child_class_names(child)
    return names


def plain(value: Any) -> Any:
    """EasyDicts, numpy scalars and tuples -> JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
