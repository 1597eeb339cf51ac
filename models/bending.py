"""Network bending (Broad et al., "Network Bending", 2021): transforms between synthesis layers.

A bend is a set of operators applied to one synthesis layer's output feature
map (B, C, H, W) before the next layer reads it: to the whole layer, or to one
cluster of its channels (channels grouped by their spatial activation, k-means
as in the paper). Operators are inserted with forward hooks on the layer
modules, so a network with no bend runs exactly its own code: a bend of zero
is no hook at all, bit for bit.

Layers are numbered 1-based in the order the generator runs them:
StyleGAN2: every modulated conv (b4.conv1, b8.conv0, b8.conv1, ...);
StyleGAN3: L0 .. the ToRGB layer; DCGAN: the 4x4 projection, then each
upsampling stage.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.bend_ops import IDENTITY, OPERATORS

CLUSTER_SAMPLES = 128  # latents whose activations group the channels
CLUSTER_MAP_SIDE = 16  # activation maps are pooled to at most this side before k-means
KMEANS_ITERATIONS = 50
ABLATE_SEED = 0  # which channels an ablation zeroes first: a fixed shuffle

# (layer 1-based, cluster 1-based or 0 for the whole layer) -> operator -> values
BendKey = tuple[int, int]
Bends = dict[BendKey, dict[str, tuple[float, ...]]]


def unwrap(module: nn.Module) -> nn.Module:
    """The generator under a torch.compile wrapper."""
    inner = getattr(module, "_orig_mod", None)
    return inner if isinstance(inner, nn.Module) else module


def synthesis_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The generator's synthesis layers in run order, as (state-dict prefix, module)."""
    module = unwrap(module)
    synthesis = getattr(module, "synthesis", None)
    if synthesis is not None and hasattr(synthesis, "block_resolutions"):  # StyleGAN2
        found = []
        for res in synthesis.block_resolutions:
            block = getattr(synthesis, f"b{res}")
            for name in ("conv0", "conv1"):
                if hasattr(block, name):
                    found.append((f"synthesis.b{res}.{name}", getattr(block, name)))
        return found
    if synthesis is not None and hasattr(synthesis, "layer_names"):  # StyleGAN3
        return [(f"synthesis.{name}", getattr(synthesis, name)) for name in synthesis.layer_names]
    blocks = getattr(module, "blocks", None)
    project = getattr(module, "project", None)
    if isinstance(blocks, nn.Sequential) and isinstance(project, nn.Sequential):  # DCGAN
        found = [("project", project)]
        # Each stage is (upsample, conv, norm, relu): its output is the relu's.
        for i in range(0, len(blocks), 4):
            found.append((f"blocks.{i}", blocks[i + 3]))
        return found
    raise ValueError(f"{type(module).__name__}: not a generator that can be bent")


def layer_count(arch: str, config: Mapping[str, object], resolution: int) -> int:
    """How many bendable synthesis layers a model has, from its file's config alone."""
    octaves = round(math.log2(max(resolution, 4)))
    if arch == "stylegan2":
        return 2 * octaves - 3  # one conv at 4 px, two at every resolution above
    if arch == "stylegan3":
        layers = config.get("num_layers", 14)
        return int(layers) + 1 if isinstance(layers, int) else 15  # + ToRGB
    if arch == "dcgan":
        return octaves - 2  # the projection, then a stage per doubling below the last
    return 0


# -- operators on a feature map (B, C, H, W) ----------------------------------------------


def _affine(x: Tensor, degrees: float, factor: float, shift: tuple[float, float]) -> Tensor:
    """Rotate (counter-clockwise), scale (above 1 magnifies) and shift (fractions of the map,
    x right, y down) about the centre, sampling bilinearly with zeros outside."""
    height, width = x.shape[-2], x.shape[-1]
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    # Output point p (normalised, -1..1 each axis) samples the input at
    # A^-1 R^-1 A (p - t) / factor, where A = diag(W, H) makes the rotation
    # square in pixels on a map of any shape.
    aspect = width / height
    m = torch.tensor([[c, -s / aspect], [s * aspect, c]], dtype=torch.float64) / factor  # (2, 2)
    t = torch.tensor([2.0 * shift[0], 2.0 * shift[1]], dtype=torch.float64)
    theta = torch.cat([m, (-(m @ t))[:, None]], dim=1)  # (2, 3)
    theta = theta.to(x.device, torch.float32).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(
        x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    ).to(x.dtype)


def _quarter_turns(degrees: float) -> int | None:
    turns = degrees / 90.0
    return int(turns) % 4 if turns == int(turns) else None


