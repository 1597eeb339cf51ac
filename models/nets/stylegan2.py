"""StyleGAN2 generator and discriminator (Karras et al. 2020), as NVIDIA's pickles lay them out.

Mapping z (+ class c) -> W, broadcast to one w per layer; synthesis ws -> image
through one block per resolution 4, 8, ..., R. Module names and tensor shapes
equal those of NVIDIA's stylegan2-ada-pytorch and stylegan3 (`stylegan2` config)
networks, so their `G_ema.state_dict()` loads here with strict=True.

Precision: blocks flagged fp16 (the `num_fp16_res` highest resolutions) compute
in half precision only when `fast` is set on a CUDA tensor; otherwise, and on
the CPU, everything is float32, the exact path.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from models.nets.ops import (
    NOISE_MODES,
    Conv2dLayer,
    FullyConnectedLayer,
    activation_gain,
    bias_act,
    check_activation,
    downsample2d,
    make_filter,
    modulated_conv2d,
    normalize_2nd_moment,
    upsample2d,
    wide_shape,
    widen,
)

ARCHITECTURES = ("orig", "skip", "resnet")
MIN_RESOLUTION = 4
# Devices whose fp16-flagged blocks may run in half precision when the fast path is on.
HALF_DEVICE_TYPES: tuple[str, ...] = ("cuda",)
MAX_RESOLUTION = 2048

# Which repository wrote a pickle decides the defaults of kwargs it left out.
FLAVOR_ADA = "ada"  # stylegan2-ada-pytorch, module training.networks
FLAVOR_SG3 = "sg3"  # stylegan3, module training.networks_stylegan2
_FLAVOR_DEFAULTS: dict[str, dict[str, Any]] = {
    FLAVOR_ADA: {"conv_clamp": None, "num_fp16_res": 0, "w_avg_beta": 0.995},
    FLAVOR_SG3: {"conv_clamp": 256, "num_fp16_res": 4, "w_avg_beta": 0.998},
}
_MAPPING_KEYS = {
    "num_layers": "mapping_layers",
    "embed_features": "embed_features",
    "layer_features": "layer_features",
    "activation": "mapping_activation",
    "lr_multiplier": "mapping_lr_multiplier",
    "w_avg_beta": "w_avg_beta",
}
_SYNTHESIS_KEYS = {
    "channel_base": "channel_base",
    "channel_max": "channel_max",
    "num_fp16_res": "num_fp16_res",
    "architecture": "architecture",
    "resample_filter": "resample_filter",
    "conv_clamp": "conv_clamp",
    "fp16_channels_last": "fp16_channels_last",
    "kernel_size": "kernel_size",
    "use_noise": "use_noise",
    "activation": "activation",
}
# Training-only switches that do not change the pictures.
_IGNORED_SYNTHESIS_KEYS = {"fused_modconv_default"}


@dataclass(frozen=True)
class StyleGAN2Config:
    """Everything that rebuilds a StyleGAN2 generator (and its discriminator's shape)."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    # Mapping network.
    mapping_layers: int = 8
    embed_features: int | None = None  # None: w_dim
    layer_features: int | None = None  # None: w_dim
    mapping_activation: str = "lrelu"
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.998
    # Synthesis network.
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    num_fp16_res: int = 0  # the N highest resolutions may run in fp16 (CUDA fast path)
    architecture: str = "skip"  # "orig" | "skip" | "resnet"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None
    fp16_channels_last: bool = False
    kernel_size: int = 3
    use_noise: bool = True
    activation: str = "lrelu"

    def __post_init__(self) -> None:
        for name in ("z_dim", "c_dim", "w_dim", "img_channels", "mapping_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"StyleGAN2Config.{name} must be an int >= 0, got {value!r}")
        if self.w_dim < 1 or self.img_channels < 1 or self.mapping_layers < 1:
            raise ValueError("StyleGAN2Config: w_dim, img_channels and mapping_layers must be >= 1")
        if self.z_dim == 0 and self.c_dim == 0:
            raise ValueError("StyleGAN2Config: z_dim and c_dim cannot both be 0")
        r = self.img_resolution
        if not isinstance(r, int) or r < MIN_RESOLUTION or r > MAX_RESOLUTION or r & (r - 1):
            raise ValueError(
                f"StyleGAN2Config.img_resolution must be a power of two from {MIN_RESOLUTION} "
                f"to {MAX_RESOLUTION}, got {r!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"StyleGAN2Config.architecture must be one of {', '.join(ARCHITECTURES)}, "
                f"got {self.architecture!r}"
            )
        if self.channel_base < 1 or self.channel_max < 1 or self.num_fp16_res < 0:
            raise ValueError("StyleGAN2Config: channel_base, channel_max >= 1, num_fp16_res >= 0")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"StyleGAN2Config.kernel_size must be odd, got {self.kernel_size}")
        check_activation(self.activation)
        check_activation(self.mapping_activation)
        # JSON gives lists back; keep the frozen dataclass hashable and comparable.
        object.__setattr__(self, "resample_filter", tuple(float(v) for v in self.resample_filter))

    @property
    def resolution(self) -> int:
        """Output side in pixels (what every ganvj model calls its resolution)."""
        return self.img_resolution

    @property
    def block_resolutions(self) -> list[int]:
        """4, 8, ..., img_resolution."""
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels(self, resolution: int) -> int:
        """Feature channels of the block at this resolution."""
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def fp16_resolution(self) -> int:
        """The lowest resolution whose blocks are flagged fp16."""
        log2 = int(math.log2(self.img_resolution))
        return max(2 ** (log2 + 1 - self.num_fp16_res), 8)

    @classmethod
    def from_nvidia_kwargs(
        cls, init_kwargs: dict[str, Any], *, flavor: str | None = None
    ) -> StyleGAN2Config:
        """From a pickled Generator's init_kwargs (either repository's layout).

        stylegan2-ada-pytorch nests synthesis settings under `synthesis_kwargs`;
        stylegan3's `stylegan2` config passes them flat. `flavor` ("ada" | "sg3", from the
        pickle's module name) picks the defaults for kwargs the file left out.
        """
        kwargs = dict(init_kwargs)
        if flavor is None:
            flavor = FLAVOR_ADA if "synthesis_kwargs" in kwargs else FLAVOR_SG3
        if flavor not in _FLAVOR_DEFAULTS:
            raise ValueError(f"unknown StyleGAN2 flavor {flavor!r}")
        defaults = _FLAVOR_DEFAULTS[flavor]
        values: dict[str, Any] = {
            "conv_clamp": defaults["conv_clamp"],
            "num_fp16_res": defaults["num_fp16_res"],
            "w_avg_beta": defaults["w_avg_beta"],
        }
        for key in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"):
            if key not in kwargs:
                raise ValueError(f"StyleGAN2 init_kwargs lack {key!r}")
            values[key] = _plain(kwargs.pop(key))
        mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
        synthesis = dict(kwargs.pop("synthesis_kwargs", None) or {})
        synthesis.update(kwargs)  # stylegan3 layout: the rest are synthesis kwargs
        for key, value in mapping.items():
            if key not in _MAPPING_KEYS:
                raise ValueError(f"unsupported StyleGAN2 mapping kwarg {key!r}")
            values[_MAPPING_KEYS[key]] = _plain(value)
        for key, value in synthesis.items():
            if key in _IGNORED_SYNTHESIS_KEYS:
                continue
            if key not in _SYNTHESIS_KEYS:
                raise ValueError(f"unsupported StyleGAN2 synthesis kwarg {key!r}")
            values[_SYNTHESIS_KEYS[key]] = _plain(value)
        if isinstance(values.get("resample_filter"), list):
            values["resample_filter"] = tuple(values["resample_filter"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; `StyleGAN2Config(**d)` rebuilds it."""
        return dataclasses.asdict(self)


def _plain(value: Any) -> Any:
    """numpy scalars and tuples from a pickle -> plain Python values."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
# Mapping


class MappingNetwork(nn.Module):
    """z (B, z_dim), c (B, c_dim) -> ws (B, num_ws, w_dim); w_avg (w_dim,): truncation centre."""

    def __init__(
        self,
        *,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx],
                features[idx + 1],
                activation=activation,
                lr_multiplier=lr_multiplier,
            )
            setattr(self, f"fc{idx}", layer)
        self.w_avg: Tensor
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> Tensor:
        """ws (B, num_ws, w_dim), or (B, w_dim) when num_ws is None; psi pulls toward w_avg."""
        x: Tensor | None = None
        if self.z_dim > 0:
            assert z is not None and z.shape[1:] == (self.z_dim,), "z must be (B, z_dim)"
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert c is not None and c.shape[1:] == (self.c_dim,), "c must be (B, c_dim)"
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        assert x is not None
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)  # (B, w_dim)
        if update_w_avg and self.w_avg_beta is not None:
            # Training: a running mean of W, the centre truncation pulls toward.
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # (B, num_ws, w_dim)
        if truncation_psi != 1:
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                head = x[:, :truncation_cutoff]
                x[:, :truncation_cutoff] = self.w_avg.lerp(head, truncation_psi)
        return x


# ---------------------------------------------------------------------------------------
# Synthesis


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + per-pixel noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.noise_const: Tensor
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        *,
        noise_mode: str = "const",
        noise_strength: float = 1.0,
        fused: bool = True,
        gain: float = 1.0,
    ) -> Tensor:
        """x (B, I, r/up, r/up), w (B, w_dim) -> (B, O, r, r)."""
        styles = self.affine(w)  # (B, I)
        noise = self.noise(x, noise_mode=noise_mode, noise_strength=noise_strength)
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=self.up == 1,
            fused=fused,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp
        )

    def noise(self, x: Tensor, *, noise_mode: str, noise_strength: float) -> Tensor | None:
        """The per-pixel noise added to this layer's output for input x, or None."""
        if not self.use_noise or noise_mode == "none":
            return None
        # A widened canvas (models.canvas) makes the maps wider than r x r.
        height, width = x.shape[-2] * self.up, x.shape[-1] * self.up
        if noise_mode == "random":
            shape = [x.shape[0], 1, height, width]
            noise = torch.randn(shape, device=x.device) * self.noise_strength
        else:
            # The fixed noise tiled (not mirrored: fine detail stays unmirrored).
            noise_const = widen(self.noise_const, height, width, mode="wrap")
            noise = noise_const * self.noise_strength  # (r, r), or as wide as x
        if noise_strength != 1.0:
            noise = noise * noise_strength
        return noise


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv (no demodulation) from features to colour channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        )
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: Tensor, w: Tensor, *, fused: bool = True) -> Tensor:
        """x (B, I, r, r), w (B, w_dim) -> (B, img_channels, r, r)."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | 2x-up conv) + conv, and a ToRGB added to the upsampled image."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        config: StyleGAN2Config,
        resolution: int,
        is_last: bool,
        use_fp16: bool,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = config.w_dim
        self.resolution = resolution
        self.img_channels = config.img_channels
        self.is_last = is_last
        self.architecture = config.architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and config.fp16_channels_last
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", make_filter(config.resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        layer_kwargs: dict[str, Any] = {
            "w_dim": config.w_dim,
            "resolution": resolution,
            "kernel_size": config.kernel_size,
            "use_noise": config.use_noise,
            "activation": config.activation,
            "resample_filter": config.resample_filter,
            "conv_clamp": config.conv_clamp,
        }
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if is_last or self.architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, config.img_channels, w_dim=config.w_dim, conv_clamp=config.conv_clamp
            )
            self.num_torgb += 1
        if in_channels != 0 and self.architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                up=2,
                resample_filter=config.resample_filter,
            )

    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        *,
        fast: bool = False,
        noise_mode: str = "const",
        noise_strength: float = 1.0,
        const_shape: tuple[int, int] | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, I, r/2, r/2) | None, img (B, C, r/2, r/2) | None, ws (B, n_conv + n_rgb, w_dim).

        `const_shape`: the 4x4 block's constant widened to (h, w) for a wide canvas.
        """
        half = fast and self.use_fp16 and ws.device.type in HALF_DEVICE_TYPES
        dtype = torch.float16 if half else torch.float32
        memory_format = (
            torch.channels_last if half and self.channels_last else torch.contiguous_format
        )
        # Batch 1 (live play) and fp32: one grouped conv. fp16 batches: scale activations.
        fused = dtype == torch.float32 or ws.shape[0] == 1
        w_iter: Iterator[Tensor] = iter(ws.unbind(dim=1))
        layer_kwargs: dict[str, Any] = {
            "noise_mode": noise_mode,
            "noise_strength": noise_strength,
            "fused": fused,
        }
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            if const_shape is not None:
                x = widen(x, *const_shape)  # (O, h, w), mirrored about the edges
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])  # (B, O, 4, 4)
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        else:
            assert x is not None
            x = x.to(dtype=dtype, memory_format=memory_format)
            if self.architecture == "resnet":
                y = self.skip(x, gain=math.sqrt(0.5))
                x = self.conv0(x, next(w_iter), **layer_kwargs)
                x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
                x = y + x
            else:
                x = self.conv0(x, next(w_iter), **layer_kwargs)
                x = self.conv1(x, next(w_iter), **layer_kwargs)
        if img is not None:
            img = upsample2d(img, self.resample_filter)  # (B, C, r, r)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused=fused)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> image (B, img_channels, R, R), roughly in [-1, 1]."""

    # A canvas of another shape is painted by the network (models.canvas, "native").
    PAINTS_ANY_ASPECT = True

    def __init__(self, *, config: StyleGAN2Config) -> None:
        super().__init__()
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.block_resolutions = config.block_resolutions
        self.num_ws = 0
        self.fast = False  # fp16 blocks in half precision on CUDA (set by the fast path)
        for res in self.block_resolutions:
            in_channels = config.channels(res // 2) if res > 4 else 0
            is_last = res == config.img_resolution
            block = SynthesisBlock(
                in_channels,
                config.channels(res),
                config=config,
                resolution=res,
                is_last=is_last,
                use_fp16=res >= config.fp16_resolution,
            )
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> Iterator[SynthesisBlock]:
        """The blocks from 4x4 up."""
        for res in self.block_resolutions:
            yield getattr(self, f"b{res}")

    def forward(
        self,
        ws: Tensor,
        *,
        noise_mode: str = "const",
        noise_strength: float = 1.0,
        aspect: float = 1.0,
    ) -> Tensor:
        """ws (B, num_ws, w_dim) -> (B, img_channels, R, R).

        `aspect` (width / height) != 1: the 4x4 constant is extended, mirrored
        about its edges, to about that aspect (4x7 for 16:9); every block then
        paints the whole width at its own scale: (B, C, R, 7R/4).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}")
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), "ws: (B, num_ws, w_dim)"
        ws = ws.to(torch.float32)
        x: Tensor | None = None
        img: Tensor | None = None
        w_idx = 0
        const_shape = wide_shape(4, 4, aspect) if aspect != 1.0 else None
        for block in self.blocks():
            # Each block reads its convs' ws and the next one (its ToRGB shares it).
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(
                x,
                img,
                block_ws,
                fast=self.fast,
                noise_mode=noise_mode,
                noise_strength=noise_strength,
                const_shape=const_shape,
            )
            const_shape = None  # only the first block starts from the constant
        assert img is not None
        return img


class StyleGAN2Generator(nn.Module):
    """z (B, z_dim) [+ c (B, c_dim)] -> image (B, img_channels, R, R): mapping then synthesis."""

    def __init__(self, *, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.c_dim = config.c_dim
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.synthesis = SynthesisNetwork(config=config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=config.z_dim,
            c_dim=config.c_dim,
            w_dim=config.w_dim,
            num_ws=self.num_ws,
            num_layers=config.mapping_layers,
            embed_features=config.embed_features,
            layer_features=config.layer_features,
            activation=config.mapping_activation,
            lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        )

    def default_c(self, batch: int, device: torch.device | None = None) -> Tensor | None:
        """Class 0 one-hot (B, c_dim) for a conditional model, None otherwise."""
        if self.c_dim == 0:
            return None
        c = torch.zeros([batch, self.c_dim], device=device)
        c[:, 0] = 1.0
        return c

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        aspect: float = 1.0,
    ) -> Tensor:
        """z (B, z_dim), c (B, c_dim) or None (class 0) -> image (B, C, R, R) (wider: `aspect`)."""
        if c is None:
            c = self.default_c(z.shape[0], z.device)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        if aspect != 1.0:
            return self.synthesis(ws, noise_mode=noise_mode, aspect=aspect)
        return self.synthesis(ws, noise_mode=noise_mode)


# ---------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromRGB) + conv + 2x-down conv, with a resnet skip."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        *,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: tuple[float, ...] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", make_filter(resample_filter))
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, 1, activation=activation, conv_clamp=conv_clamp
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, 3, activation=activation, conv_clamp=conv_clamp
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            3,
            activation=activation,
            down=2,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=resample_filter
            )

    def forward(
        self, x: Tensor | None, img: Tensor | None, *, fast: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, I, r, r) | None, img (B, C, r, r) -> x (B, O, r/2, r/2), img (B, C, r/2, r/2)."""
        device = (x if x is not None else img).device  # type: ignore[union-attr]
        half = fast and self.use_fp16 and device.type in HALF_DEVICE_TYPES
        dtype = torch.float16 if half else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None
            img = img.to(dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        assert x is not None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation across groups of samples as extra feature channels."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C + num_channels, H, W); B must be a multiple of the group size."""
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # (G, n, F, c, H, W)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (n, F, c, H, W)
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # (n, F, 1, 1)
        y = y.repeat(g, 1, h, w)  # (B, F, H, W)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev, conv, fc, out (projected onto the class embedding if any)."""

    def __init__(
        self,
        in_channels: int,
        *,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(
            in_channels * resolution**2, in_channels, activation=activation
        )
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        """x (B, C, 4, 4) -> logits (B, 1)."""
        x = x.to(torch.float32)
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            assert cmap is not None
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


@dataclass(frozen=True)
class StyleGAN2DiscriminatorConfig:
    """Everything that rebuilds a StyleGAN2 discriminator."""

    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    cmap_dim: int | None = None
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_layers: int = 8  # of the class-embedding mapping (conditional only)

    def __post_init__(self) -> None:
        r = self.img_resolution
        if not isinstance(r, int) or r < 8 or r > MAX_RESOLUTION or r & (r - 1):
            raise ValueError(f"discriminator img_resolution must be a power of two, got {r!r}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"discriminator architecture {self.architecture!r} is not one of {ARCHITECTURES}"
            )
        if self.c_dim < 0 or self.img_channels < 1 or self.mbstd_num_channels < 0:
            raise ValueError("discriminator c_dim >= 0, img_channels >= 1, mbstd_num_channels >= 0")

    @classmethod
    def from_nvidia_kwargs(
        cls, init_kwargs: dict[str, Any], *, flavor: str | None = None
    ) -> StyleGAN2DiscriminatorConfig:
        """From a pickled Discriminator's init_kwargs (either repository)."""
        kwargs = dict(init_kwargs)
        if flavor is None:
            flavor = FLAVOR_SG3
        values: dict[str, Any] = {
            "conv_clamp": _FLAVOR_DEFAULTS[flavor]["conv_clamp"],
            "num_fp16_res": _FLAVOR_DEFAULTS[flavor]["num_fp16_res"],
        }
        block = dict(kwargs.pop("block_kwargs", None) or {})
        mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
        epilogue = dict(kwargs.pop("epilogue_kwargs", None) or {})
        for key, value in kwargs.items():
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise ValueError(f"unsupported StyleGAN2 discriminator kwarg {key!r}")
            values[key] = _plain(value)
        for key, value in epilogue.items():
            if key not in ("mbstd_group_size", "mbstd_num_channels"):
                raise ValueError(f"unsupported StyleGAN2 discriminator epilogue kwarg {key!r}")
            values[key] = _plain(value)
        for key, value in mapping.items():
            if key != "num_layers":
                raise ValueError(f"unsupported StyleGAN2 discriminator mapping kwarg {key!r}")
            values["mapping_layers"] = _plain(value)
        if any(k != "freeze_layers" for k in block):
            raise ValueError(f"unsupported StyleGAN2 discriminator block kwargs {sorted(block)}")
        return cls(**values)


class StyleGAN2Discriminator(nn.Module):
    """image (B, C, R, R) [+ c (B, c_dim)] -> realness logits (B, 1); NVIDIA's D key layout."""

    def __init__(self, *, config: StyleGAN2DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        log2 = int(math.log2(config.img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {
            res: min(config.channel_base // res, config.channel_max)
            for res in [*self.block_resolutions, 4]
        }
        fp16_resolution = max(2 ** (log2 + 1 - config.num_fp16_res), 8)
        cmap_dim = config.cmap_dim if config.cmap_dim is not None else channels[4]
        if config.c_dim == 0:
            cmap_dim = 0
        self.fast = False
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < config.img_resolution else 0,
                channels[res],
                channels[res // 2],
                resolution=res,
                img_channels=config.img_channels,
                architecture=config.architecture,
                conv_clamp=config.conv_clamp,
                use_fp16=res >= fp16_resolution,
            )
            setattr(self, f"b{res}", block)
        if config.c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0,
                c_dim=config.c_dim,
                w_dim=cmap_dim,
                num_ws=None,
                w_avg_beta=None,
                num_layers=config.mapping_layers,
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4],
            cmap_dim=cmap_dim,
            resolution=4,
            img_channels=config.img_channels,
            architecture=config.architecture,
            mbstd_group_size=config.mbstd_group_size,
            mbstd_num_channels=config.mbstd_num_channels,
            conv_clamp=config.conv_clamp,
        )

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        """img (B, C, R, R) -> (B, 1)."""
        x: Tensor | None = None
        image: Tensor | None = img
        for res in self.block_resolutions:
            x, image = getattr(self, f"b{res}")(x, image, fast=self.fast)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        assert x is not None
        return self.b4(x, image, cmap)
