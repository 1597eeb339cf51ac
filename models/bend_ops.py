"""The network-bending operators and their rest values, torch-free.

The registry (server/commands.py), presets and the operators themselves
(models/bending.py) read the same table: an operator at its rest value is no
bend at all, and is neither inserted into the network nor kept in a preset.
"""

# The operators and their identity values, in the order they are applied to a target.
IDENTITY: dict[str, tuple[float, ...]] = {
    "gain": (1.0,),
    "ablate": (0.0,),
    "erode": (0.0,),
    "dilate": (0.0,),
    "flip": (0.0,),
    "rotate": (0.0,),
    "scale": (1.0,),
    "translate": (0.0, 0.0),
}
OPERATORS = tuple(IDENTITY)


def at_rest(address: str, values: tuple[object, ...]) -> bool:
    """Whether a /bend/.../OP value is its operator's rest (no bend)."""
    op = address.rsplit("/", 1)[-1]
    rest = IDENTITY.get(op)
    return rest is not None and tuple(float(v) for v in values) == rest  # type: ignore[arg-type]
