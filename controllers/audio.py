"""Audio reactivity: sound in, features out, as modulation sources and onset triggers.

`AudioFeatures` is the pure core: blocks of samples in, one `Features` per
block out (RMS; bass, mid and high bands; spectral-flux onsets with an
adaptive threshold and a lockout), each level normalised against a decaying
running maximum and smoothed with an attack and a release. No device, no
thread: it is tested with generated signals.

`AudioProcessor` runs that core on a worker thread of its own (never the
event loop, never the render thread): a sound card callback or a browser's
WebRTC audio only hands it a copy of each block. Features go to the engine's
modulation sources; an onset fires the patch's `audio/onset` triggers through
the engine's command queue.

`SoundCardInput` reads a sound card through `sounddevice` (PortAudio; JACK
works through it).
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# Limits
MAX_PENDING_BLOCKS = 64  # blocks waiting for the worker; older ones are dropped
MAX_BLOCK = 8192

BANDS = {"bass": (20.0, 150.0), "mid": (150.0, 2000.0), "high": (2000.0, 20000.0)}


@dataclass(frozen=True)
class Features:
    """One block's features; levels are 0..1 after automatic gain and smoothing."""

    sample: int  # index of the block's first sample in the stream
    rms: float
    bass: float
    mid: float
    high: float
    onset: bool
    onset_level: float  # 1 at an onset, then released
    flux: float  # raw spectral flux, for tuning

    def sources(self) -> dict[str, float]:
        """The modulation sources this block sets."""
        return {
            "audio/rms": self.rms,
            "audio/bass": self.bass,
            "audio/mid": self.mid,
            "audio/high": self.high,
            "audio/onset": self.onset_level,
        }


class Follower:
    """Automatic gain against a decaying running maximum, then attack/release smoothing."""

    def __init__(
        self, *, floor: float, decay_seconds: float, attack_s: float, release_s: float
    ) -> None:
        self.floor = floor  # below this a signal is silence, not something to amplify
        self.decay_seconds = decay_seconds  # the running max falls by 1/e in this time
        self.attack_s = attack_s
        self.release_s = release_s
        self.peak = floor
        self.value = 0.0

    def __call__(self, level: float, dt: float) -> float:
        """The normalised, smoothed level after `dt` seconds more signal."""
        self.peak = max(level, self.floor, self.peak * math.exp(-dt / self.decay_seconds))
        target = min(level / self.peak, 1.0)
        tau = self.attack_s if target > self.value else self.release_s
        self.value += (target - self.value) * (1.0 - math.exp(-dt / tau))
        return self.value


