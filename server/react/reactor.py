"""The render thread's side of reactions: incoming frames through pix2pix or the encoder.

`Reaction` (server/react/reaction.py) decides when and how strongly; this module
does the tensor work, on the generator's device: preprocess the newest input
frame the way the dataset command prepared the training data, run pix2pix or
the encoder, blend, feed back, smooth.
"""

from __future__ import annotations

import copy
import logging
import time

import torch
from torch import Tensor, nn

from models.checkpoint import CheckpointError, LoadedModel, check_encoder_pair
from models.framing import frame_tensor, trained_fit
from models.latent_maths import lerp
from models.pixels import resize
from server.media.inputs import InputFrame
from server.react.reaction import Reaction

logger = logging.getLogger(__name__)


def input_tensor(incoming: InputFrame, *, size: int, fit: str, device: torch.device) -> Tensor:
    """An incoming picture -> (1, 3, size, size) in [-1, 1] on `device`.

    Framed by models.framing, so live input is framed exactly like the
    training data (and like `ganvj render react`'s input).
    """
    frame = incoming.to_frame()  # this thread's own frame: swscale state is never shared
    return frame_tensor(frame, size=size, fit=fit, device=device)


def resident(module: nn.Module, device: torch.device, *, shared: bool) -> nn.Module:
    """`module` for inference on `device`: moved there, or, when another deck's reactor
    already holds it (`shared`) on another device, a copy of its own."""
    found = next(module.parameters(), None)
    if not shared or found is None or _same_device(found.device, device):
        return module.to(device).eval()
    return copy.deepcopy(module).to(device).eval()


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (
        b.index if b.index is not None else current
    )


