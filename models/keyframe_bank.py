"""A model's keyframe bank as the show file stores it: its checks, and reading it offline.

The server's show file (server/showfile.py) holds one bank per model name: the
keyframes in the space they are played in (`"space": "z"` with `"z_dim"`, or
`"w"` with `"w_dim"`) and that model's settings. The checks live here, with the
plain reader `ganvj render tour --show` uses, so the offline renderer reads a
show without the server and both read it by the same rules.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Limits
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_KEYFRAMES = 256
MAX_Z_DIM = 4096
MAX_LATENT = 3.4e38  # float32's largest: the bank is played as a float32 tensor
SPACES = ("z", "w")
SHOW_VERSION = 1


class BankError(ValueError):
    """A keyframe bank (or show file) that cannot be used; the message says where and why."""


def check_bank(entry: object, key: str) -> dict[str, Any]:
    """`entry` if it is a valid bank, else BankError naming the bad key (prefix `key`)."""
    if not isinstance(entry, dict):
        raise BankError(f"{key}: expected an object")
    space = entry.get("space", "z")
    if space not in SPACES:
        raise BankError(f"{key}.space: expected one of {', '.join(SPACES)}, got {space!r}")
    z_dim = entry.get(f"{space}_dim")
    if not isinstance(z_dim, int) or isinstance(z_dim, bool) or not 0 < z_dim <= MAX_Z_DIM:
        raise BankError(f"{key}.{space}_dim: expected an integer 1..{MAX_Z_DIM}, got {z_dim!r}")
    keyframes = entry.get("keyframes")
    if not isinstance(keyframes, list) or not 0 < len(keyframes) <= MAX_KEYFRAMES:
        raise BankError(f"{key}.keyframes: expected a list of 1..{MAX_KEYFRAMES} latents")
    for i, row in enumerate(keyframes):
        if not isinstance(row, list) or len(row) != z_dim:
            raise BankError(f"{key}.keyframes[{i}]: expected {z_dim} numbers")
        for value in row:
            if not _latent_value(value):
                shown = f"{value!r}"[:40]
                raise BankError(f"{key}.keyframes[{i}]: {shown} is not a finite float32 number")
    if not isinstance(entry.get("settings", {}), dict):
        raise BankError(f"{key}.settings: expected an object")
    return entry


def _latent_value(value: object) -> bool:
    """Whether a JSON value is a number a float32 latent can hold (10**400 and NaN are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value) and abs(value) <= MAX_LATENT
    except OverflowError:  # an integer too large for a float
        return False


def read_banks(path: Path) -> dict[str, dict[str, Any]] | None:
    """The banks (model name -> bank) of the show file at `path`; None if there is none."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BankError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BankError(f"{path}: not a JSON show file: {exc}") from exc
    if not isinstance(data, dict):
        raise BankError(f"{path}: expected an object at the top level")
    if data.get("version") != SHOW_VERSION:
        raise BankError(f"{path}: version {data.get('version')!r} is not {SHOW_VERSION}")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise BankError(f"{path}: 'models' must be an object")
    return {
        str(name): check_bank(entry, f"{path}: models.{name}") for name, entry in models.items()
    }
