"""The pickle reader runs nothing: bad, broken and malicious files each get their own error."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.catalog import load_model
from models.checkpoint import CheckpointError
from models.formats.nvidia_pkl import PickleError, RefusedGlobalError, read_pickle
from models.formats.stylegan import convert_pickle
from models.nets.stylegan2 import StyleGAN2Generator
from tests.support.nvidia_pickles import (
    EasyDict,
    dumps,
    persistent_tree,
    seeded_stylegan2,
    stylegan2_ada_kwargs,
    stylegan2_class_name,
    write_network_pickle,
)

# The globals a real stylegan2-ada-pytorch / stylegan3 snapshot references (seen in
# pickles built with NVIDIA's code): our writer must produce exactly these.
NVIDIA_GLOBALS = {
    "torch_utils.persistence._reconstruct_persistent_obj",
    "torch.storage._load_from_bytes",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "collections.OrderedDict",
    "dnnlib.util.EasyDict",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
}


def tiny_generator() -> tuple[dict[str, Any], StyleGAN2Generator]:
    kwargs = stylegan2_ada_kwargs(
        z_dim=8, c_dim=0, w_dim=8, img_resolution=16, channel_base=128, channel_max=16
    )
    generator = seeded_stylegan2(kwargs, seed=0, noise_seed=1)
    return kwargs, generator


@pytest.fixture
def good_pickle(tmp_path: Path) -> Path:
    kwargs, generator = tiny_generator()
    return write_network_pickle(tmp_path / "good.pkl", generator, init_kwargs=kwargs)


def test_writer_emits_the_globals_of_nvidia_snapshots(good_pickle: Path) -> None:
    assert read_pickle(good_pickle).globals_seen == NVIDIA_GLOBALS


def test_truncated_pickle(good_pickle: Path, tmp_path: Path) -> None:
    data = good_pickle.read_bytes()
    for cut in (len(data) // 3, len(data) - 1):
        torn = tmp_path / "torn.pkl"
        torn.write_bytes(data[:cut])
        with pytest.raises(PickleError, match="truncated"):
            read_pickle(torn)


def test_not_a_pickle(tmp_path: Path) -> None:
    text = tmp_path / "notes.pkl"
    text.write_text("these are not weights\n")
    with pytest.raises(PickleError, match="not a network pickle"):
        read_pickle(text)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(PickleError, match="not a network pickle"):
        read_pickle(empty)
    archive = tmp_path / "model.pkl"
    torch.save({"w": torch.zeros(2)}, archive)  # a zip: torch.save's format
    with pytest.raises(PickleError, match="zip archive"):
        read_pickle(archive)


def test_unknown_architecture(tmp_path: Path) -> None:
    net = torch.nn.Linear(2, 2)
    odd = tmp_path / "odd.pkl"
    odd.write_bytes(dumps(persistent_tree(net, class_name=lambda m: "Perceiver")))
    with pytest.raises(PickleError, match=r"unknown architecture.*'Perceiver'"):
        convert_pickle(odd)
    no_g = tmp_path / "no_g.pkl"
    no_g.write_bytes(dumps({"D": persistent_tree(net, class_name=lambda m: "Discriminator")}))
    with pytest.raises(PickleError, match="without a generator"):
        convert_pickle(no_g)
    plain = tmp_path / "list.pkl"
    plain.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(PickleError, match="holds a list"):
        convert_pickle(plain)


def test_unknown_generator_kwargs_are_named(tmp_path: Path) -> None:
    kwargs, generator = tiny_generator()
    kwargs["synthesis_kwargs"]["flux_capacitor"] = 3
    path = write_network_pickle(tmp_path / "odd.pkl", generator, init_kwargs=kwargs)
    with pytest.raises(PickleError, match="flux_capacitor"):
        convert_pickle(path)


def test_module_src_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "module_src_ran"
    source = f"open({str(marker)!r}, 'w').write('pwned')\nclass Generator: pass\n"
    kwargs, generator = tiny_generator()
    path = write_network_pickle(
        tmp_path / "trojan.pkl", generator, init_kwargs=kwargs, module_src=source
    )
    imported = convert_pickle(path)  # the weights are fine; the source is ignored
    assert imported.arch == "stylegan2"
    assert not marker.exists()


class _SystemCall:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (self.command,))


class _Eval:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, (self.code,))


def test_reduce_calling_os_system_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANVJ_MODELS_DIR", str(tmp_path))
    marker = tmp_path / "os_system_ran"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _SystemCall(f"touch {marker}")}, protocol=4))
    with pytest.raises(RefusedGlobalError, match=r"refused global (posix|os)\.system"):
        read_pickle(evil)
    # Hidden inside a snapshot next to real weights: refused all the same.
    kwargs, generator = tiny_generator()
    tree = persistent_tree(generator, class_name=stylegan2_class_name, init_kwargs=kwargs)
    mixed = tmp_path / "mixed.pkl"
    mixed.write_bytes(
        dumps({"G_ema": tree, "training_set_kwargs": EasyDict(x=_SystemCall(f"touch {marker}"))})
    )
    with pytest.raises(RefusedGlobalError, match="system"):
        load_model(mixed)
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps(_Eval(f"open({str(marker)!r}, 'w')"), protocol=2))
    with pytest.raises(RefusedGlobalError, match=r"refused global (__builtin__|builtins)\.eval"):
        read_pickle(old)
    assert not marker.exists()


def test_malicious_nested_storage_blob_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "blob_ran"
    blob = io.BytesIO()
    pickle.dump(_SystemCall(f"touch {marker}"), blob, protocol=2)  # legacy torch.save: a pickle

    class _Blob:
        def __reduce__(self) -> tuple[Any, ...]:
            return (torch.storage._load_from_bytes, (blob.getvalue(),))

    path = tmp_path / "blob.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Blob()}, protocol=4))
    with pytest.raises(PickleError):
        read_pickle(path)
    assert not marker.exists()


def test_errors_are_checkpoint_errors_for_callers() -> None:
    # The engine and the CLI catch CheckpointError for every bad model file.
    assert issubclass(PickleError, CheckpointError)
    assert issubclass(RefusedGlobalError, PickleError)


def test_numpy_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.pkl"
    path.write_bytes(pickle.dumps({"G_ema": np.array(["text", 1], dtype=object)}, protocol=4))
    with pytest.raises(PickleError, match="object"):
        read_pickle(path)


def test_parameters_with_attributes_read_as_tensors(tmp_path: Path) -> None:
    # torch pickles a Parameter that carries attributes through
    # _rebuild_parameter_with_state; the attributes are dropped, the weights kept.
    weight = torch.nn.Parameter(torch.arange(3.0))
    weight.note = "hello"  # type: ignore[attr-defined]
    path = tmp_path / "param.pkl"
    path.write_bytes(pickle.dumps({"w": weight}, protocol=4))
    root = read_pickle(path).root
    assert torch.equal(root["w"], torch.arange(3.0))
