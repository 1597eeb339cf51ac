"""Network bending and model blending on a deck: the /bend and /blend commands, the
channel clusters a cluster bend needs (computed once per weights and seed, off the
render thread) and the blend partners loaded off it."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import replace

from models.bending import (
    IDENTITY,
    Bender,
    Clusters,
    compute_clusters,
    digest_state,
    synthesis_layers,
    unwrap,
)
from models.blending import MAPPING, Blend, group_layers, mismatch
from models.catalog import Catalog, ModelNotFound
from server.command_queue import Batch
from server.commands import BEND_CLUSTERS, Change, Command, CommandError, error
from server.deck import Deck

logger = logging.getLogger(__name__)


class BendControl:
    """Applies /bend and /blend to a deck (render thread); owns the cluster cache and the
    partners in flight."""

    def __init__(
        self,
        *,
        seed: int,
        catalog: Catalog,
        run_io: Callable[[Callable[[], None]], None],
        report: Callable[[list[Change]], None],
        resubmit: Callable[[Batch], bool],
    ) -> None:
        self.seed = seed  # clusters are computed for this seed (render.seed)
        self._catalog = catalog
        self._run_io = run_io  # blocking work (clustering, loading a partner) off this thread
        self._report = report  # an io thread's answer to the controllers
        self._resubmit = resubmit  # the commands that waited for clusters, once they exist
        self._lock = threading.Lock()
        # Channel clusters per (weights digest, seed), computed off the render thread on
        # first use; the commands that waited for them are submitted again when they land.
        self._clusters: dict[tuple[str, int], Clusters] = {}
        self._clustering: dict[tuple[str, int], list[Command]] = {}
        self._incoming: list[tuple[Deck, Blend | None, Command, str | None]] = []
        # Per deck (by identity) whose partner is loading: the loads in flight, and the
        # amounts sent meanwhile (a preset recall sends /blend/model and its amounts in
        # one batch), applied when the last partner sent arrives.
        self._loads: dict[int, int] = {}
        self._waiting: dict[int, list[Command]] = {}
        self._run_partner_load = run_io  # a partner's load (the replay holds it: replaying)

    def replaying(self, hold_partner_load: Callable[[Callable[[], None]], None]) -> None:
        """Offline replay (server/outputs/replay.py): the performance log holds the batch
        each waiting cluster bend was submitted again in, so nothing is resubmitted; and
        the frame each blend partner landed on, so `hold_partner_load` keeps a partner's
        load until the replay reaches that frame."""
        self._resubmit = lambda batch: True
        self._run_partner_load = hold_partner_load

    def apply(self, deck: Deck, command: Command) -> list[Change]:
        """Apply or answer a /bend or /blend command on a deck."""
        name = command.name
        if name.startswith("/blend/"):
            return self._blend(deck, command)
        if deck.bender is None:
            deck.bender = Bender(deck.module)
        layers = len(deck.bender.layers)
        if name == "/bend/reset":
            deck.bends.clear()
            deck.bender.clear()
            return [Change(command.address, ())]
        layer = command.index("layer")
        if layer > layers:
            return [error(command, f"layer {layer}: {deck.model.name} has layers 1..{layers}")]
        if command.query:
            return [Change(command.address, self.query(deck, command), command.origin)]
        cluster = command.path.get("k", 0)
        if cluster:
            clusters = self._clusters_for(deck, command)
            if clusters is None:
                return []  # submitted again once the clusters are computed
            count = len(clusters.of(layer))
            if cluster > count:
                return [error(command, f"cluster {cluster}: layer {layer} has clusters 1..{count}")]
        op = name.rsplit("/", 1)[1]
        values = tuple(float(v) for v in command.args)  # type: ignore[arg-type]
        target = deck.bends.setdefault((layer, cluster), {})
        if values == IDENTITY[op]:
            target.pop(op, None)  # at rest: no operator at all
            if not target:
                del deck.bends[(layer, cluster)]
        else:
            target[op] = values
        found = self._clusters.get((deck.digest or "", self.seed))
        deck.bender.set(deck.bends, found.of if found is not None else None)
        return [Change(command.address, values)]

    def query(self, deck: Deck, command: Command) -> tuple[object, ...]:
        """The current value of a /bend or /blend address."""
        name = command.name
        if name.startswith("/blend/"):
            blend = deck.blend
            if name == "/blend/model":
                return (blend.name if blend is not None else "",)
            # A layer this model lacks has no value (nor does a preset keep one for it).
            module = unwrap(deck.module)
            if name == "/blend/mapping" and not hasattr(module, "mapping"):
                raise CommandError(f"{deck.model.name} has no mapping network")
            layer = MAPPING if name == "/blend/mapping" else command.index("n")
            layers = blend.layers if blend is not None else len(synthesis_layers(module))
            if layer > layers:
                raise CommandError(f"layer {layer}: {deck.model.name} has layers 1..{layers}")
            return (blend.amounts.get(layer, 0.0) if blend is not None else 0.0,)
        op = name.rsplit("/", 1)[1]
        ops = deck.bends.get((command.index("layer"), command.path.get("k", 0)), {})
        values = ops.get(op, IDENTITY[op])
        return tuple(int(v) for v in values) if op == "flip" else values

    def _clusters_for(self, deck: Deck, command: Command) -> Clusters | None:
        """The deck's channel clusters, or None while they are computed (off this thread)."""
        if deck.digest is None:
            deck.digest = digest_state(deck.module)
        key = (deck.digest, self.seed)
        found = self._clusters.get(key)
        if found is not None:
            return found
        waiting = self._clustering.get(key)
        if waiting is not None:
            waiting.append(command)
            return None
        self._clustering[key] = [command]
        # A copy without hooks: the render thread keeps playing (and bending) the original.
        twin = copy.deepcopy(deck.module).float()
        for _, layer in Bender(twin).layers:
            layer._forward_hooks.clear()
        device, seed = deck.device, self.seed

        def compute() -> None:
            try:
                clusters = compute_clusters(twin, k=BEND_CLUSTERS, seed=seed, device=device)
            except Exception as exc:  # said to whoever asked; rendering goes on
                logger.exception("clusters of %s failed", deck.model.name)
                with self._lock:
                    waited = self._clustering.pop(key, [])
                self._report([error(c, f"cannot compute clusters: {exc}") for c in waited])
                return
            with self._lock:
                self._clusters[key] = clusters
                waited = self._clustering.pop(key, [])
            self._resubmit(waited)  # applied now that the clusters exist

        logger.info("computing channel clusters of %s (seed %d)", deck.model.name, seed)
        self._run_io(compute)
        return None

    def _blend(self, deck: Deck, command: Command) -> list[Change]:
        name = command.name
        if command.query:
            return [Change(command.address, self.query(deck, command), command.origin)]
        if name == "/blend/reset":
            if deck.blend is not None:
                deck.blend.restore()
                deck.blend = None
            return [Change(command.address, ())]
        if name == "/blend/model":
            return self._blend_model(deck, command)
        if id(deck) in self._loads:  # its partner is on the way: the amount lands with it
            self._waiting.setdefault(id(deck), []).append(command)
            return []
        blend = deck.blend
        if blend is None:
            return [error(command, "no blend partner: send /blend/model NAME first")]
        amount = float(command.args[-1])  # type: ignore[arg-type]
        if name == "/blend/mapping":
            if not hasattr(blend.module, "mapping"):
                return [error(command, f"{deck.model.name} has no mapping network")]
            blend.set(MAPPING, amount)
        elif name == "/blend/layers":
            for layer in group_layers(blend.layers)[str(command.args[0])]:
                blend.set(layer, amount)
        else:
            layer = command.index("n")
            if layer > blend.layers:
                return [
                    error(command, f"layer {layer}: {deck.model.name} has layers 1..{blend.layers}")
                ]
            blend.set(layer, amount)
        blend.apply()
        return [Change(command.address, command.args)]

    def _blend_model(self, deck: Deck, command: Command) -> list[Change]:
        partner = str(command.args[0])
        if not partner:
            return self._blend(deck, replace(command, name="/blend/reset", address="/blend/reset"))
        if deck.blend is not None and deck.blend.name == partner and id(deck) not in self._loads:
            return [Change(command.address, (partner,))]  # already the partner: amounts kept
        try:
            path = self._catalog.resolve(partner)
        except ModelNotFound as exc:
            return [error(command, f"{exc} (see GET /api/models)")]

        def load() -> None:
            why: str | None = None
            blend: Blend | None = None
            try:
                other = self._catalog.load(path, device="cpu")
                why = mismatch(
                    deck.module,
                    other.module,
                    arch=(deck.model.arch, other.arch),
                    resolution=(deck.model.resolution, other.resolution),
                )
                if why is None:
                    blend = Blend(deck.module, other.module, other.name)
            except Exception as exc:  # noqa: BLE001 - any failure is the sender's answer
                why = f"{path.name}: cannot be loaded: {exc}"[:300]
            if why is not None:
                why = f"{partner} cannot be blended with {deck.model.name}: {why}"
            with self._lock:
                self._incoming.append((deck, blend, command, why))

        self._loads[id(deck)] = self._loads.get(id(deck), 0) + 1
        self._run_partner_load(load)
        return []

    def take(self, playing: Collection[Deck]) -> list[Change]:
        """Partners loaded off the render thread: each deck blends toward its own from now."""
        with self._lock:
            blends, self._incoming = self._incoming, []
        changes: list[Change] = []
        for deck, blend, command, why in blends:
            self._loads[id(deck)] -= 1
            # The amounts wait for the last partner sent: a second /blend/model in flight
            # would replace this one and start from 0 again.
            last = self._loads[id(deck)] == 0
            if last:
                del self._loads[id(deck)]
            waited = self._waiting.pop(id(deck), []) if last else []
            if why is None and all(deck is not other for other in playing):
                why = f"{deck.model.name} is no longer playing"  # the model changed meanwhile
            if why is not None or blend is None:
                changes.append(error(command, why or "no partner"))
                changes.extend(error(c, f"no blend partner: {why}") for c in waited)
                continue
            if deck.blend is not None:
                deck.blend.restore()
                blend.rebase()  # it read A's tensors with the old blend in them
            deck.blend = blend
            blend.apply()
            changes.append(Change(command.address, (blend.name,)))
            for amount in waited:
                changes.extend(self._blend(deck, amount))
        return changes
