"""The read planner: the fewest Modbus requests that read every tag of a device's poll class.

Per device, table and poll class, tags are sorted by address and coalesced greedily: the next tag
joins the current request while the request stays within the connection's limit (``max_registers``
≤ 125 or ``max_bits`` ≤ 2000), the unused span between them is at most ``max_gap`` (``max_gap_bits``)
and no *barrier* lies in that span. Greedy left-to-right merging is optimal for this interval problem
(each request is extended as far as the limits allow).

Barriers are learned: when a device answers a merged request with exception 2 (illegal data
address), the client bisects the request (:func:`split`) until the parts are accepted; a gap between
two accepted parts holds refused addresses, so it becomes a barrier (:meth:`ReadPlanner.refuse`), and
the plan is rebuilt so that no request spans a barrier again. A single tag that is refused on its
own becomes a barrier itself: it stays a request of its own and reads as BAD ``illegal data address``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .config import BIT_TABLES
from .decode import BlockDecoder, compile_decoder, decode_order
from .device import ResolvedDevice, ResolvedTag

__all__ = ["ReadPlanner", "ReadRequest", "coalesce", "format_device_plan", "split"]

FUNCTION_CODES = {"coil": 1, "discrete_input": 2, "holding_register": 3, "input_register": 4}


@dataclass(frozen=True)
class ReadRequest:
    """One read: ``count`` registers (or bits) of ``table`` from ``start``, decoding ``tags``."""

    table: str
    start: int
    count: int
    tags: tuple[ResolvedTag, ...]
    decoder: BlockDecoder = field(repr=False, compare=False)

    @property
    def function_code(self) -> int:
        return FUNCTION_CODES[self.table]

    @property
    def end(self) -> int:
        return self.start + self.count

    def describe(self) -> str:
        names = ", ".join(t.name for t in sorted(self.tags, key=lambda t: (t.address, t.name)))
        unit = "bits" if self.table in BIT_TABLES else "regs"
        return f"FC{self.function_code:02d} {self.table:<16} {self.start:>5}..{self.end - 1:<5} ({self.count} {unit}): {names}"


def make_request(table: str, tags: Sequence[ResolvedTag]) -> ReadRequest:
    start = min(t.address for t in tags)
    end = max(t.end for t in tags)
    ordered = decode_order(tags)
    return ReadRequest(table, start, end - start, ordered,
                       compile_decoder(ordered, start, bits=table in BIT_TABLES))


def _blocked(lo: int, hi: int, barriers: Iterable[tuple[int, int]]) -> bool:
    """True when a barrier range [b0, b1) intersects the span [lo, hi)."""
    return any(b0 < hi and lo < b1 for b0, b1 in barriers)


def coalesce(table: str, tags: Sequence[ResolvedTag], *, limit: int, max_gap: int,
             barriers: Sequence[tuple[int, int]] = ()) -> list[ReadRequest]:
    """Greedy coalescing of ``tags`` (one table) into requests of at most ``limit`` registers/bits."""
    out: list[ReadRequest] = []
    group: list[ResolvedTag] = []
    start = end = 0
    for t in sorted(tags, key=lambda t: (t.address, t.end)):
        if group:
            new_end = max(end, t.end)
            gap = t.address - end
            if new_end - start <= limit and gap <= max_gap and not _blocked(start, new_end, barriers):
                group.append(t)
                end = new_end
                continue
            out.append(make_request(table, group))
        group, start, end = [t], t.address, t.end
    if group:
        out.append(make_request(table, group))
    return out


def split(req: ReadRequest) -> tuple[ReadRequest, ReadRequest] | None:
    """Halves of a refused request (by tags), or ``None`` when it holds a single tag position."""
    starts = sorted({t.address for t in req.tags})
    if len(starts) < 2:
        return None
    mid = starts[len(starts) // 2]
    left = [t for t in req.tags if t.address < mid]
    right = [t for t in req.tags if t.address >= mid]
    return make_request(req.table, left), make_request(req.table, right)


class ReadPlanner:
    """Per-device plan: ``requests(poll_class)`` in address order, rebuilt when a barrier is learned."""

    def __init__(self, device: ResolvedDevice, *, max_registers: int = 125, max_bits: int = 2000,
                 max_gap: int = 16, max_gap_bits: int = 256) -> None:
        self.device = device
        self.max_registers = max_registers
        self.max_bits = max_bits
        self.max_gap = max_gap
        self.max_gap_bits = max_gap_bits
        self.barriers: dict[str, list[tuple[int, int]]] = {}
        self._plan: dict[str, list[ReadRequest]] = {}
        self.version = 0  # counts plan builds: a changed version means new request lists
        self._build()

    def __repr__(self) -> str:
        n = sum(len(r) for r in self._plan.values())
        learned = sum(len(b) for b in self.barriers.values())
        return f"ReadPlanner({self.device.name!r}, {n} requests, {learned} refused ranges)"

    def _build(self) -> None:
        plan: dict[str, list[ReadRequest]] = {}
        for cls in self.device.poll:
            reqs: list[ReadRequest] = []
            for table in FUNCTION_CODES:
                tags = [t for t in self.device.tags if t.poll == cls and t.table == table]
                if not tags:
                    continue
                bits = table in BIT_TABLES
                reqs += coalesce(table, tags, limit=self.max_bits if bits else self.max_registers,
                                 max_gap=self.max_gap_bits if bits else self.max_gap,
                                 barriers=self.barriers.get(table, ()))
            plan[cls] = reqs
        self._plan = plan
        self.version += 1

    def requests(self, poll_class: str) -> list[ReadRequest]:
        return self._plan.get(poll_class, [])

    @property
    def poll_classes(self) -> list[str]:
        return list(self._plan)

    def total_requests(self) -> int:
        return sum(len(r) for r in self._plan.values())

    def refuse(self, table: str, lo: int, hi: int) -> bool:
        """Learn that ``[lo, hi)`` of ``table`` holds refused addresses; True when the plan changed."""
        if hi <= lo:
            return False
        ranges = self.barriers.setdefault(table, [])
        if any(b0 <= lo and hi <= b1 for b0, b1 in ranges):
            return False
        ranges.append((lo, hi))
        ranges.sort()
        self._build()
        return True

    def refused_ranges(self) -> dict[str, list[tuple[int, int]]]:
        return {k: list(v) for k, v in self.barriers.items() if v}


def format_device_plan(planner: ReadPlanner, unit_id: int) -> str:
    dev = planner.device
    lines = [f"  device {dev.name} (unit {unit_id}, byte order {dev.byte_order}"
             + (f", profile {dev.profile}" if dev.profile else "") + f"): {len(dev.tags)} tags, "
             f"{planner.total_requests()} requests per full scan (naive: {len(dev.tags)})"]
    for cls in planner.poll_classes:
        reqs = planner.requests(cls)
        lines.append(f"    poll class {cls!r} every {dev.poll[cls]:g}s: {len(reqs)} requests")
        lines += [f"      {r.describe()}" for r in reqs]
    for w in dev.waveforms:
        words = 1 if w.dtype == "int16" else 2
        n = w.block_len or "block_len@" + str(w.block_len_address)
        lines.append(f"    waveform {w.name!r} poll {w.poll!r}: seq @{w.seq_address} ({w.table}), "
                     f"{len(w.channels)} channels x {n} {w.dtype} from @{w.samples_address} "
                     f"({words} reg/sample), read when seq changes")
    for table, ranges in planner.refused_ranges().items():
        lines.append(f"    refused {table}: " + ", ".join(f"{a}..{b - 1}" for a, b in ranges))
    return "\n".join(lines)
