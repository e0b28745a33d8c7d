"""``IngestSide._plan``: its fast path (one stream, kind and ts) gives exactly the general loop's plan.

For random item lists — one or several streams, routed and unrouted kinds and ``gap``, equal, mixed,
integer and NaN ts, blob sizes around ``segment_max_bytes`` and the quota — every list the fast path
takes must plan the same segments (items, blobs, CRCs), ranks, ``fits_all`` and quota bytes as the
loop; and the fast path must take exactly the lists it is meant for (so the comparison cannot pass
by the fast path declining everything). Real spools (three quota/segment-size shapes); no DB writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from spool_helpers import ROUTES, open_spool

from edgekit.spool import Spool
from edgekit.spool.ingest import _Plan

# (max_bytes = quota, segment_max_bytes = cap): cap below, above and equal to the quota
SHAPES = ((300, 100), (100, 300), (128, 128), (9000, 4200))  # the last: segments around the 4096-byte CRC rule
KINDS = ("points", "features", "event", "waveform", "gap")  # waveform is routed by no uplink in ROUTES
STREAMS = ("points/d1", "features/m1", "s3")

Item = tuple[str, str, Any, Any]


@pytest.fixture(scope="module")
def spools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Spool]]:
    base = tmp_path_factory.mktemp("plan")
    opened = [open_spool(base / f"s{i}.db", max_bytes=q, segment_max_bytes=c) for i, (q, c) in enumerate(SHAPES)]
    yield opened
    for s in opened:
        s.close()


def _sizes(limit: int) -> st.SearchStrategy[int]:
    edges = sorted({n + d for q, c in SHAPES for n in (q, c, c // 2, 4096) for d in (-1, 0, 1)} | {0})
    return st.one_of(st.sampled_from([e for e in edges if e <= limit]), st.integers(0, min(limit, 40)),
                     st.integers(0, limit))


def _blob(n: int, fill: int) -> bytes:
    return bytes([fill % 251]) * (n // 2) + bytes([(fill + 7) % 251]) * (n - n // 2)


@st.composite
def item_lists(draw: st.DrawFn) -> list[Item]:
    """Mostly uniform lists (the fast path's case), mutated now and then in one field."""
    count = draw(st.integers(1, 12))
    stream = draw(st.sampled_from(STREAMS))
    kind = draw(st.sampled_from(("points", "features", "event", *KINDS)))  # routed non-gap kinds more often
    ts: Any = draw(st.sampled_from(("float",) * 6 + ("nan", "int")).flatmap(
        lambda t: st.just(math.nan) if t == "nan" else st.integers(0, 2_000_000_000) if t == "int"
        else st.floats(0, 2e9)))
    limit = draw(st.sampled_from((100, 100, 128, 128, 300, 301, 4097, 9001)))  # 301: above every quota now and then
    blob_type = draw(st.sampled_from((bytes, bytearray)))
    items: list[Item] = []
    for i in range(count):
        items.append((stream, kind, blob_type(_blob(draw(_sizes(limit)), i)), ts))
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2, 3)))):  # mutate: another stream, kind or ts for one item
        i = draw(st.integers(0, count - 1))
        s, k, b, t = items[i]
        field = draw(st.sampled_from(("stream", "kind", "ts", "ts_equal_other_object")))
        if field == "stream":
            s = draw(st.sampled_from(STREAMS))
        elif field == "kind":
            k = draw(st.sampled_from(KINDS))
        elif field == "ts":
            t = draw(st.one_of(st.floats(0, 2e9), st.just(math.nan)))
        else:
            t = float(t) + 0.0 if not isinstance(t, float) else float(repr(t))  # equal value, other object
        items[i] = (s, k, b, t)
    return items


def _fast_applies(spool: Spool, items: list[Item]) -> bool:
    """The fast path's case, stated independently of its code."""
    s0, k0, _b0, t0 = items[0]
    return (len(items) > 1 and k0 != "gap" and bool(spool._routing[k0])
            and all(s == s0 and k == k0 for s, k, _b, _t in items)
            and type(t0) is float and not math.isnan(t0)
            and all(t == t0 for _s, _k, _b, t in items)  # by value: an int 0 joins a float 0.0's run
            and max(len(b) for _s, _k, b, _t in items) <= spool.cfg.max_bytes)


def _norm(plan: _Plan) -> tuple[Any, ...]:
    """A comparable form (NaN-safe ts, blobs as bytes)."""
    packed = [(idxs, stream, kind, repr(float(ts)), bytes(seg), crc, size)
              for idxs, stream, kind, ts, seg, crc, size in plan.packed]
    return plan.ranks, packed, plan.fits_all, plan.quota_bytes


def test_routes_leave_one_kind_unrouted() -> None:
    routed = {k for ks in ROUTES.values() for k in ks}
    assert "waveform" not in routed and {"points", "features", "event", "gap"} <= routed


def test_fast_path_plans_exactly_what_the_loop_plans(spools: list[Spool]) -> None:
    seen = {"fast": 0, "loop": 0, "multi_segment": 0}

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.integers(0, len(SHAPES) - 1), item_lists())
    def check(shape: int, items: list[Item]) -> None:
        spool = spools[shape]
        fast = spool._plan_fast(items)
        loop = spool._plan_loop(items)
        assert (fast is not None) == _fast_applies(spool, items)
        assert _norm(spool._plan(items)) == _norm(fast or loop)
        if fast is None:
            seen["loop"] += 1
            return
        seen["fast"] += 1
        seen["multi_segment"] += len(fast.packed) > 1
        assert _norm(fast) == _norm(loop)
        assert fast.items is items and loop.items is items

    check()
    # the generator must exercise both paths and the fast path's cutting into several segments
    assert seen["fast"] >= 15 and seen["loop"] >= 40 and seen["multi_segment"] >= 5, seen
