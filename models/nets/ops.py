"""Building blocks of StyleGAN-family generators, in plain PyTorch.

Written from the StyleGAN2 paper (Karras et al. 2020, "Analyzing and Improving
the Image Quality of StyleGAN") and the layout of NVIDIA's network pickles:
equalized-learning-rate layers, modulated convolution with demodulation, FIR
up/down-sampling and bias + activation with gain and clamp. No compiled
extension: every op is a handful of standard torch calls, so it runs wherever
torch runs and the CUDA kernels torch ships do the heavy lifting.

Numerics follow the format: a picture must match NVIDIA's to a level of 255,
so operations happen in the same order (e.g. noise is added before bias).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# Activation name -> (function of (x, alpha), default alpha, default gain). The gain
# keeps unit variance through the layer (He et al.'s sqrt(2) for ReLU-like ones).
NOISE_MODES = ("const", "random", "none")  # what synthesis() takes as noise_mode

ACTIVATIONS = {
    "linear": (lambda x, alpha: x, 0.0, 1.0),
    "relu": (lambda x, alpha: F.relu(x), 0.0, math.sqrt(2.0)),
    "lrelu": (lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2.0)),
    "tanh": (lambda x, alpha: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, alpha: torch.sigmoid(x), 0.0, 1.0),
    "elu": (lambda x, alpha: F.elu(x), 0.0, 1.0),
    "selu": (lambda x, alpha: F.selu(x), 0.0, 1.0),
    "softplus": (lambda x, alpha: F.softplus(x), 0.0, 1.0),
    "swish": (lambda x, alpha: torch.sigmoid(x) * x, 0.0, math.sqrt(2.0)),
}

Padding = int | Sequence[int]


def activation_gain(act: str) -> float:
    """The default output gain of an activation."""
    check_activation(act)
    return ACTIVATIONS[act][2]


def check_activation(act: str) -> None:
    """Raise ValueError for an activation name we do not implement."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}: expected one of {', '.join(ACTIVATIONS)}")


