"""StyleGAN3 generator (alias-free GAN, configs stylegan3-t and stylegan3-r), plain PyTorch.

Written from the paper ("Alias-Free Generative Adversarial Networks", Karras et al.
2021) and the layout of NVIDIA's network pickles: parameter names and shapes equal
those of NVIDIA's `G_ema`, so an imported state dict loads strictly. The picture
starts as Fourier features of a 2D plane (rotated and shifted per sample by an
affine of w, then by a user `transform`), and every layer is a modulated
convolution followed by the filtered nonlinearity: upsample, bias + leaky ReLU,
downsample, with low-pass filters designed from each layer's cutoff and
sampling rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from models.nets.ops import (
    NOISE_MODES,
    FullyConnectedLayer,
    bias_act,
    normalize_2nd_moment,
    upfirdn2d,
)

# Constructor arguments of NVIDIA's stylegan3 Generator, by where they go.
_TOP_KWARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
_MAPPING_KWARGS = {"num_layers": "mapping_layers", "lr_multiplier": "mapping_lr_multiplier"}
_MAPPING_TRAINING_KWARGS = ("w_avg_beta",)  # training-only, accepted and kept
_SYNTHESIS_KWARGS = (
    "channel_base",
    "channel_max",
    "num_layers",
    "num_critical",
    "first_cutoff",
    "first_stopband",
    "last_stopband_rel",
    "margin_size",
    "output_scale",
    "num_fp16_res",
    "conv_kernel",
    "filter_size",
    "lrelu_upsampling",
    "use_radial_filters",
    "conv_clamp",
    "magnitude_ema_beta",
)
# Devices whose fp16-flagged layers may run in half precision when the fast path is on.
HALF_DEVICE_TYPES: tuple[str, ...] = ("cuda",)


@dataclass(frozen=True)
class StyleGAN3Config:
    """Everything that rebuilds a StyleGAN3 generator (NVIDIA's constructor kwargs, flattened)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 512
    img_channels: int = 3
    # mapping
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    # synthesis
    channel_base: int = 32768  # stylegan3-r doubles it
    channel_max: int = 512  # stylegan3-r doubles it
    num_layers: int = 14  # excluding the Fourier input and ToRGB
    num_critical: int = 2  # critically sampled layers at the end
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10  # extra pixels around the picture in the inner layers
    output_scale: float = 0.25
    num_fp16_res: int = 4
    # layers
    conv_kernel: int = 3  # 1 in stylegan3-r
    filter_size: int = 6
    lrelu_upsampling: int = 2
    use_radial_filters: bool = False  # True in stylegan3-r
    conv_clamp: float | None = 256.0
    magnitude_ema_beta: float = 0.999

    def __post_init__(self) -> None:
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers", "channel_base"):
            _check_int(self, name, low=1)
        for name in ("c_dim", "num_fp16_res", "margin_size"):
            _check_int(self, name, low=0)
        _check_int(self, "num_layers", low=self.num_critical + 1)
        _check_int(self, "num_critical", low=0)
        _check_int(self, "channel_max", low=1)
        _check_int(self, "filter_size", low=1)
        _check_int(self, "lrelu_upsampling", low=1)
        if self.conv_kernel not in (1, 3, 5, 7):
            raise ValueError(f"conv_kernel must be 1, 3, 5 or 7, got {self.conv_kernel!r}")
        r = self.img_resolution
        if not isinstance(r, int) or isinstance(r, bool) or r < 16 or r > 2048 or r & (r - 1):
            raise ValueError(f"img_resolution must be a power of two from 16 to 2048, got {r!r}")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise ValueError(f"conv_clamp must be positive or None, got {self.conv_clamp!r}")
        if self.first_cutoff <= 0 or self.first_stopband <= 0 or self.last_stopband_rel <= 0:
            raise ValueError("first_cutoff, first_stopband and last_stopband_rel must be positive")

    @property
    def resolution(self) -> int:
        """Output side in pixels (the name other ganvj models use)."""
        return self.img_resolution

    @property
    def num_ws(self) -> int:
        """How many w vectors synthesis takes: the input, each layer, and ToRGB."""
        return self.num_layers + 2

    @property
    def variant(self) -> str:
        """'stylegan3-r' (1x1 convs, radial filters) or 'stylegan3-t'."""
        return "stylegan3-r" if self.conv_kernel == 1 and self.use_radial_filters else "stylegan3-t"

    @classmethod
    def from_nvidia_kwargs(cls, init_kwargs: dict[str, Any]) -> StyleGAN3Config:
        """A config from the `init_kwargs` of NVIDIA's `training.networks_stylegan3.Generator`."""
        if not isinstance(init_kwargs, dict):
            raise ValueError(f"init_kwargs must be a dict, got {type(init_kwargs).__name__}")
        kwargs: dict[str, Any] = {}
        for key, value in init_kwargs.items():
            if key in _TOP_KWARGS or key in _SYNTHESIS_KWARGS:
                kwargs[key] = value
            elif key == "mapping_kwargs":
                if not isinstance(value, dict):
                    raise ValueError("mapping_kwargs must be a dict")
                for mkey, mvalue in value.items():
                    if mkey in _MAPPING_KWARGS:
                        kwargs[_MAPPING_KWARGS[mkey]] = mvalue
                    elif mkey in _MAPPING_TRAINING_KWARGS:
                        kwargs[mkey] = mvalue
                    else:
                        raise ValueError(f"unsupported StyleGAN3 mapping kwarg {mkey!r}")
            else:
                raise ValueError(f"unsupported StyleGAN3 generator kwarg {key!r}")
        missing = [k for k in _TOP_KWARGS if k not in kwargs]
        if missing:
            raise ValueError(f"StyleGAN3 init_kwargs lack {', '.join(missing)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in list(kwargs.items()):
            kwargs[name] = _coerce(name, str(fields[name].type), value)
        return cls(**kwargs)

    def nvidia_kwargs(self) -> dict[str, Any]:
        """The `init_kwargs` NVIDIA's Generator takes for this config (inverse of the above)."""
        d = dataclasses.asdict(self)
        out: dict[str, Any] = {k: d.pop(k) for k in _TOP_KWARGS}
        out["mapping_kwargs"] = {
            "num_layers": d.pop("mapping_layers"),
            "lr_multiplier": d.pop("mapping_lr_multiplier"),
            "w_avg_beta": d.pop("w_avg_beta"),
        }
        out.update(d)
        return out


def _check_int(config: object, name: str, *, low: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"StyleGAN3Config.{name} must be an int >= {low}, got {value!r}")


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """Pickled kwargs may hold numpy scalars or ints where floats are meant: normalise them."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None and "None" in type_name:
        return None
    if type_name.startswith("float"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif type_name == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif type_name == "bool" and isinstance(value, bool | int):
        return bool(value)
    raise ValueError(f"StyleGAN3 kwarg {name} should be {type_name}, got {value!r}")


# --- The layer plan ------------------------------------------------------------------


@dataclass(frozen=True)
class LayerPlan:
    """Sizes, sampling rates and cutoffs of one synthesis layer (all derived from the config)."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float


@dataclass(frozen=True)
class SynthesisPlan:
    """The Fourier input's settings and every layer's plan."""

    input_channels: int
    input_size: int
    input_sampling_rate: float
    input_bandwidth: float
    layers: tuple[LayerPlan, ...]


def plan_synthesis(config: StyleGAN3Config) -> SynthesisPlan:
    """Cutoffs and stopbands grow geometrically from the first layer to the last (paper 3.2)."""
    n, res = config.num_layers, config.img_resolution
    last_cutoff = res / 2
    last_stopband = last_cutoff * config.last_stopband_rel
    # exponent 0 -> 1 over the non-critical layers, then held at 1
    exponents = np.minimum(np.arange(n + 1) / (n - config.num_critical), 1)  # (n+1,)
    cutoffs = config.first_cutoff * (last_cutoff / config.first_cutoff) ** exponents
    stopbands = config.first_stopband * (last_stopband / config.first_stopband) ** exponents
    # the smallest power of two that holds the stopband, at most the output resolution
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + config.margin_size * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((config.channel_base / 2) / cutoffs, config.channel_max))
    channels[-1] = config.img_channels
    layers = []
    for i in range(n + 1):
        p = max(i - 1, 0)
        out_size, out_ch = int(sizes[i]), int(channels[i])
        layers.append(
            LayerPlan(
                name=f"L{i}_{out_size}_{out_ch}",
                is_torgb=i == n,
                is_critically_sampled=i >= n - config.num_critical,
                use_fp16=bool(rates[i] * 2**config.num_fp16_res > res),
                in_channels=int(channels[p]),
                out_channels=out_ch,
                in_size=int(sizes[p]),
                out_size=out_size,
                in_sampling_rate=int(rates[p]),
                out_sampling_rate=int(rates[i]),
                in_cutoff=float(cutoffs[p]),
                out_cutoff=float(cutoffs[i]),
                in_half_width=float(half_widths[p]),
                out_half_width=float(half_widths[i]),
            )
        )
    return SynthesisPlan(
        input_channels=int(channels[0]),
        input_size=int(sizes[0]),
        input_sampling_rate=float(rates[0]),
        input_bandwidth=float(cutoffs[0]),
        layers=tuple(layers),
    )


# --- Filter design -------------------------------------------------------------------


def _kaiser_beta(numtaps: int, width: float, nyquist: float) -> float:
    """Kaiser window beta for a transition band `width` (Kaiser's empirical formulas)."""
    atten = 2.285 * (numtaps - 1) * math.pi * (width / nyquist) + 7.95  # dB
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def lowpass_filter(
    *, numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> Tensor | None:
    """Kaiser-windowed low-pass FIR: (n,) separable or (n, n) radial; None means identity."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    beta = _kaiser_beta(numtaps, width, fs / 2)
    window = np.kaiser(numtaps, beta)  # (numtaps,)
    if not radial:
        # windowed sinc, unit gain at DC
        c = cutoff / (fs / 2)
        m = np.arange(numtaps) - (numtaps - 1) / 2
        h = c * np.sinc(c * m) * window
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)
    # jinc: the 2D ideal low-pass of a disc, windowed by the outer product of Kaiser windows
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = torch.as_tensor(np.hypot(*np.meshgrid(x, x)), dtype=torch.float64)  # (n, n)
    arg = 2 * cutoff * math.pi * r
    safe = torch.where(r > 0, r, torch.ones_like(r))
    jinc = torch.where(r > 0, torch.special.bessel_j1(arg) / (math.pi * safe), cutoff)
    f = jinc.numpy() * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# --- Ops -----------------------------------------------------------------------------


def filtered_lrelu(
    x: Tensor,  # (B, C, H, W)
    *,
    fu: Tensor | None,
    fd: Tensor | None,
    bias: Tensor,  # (C,)
    up: int,
    down: int,
    padding: Sequence[int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> Tensor:
    """Bias, upsample, leaky ReLU with gain and clamp at the higher rate, downsample."""
    x = bias_act(x, bias.to(x.dtype))
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)  # (B, C, H*up+pad-k+1, ...)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d(x, fd, down=down)


def modulated_conv2d(
    x: Tensor,  # (B, I, H, W)
    weight: Tensor,  # (O, I, k, k)
    styles: Tensor,  # (B, I)
    *,
    demodulate: bool,
    padding: int,
    input_gain: Tensor | None = None,  # () or (I,)
) -> Tensor:
    """Convolve each sample with the weights scaled by its styles: (B, O, H+2p-k+1, ...)."""
    B = x.shape[0]
    n_out, n_in, kh, kw = weight.shape
    w = weight.float()
    s = styles.float()
    if demodulate:
        # pre-normalise so fp16 on the fast path cannot overflow; demodulation cancels the scale
        w = w * w.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean(dim=1, keepdim=True).rsqrt()
    w = w.unsqueeze(0) * s.view(B, 1, n_in, 1, 1)  # (B, O, I, k, k)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().view(B, n_out, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(n_in).view(1, 1, n_in, 1, 1)
    # one grouped convolution for the whole batch
    y = F.conv2d(
        x.reshape(1, B * n_in, *x.shape[2:]),
        w.reshape(B * n_out, n_in, kh, kw).to(x.dtype),
        padding=padding,
        groups=B,
    )
    return y.reshape(B, n_out, *y.shape[2:])


# --- Modules -------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """z (B, z_dim) [+ c (B, c_dim)] -> ws (B, num_ws, w_dim), truncated toward w_avg."""

    w_avg: Tensor  # (w_dim,) buffer

    def __init__(self, *, config: StyleGAN3Config) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.num_ws = config.num_ws
        self.num_layers = config.mapping_layers
        self.embed = FullyConnectedLayer(config.c_dim, config.w_dim) if config.c_dim > 0 else None
        width = config.z_dim + (config.w_dim if config.c_dim > 0 else 0)
        for i in range(config.mapping_layers):
            layer = FullyConnectedLayer(
                width, config.w_dim, activation="lrelu", lr_multiplier=config.mapping_lr_multiplier
            )
            setattr(self, f"fc{i}", layer)
            width = config.w_dim
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: Tensor,  # (B, z_dim)
        c: Tensor | None = None,  # (B, c_dim)
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (B, {self.z_dim}), got {tuple(z.shape)}")
        x = normalize_2nd_moment(z.float())
        if self.embed is not None:
            if c is None or c.ndim != 2 or c.shape != (z.shape[0], self.c_dim):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"c must be ({z.shape[0]}, {self.c_dim}), got {got}")
            y = normalize_2nd_moment(self.embed(c.float()))
            x = torch.cat([x, y], dim=1)  # (B, z_dim + w_dim)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)  # (B, w_dim)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # (B, num_ws, w_dim)
        if truncation_psi != 1:
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = self.w_avg.lerp(ws[:, :cut], truncation_psi)
        return ws


class SynthesisInput(nn.Module):
    """Fourier features of the plane, rotated and shifted by an affine of w, then by `transform`."""

    transform: Tensor  # (3, 3) buffers
    freqs: Tensor  # (C, 2)
    phases: Tensor  # (C,)

    def __init__(
        self, *, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float
    ) -> None:
        super().__init__()
        self.channels, self.size = channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # frequencies drawn inside a disc of radius `bandwidth`, phases uniform
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        # starts as the identity rotation (cos 1, sin 0) and no shift
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        # inverse of the user's transform of the picture, as in NVIDIA's pickles
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)  # (C, 2) cycles per unit
        self.register_buffer("phases", torch.rand(channels) - 0.5)  # (C,) cycles

    def forward(self, w: Tensor, aspect: float = 1.0) -> Tensor:  # (B, w_dim) -> (B, C, S, S)
        """The features at the pixel centres; `aspect` != 1 samples a wider (or taller) grid.

        The plane is continuous, so a wider grid is more of the same picture: the
        extra samples (a whole number, so every layer's rate ratio stays whole)
        go half to each side, and each later layer widens by its own ratio.
        """
        B = w.shape[0]
        t = self.affine(w)  # (B, 4): cos, sin, tx, ty (unnormalised)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=torch.float32)
        rot = eye.repeat(B, 1, 1)  # (B, 3, 3), inverse rotation of the picture
        rot[:, 0, 0], rot[:, 0, 1] = t[:, 0], -t[:, 1]
        rot[:, 1, 0], rot[:, 1, 1] = t[:, 1], t[:, 0]
        shift = eye.repeat(B, 1, 1)  # (B, 3, 3), inverse translation
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rot @ shift @ self.transform.float().unsqueeze(0)  # (B, 3, 3)
        freqs = self.freqs.unsqueeze(0)  # (1, C, 2)
        phases = self.phases.unsqueeze(0) + (freqs @ m[:, :2, 2:]).squeeze(2)  # (B, C)
        freqs = freqs @ m[:, :2, :2]  # (B, C, 2)
        # fade out frequencies the transform pushed past the band (zoom-out, mostly)
        over = (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        amplitudes = (1 - over).clamp(0, 1)  # (B, C)
        # pixel centres in units where the whole layer spans size / sampling_rate
        s = self.size
        coords = (torch.arange(s, device=w.device, dtype=torch.float32) * 2 + 1) / s - 1
        coords = coords * (0.5 * s / self.sampling_rate)  # (S,)
        xs = ys = coords
        if aspect != 1.0:
            ratio = aspect if aspect > 1.0 else 1.0 / aspect
            extra = round((ratio - 1.0) * self.sampling_rate)
            wide = self._centres(s + extra, w.device)
            xs, ys = (wide, coords) if aspect > 1.0 else (coords, wide)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], dim=-1)  # (S, S, 2) as x, y
        x = torch.einsum("hwk,bck->bhwc", grid, freqs)  # (B, S, S, C)
        x = torch.sin((x + phases.view(B, 1, 1, -1)) * (2 * math.pi))
        x = x * amplitudes.view(B, 1, 1, -1)
        x = x @ (self.weight / math.sqrt(self.channels)).t()  # (B, S, S, C)
        return x.permute(0, 3, 1, 2)  # (B, C, S, S)

    def _centres(self, count: int, device: torch.device) -> Tensor:
        """`count` pixel centres one sample apart, centred on the plane's origin."""
        index = torch.arange(count, device=device, dtype=torch.float32)
        return (index - (count - 1) / 2) / self.sampling_rate


class SynthesisLayer(nn.Module):
    """Modulated conv, then the filtered nonlinearity between two sampling rates."""

    magnitude_ema: Tensor  # () buffers
    up_filter: Tensor | None  # (taps,) or None
    down_filter: Tensor | None  # (taps,), (taps, taps) when radial, or None

    def __init__(self, *, config: StyleGAN3Config, plan: LayerPlan) -> None:
        super().__init__()
        self.plan = plan
        self.is_torgb = plan.is_torgb
        self.use_fp16 = plan.use_fp16
        self.conv_clamp = config.conv_clamp
        self.kernel = 1 if plan.is_torgb else config.conv_kernel
        self.in_channels = plan.in_channels
        # the nonlinearity runs at a higher rate to keep its harmonics below Nyquist
        tmp_rate = max(plan.in_sampling_rate, plan.out_sampling_rate) * (
            1 if plan.is_torgb else config.lrelu_upsampling
        )
        self.up = int(np.rint(tmp_rate / plan.in_sampling_rate))
        self.down = int(np.rint(tmp_rate / plan.out_sampling_rate))
        exact = plan.in_sampling_rate * self.up == plan.out_sampling_rate * self.down == tmp_rate
        if not exact:
            raise ValueError(f"layer {plan.name}: sampling rates are not integer ratios")
        up_taps = config.filter_size * self.up if self.up > 1 and not plan.is_torgb else 1
        down_taps = config.filter_size * self.down if self.down > 1 and not plan.is_torgb else 1
        radial = config.use_radial_filters and not plan.is_critically_sampled

        self.affine = FullyConnectedLayer(config.w_dim, plan.in_channels, bias_init=1.0)
        self.weight = nn.Parameter(
            torch.randn(plan.out_channels, plan.in_channels, self.kernel, self.kernel)
        )
        self.bias = nn.Parameter(torch.zeros(plan.out_channels))
        self.register_buffer("magnitude_ema", torch.ones(()))
        self.register_buffer(
            "up_filter",
            lowpass_filter(
                numtaps=up_taps, cutoff=plan.in_cutoff, width=plan.in_half_width * 2, fs=tmp_rate
            ),
        )
        self.register_buffer(
            "down_filter",
            lowpass_filter(
                numtaps=down_taps,
                cutoff=plan.out_cutoff,
                width=plan.out_half_width * 2,
                fs=tmp_rate,
                radial=radial,
            ),
        )
        # padding that centres the output samples (paper, appendix C.3)
        total = (plan.out_size - 1) * self.down + 1
        total -= (plan.in_size + self.kernel - 1) * self.up
        total += up_taps + down_taps - 2
        lo = (total + self.up) // 2
        self.padding = (lo, total - lo, lo, total - lo)

    def forward(self, x: Tensor, w: Tensor, *, fast: bool = False) -> Tensor:
        """x (B, I, H, W), w (B, w_dim) -> (B, O, S, S); fp16 only when fast on CUDA."""
        styles = self.affine(w)  # (B, I)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.kernel**2))
        half = fast and self.use_fp16 and x.device.type in HALF_DEVICE_TYPES
        dtype = torch.float16 if half else torch.float32
        x = modulated_conv2d(
            x.to(dtype),
            self.weight,
            styles,
            demodulate=not self.is_torgb,
            padding=self.kernel - 1,
            input_gain=self.magnitude_ema.rsqrt(),
        )  # (B, O, H + k - 1, W + k - 1)
        return filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            bias=self.bias,
            up=self.up,
            down=self.down,
            padding=self.padding,
            gain=1.0 if self.is_torgb else math.sqrt(2),
            slope=1.0 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )  # (B, O, out_size, out_size)


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, img_channels, R, R)."""

    # A canvas of another shape is painted by the network (models.canvas, "native").
    PAINTS_ANY_ASPECT = True

    def __init__(self, *, config: StyleGAN3Config) -> None:
        super().__init__()
        self.num_ws, self.w_dim = config.num_ws, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.output_scale = config.output_scale
        self.fast = False  # fp16 layers in half precision on CUDA (set by the fast path)
        plan = plan_synthesis(config)
        self.input = SynthesisInput(
            w_dim=config.w_dim,
            channels=plan.input_channels,
            size=plan.input_size,
            sampling_rate=plan.input_sampling_rate,
            bandwidth=plan.input_bandwidth,
        )
        self.layer_names = [p.name for p in plan.layers]
        for p in plan.layers:
            setattr(self, p.name, SynthesisLayer(config=config, plan=p))

    def forward(
        self,
        ws: Tensor,  # (B, num_ws, w_dim)
        *,
        noise_mode: str = "const",
        noise_strength: float = 1.0,
        aspect: float = 1.0,
    ) -> Tensor:
        """`aspect` (width / height) != 1 samples the Fourier input over a wider grid."""
        # StyleGAN3 has no noise inputs; the arguments exist so every StyleGAN plays alike.
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        w_list = ws.float().unbind(dim=1)
        x = self.input(w_list[0]) if aspect == 1.0 else self.input(w_list[0], aspect)
        for name, w in zip(self.layer_names, w_list[1:], strict=True):
            x = getattr(self, name)(x, w, fast=self.fast)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.float()  # (B, img_channels, R, R)


class StyleGAN3Generator(nn.Module):
    """z (B, z_dim) [+ c] -> image (B, img_channels, R, R), roughly in [-1, 1]."""

    def __init__(self, *, config: StyleGAN3Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.resolution = config.img_resolution
        self.num_ws = config.num_ws
        # synthesis first, as in NVIDIA's, so state_dict() lists keys in the same order
        self.synthesis = SynthesisNetwork(config=config)
        self.mapping = MappingNetwork(config=config)

    def forward(
        self,
        z: Tensor,  # (B, z_dim)
        c: Tensor | None = None,  # (B, c_dim)
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        aspect: float = 1.0,
    ) -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        if aspect != 1.0:
            return self.synthesis(ws, noise_mode=noise_mode, aspect=aspect)
        return self.synthesis(ws, noise_mode=noise_mode)


def transform_matrix(
    *, angle_deg: float = 0.0, translate: Sequence[float] = (0.0, 0.0), zoom: float = 1.0
) -> np.ndarray:
    """The (3, 3) `input.transform`: the inverse of rotating, zooming and shifting the picture."""
    if not zoom > 0:
        raise ValueError(f"zoom must be positive, got {zoom!r}")
    if len(translate) != 2:
        raise ValueError(f"translate must be (x, y), got {translate!r}")
    a = math.radians(angle_deg)
    c, s = math.cos(a) * zoom, math.sin(a) * zoom
    # NVIDIA's gen_images.py make_transform, with the rotation block scaled by zoom
    m = np.array([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)


def set_transform(
    module: nn.Module,
    *,
    angle_deg: float = 0.0,
    translate: Sequence[float] = (0.0, 0.0),
    zoom: float = 1.0,
) -> None:
    """Rotate (degrees), shift (fractions of the picture) and zoom a StyleGAN3's picture."""
    synthesis = getattr(module, "synthesis", module)
    buf = getattr(getattr(synthesis, "input", None), "transform", None)
    if not isinstance(buf, Tensor) or buf.shape != (3, 3):
        raise ValueError("set_transform needs a StyleGAN3 generator (no synthesis.input.transform)")
    m = transform_matrix(angle_deg=angle_deg, translate=translate, zoom=zoom)
    with torch.no_grad():
        buf.copy_(torch.from_numpy(m))


SYNTHETIC_RESOLUTIONS = (256, 512, 1024)


def synthetic_config(name: str) -> StyleGAN3Config:
    """train.py's settings for 'stylegan3-t-512', 'stylegan3-r-1024', ... (weights random)."""
    variant, _, res = name.rpartition("-")
    if variant not in ("stylegan3-t", "stylegan3-r") or not res.isdigit():
        raise ValueError(f"unknown StyleGAN3 config {name!r} (e.g. stylegan3-t-512)")
    if int(res) not in SYNTHETIC_RESOLUTIONS:
        raise ValueError(f"{name}: resolution must be one of {SYNTHETIC_RESOLUTIONS}")
    # train.py: z/w 512, 2 mapping layers, 4 fp16 resolutions, clamp 256, batch 32's EMA beta;
    # stylegan3-r doubles the channels and uses 1x1 convolutions with radial filters.
    r = variant == "stylegan3-r"
    return StyleGAN3Config(
        z_dim=512,
        w_dim=512,
        img_resolution=int(res),
        channel_base=65536 if r else 32768,
        channel_max=1024 if r else 512,
        magnitude_ema_beta=0.5 ** (32 / 20000),
        conv_kernel=1 if r else 3,
        use_radial_filters=r,
    )