def rotate(x: Tensor, degrees: float) -> Tensor:
    """Rotate the maps counter-clockwise; whole quarter turns of a square map are exact."""
    turns = _quarter_turns(degrees)
    if turns is not None and x.shape[-1] == x.shape[-2]:
        return torch.rot90(x, turns, dims=(-2, -1))
    return _affine(x, degrees, 1.0, (0.0, 0.0))


def pool_radius(x: Tensor, radius: int, *, largest: bool) -> Tensor:
    """Max (dilate) or min (erode) over a (2r+1)-square window, same size out."""
    if radius <= 0:
        return x
    k = 2 * radius + 1
    if largest:
        return F.max_pool2d(x, k, stride=1, padding=radius)
    return -F.max_pool2d(-x, k, stride=1, padding=radius)


def ablation_order(channels: int) -> Tensor:
    """A fixed shuffle of the channels: an ablation of fraction f zeroes its first f·C."""
    generator = torch.Generator().manual_seed(ABLATE_SEED)
    return torch.randperm(channels, generator=generator)


def apply_ops(x: Tensor, ops: Mapping[str, tuple[float, ...]]) -> Tensor:
    """The operators (name -> values) applied to x (B, C, H, W) in OPERATORS order.

    Operators at their identity value are skipped, so they cost nothing.
    """
    for name in OPERATORS:
        values = ops.get(name)
        if values is None or tuple(values) == IDENTITY[name]:
            continue
        if name == "gain":
            x = x * values[0]
        elif name == "ablate":
            count = round(values[0] * x.shape[1])
            if count:
                keep = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
                keep[ablation_order(x.shape[1])[:count].to(x.device)] = 0
                x = x * keep[None, :, None, None]
        elif name in ("erode", "dilate"):
            x = pool_radius(x, round(values[0]), largest=name == "dilate")
        elif name == "flip":
            x = torch.flip(x, dims=(-1,))
        elif name == "rotate":
            x = rotate(x, values[0])
    # Scale and translate share one resampling (rotate is exact on quarter turns, alone).
    factor = ops.get("scale", IDENTITY["scale"])[0]
    shift = tuple(ops.get("translate", IDENTITY["translate"]))
    if factor != 1.0 or shift != (0.0, 0.0):
        x = _affine(x, 0.0, factor, (shift[0], shift[1]))
    return x


def is_identity(ops: Mapping[str, tuple[float, ...]]) -> bool:
    """Whether every operator is at its identity value."""
    return all(tuple(values) == IDENTITY[name] for name, values in ops.items())


def bend_layer(
    x: Tensor, targets: Mapping[int, Mapping[str, tuple[float, ...]]], clusters: list[Tensor]
) -> Tensor:
    """One layer's output bent: the whole layer (key 0), then each cluster k (its channels)."""
    whole = targets.get(0)
    if whole is not None:
        x = apply_ops(x, whole)
    for k, ops in sorted(targets.items()):
        if k == 0:
            continue
        channels = clusters[k - 1].to(x.device)
        x = x.index_copy(1, channels, apply_ops(x.index_select(1, channels), ops))
    return x


class Bender:
    """The hooks that bend one generator; `set` replaces them all (zero bends: none)."""

    def __init__(self, module: nn.Module) -> None:
        self.layers = synthesis_layers(module)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    @property
    def active(self) -> bool:
        """Whether any hook is installed."""
        return bool(self._handles)

    def set(self, bends: Bends, clusters: Callable[[int], list[Tensor]] | None = None) -> None:
        """Install hooks for these bends (layer -> targets); identity targets are left out."""
        self.clear()
        by_layer: dict[int, dict[int, dict[str, tuple[float, ...]]]] = {}
        for (layer, cluster), ops in bends.items():
            if not 1 <= layer <= len(self.layers):
                raise ValueError(f"layer {layer}: this model has layers 1..{len(self.layers)}")
            if not is_identity(ops):
                by_layer.setdefault(layer, {})[cluster] = dict(ops)
        for layer, targets in sorted(by_layer.items()):
            groups = (
                clusters(layer) if clusters is not None and len(targets) > (0 in targets) else []
            )
            _, target = self.layers[layer - 1]
            self._handles.append(target.register_forward_hook(_hook(targets, groups)))

    def clear(self) -> None:
        """Remove every hook: the network runs its own code again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _hook(
    targets: Mapping[int, Mapping[str, tuple[float, ...]]], clusters: list[Tensor]
) -> Callable[..., Tensor]:
    def hook(module: nn.Module, inputs: object, output: Tensor) -> Tensor:
        return bend_layer(output, targets, clusters)

    return hook


# -- clusters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clusters:
    """Every layer's channel clusters: layer (1-based) -> k index tensors (ascending)."""

    groups: dict[int, list[Tensor]]

    def of(self, layer: int) -> list[Tensor]:
        """The clusters of a layer."""
        return self.groups[layer]