def bias_act(
    x: Tensor,
    b: Tensor | None = None,
    *,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> Tensor:
    """x + b (along dim 1), activation, times gain, clamped to +-clamp (None: no clamp)."""
    func, default_alpha, default_gain = ACTIVATIONS[act]
    if b is not None:
        x = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)])
    x = func(x, float(alpha if alpha is not None else default_alpha))
    gain = float(gain if gain is not None else default_gain)
    if gain != 1.0:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale each vector to unit root-mean-square (the mapping network's input norm)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------------------------------
# FIR filtering


def make_filter(
    taps: Sequence[float] | Tensor | None,
    *,
    normalize: bool = True,
    separable: bool | None = None,
    gain: float = 1.0,
) -> Tensor:
    """A low-pass filter from 1-D taps: 2-D outer product (kept 1-D when separable), sum = gain.

    None gives the identity [[1]]. `separable=None` keeps filters of 8+ taps 1-D, as the
    pickles store them (a 4-tap [1, 3, 3, 1] is stored as its 4x4 outer product).
    """
    if taps is None:
        taps = [1.0]
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if gain != 1.0:
        f = f * (gain ** (f.ndim / 2))
    return f


def filter_size(f: Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D or 2-D filter."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def _pads(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from one int, (x, y) or (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be 1, 2 or 4 ints, got {padding!r}")


def upfirdn2d(
    x: Tensor,
    f: Tensor | None,
    *,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> Tensor:
    """Upsample by zero insertion, pad (negative crops), FIR-filter, keep every down-th pixel.

    x (B, C, H, W) -> (B, C, (H*up + y0 + y1 - fh + 1) / down, same for W). The filter is
    applied as a true convolution (flipped), as in the paper's resampling; gain scales it.
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    batch, channels, height, width = x.shape
    x0, x1, y0, y1 = _pads(padding)
    if up > 1 and f.ndim == 1:
        return _upsample_separable(x, f, up=up, down=down, pads=(x0, x1, y0, y1), gain=gain,
                                   flip_filter=flip_filter)  # fmt: skip
    if up > 1:
        # Zero insertion: each pixel followed by up-1 zeros, along both axes.
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:
        # separable: along x, then along y; decimation skips the dropped pixels
        x = _correlate_axis(x, f, stride=down, axis=3)
        return _correlate_axis(x, f, stride=down, axis=2)
    # Depthwise: the same filter for every channel. The weight is repeated, not
    # expanded: CPU depthwise convolution runs twice as fast on a contiguous one.
    # Decimation is the convolution's stride: the dropped pixels are never computed.
    return F.conv2d(x, f[None, None].repeat(channels, 1, 1, 1), groups=channels, stride=down)


def _upsample_separable(
    x: Tensor,
    f: Tensor,
    *,
    up: int,
    down: int,
    pads: tuple[int, int, int, int],
    gain: float,
    flip_filter: bool,
) -> Tensor:
    """upfirdn2d for a 1-D filter and up > 1, without multiplying the inserted zeros.

    The full convolution of the zero-stuffed signal has (n - 1) * up + k samples per
    axis; upfirdn2d's output starts k - 1 - pad0 samples into it and ends
    pad1 + up - k past its end (negative pads crop). One axis at a time.
    """
    k = f.shape[0]
    f = (f * gain**0.5).to(x.dtype)
    if flip_filter:
        f = f.flip(0)
    x0, x1, y0, y1 = pads
    x = F.pad(_scatter_axis(x, f, up=up, axis=3), [x0 - k + 1, x1 + up - k])
    x = F.pad(_scatter_axis(x, f, up=up, axis=2), [0, 0, y0 - k + 1, y1 + up - k])
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def _depthwise(taps: Tensor, channels: int, step: int, axis: int) -> tuple[Tensor, tuple[int, int]]:
    """A 1-D filter along `axis` (2 or 3) as a depthwise kernel, and its stride there."""
    k = taps.shape[0]
    shape = (1, 1, 1, k) if axis == 3 else (1, 1, k, 1)
    strides = (1, step) if axis == 3 else (step, 1)
    return taps.view(shape).repeat(channels, 1, 1, 1), strides


def _scatter_axis(x: Tensor, f: Tensor, *, up: int, axis: int) -> Tensor:
    """Full convolution of x, zero-stuffed by `up` along `axis` (2 or 3), with the taps f."""
    k, n = f.shape[0], x.shape[axis]
    channels = x.shape[1]
    if x.is_cuda:
        # a depthwise transposed convolution: one kernel
        weight, strides = _depthwise(f, channels, up, axis)
        return F.conv_transpose2d(x, weight, stride=strides, groups=channels)
    # CPU: k strided multiply-adds beat the depthwise kernels several times over
    size = list(x.shape)
    size[axis] = (n - 1) * up + k
    out = x.new_zeros(size)
    for t in range(k):
        out[_every(axis, up, start=t, count=n)].add_(x, alpha=float(f[t]))
    return out


def _correlate_axis(x: Tensor, g: Tensor, *, stride: int, axis: int) -> Tensor:
    """Valid correlation of x with the taps g along `axis` (2 or 3), keeping every stride-th."""
    k, n = g.shape[0], x.shape[axis]
    channels = x.shape[1]
    if x.is_cuda:
        weight, strides = _depthwise(g, channels, stride, axis)
        return F.conv2d(x, weight, stride=strides, groups=channels)
    m = (n - k) // stride + 1  # outputs
    out = x[_every(axis, stride, start=0, count=m)] * float(g[0])
    for t in range(1, k):
        out.add_(x[_every(axis, stride, start=t, count=m)], alpha=float(g[t]))
    return out


def _every(axis: int, step: int, *, start: int, count: int | None = None) -> tuple[slice, ...]:
    """An index taking elements start, start + step, ... (count of them) along `axis`."""
    stop = None if count is None else start + (count - 1) * step + 1
    return (slice(None),) * axis + (slice(start, stop, step),)


def upsample2d(x: Tensor, f: Tensor, *, up: int = 2, gain: float = 1.0) -> Tensor:
    """(B, C, H, W) -> (B, C, H*up, W*up), low-pass filtered so no zeros show."""
    fw, fh = filter_size(f)
    padding = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=padding, gain=gain * up * up)


def downsample2d(x: Tensor, f: Tensor, *, down: int = 2, gain: float = 1.0) -> Tensor:
    """(B, C, H, W) -> (B, C, H/down, W/down), low-pass filtered first."""
    fw, fh = filter_size(f)
    padding = ((fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2)
    return upfirdn2d(x, f, down=down, padding=padding, gain=gain)


# ---------------------------------------------------------------------------------------
# Convolution with resampling


def _conv(
    x: Tensor,
    w: Tensor,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
) -> Tensor:
    """conv2d (correlation when flip_weight) or its transpose."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: Tensor,
    w: Tensor,
    *,
    f: Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
) -> Tensor:
    """Convolution of x (B, I*groups, H, W) with w (O, I, k, k), with FIR up- or downsampling.

    Defined as: upsample (zero insertion + filter f) -> pad -> convolve -> filter f and
    decimate. Computed the cheap way: a transposed strided convolution then the filter
    for up, the filter then a strided convolution for down.
    """
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    if up == 1 and down == 1:
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight)
        x = upfirdn2d(x, None, padding=(px0, px1, py0, py1))
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if up == 1:
        # Downsampling: filter (1x1 kernels: filter and decimate first, cheaper), then
        # a strided convolution.
        if kw == 1 and kh == 1:
            x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1))
            return _conv(x, w, groups=groups, flip_weight=flip_weight)
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1))
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a transposed convolution of stride `up` scatters each input pixel
    # through the kernel (zero insertion + convolution in one op), then the filter.
    if groups == 1:
        wt = w.transpose(0, 1)  # (I, O, k, k)
    else:
        wt = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    x = _conv(
        x,
        wt,
        stride=up,
        padding=(pyt, pxt),
        groups=groups,
        transpose=True,
        flip_weight=not flip_weight,
    )
    x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    noise: Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool = True,
) -> Tensor:
    """StyleGAN2's modulated convolution: x (B, I, H, W), weight (O, I, k, k), styles (B, I).

    Each sample's weights are scaled per input channel by its style, then (demodulate)
    renormalised per output channel to unit L2 norm, replacing AdaIN's instance norm.
    `fused` runs one grouped convolution over the batch (fastest for batch 1 and in
    inference); otherwise the styles scale the activations around a shared convolution.
    """
    batch = x.shape[0]
    _, in_channels, kh, kw = weight.shape

    # fp16: bring weights and styles near 1 first, so squares do not overflow; the
    # demodulation undoes the scale exactly.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (
            1.0
            / math.sqrt(in_channels * kh * kw)
            / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w: Tensor | None = None
    dcoefs: Tensor | None = None
    if demodulate or fused:
        w = weight[None] * styles.reshape(batch, 1, -1, 1, 1)  # (B, O, I, k, k)
    if demodulate:
        assert w is not None
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (B, O)

    if not fused:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(
            x,
            weight.to(x.dtype),
            f=resample_filter,
            up=up,
            padding=padding,
            flip_weight=flip_weight,
        )
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    assert w is not None
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    # One grouped convolution: the batch folded into channels, one group per sample.
    x = x.reshape(1, -1, *x.shape[2:])  # (1, B*I, H, W)
    w = w.reshape(-1, in_channels, kh, kw)  # (B*O, I, k, k)
    x = conv2d_resample(
        x,
        w.to(x.dtype),
        f=resample_filter,
        up=up,
        padding=padding,
        groups=batch,
        flip_weight=flip_weight,
    )
    x = x.reshape(batch, -1, *x.shape[2:])  # (B, O, H', W')
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


