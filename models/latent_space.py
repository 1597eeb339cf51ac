"""How a generator is played: the space its keyframes live in, and one frame's picture.

A DCGAN is played in z: the latent goes straight into the network. A StyleGAN
is played in W, after its mapping network: keyframes, morphs, XY blends and
wander are W vectors (w_dim,); truncation pulls toward `w_avg`; style mixing
replaces layer ranges of the per-layer broadcast (num_ws, w_dim); SG3 adds a
transform of its Fourier input. The live engine and offline renders share this
code, so a tour looks the same on stage and on disk.

A space never owns motion or settings (the play state does); it knows how to
turn a seed into a position, which directions are worth following, and how to
draw a `Pose`. Seeds always mean NVIDIA's `RandomState(seed).randn(z_dim)`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from models.canvas import aspect_kwargs
from models.formats.stylegan import ganspace
from models.latent_maths import Wander, lerp, seed_latent
from models.nets.stylegan3 import set_transform

logger = logging.getLogger(__name__)

STYLE_RANGES = ("coarse", "middle", "fine")
GANSPACE_SAMPLES = 1024  # mapping samples for directions when the file stores none


@dataclass(frozen=True)
class Mix:
    """Style mixing: layers [start, stop) blended toward `source` (dim,) by `amount`."""

    start: int
    stop: int
    source: Tensor
    amount: float


@dataclass(frozen=True)
class Style:
    """Synthesis settings besides the latent: noise and the SG3 input transform."""

    noise_mode: str = "const"
    noise_strength: float = 1.0
    angle: float = 0.0  # degrees, counter-clockwise
    translate: tuple[float, float] = (0.0, 0.0)  # in image widths
    zoom: float = 1.0


@dataclass(frozen=True)
class Pose:
    """Everything one frame shows: the position (dim,), style mixes and synthesis settings."""

    latent: Tensor
    mixes: tuple[Mix, ...] = ()
    style: Style = field(default_factory=Style)


def orthonormal_directions(z_dim: int, count: int, seed: int = 0) -> Tensor:
    """`count` orthonormal directions of a z_dim space, the same for a seed."""
    generator = torch.Generator().manual_seed(int(seed) + 104729)
    basis = torch.randn(z_dim, count, generator=generator)
    q, _ = torch.linalg.qr(basis)  # (z_dim, count), orthonormal columns
    return q.T.contiguous()  # (count, z_dim)


def style_ranges(
    num_ws: int, resolution: int, arch: str = "stylegan2"
) -> dict[str, tuple[int, int]]:
    """Coarse, middle and fine layer ranges [start, stop) of the (num_ws, w_dim) broadcast.

    For a StyleGAN2 of 64 px or more these are the paper's: coarse 4-8 px
    (ws 0-3), middle 16-32 px (ws 4-7), fine 64 px and up. Smaller networks and
    StyleGAN3 (whose layers are not one per octave) are cut in thirds.
    """
    octaves = round(math.log2(max(resolution, 4)))
    if arch != "stylegan3" and num_ws == 2 * octaves - 2 and num_ws >= 10:
        return {"coarse": (0, 4), "middle": (4, 8), "fine": (8, num_ws)}
    a, b = round(num_ws / 3), round(2 * num_ws / 3)
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws)}


def has_w_space(module: nn.Module) -> bool:
    """True for a module with the StyleGAN interface (mapping, synthesis, w_avg).

    By the module, not the file's arch (models.sampling.is_stylegan): an
    in-memory or wrapped generator is played in W when it has the interface.
    """
    mapping = getattr(module, "mapping", None)
    return hasattr(module, "synthesis") and hasattr(mapping, "w_avg")


class LatentSpace:
    """Where a generator's keyframes live; subclasses: ZSpace (DCGAN), WSpace (StyleGAN)."""

    name = "z"
    dim: int
    mean: Tensor  # (dim,) on the CPU: what truncation pulls toward
    num_ws = 1
    classes = 0  # c_dim of a conditional model
    transformable = False  # SG3: rotate, translate, zoom the input
    ranges: dict[str, tuple[int, int]] = {}  # noqa: RUF012 - style ranges, empty in z
    arch = "dcgan"

    def seeds(self, seeds: Sequence[int], label: int = 0) -> Tensor:
        """Positions (n, dim) on the CPU for NVIDIA-style seeds (and a class, if any)."""
        raise NotImplementedError

    def seed(self, seed: int, label: int = 0) -> Tensor:
        """The position (dim,) of one seed."""
        return self.seeds([seed], label)[0]

    def directions(self, count: int, seed: int = 0) -> Tensor:
        """Up to `count` directions (k, dim): a fader at 1 moves DIRECTION_SCALE of one."""
        raise NotImplementedError

    def wander(self, seed: int, label: int = 0) -> Wander:
        """A smooth endless loop through this space."""
        raise NotImplementedError

    def render(self, pose: Pose, aspect: float = 1.0) -> Tensor:
        """The picture (1, C, R, R) of a pose, float, on the generator's device.

        `aspect` (width / height) != 1: the network paints about that shape
        (models.canvas, `native`): (1, C, R, R * aspect) for a wide canvas.
        """
        raise NotImplementedError


