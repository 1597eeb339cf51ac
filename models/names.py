"""What a model is called: a name (a file stem in the model folders) or a path.

Torch-free, so the edges can tell the two apart: a name picks one of the
models the server already has, a path opens any file on its machine, which
only an admin may ask for live.
"""

from __future__ import annotations

# The files a model can be: ganvj's own, and the formats converted on load.
MODEL_SUFFIXES = (".safetensors", ".pkl", ".pt", ".pth")


def is_model_name(spec: str) -> bool:
    """True for a bare name (`film`); False for anything read as a path (`./film.pkl`, `~/x`)."""
    return (
        bool(spec)
        and "/" not in spec
        and "\\" not in spec
        and not spec.startswith((".", "~"))
        and not spec.lower().endswith(MODEL_SUFFIXES)
    )
