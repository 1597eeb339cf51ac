"""Imports run downward and never in a circle: the project's layers, read from its source.

Every module of server/, models/ and controllers/ is parsed with `ast`; every
import counts, function-level and `if TYPE_CHECKING:` ones included (a lazy
import only hides a cycle or an upward edge, it does not remove it). The
layers are the tables below: adjust them there, top to bottom.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "models", "controllers")

# The torch-free vocabulary and settings everything else may speak: commands,
# tempo, config. A module added to this layer goes in this list.
VOCABULARY = [
    "server.commands",
    "server.tempo",
    "server.config",
    "server.patch",  # modulation routes and MIDI mappings as tables of commands
    "server.ratelimit",  # the one keyed token bucket, for HTTP and OSC alike
    "server.addresses",  # peers, loopback and configured networks, for HTTP and OSC alike
    "server.outputs.mapping",  # projector outputs: slices, corner-pins, blend ramps (pure maths)
]

# The edges of the instrument: none imports another's modules; what they share
# lives lower down (the instrument or the vocabulary).
EDGES = [
    "server.http",
    "server.outputs",
    "controllers",
]

# Top to bottom; a module may import its own layer and those below it. A name
# covers the module and, for a package, everything inside; the longest name
# that covers a module decides its layer.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "wiring",
        [
            "server.cli",
            "server.lifecycle",
            "server.supervisor",  # runs `ganvj serve` as restarted worker processes
            "server.bench",
            "server.doctor",
        ],
    ),
    ("edges", EDGES),
    ("instrument", ["server"]),  # engine, play, react/, media/ and the other server modules
    ("vocabulary", VOCABULARY),
    ("models", ["models"]),
]

# Controllers are parsers and senders: they speak the vocabulary and nothing else
# (so they import without torch).
CONTROLLERS_MAY_IMPORT = ["controllers", *VOCABULARY]


@dataclass(frozen=True)
class Import:
    """One import statement of one project module, resolved to a project module."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.path}:{self.line})"


def covers(name: str, module: str) -> bool:
    """True if `name` is `module` or a package holding it."""
    return module == name or module.startswith(name + ".")


def module_files(root: Path = REPO) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module `name` names or lies inside; None outside the project."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every project module `module` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    shown = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            # `from a import b` imports the module a.b where there is one, else a name of a.
            names = [f"{stem}.{alias.name}" for alias in node.names] or [stem]
        for name in names:
            target = _resolve(name, modules)
            edge = Import(module, target or "", shown, getattr(node, "lineno", 0))
            if target is not None and target != module and edge not in found:
                found.append(edge)  # once per statement, however many names it takes
    return found


def import_graph(modules: dict[str, Path]) -> list[Import]:
    """Every import edge between project modules."""
    return [edge for module, path in modules.items() for edge in imports_of(module, path, modules)]


def layer_of(module: str) -> int:
    """The layer's index in LAYERS (0 = top) of the most specific name covering `module`."""
    best: tuple[int, int] | None = None  # (length of the name, layer)
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            if covers(name, module) and (best is None or len(name) > best[0]):
                best = (len(name), index)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best[1]


def edge_of(module: str) -> str | None:
    """Which edge holds `module`, if any."""
    return next((name for name in EDGES if covers(name, module)), None)


def layer_offences(edges: list[Import]) -> list[str]:
    """Every import that runs against the layers, with the rule it breaks."""
    offences = []
    for edge in edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        if target < source:
            offences.append(f"upward ({LAYERS[source][0]} imports {LAYERS[target][0]}): {edge}")
        elif covers("controllers", edge.source) and not any(
            covers(name, edge.target) for name in CONTROLLERS_MAY_IMPORT
        ):
            offences.append(f"controller imports beyond the vocabulary: {edge}")
        elif edge_of(edge.source) and edge_of(edge.target) not in (None, edge_of(edge.source)):
            offences.append(f"edge imports another edge: {edge}")
    return offences


def cycles(edges: list[Import]) -> list[list[Import]]:
    """The import edges inside each strongly connected group of modules (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge.target)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [
        sorted(
            (e for e in edges if e.source in group and e.target in group),
            key=lambda e: (e.source, e.target),
        )
        for group in groups
    ]


def test_every_module_has_a_layer() -> None:
    for module in module_files():
        layer_of(module)  # raises naming the module


def test_no_import_cycles() -> None:
    found = cycles(import_graph(module_files()))
    report = "\n\n".join("\n".join(f"  {edge}" for edge in group) for group in found)
    assert not found, f"{len(found)} import cycle(s), the imports inside each:\n{report}"


def test_imports_run_down_the_layers() -> None:
    offences = layer_offences(import_graph(module_files()))
    assert not offences, f"{len(offences)} import(s) against the layers:\n" + "\n".join(
        f"  {offence}" for offence in offences
    )


def test_the_checker_sees_lazy_relative_upward_and_circular_imports(tmp_path: Path) -> None:
    # The checker itself on a made-up project: each rule must catch its case.
    files = {
        "models/__init__.py": "",
        "models/nets.py": "def f():\n    from server import engine\n",  # lazy, upward
        "server/__init__.py": "",
        "server/engine.py": "from . import play\n",  # relative, and a cycle with play
        "server/play.py": "import server.engine\nfrom server.commands import X\n",
        "server/commands.py": "",
        "server/http/__init__.py": "",
        "server/http/app.py": "from controllers import osc\n",  # edge to edge
        "controllers/__init__.py": "",
        "controllers/osc.py": "from server.engine import Engine\n",  # beyond the vocabulary
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = import_graph(module_files(tmp_path))
    shown = {(e.source, e.target) for e in edges}
    assert ("models.nets", "server.engine") in shown
    assert ("server.engine", "server.play") in shown
    assert [offence.split("  (")[0] for offence in layer_offences(edges)] == [
        "edge imports another edge: server.http.app -> controllers.osc",
        "upward (models imports instrument): models.nets -> server.engine",
        "controller imports beyond the vocabulary: controllers.osc -> server.engine",
    ]
    [group] = cycles(edges)
    assert [(e.source, e.target) for e in group] == [
        ("server.engine", "server.play"),
        ("server.play", "server.engine"),
    ]