class ZSpace(LatentSpace):
    """A DCGAN's z: Gaussian latents, orthonormal directions, truncation toward 0."""

    def __init__(self, z_dim: int, *, module: nn.Module | None = None, half: bool = False) -> None:
        self.dim = z_dim
        self.mean = torch.zeros(z_dim)
        self.module = module
        self.half = half

    def seeds(self, seeds: Sequence[int], label: int = 0) -> Tensor:
        """NVIDIA's seeds, used as z directly."""
        return torch.stack([seed_latent(s, self.dim) for s in seeds])  # (n, z_dim)

    def directions(self, count: int, seed: int = 0) -> Tensor:
        """Orthonormal directions, fixed by the seed (unit steps: z has unit variance)."""
        return orthonormal_directions(self.dim, min(count, self.dim), seed)

    def wander(self, seed: int, label: int = 0) -> Wander:
        """The Gaussian wander of models.latent_maths."""
        return Wander(z_dim=self.dim, seed=seed)

    def render(self, pose: Pose, aspect: float = 1.0) -> Tensor:
        """The network's picture of z."""
        if self.module is None:
            raise RuntimeError("this z space has no generator to render with")
        device = next(self.module.parameters()).device
        z = pose.latent.to(device)
        if self.half:
            z = z.half()
        return self.module(z[None], **aspect_kwargs(aspect))  # (1, 3, R, R)


class WLoop(Wander):
    """A wander loop in W: the same harmonics as z's, over mapped deviations from w_avg.

    Each harmonic's coefficients are W points minus w_avg, so the loop passes
    through blends of real mapped latents and keeps their spread around w_avg.
    """

    def __init__(self, *, mean: Tensor, deviations: Tensor) -> None:
        # deviations: (2 * HARMONICS, dim): cos coefficients, then sin coefficients.
        h = self.HARMONICS
        self.z_dim = mean.shape[0]
        self._mean = mean
        self._cos = deviations[:h]
        self._sin = deviations[h:]
        self._freq = torch.arange(1, h + 1, dtype=torch.float32)[:, None]
        self._scale = 1.0 / math.sqrt(h)

    def at(self, t_seconds: float) -> Tensor:
        """Position at wander-clock time t."""
        return self._mean + super().at(t_seconds)


