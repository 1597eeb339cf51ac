"""Per-region latents: one wide picture whose regions, left to right, each show their own pose.

As eps696's "StyleGAN2 for practice" blends several latents across a wide
frame: the canvas is cut into K equal regions across its width and a soft
ramp (RAMP of one region's width, smoothstep) joins each pair of neighbours.
The ramps are laid over every feature map at that map's own resolution, in
the canvas's coordinates, so the seams sit in the same place at every layer.

- DCGAN: the first feature map of each latent (the 4 px projection, widened
  as under `native`) is blended by the ramps; the rest of the network runs
  once on the blend.
- StyleGAN2 and StyleGAN3: the styles vary across the width. Each layer's
  modulation (the affine of its w) and demodulation are computed per region,
  spread across the columns by the ramps, and applied to the activations
  around one convolution with the unmodulated weights. In a region's interior
  this is that region's own modulated convolution; in a ramp, the styles
  blend. One convolution per layer whatever K is, so K regions cost about
  one latent (benchmarks/regions.py); the StyleGAN3 input's Fourier features
  (cheap) are made per region and blended.

K = 1, or every region holding the same pose, is the network's own render
(LatentSpace.render), bit for bit. This path always runs in float32. A
network bend (models/bending.py, forward hooks on the synthesis layers) bends
each StyleGAN layer's output here as in the network's own forward (`_hooked`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.canvas import aspect_kwargs
from models.latent_maths import interpolate
from models.latent_space import LatentSpace, Pose, WSpace, ZSpace
from models.nets import stylegan2, stylegan3
from models.nets.dcgan import DCGANGenerator
from models.nets.ops import bias_act, conv2d_resample, upsample2d, wide_shape, widen

MAX_REGIONS = 4  # more regions than this are narrower than the ramps that join them
RAMP = 0.5  # the soft edge between two neighbours, as a fraction of one region's width

_Weights = Callable[[int], Tensor]  # a map's width -> its ramps (K - 1, width)


def ramps(count: int, centres: Tensor, ramp: float = RAMP) -> Tensor:
    """(count - 1, n) weights 0..1 toward region k + 1 at n positions (canvas fractions).

    Ramp k (0-based) rises from 0 to 1 across the border between regions k
    and k + 1 (at (k + 1) / count), `ramp` of one region wide, smoothstep; a
    feature map is blended left to right, lerp by lerp (`blend`).
    """
    if not 1 <= count <= MAX_REGIONS:
        raise ValueError(f"regions must be 1..{MAX_REGIONS}, got {count}")
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"ramp must be in (0, 1] of a region's width, got {ramp}")
    borders = torch.arange(1, count, dtype=torch.float32, device=centres.device) / count
    t = ((centres[None].float() - borders[:, None]) * count / ramp + 0.5).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # (count - 1, n)


def blend(maps: Tensor, weights: Tensor) -> Tensor:
    """K maps (K, C, H, W) -> one (1, C, H, W): region k + 1 lerped in by weights[k] (W,).

    Where every ramp is 0 or 1 (a region's interior) the result is that
    region's map exactly, and K equal maps blend to that map exactly.
    """
    out = maps[:1]
    for k in range(1, maps.shape[0]):
        out = torch.lerp(out, maps[k : k + 1], weights[k - 1].to(maps.dtype).view(1, 1, 1, -1))
    return out


def spread(values: Tensor, weights: Tensor) -> Tensor:
    """Per-region values (K, C) across the columns: (1, C, 1, W), blended as `blend` does."""
    return blend(values[:, :, None, None], weights)


def edge_centres(width: int, device: torch.device) -> Tensor:
    """The canvas fractions of a map's column centres when it spans the canvas edge to edge."""
    return (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width


def between(a: Pose, b: Pose, t: float, *, mode: str, centre: Tensor | None = None) -> Pose:
    """A region's pose on its way from a to b (t 0..1): the latent blends, b's mixes and style."""
    if t >= 1.0:
        return b
    return Pose(interpolate(a.latent, b.latent, t, mode=mode, centre=centre), b.mixes, b.style)


def same_pose(a: Pose, b: Pose) -> bool:
    """Whether two poses draw the same picture (latent, mixes, style)."""
    if a.style != b.style or len(a.mixes) != len(b.mixes):
        return False
    if not torch.equal(a.latent, b.latent):
        return False
    return all(
        (m.start, m.stop, m.amount) == (n.start, n.stop, n.amount)
        and torch.equal(m.source, n.source)
        for m, n in zip(a.mixes, b.mixes, strict=True)
    )


def render_regions(
    space: LatentSpace, poses: Sequence[Pose], aspect: float = 1.0, *, ramp: float = RAMP
) -> Tensor:
    """The picture (1, C, R, R * aspect) with poses[k] painting the k-th region from the left.

    The style (noise, the SG3 transform) is poses[0]'s: it is the whole
    canvas's. One pose, or all the same: `space.render` itself.
    """
    if not poses:
        raise ValueError("render_regions needs at least one pose")
    if len(poses) == 1 or all(same_pose(p, poses[0]) for p in poses[1:]):
        return space.render(poses[0], **aspect_kwargs(aspect))
    if isinstance(space, WSpace):
        style = poses[0].style
        if space.transformable:
            space.transform_to(style)
        ws = torch.stack([space.broadcast(p) for p in poses]).float()  # (K, num_ws, w_dim)
        synthesis = space.synthesis
        if isinstance(synthesis, stylegan2.SynthesisNetwork):
            return _stylegan2(synthesis, ws, aspect, style.noise_mode, style.noise_strength, ramp)
        if isinstance(synthesis, stylegan3.SynthesisNetwork):
            return _stylegan3(synthesis, ws, aspect, ramp)
        raise ValueError(f"{type(synthesis).__name__}: no per-region render for this network")
    if isinstance(space, ZSpace) and space.module is not None:
        module = getattr(space.module, "_orig_mod", space.module)  # under torch.compile
        if isinstance(module, DCGANGenerator):
            device = next(module.parameters()).device
            z = torch.stack([p.latent for p in poses]).to(device)  # (K, z_dim)
            return _dcgan(module, z.half() if space.half else z, aspect, ramp)
    raise ValueError(f"{type(space).__name__}: no per-region render for this generator")


def supports_regions(module: nn.Module) -> bool:
    """Whether `render_regions` can paint this generator's regions."""
    module = getattr(module, "_orig_mod", module)
    synthesis = getattr(module, "synthesis", None)
    return isinstance(module, DCGANGenerator) or isinstance(
        synthesis, stylegan2.SynthesisNetwork | stylegan3.SynthesisNetwork
    )


# -- DCGAN ------------------------------------------------------------------------------


def _dcgan(module: DCGANGenerator, z: Tensor, aspect: float, ramp: float) -> Tensor:
    """z (K, z_dim) -> (1, 3, R, R * aspect): the first feature maps blended, the rest once."""
    x = module.project(z.reshape(z.shape[0], module.z_dim, 1, 1))  # (K, c0, 4, 4)
    if aspect != 1.0:
        x = widen(x, *wide_shape(4, 4, aspect))  # (K, c0, 4, w0), as the network widens it
    x = blend(x, ramps(z.shape[0], edge_centres(x.shape[-1], x.device), ramp))  # (1, c0, 4, w0)
    x = module.blocks(x)
    return torch.tanh(module.to_rgb(x))  # (1, 3, R, R * aspect)


def _hooked(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
    """`layer`'s forward hooks (a network bend's) on an output this path computed outside
    the layer's own forward: the picture bends as the network's own render does."""
    for hook in layer._forward_hooks.values():
        result = hook(layer, inputs, output)
        if result is not None:
            output = result
    return output


# -- StyleGAN2 --------------------------------------------------------------------------


def _stylegan2(
    synthesis: stylegan2.SynthesisNetwork,
    ws: Tensor,
    aspect: float,
    noise_mode: str,
    noise_strength: float,
    ramp: float,
) -> Tensor:
    """ws (K, num_ws, w_dim) -> (1, C, R, R * aspect), the styles spread across the width."""
    count = ws.shape[0]

    def weights(width: int) -> Tensor:
        return ramps(count, edge_centres(width, ws.device), ramp)

    def conv(layer: stylegan2.SynthesisLayer, x: Tensor, w: Tensor, gain: float = 1.0) -> Tensor:
        out = _sg2_layer(
            layer, x, w, weights, noise_mode=noise_mode, noise_strength=noise_strength, gain=gain
        )
        return _hooked(layer, (x, w), out)

    x: Tensor | None = None
    img: Tensor | None = None
    w_idx = 0
    for block in synthesis.blocks():
        block_ws = ws[:, w_idx : w_idx + block.num_conv + block.num_torgb]  # (K, n, w_dim)
        w_idx += block.num_conv
        layer_ws = iter(block_ws.unbind(dim=1))
        if block.in_channels == 0:
            x = block.const.float()
            if aspect != 1.0:
                x = widen(x, *wide_shape(4, 4, aspect))
            x = conv(block.conv1, x[None], next(layer_ws))  # (1, O, 4, w0)
        else:
            assert x is not None
            if block.architecture == "resnet":
                y = block.skip(x, gain=math.sqrt(0.5))
                x = conv(block.conv0, x, next(layer_ws))
                x = y + conv(block.conv1, x, next(layer_ws), gain=math.sqrt(0.5))
            else:
                x = conv(block.conv0, x, next(layer_ws))
                x = conv(block.conv1, x, next(layer_ws))
        if img is not None:
            img = upsample2d(img, block.resample_filter)
        if block.is_last or block.architecture == "skip":
            y = _sg2_torgb(block.torgb, x, next(layer_ws), weights)
            img = img + y if img is not None else y
    assert img is not None
    return img


def _sg2_layer(
    layer: stylegan2.SynthesisLayer,
    x: Tensor,
    w: Tensor,
    weights: _Weights,
    *,
    noise_mode: str,
    noise_strength: float,
    gain: float = 1.0,
) -> Tensor:
    """One modulated conv (SynthesisLayer.forward) with styles that vary across the width."""
    styles = layer.affine(w)  # (K, I)
    noise = layer.noise(x, noise_mode=noise_mode, noise_strength=noise_strength)
    weight = layer.weight.float()  # (O, I, k, k)
    dcoefs = (weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]) + 1e-8
    dcoefs = dcoefs.rsqrt()  # (K, O)
    x = x * spread(styles, weights(x.shape[-1]))  # (1, I, h, w) modulated column by column
    x = conv2d_resample(
        x,
        weight,
        f=layer.resample_filter,
        up=layer.up,
        padding=layer.padding,
        flip_weight=layer.up == 1,
    )
    x = x * spread(dcoefs, weights(x.shape[-1]))  # demodulated column by column
    if noise is not None:
        x = x + noise
    clamp = layer.conv_clamp * gain if layer.conv_clamp is not None else None
    return bias_act(x, layer.bias, act=layer.activation, gain=layer.act_gain * gain, clamp=clamp)


def _sg2_torgb(layer: stylegan2.ToRGBLayer, x: Tensor, w: Tensor, weights: _Weights) -> Tensor:
    """ToRGB (a 1x1 modulated conv, no demodulation) with styles across the width."""
    styles = layer.affine(w) * layer.weight_gain  # (K, I)
    x = F.conv2d(x * spread(styles, weights(x.shape[-1])), layer.weight.float())
    return bias_act(x, layer.bias, clamp=layer.conv_clamp)


# -- StyleGAN3 --------------------------------------------------------------------------


def _stylegan3(
    synthesis: stylegan3.SynthesisNetwork, ws: Tensor, aspect: float, ramp: float
) -> Tensor:
    """ws (K, num_ws, w_dim) -> (1, C, R, R * aspect), the styles spread across the width.

    StyleGAN3's maps carry margins past the picture, and every layer has its
    own sampling rate: a column's place on the canvas is measured from the
    map's centre, in the picture's width at that rate.
    """
    count = ws.shape[0]
    first = synthesis.input
    ratio = aspect if aspect >= 1.0 else 1.0 / aspect
    extra = round((ratio - 1.0) * first.sampling_rate) if aspect > 1.0 else 0
    stretch = (first.sampling_rate + extra) / first.sampling_rate  # picture widths per rate

    def weights_at(rate: float) -> _Weights:
        def weights(width: int) -> Tensor:
            columns = torch.arange(width, dtype=torch.float32, device=ws.device)
            centres = 0.5 + (columns - (width - 1) / 2) / (rate * stretch)
            return ramps(count, centres, ramp)

        return weights

    w_list = ws.unbind(dim=1)
    x = first(w_list[0]) if aspect == 1.0 else first(w_list[0], aspect)  # (K, C, S, S')
    x = blend(x, weights_at(first.sampling_rate)(x.shape[-1]))
    for name, w in zip(synthesis.layer_names, w_list[1:], strict=True):
        layer = getattr(synthesis, name)
        x = _hooked(layer, (x, w), _sg3_layer(layer, x, w, weights_at(layer.plan.in_sampling_rate)))
    if synthesis.output_scale != 1:
        x = x * synthesis.output_scale
    return x.float()


def _sg3_layer(layer: stylegan3.SynthesisLayer, x: Tensor, w: Tensor, weights: _Weights) -> Tensor:
    """One StyleGAN3 layer (modulated conv, filtered lrelu) with styles across the width."""
    styles = layer.affine(w).float()  # (K, I)
    weight = layer.weight.float()  # (O, I, k, k)
    demodulate = not layer.is_torgb
    if layer.is_torgb:
        styles = styles * (1 / math.sqrt(layer.in_channels * layer.kernel**2))
    else:  # as stylegan3.modulated_conv2d: pre-normalised (the demodulation cancels it)
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
    x = x.float() * spread(styles, weights(x.shape[-1])) * layer.magnitude_ema.rsqrt()
    x = F.conv2d(x, weight, padding=layer.kernel - 1)  # (1, O, H + k - 1, W + k - 1)
    if demodulate:
        modulated = weight[None] * styles[:, None, :, None, None]  # (K, O, I, k, k)
        dcoefs = (modulated.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (K, O)
        x = x * spread(dcoefs, weights(x.shape[-1]))
    return stylegan3.filtered_lrelu(
        x,
        fu=layer.up_filter,
        fd=layer.down_filter,
        bias=layer.bias,
        up=layer.up,
        down=layer.down,
        padding=layer.padding,
        gain=1.0 if layer.is_torgb else math.sqrt(2),
        slope=1.0 if layer.is_torgb else 0.2,
        clamp=layer.conv_clamp,
    )