def _sample(module: nn.Module, z: Tensor) -> Tensor:
    """Run the generator on z (B, z_dim): its forward, class 0 for a conditional StyleGAN."""
    return unwrap(module)(z)


def activation_features(
    module: nn.Module, *, samples: int, seed: int, device: torch.device, batch: int = 16
) -> dict[int, Tensor]:
    """Per layer, each channel's pooled activation maps over `samples` latents: (C, N·h·w)."""
    layers = synthesis_layers(module)
    z_dim = unwrap(module).z_dim
    assert isinstance(z_dim, int), "a generator has an int z_dim"
    generator = torch.Generator().manual_seed(seed)
    z_all = torch.randn(samples, z_dim, generator=generator)
    pooled: dict[int, list[Tensor]] = {i: [] for i in range(1, len(layers) + 1)}

    def capture(index: int) -> Callable[..., None]:
        def hook(_: nn.Module, __: object, output: Tensor) -> None:
            side = min(CLUSTER_MAP_SIDE, output.shape[-1], output.shape[-2])
            maps = F.adaptive_avg_pool2d(output.float(), side)  # (b, C, s, s)
            pooled[index].append(maps.transpose(0, 1).reshape(output.shape[1], -1).cpu())

        return hook

    handles = [target.register_forward_hook(capture(i + 1)) for i, (_, target) in enumerate(layers)]
    try:
        with torch.no_grad():
            for start in range(0, samples, batch):
                _sample(module, z_all[start : start + batch].to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {index: torch.cat(parts, dim=1) for index, parts in pooled.items()}  # (C, N·s·s)


def kmeans(features: Tensor, k: int, *, seed: int, iterations: int = KMEANS_ITERATIONS) -> Tensor:
    """Labels (n,) of k-means on the rows of features (n, d), k-means++ seeded; canonical order.

    Clusters are renumbered by their lowest row index, so the same grouping
    always has the same labels.
    """
    n = features.shape[0]
    k = min(k, n)
    x = features.double()
    generator = torch.Generator().manual_seed(seed)
    centres = [x[int(torch.randint(n, (1,), generator=generator))]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(dim=1).values ** 2
        if float(d2.sum()) <= 0:
            centres.append(x[len(centres)])
            continue
        pick = int(torch.multinomial(d2 / d2.sum(), 1, generator=generator))
        centres.append(x[pick])
    c = torch.stack(centres)  # (k, d)
    labels = torch.zeros(n, dtype=torch.long)
    for _ in range(iterations):
        labels = torch.cdist(x, c).argmin(dim=1)
        moved = c.clone()
        for j in range(k):
            members = x[labels == j]
            if len(members):
                moved[j] = members.mean(dim=0)
        if torch.equal(moved, c):
            break
        c = moved
    # Canonical numbering; empty clusters dropped.
    order = sorted({int(v) for v in labels}, key=lambda j: int((labels == j).nonzero()[0]))
    remap = {old: new for new, old in enumerate(order)}
    return torch.tensor([remap[int(v)] for v in labels], dtype=torch.long)


def compute_clusters(
    module: nn.Module,
    *,
    k: int,
    seed: int,
    samples: int = CLUSTER_SAMPLES,
    device: torch.device | None = None,
) -> Clusters:
    """Group every layer's channels into (up to) k clusters by their spatial activation.

    As in Broad et al.: each channel's activation maps over `samples` latents
    (pooled to CLUSTER_MAP_SIDE), centred and normalised, then k-means.
    A cluster that would be empty is filled from the largest one, so a layer
    with at least k channels always has k clusters.
    """
    device = device if device is not None else next(unwrap(module).parameters()).device
    features = activation_features(module, samples=samples, seed=seed, device=device)
    groups: dict[int, list[Tensor]] = {}
    for layer, f in features.items():
        f = f - f.mean(dim=1, keepdim=True)
        f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        labels = kmeans(f, k, seed=seed)
        members = [torch.nonzero(labels == j).flatten() for j in range(int(labels.max()) + 1)]
        while len(members) < min(k, f.shape[0]):  # identical channels: split the largest
            members.sort(key=len, reverse=True)
            big = members.pop(0)
            members += [big[: len(big) // 2], big[len(big) // 2 :]]
            members.sort(key=lambda m: int(m[0]))
        groups[layer] = members
    return Clusters(groups)


def digest_state(module: nn.Module) -> str:
    """A cheap identity of a generator's weights, for caching its clusters."""
    h = hashlib.sha256()
    for name, tensor in unwrap(module).state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        flat = tensor.detach().flatten()
        if flat.numel():  # a few values stand for the tensor: enough to tell models apart
            h.update(flat[:: max(1, flat.numel() // 64)].float().cpu().numpy().tobytes())
    return h.hexdigest()