class WSpace(LatentSpace):
    """A StyleGAN's W: positions are mapped seeds, truncation pulls toward w_avg."""

    name = "w"

    def __init__(
        self,
        module: nn.Module,
        *,
        resolution: int,
        arch: str = "stylegan2",
        components: Tensor | None = None,
        stdev: Tensor | None = None,
    ) -> None:
        if not has_w_space(module):
            raise ValueError(f"{type(module).__name__} has no mapping/synthesis/w_avg")
        self.module = module
        generator: Any = module  # the contract's attributes, not nn.Module's
        self.mapping: Any = generator.mapping
        self.synthesis: Any = generator.synthesis
        self.arch = arch
        self.z_dim = int(generator.z_dim)
        self.dim = int(generator.w_dim)
        self.num_ws = int(generator.num_ws)
        self.classes = int(getattr(generator, "c_dim", 0) or 0)
        self.mean = self.mapping.w_avg.detach().float().cpu().clone()  # (w_dim,)
        self.ranges = style_ranges(self.num_ws, resolution, arch)
        layer = getattr(self.synthesis, "input", None)
        self.transformable = isinstance(getattr(layer, "transform", None), Tensor)
        self._components = components
        self._stdev = stdev
        self._transform: tuple[float, float, float, float] | None = None

    @property
    def device(self) -> torch.device:
        """Where the generator lives."""
        return self.mapping.w_avg.device

    def condition(self, n: int, label: int) -> Tensor | None:
        """One-hot class rows (n, c_dim) for a conditional model, else None."""
        if not self.classes:
            return None
        c = torch.zeros(n, self.classes, device=self.device)
        c[:, min(max(label, 0), self.classes - 1)] = 1.0
        return c

    def map(self, z: Tensor, label: int = 0) -> Tensor:
        """W (n, w_dim) on the CPU for z (n, z_dim): mapping without truncation."""
        # no_grad, not inference_mode: the play state edits its bank in place later.
        with torch.no_grad():
            ws = self.mapping(z.to(self.device), self.condition(z.shape[0], label))
        return ws[:, 0].float().cpu()  # every layer holds the same w before mixing

    def seeds(self, seeds: Sequence[int], label: int = 0) -> Tensor:
        """Mapped seeds (n, w_dim)."""
        z = torch.stack([seed_latent(s, self.z_dim) for s in seeds])  # (n, z_dim)
        return self.map(z, label)

    def directions(self, count: int, seed: int = 0) -> Tensor:
        """GANSpace: the principal components of W stored with the model, one stdev long."""
        if self._components is None or self._stdev is None:
            # A model made before import stored them (or built in memory): compute once.
            self._components, self._stdev = ganspace(self.module, samples=GANSPACE_SAMPLES)
        k = min(count, self._components.shape[0])
        return (self._components[:k] * self._stdev[:k, None]).float()  # (k, w_dim)

    def wander(self, seed: int, label: int = 0) -> Wander:
        """A loop through blends of mapped seeds (seed-derived, so the same for a seed)."""
        first = (int(seed) * 7 + 7919) % 2**32
        w = self.seeds([(first + i) % 2**32 for i in range(2 * Wander.HARMONICS)], label)
        return WLoop(mean=self.mean, deviations=w - self.mean)

    def broadcast(self, pose: Pose) -> Tensor:
        """The per-layer latents (num_ws, w_dim) of a pose, on the device: one upload."""
        rows = torch.stack([pose.latent, *(m.source for m in pose.mixes)])  # (1 + m, w_dim)
        vectors = rows.to(self.device, non_blocking=True)
        ws = vectors[0].expand(self.num_ws, self.dim).clone()  # (num_ws, w_dim)
        for i, mix in enumerate(pose.mixes, start=1):
            ws[mix.start : mix.stop] = lerp(ws[mix.start : mix.stop], vectors[i], mix.amount)
        return ws

    def render(self, pose: Pose, aspect: float = 1.0) -> Tensor:
        """synthesis() of the pose's layers, once."""
        ws = self.broadcast(pose)
        style = pose.style
        if self.transformable:
            self.transform_to(style)
        return self.synthesis(
            ws[None],
            noise_mode=style.noise_mode,
            noise_strength=style.noise_strength,
            **aspect_kwargs(aspect),
        )  # (1, C, R, R)

    def transform_to(self, style: Style) -> None:
        """Set the SG3 input transform of a style (uploaded only when it changed)."""
        key = (style.angle, style.translate[0], style.translate[1], style.zoom)
        if key == self._transform:
            return  # unchanged: no upload
        self._transform = key
        set_transform(
            self.module, angle_deg=style.angle, translate=style.translate, zoom=style.zoom
        )


def stored_ganspace(model: Any) -> tuple[Tensor | None, Tensor | None]:
    """GANSpace components and stdev a model file stores (extra/ganspace/*), if any."""
    extras = getattr(model, "extras", None) or {}
    return extras.get("ganspace/components"), extras.get("ganspace/stdev")


def space_for(model: Any, module: nn.Module, *, half: bool = False) -> LatentSpace:
    """The space a loaded model is played in: W for a StyleGAN, z otherwise."""
    if has_w_space(module):
        components, stdev = stored_ganspace(model)
        return WSpace(
            module,
            resolution=int(model.resolution),
            arch=str(model.arch),
            components=None if components is None else components.float(),
            stdev=None if stdev is None else stdev.float(),
        )
    if model.z_dim is None:
        raise ValueError(f"{model.name} is a {model.kind} model: it has no latent space")
    return ZSpace(int(model.z_dim), module=module, half=half)