class AudioFeatures:
    """Blocks of mono samples -> Features; keeps its own sample clock."""

    def __init__(
        self,
        *,
        sample_rate: int,
        window: int = 1024,
        attack_s: float = 0.005,
        release_s: float = 0.15,
        gain_decay_s: float = 4.0,
        onset_k: float = 2.0,
        onset_history_s: float = 1.0,
        onset_lockout_s: float = 0.08,
        onset_floor: float = 4.0,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self.window = window
        self.onset_k = onset_k
        self.onset_lockout_s = onset_lockout_s
        self.onset_floor = onset_floor
        self._ring = np.zeros(window, dtype=np.float32)
        self._hann = np.hanning(window).astype(np.float32)
        freqs = np.fft.rfftfreq(window, 1.0 / sample_rate)
        self._bands = {
            name: (freqs >= lo) & (freqs < min(hi, sample_rate / 2))
            for name, (lo, hi) in BANDS.items()
        }
        self._prev: np.ndarray | None = None
        self._flux: list[float] = []
        self._history_s = onset_history_s
        self._last_onset = -math.inf
        self.sample = 0
        follow = {"decay_seconds": gain_decay_s, "attack_s": attack_s, "release_s": release_s}
        self._rms = Follower(floor=1e-3, **follow)
        self._band = {name: Follower(floor=1e-2, **follow) for name in BANDS}
        self._onset_env = 0.0
        self._release_s = release_s

    def process(self, block: np.ndarray, *, glitch: bool = False) -> Features:
        """One block of mono float samples (-1..1) -> its features.

        `glitch`: the device lost samples just before this block (an overflow);
        the jump it leaves is not music, so it is never an onset.
        """
        samples = np.asarray(block, dtype=np.float32).reshape(-1)
        n = len(samples)
        if n == 0 or n > MAX_BLOCK:
            raise ValueError(f"a block holds 1..{MAX_BLOCK} samples, got {n}")
        if not np.isfinite(samples).all():
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        start = self.sample
        self.sample += n
        dt = n / self.sample_rate
        if n >= self.window:
            self._ring[:] = samples[-self.window :]
        else:
            self._ring = np.roll(self._ring, -n)
            self._ring[-n:] = samples
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        spectrum = np.abs(np.fft.rfft(self._ring * self._hann))  # (window/2 + 1,)
        power = spectrum**2
        norm = 2.0 / float(self._hann.sum())
        levels = {
            name: float(np.sqrt(power[mask].sum())) * norm if mask.any() else 0.0
            for name, mask in self._bands.items()
        }
        # Spectral flux: how much the log spectrum rose since the last block.
        log_spectrum = np.log1p(spectrum * norm * 100.0)
        flux = 0.0
        if self._prev is not None:
            flux = float(np.maximum(log_spectrum - self._prev, 0.0).sum())
        self._prev = log_spectrum
        onset = self._is_onset(flux, start, dt) and not glitch
        if onset:
            self._onset_env = 1.0
        else:
            self._onset_env *= math.exp(-dt / self._release_s)
        return Features(
            sample=start,
            rms=self._rms(rms, dt),
            bass=self._band["bass"](levels["bass"], dt),
            mid=self._band["mid"](levels["mid"], dt),
            high=self._band["high"](levels["high"], dt),
            onset=onset,
            onset_level=self._onset_env,
            flux=flux,
        )

    def _is_onset(self, flux: float, start: int, dt: float) -> bool:
        history = self._flux
        keep = max(int(self._history_s / dt), 4)
        if len(history) < 4:  # warming up: no threshold yet to be above
            history.append(flux)
            return False
        threshold = self.onset_floor
        if history:
            values = np.asarray(history)
            threshold = max(threshold, float(values.mean() + self.onset_k * values.std()))
        history.append(flux)
        del history[:-keep]
        now = start / self.sample_rate
        if flux > threshold and now - self._last_onset >= self.onset_lockout_s:
            self._last_onset = now
            return True
        return False


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) in any numeric type -> (frames,) float32 -1..1."""
    data = np.asarray(samples)
    if data.dtype.kind in "iu":
        scale = float(np.iinfo(data.dtype).max)
        data = data.astype(np.float32) / scale
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return data.reshape(-1)


class AudioProcessor:
    """A worker thread turning blocks into features, sources and onset triggers."""

    def __init__(
        self,
        *,
        sample_rate: int,
        on_features: Callable[[Features, float], None],
        window: int = 1024,
    ) -> None:
        self.features = AudioFeatures(sample_rate=sample_rate, window=window)
        self.sample_rate = sample_rate
        self._on_features = on_features
        self._blocks: queue.Queue[tuple[np.ndarray, int, float, bool] | None] = queue.Queue(
            maxsize=MAX_PENDING_BLOCKS
        )
        self._fed = 0  # samples handed over: a dropped block keeps later ones on time
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.blocks = 0
        self.onsets = 0
        self.last: Features | None = None

    def feed(
        self,
        samples: np.ndarray,
        arrived: float | None = None,
        at_sample: int | None = None,
        *,
        glitch: bool = False,
    ) -> None:
        """Hand over a block (any thread, never blocks): it is copied.

        `at_sample` places it on the device's own clock, so a block the callback
        missed does not move the later ones; without it blocks are counted.
        """
        block = to_mono(samples).copy()
        start = self._fed if at_sample is None else at_sample
        self._fed = start + len(block)
        try:
            when = time.monotonic() if arrived is None else arrived
            self._blocks.put_nowait((block, start, when, glitch))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="ganvj-audio", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the worker thread."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._blocks.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def status(self) -> dict[str, Any]:
        """Numbers for /api/status."""
        last = self.last
        return {
            "blocks": self.blocks,
            "dropped": self.dropped,
            "onsets": self.onsets,
            "levels": None if last is None else {k: round(v, 3) for k, v in last.sources().items()},
        }

    def _run(self) -> None:
        while True:
            item = self._blocks.get()
            if item is None:
                return
            block, start, arrived, glitch = item
            self.features.sample = start
            try:
                features = self.features.process(block, glitch=glitch)
            except ValueError as exc:
                logger.warning("audio: block skipped: %s", exc)
                continue
            self.blocks += 1
            self.onsets += int(features.onset)
            self.last = features
            try:
                self._on_features(features, arrived)
            except Exception:
                logger.exception("audio: features consumer failed")


def engine_sink(
    *,
    update: Callable[[dict[str, float]], None],
    fire: Callable[..., Sequence[Any]],
    submit: Callable[[Sequence[Any]], bool],
) -> Callable[[Features, float], None]:
    """Features -> the engine: sources updated, an onset's triggers queued as commands."""

    def sink(features: Features, arrived: float) -> None:
        update(features.sources())
        if features.onset:
            commands = fire("audio/onset", received=arrived)
            if commands:
                submit(commands)

    return sink