# ---------------------------------------------------------------------------------------
# Equalized learning-rate layers


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalized learning rate: weights stored N(0, 1/lr), scaled at run time."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        weight_init: float = 1.0,
        bias_init: float | Sequence[float] = 0.0,
    ) -> None:
        super().__init__()
        check_activation(activation)
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(
            torch.randn([out_features, in_features]) * (weight_init / lr_multiplier)
        )
        # one value for every output, or one per output (StyleGAN3's input affine)
        bias_value = torch.zeros([out_features]) + torch.as_tensor(bias_init, dtype=torch.float32)
        self.bias = nn.Parameter(bias_value / lr_multiplier) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        """x (B, in) -> (B, out)."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b: Tensor | None = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate, optional FIR up/down-sampling, bias, activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        check_activation(activation)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.resample_filter: Tensor
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias_value = torch.zeros([out_channels]) if bias else None
        # Frozen layers (Freeze-D) keep their tensors as buffers: same state-dict keys.
        self.weight: Tensor
        self.bias: Tensor | None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_value is not None:
                self.register_buffer("bias", bias_value)
            else:
                self.bias = None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """x (B, I, H, W) -> (B, O, H*up/down, W*up/down)."""
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=self.up == 1,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


WIDEN_MODES = ("reflect", "symmetric", "wrap")


def wide_shape(height: int, width: int, aspect: float) -> tuple[int, int]:
    """(height, width) grown along one side to about `aspect` (width / height); never shrunk."""
    if aspect >= 1.0:
        return height, max(width, round(height * aspect))
    return max(height, round(width / aspect)), width


def _extend_index(size: int, target: int, mode: str, device: torch.device) -> Tensor:
    """Indices that extend a row of `size` to `target`, the original in the middle."""
    j = torch.arange(target, device=device) - (target - size) // 2
    if mode == "wrap" or size == 1:
        return j.remainder(size)
    # reflect: mirror about the edge samples (period 2 (size - 1)); symmetric: the
    # edge sample repeats (period 2 size), as a picture tiled with mirroring does.
    period = 2 * (size - 1) if mode == "reflect" else 2 * size
    j = j.remainder(period)
    return torch.where(j < size, j, period - j - (0 if mode == "reflect" else 1))


def widen(x: Tensor, height: int, width: int, *, mode: str = "reflect") -> Tensor:
    """(..., h, w) -> (..., height, width) with the original centred and copies outward.

    `mode`: reflect (mirrored about the edge samples; for feature maps: no column
    repeats), symmetric (mirrored tiles, as GL's mirrored repeat) or wrap (tiled).
    The same shape comes back unchanged, the same tensor.
    """
    if mode not in WIDEN_MODES:
        raise ValueError(f"mode must be one of {', '.join(WIDEN_MODES)}, got {mode!r}")
    h, w = x.shape[-2], x.shape[-1]
    if (h, w) == (height, width):
        return x
    if height < h or width < w:
        raise ValueError(f"widen only grows: {w}x{h} -> {width}x{height}")
    if width != w:
        x = x.index_select(-1, _extend_index(w, width, mode, x.device))
    if height != h:
        x = x.index_select(-2, _extend_index(h, height, mode, x.device))
    return x
