"""Generated test signals: a kick drum pattern, hats, silence (no files, no downloads)."""

from __future__ import annotations

import numpy as np

KICKS_S = (0.25, 0.75, 1.0, 1.625, 2.125)  # irregular on purpose: intervals identify them


def kick(sample_rate: int, seconds: float = 0.25) -> np.ndarray:
    """A synthetic kick: a sine falling from 120 to 45 Hz under a fast exponential decay."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    freq = 45.0 + 75.0 * np.exp(-t * 30.0)
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    tail = np.clip((seconds - t) / (0.3 * seconds), 0.0, 1.0)  # no click where it ends
    return (0.8 * np.sin(phase) * np.exp(-t * 12.0) * tail).astype(np.float32)


def kick_pattern(
    sample_rate: int, times: tuple[float, ...] = KICKS_S, seconds: float = 2.5, noise: float = 0.002
) -> tuple[np.ndarray, list[int]]:
    """Kicks at `times` over a little noise; the signal and each kick's first sample."""
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal(int(sample_rate * seconds)) * noise).astype(np.float32)
    fade = int(0.2 * sample_rate)  # the noise fades in: its start is no onset
    signal[:fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
    hit = kick(sample_rate)
    starts = [int(t * sample_rate) for t in times]
    for start in starts:
        end = min(start + len(hit), len(signal))
        signal[start:end] += hit[: end - start]
    return signal, starts


def hats(sample_rate: int, seconds: float = 1.0, every: float = 0.125) -> np.ndarray:
    """Short bursts of high-passed noise (closed hi-hats)."""
    rng = np.random.default_rng(3)
    signal = np.zeros(int(sample_rate * seconds), dtype=np.float32)
    burst = np.diff(rng.standard_normal(int(sample_rate * 0.03) + 1)).astype(np.float32)
    burst *= np.exp(-np.arange(len(burst)) / (sample_rate * 0.008)).astype(np.float32) * 0.3
    for start in range(0, len(signal) - len(burst), int(every * sample_rate)):
        signal[start : start + len(burst)] += burst
    return signal