class SoundCardInput:
    """A sound card (PortAudio through sounddevice; JACK works through it) feeding a processor."""

    def __init__(
        self,
        processor: AudioProcessor,
        *,
        device: str | int | None = None,
        channels: int = 1,
        block: int = 256,
    ) -> None:
        self.processor = processor
        self.device = device
        self.channels = channels
        self.block = block
        self._stream: Any = None
        self.statuses = 0

    def __enter__(self) -> SoundCardInput:
        import sounddevice as sd  # PortAudio is loaded only when audio is on

        def callback(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
            if status:
                self.statuses += 1  # an overflow: counted, never fatal, never an onset
            # Blocks are counted: PortAudio's JACK timestamps jitter by more than a block.
            self.processor.feed(indata, glitch=bool(status.input_overflow))

        self._stream = sd.InputStream(
            device=self.device,
            channels=self.channels,
            samplerate=self.processor.sample_rate,
            blocksize=self.block,
            dtype="float32",
            latency="low",
            callback=callback,
        )
        self._stream.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


class AudioHub:
    """Every audio input of a running server: the sound card and browser /audio pages."""

    def __init__(
        self,
        *,
        sink: Callable[[Features, float], None],
        sample_rate: int,
        block: int,
        device: str = "",
        sound_card: bool = False,
    ) -> None:
        self._sink = sink
        self.sample_rate = sample_rate
        self.block = block
        self.device: str | int | None = int(device) if device.isdigit() else (device or None)
        self.sound_card = sound_card
        self.card: AudioProcessor | None = None
        self._card_input: SoundCardInput | None = None
        self.browser: dict[int, AudioProcessor] = {}  # one per browser sample rate

    def __enter__(self) -> AudioHub:
        if self.sound_card:
            self.card = AudioProcessor(sample_rate=self.sample_rate, on_features=self._sink)
            self.card.start()
            self._card_input = SoundCardInput(self.card, device=self.device, block=self.block)
            try:
                self._card_input.__enter__()
            except Exception as exc:
                self.card.stop()
                raise AudioError(
                    f"cannot open the sound card {self.device or 'default'}: {exc}"
                ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        if self._card_input is not None:
            self._card_input.__exit__(None, None, None)
        for processor in [self.card, *self.browser.values()]:
            if processor is not None:
                processor.stop()

    def browser_block(self, samples: np.ndarray, sample_rate: int) -> None:
        """A block of a browser's microphone or line input (event loop: only hands it over)."""
        processor = self.browser.get(sample_rate)
        if processor is None:
            if len(self.browser) >= 4:
                return  # a hostile page cycling rates gets nothing more
            processor = AudioProcessor(sample_rate=sample_rate, on_features=self._sink)
            processor.start()
            self.browser[sample_rate] = processor
        processor.feed(samples)

    def status(self) -> dict[str, Any]:
        """Numbers for /api/status."""
        return {
            "sound_card": None if self.card is None else self.card.status(),
            "browser": {str(rate): p.status() for rate, p in self.browser.items()},
        }


class AudioError(RuntimeError):
    """A sound card that cannot be opened; the message says which and why."""