class Reactor:
    """Pix2pix, mirror and feedback for one deck; used only on the render thread."""

    def __init__(
        self,
        *,
        reaction: Reaction,
        device: torch.device,
        pix2pix: LoadedModel | None,
        encoder: LoadedModel | None,
        feedback: LoadedModel | None = None,
        mirror_smoothing: float = 0.85,
        shared: bool = False,
    ) -> None:
        """`shared`: another deck's reactor holds the same reaction models (read only)."""
        self.reaction = reaction
        self.device = device
        self.pix2pix = pix2pix
        self.encoder = encoder
        self.mirror_smoothing = mirror_smoothing
        self._pix2pix = resident(pix2pix.module, device, shared=shared) if pix2pix else None
        self._encoder = resident(encoder.module, device, shared=shared) if encoder else None
        self._encoder_model = encoder  # kept while another generator plays
        # Feedback runs its own next-frame model where there is one, else pix2pix.
        self.feedback = feedback or pix2pix
        self._feedback_module = (
            resident(feedback.module, device, shared=shared) if feedback else self._pix2pix
        )
        self._mirror_z: Tensor | None = None
        self._feedback: Tensor | None = None
        self._previous: Tensor | None = None
        self._input_seq = -1
        self._input: Tensor | None = None

    def fit_generator(self, generator: LoadedModel) -> None:
        """After a model switch: mirror only with an encoder trained for this generator."""
        self.encoder = None
        if self._encoder_model is None:
            return
        try:
            check_encoder_pair(self._encoder_model, generator)
        except CheckpointError as exc:
            logger.info("mirror is off for %s: %s", generator.name, exc)
            if self.reaction.mode == "mirror":
                self.reaction.stop(time.monotonic(), "the encoder does not fit this model")
            return
        self.encoder = self._encoder_model

    def available(self, mode: str) -> str | None:
        """None if `mode` can run; otherwise why not."""
        if mode == "pix2pix" and self._pix2pix is None:
            return "pix2pix needs a pix2pix model (render.pix2pix)"
        if mode == "feedback" and self._feedback_module is None:
            return "feedback needs a next-frame or pix2pix model (render.feedback)"
        if mode == "mirror" and (self._encoder is None or self.encoder is None):
            return "mirror needs an encoder trained for this generator (render.encoder)"
        return None

    def _input_for(self, model: LoadedModel, seq: int, frame: InputFrame | None) -> Tensor | None:
        if frame is None:
            return None
        if (
            seq != self._input_seq
            or self._input is None
            or self._input.shape[-1] != model.resolution
        ):
            self._input = input_tensor(
                frame, size=model.resolution, fit=trained_fit(model), device=self.device
            )
            self._input_seq = seq
        return self._input

    def latent(self, z: Tensor, now: float, seq: int, frame: InputFrame | None) -> Tensor:
        """Mirror: pull the latent toward the encoded input, smoothed over time."""
        weight = self.reaction.weight(now)
        if self.reaction.mode != "mirror" or weight <= 0.0 or self.encoder is None:
            if weight <= 0.0:
                self._mirror_z = None
            return z
        x = self._input_for(self.encoder, seq, frame)
        if x is not None and self._encoder is not None:
            target = self._encoder(x)[0].to(z.dtype)  # (z_dim,)
            # Exponential smoothing: the reflection breathes instead of flickering.
            self._mirror_z = (
                target
                if self._mirror_z is None
                else lerp(target, self._mirror_z, self.mirror_smoothing)
            )
        if self._mirror_z is None:
            return z
        return lerp(z, self._mirror_z.to(z.device), weight)

    def image_resolution(self, now: float) -> int:
        """The size pix2pix or feedback draws at while they show; 0 when they do not."""
        if self.reaction.weight(now) <= 0.0:
            return 0
        model = self._image_model()
        return model.resolution if model is not None else 0

    def _image_model(self) -> LoadedModel | None:
        """The model drawing the reaction's picture (pix2pix, feedback); None for mirror."""
        return {"pix2pix": self.pix2pix, "feedback": self.feedback}.get(self.reaction.mode)

    def squared(self, frame: InputFrame, size: int) -> Tensor:
        """A deck's own video frame as the square its reaction shows over: framed as the
        reaction's model was trained, so pix2pix's picture lies on the video it came from."""
        model = self._image_model()
        fit = trained_fit(model) if model is not None else "crop"
        return input_tensor(frame, size=size, fit=fit, device=self.device)

    def needs_latent_image(self, now: float) -> bool:
        """False when pix2pix or feedback covers the whole frame (skip the generator)."""
        weight = self.reaction.weight(now)
        mode = self.reaction.mode
        if mode == "feedback" and self.reaction.inject > 0.0:
            return True  # the loop takes in fresh picture each frame
        return not (weight >= 1.0 and mode in ("pix2pix", "feedback"))

    def image(
        self, image: Tensor | None, now: float, seq: int, frame: InputFrame | None, size: int
    ) -> Tensor:
        """Blend pix2pix or feedback output over the latent image; then smooth.

        `image` is the generator's frame at `size` (None when skipped); the
        result is (1, 3, size, size) in [-1, 1].
        """
        weight = self.reaction.weight(now)
        mode = self.reaction.mode
        reacted: Tensor | None = None
        if weight > 0.0 and mode == "pix2pix" and self.pix2pix and self._pix2pix:
            x = self._input_for(self.pix2pix, seq, frame)
            if x is not None:
                reacted = self._pix2pix(x)
        elif weight > 0.0 and mode == "feedback":
            reacted = self._feedback_step(image, seq, frame)
        if mode != "feedback" or self.reaction.level(now) <= 0.0:
            self._feedback = None  # the next trigger seeds afresh
        if reacted is not None:
            reacted = resize(reacted.float(), size)
            image = reacted if image is None else lerp(image, reacted, weight)
        if image is None:  # nothing to show yet (no input): keep the last frame
            image = (
                self._previous
                if self._previous is not None
                else torch.zeros(1, 3, size, size, device=self.device)
            )
        return self._smooth(image)

    def _feedback_step(
        self, image: Tensor | None, seq: int, frame: InputFrame | None
    ) -> Tensor | None:
        model, module = self.feedback, self._feedback_module
        if model is None or module is None:
            return None
        resolution = model.resolution
        if self._feedback is None:
            # Seed from the last incoming frame, or else the picture on screen now.
            seed = self._input_for(model, seq, frame)
            if seed is None:
                current = image if image is not None else self._previous
                if current is None:
                    return None
                seed = resize(current.float(), resolution)
            self._feedback = seed
        out = module(self._feedback).clamp(-1.0, 1.0)
        # Re-injection: a little fresh picture (the live camera, else the latent
        # picture) enters the loop each frame. Pure feedback (inject 0) of a
        # model trained as an image transform settles towards a flat field.
        fresh = None
        if self.reaction.inject > 0.0:
            fresh = self._input_for(model, seq, frame)
            if fresh is None and image is not None:
                fresh = resize(image.float(), resolution)
        self._feedback = out if fresh is None else lerp(out, fresh, self.reaction.inject)
        return out

    def _smooth(self, image: Tensor) -> Tensor:
        smoothing = self.reaction.smoothing
        previous = self._previous
        if smoothing > 0.0 and previous is not None and previous.shape == image.shape:
            image = lerp(image, previous, smoothing)
        self._previous = image
        return image
