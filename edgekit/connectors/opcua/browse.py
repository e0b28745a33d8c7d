"""Address-space discovery: walk a server breadth-first and write a device profile from what is found.

Limits keep a huge server from hanging the walk: ``depth`` levels below the start node,
``max_nodes`` nodes visited in total (the result says when it was cut short). Browsing is batched
(one Browse request for a whole level, continuation points followed) and the attributes of all
variables are read in batches. Properties (HasProperty children such as ``EngineeringUnits``)
are not tags: they annotate their parent (unit).

The profile (:func:`to_profile_toml`) lists every scalar variable as a ``[[nodes]]`` entry with
node id, browse path, data type and unit, and turns Float/Double array variables into
``[[waveforms]]`` groups per parent object, with sibling nodes named like a sample rate
(``SampleRateHz``, ``Fs``), a block counter (``BlockSeq``, ``Seq``) and a speed (``SpeedHz``) wired
in. Arrays whose sample rate cannot be found are listed as comments to finish by hand.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from asyncua import Client, ua

__all__ = ["BrowseResult", "FoundVariable", "browse", "to_profile_toml"]

_BATCH = 200
_HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)  # type: ignore[arg-type]


@dataclass
class FoundVariable:
    node_id: str
    path: list[tuple[int, str]]  # (namespace index, browse name) below the start node
    data_type: str = ""
    value_rank: int = -1
    array_dims: list[int] = field(default_factory=list)
    unit: str = ""
    writable: bool = False

    value_is_array: bool = False  # for ValueRank -2/-3 (Any / ScalarOrOneDimension): the current value

    @property
    def is_array(self) -> bool:
        # ValueRank >= 1: n dimensions; 0: one or more dimensions; -1 scalar; -2/-3 look at the value
        return self.value_rank >= 0 or (self.value_rank in (-2, -3) and self.value_is_array)

    def browse_path(self, default_ns: int) -> str:
        return "/".join(name if ns == default_ns else f"{ns}:{name}" for ns, name in self.path)

    def plain_path(self) -> str:
        return "/".join(name for _, name in self.path)


@dataclass
class BrowseResult:
    variables: list[FoundVariable]
    visited: int
    truncated: bool
    namespaces: list[str]


def _type_name(nid: ua.NodeId) -> str:
    if nid.NamespaceIndex == 0 and isinstance(nid.Identifier, int):
        return str(ua.ObjectIdNames.get(nid.Identifier, nid.to_string()))
    return str(nid.to_string())


async def _browse_children(client: Client, parents: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(parents), _BATCH):
        params = ua.BrowseParameters()
        params.NodesToBrowse = [
            ua.BrowseDescription(
                NodeId=p,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),  # type: ignore[arg-type]
                IncludeSubtypes=True,  # type: ignore[arg-type]
                NodeClassMask=int(ua.NodeClass.Object | ua.NodeClass.Variable),  # type: ignore[arg-type]
                ResultMask=int(ua.BrowseResultMask.All),  # type: ignore[arg-type]
            )
            for p in parents[start : start + _BATCH]
        ]
        results = await client.uaclient.browse(params)
        for res in results:
            refs = list(res.References or [])
            cp = res.ContinuationPoint
            while cp:
                nxt = ua.BrowseNextParameters(ReleaseContinuationPoints=False, ContinuationPoints=[cp])  # type: ignore[arg-type]
                more = (await client.uaclient.browse_next(nxt))[0]
                refs += list(more.References or [])
                cp = more.ContinuationPoint
            out.append(refs)
    return out


async def _read(client: Client, ids: list[ua.NodeId], attr: ua.AttributeIds) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    for start in range(0, len(ids), _BATCH * 5):
        out += await client.uaclient.read_attributes(ids[start : start + _BATCH * 5], attr)
    return out


async def browse(
    client: Client,
    root: str = "i=85",
    depth: int = 10,
    max_nodes: int = 10000,
    pattern: str = "*",
    include_ns0: bool = False,
) -> BrowseResult:
    """Walk below ``root`` (default: the Objects folder) and describe every variable found."""
    start = ua.NodeId.from_string(root)
    level: list[tuple[ua.NodeId, list[tuple[int, str]]]] = [(start, [])]
    found: list[tuple[ua.NodeId, list[tuple[int, str]]]] = []
    units: dict[str, ua.NodeId] = {}  # variable node id string -> its EngineeringUnits property
    seen = {start.to_string()}
    visited = 0
    truncated = False
    for _ in range(depth):
        if not level or truncated:
            break
        children = await _browse_children(client, [nid for nid, _ in level])
        nxt: list[tuple[ua.NodeId, list[tuple[int, str]]]] = []
        for (parent, path), refs in zip(level, children, strict=True):
            for ref in refs:
                nid = ref.NodeId
                key = nid.to_string()
                if ref.ReferenceTypeId == _HAS_PROPERTY:
                    if ref.BrowseName.Name == "EngineeringUnits":
                        units[parent.to_string()] = nid
                    continue
                if key in seen or (nid.NamespaceIndex == 0 and not include_ns0):
                    continue
                if visited >= max_nodes:
                    truncated = True
                    break
                seen.add(key)
                visited += 1
                child_path = [*path, (ref.BrowseName.NamespaceIndex, ref.BrowseName.Name)]
                nxt.append((nid, child_path))
                if ref.NodeClass == ua.NodeClass.Variable:
                    found.append((nid, child_path))
        level = nxt
    found = [(n, p) for n, p in found if fnmatch.fnmatchcase("/".join(x for _, x in p), pattern)]
    ids = [n for n, _ in found]
    dtypes = await _read(client, ids, ua.AttributeIds.DataType)
    ranks = await _read(client, ids, ua.AttributeIds.ValueRank)
    dims = await _read(client, ids, ua.AttributeIds.ArrayDimensions)
    access = await _read(client, ids, ua.AttributeIds.UserAccessLevel)
    unit_keys = [k for k in (n.to_string() for n in ids) if k in units]
    unit_vals = await _read(client, [units[k] for k in unit_keys], ua.AttributeIds.Value)
    unit_of: dict[str, str] = {}
    for k, dv in zip(unit_keys, unit_vals, strict=True):
        v = dv.Value.Value if dv.Value is not None else None
        if isinstance(v, ua.EUInformation) and v.DisplayName is not None and v.DisplayName.Text:
            unit_of[k] = str(v.DisplayName.Text)
    variables: list[FoundVariable] = []
    for (nid, path), dt, rk, dm, ac in zip(found, dtypes, ranks, dims, access, strict=True):
        key = nid.to_string()
        fv = FoundVariable(node_id=key, path=path, unit=unit_of.get(key, ""))
        if dt.Value is not None and isinstance(dt.Value.Value, ua.NodeId):
            fv.data_type = _type_name(dt.Value.Value)
        if rk.Value is not None and isinstance(rk.Value.Value, int):
            fv.value_rank = rk.Value.Value
        if dm.Value is not None and isinstance(dm.Value.Value, list):
            fv.array_dims = [int(x) for x in dm.Value.Value]
        if ac.Value is not None and isinstance(ac.Value.Value, int):
            fv.writable = bool(ac.Value.Value & ua.AccessLevel.CurrentWrite.mask)
        variables.append(fv)
    undecided = [v for v in variables if v.value_rank in (-2, -3)]
    if undecided:
        vals = await _read(client, [ua.NodeId.from_string(v.node_id) for v in undecided], ua.AttributeIds.Value)
        for v, dv in zip(undecided, vals, strict=True):
            v.value_is_array = dv.Value is not None and isinstance(dv.Value.Value, list)
    return BrowseResult(variables, visited, truncated, await client.get_namespace_array())


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SEQ = re.compile(r"(block)?seq(uence)?(no|nr|number)?$|counter$", re.I)
_FS = re.compile(r"(sample_?rate|sampling_?rate|fs)(_?hz)?$", re.I)
_SPEED = re.compile(r"speed_?hz$", re.I)


def to_profile_toml(result: BrowseResult, endpoint: str = "") -> str:
    """A profile TOML that a config can name unchanged (``profile = "path/to/file.toml"``)."""
    ns_count = Counter(ns for v in result.variables for ns, _ in v.path)
    default_ns = ns_count.most_common(1)[0][0] if ns_count else 0
    namespace = result.namespaces[default_ns] if default_ns < len(result.namespaces) else ""
    lines = [
        f"# OPC UA profile written by `edgekit browse {endpoint}`".rstrip(),
        f"# {len(result.variables)} variables"
        + (" — the walk hit --max-nodes, so this list is INCOMPLETE" if result.truncated else ""),
        f"description = {_q('Discovered from ' + endpoint if endpoint else 'Discovered by edgekit browse')}",
        f"namespace = {_q(namespace)}",
        "",
    ]
    by_parent: dict[tuple[tuple[int, str], ...], list[FoundVariable]] = {}
    for v in result.variables:
        by_parent.setdefault(tuple(v.path[:-1]), []).append(v)
    used_tags: set[str] = set()
    waveform_lines: list[str] = []
    for v in result.variables:
        if v.is_array:
            continue
        tag = ".".join(name for _, name in v.path)
        if tag in used_tags:
            tag = v.node_id
        used_tags.add(tag)
        lines += ["[[nodes]]", f"tag = {_q(tag)}", f"node_id = {_q(v.node_id)}",
                  f"browse_path = {_q(v.browse_path(default_ns))}", f"data_type = {_q(v.data_type)}"]
        if v.unit:
            lines.append(f"unit = {_q(v.unit)}")
        lines.append("")
    for parent, members in by_parent.items():
        arrays = [m for m in members if m.is_array and m.data_type in ("Float", "Double")]
        others = [m for m in members if m.is_array and m.data_type not in ("Float", "Double")]
        for m in others:
            waveform_lines.append(f"# array {m.node_id} ({m.data_type}{m.array_dims}) is not a waveform; not read")
        if not arrays:
            continue
        scalars = {m.path[-1][1]: m for m in members if not m.is_array}
        fs = next((m for name, m in scalars.items() if _FS.search(name)), None)
        seq = next((m for name, m in scalars.items() if _SEQ.search(name)), None)
        speed = next((m for name, m in scalars.items() if _SPEED.search(name)), None)
        asset = ".".join(name for _, name in parent) or "root"
        if fs is None:
            waveform_lines.append(f"# arrays under {asset} have no sample-rate sibling: add a [[waveforms]] entry with fs")
            for a in arrays:
                waveform_lines.append(f"#   {a.node_id} ({a.data_type}{a.array_dims})")
            continue

        def ref(m: FoundVariable) -> str:
            return f"{{ node_id = {_q(m.node_id)}, browse_path = {_q(m.browse_path(default_ns))} }}"

        waveform_lines += ["[[waveforms]]", f"asset = {_q(asset)}", "channels = ["]
        for a in arrays:
            cid = a.path[-1][1].lower()
            waveform_lines.append(
                f"    {{ id = {_q(cid)}, node_id = {_q(a.node_id)}, browse_path = {_q(a.browse_path(default_ns))} }},"
                + (f"  # {a.array_dims}" if a.array_dims else "")
            )
        waveform_lines.append("]")
        waveform_lines.append(f"fs_node = {ref(fs)}")
        if seq is not None:
            waveform_lines.append(f"seq = {ref(seq)}")
        if speed is not None:
            waveform_lines.append(f"speed_node = {ref(speed)}")
        waveform_lines.append("")
    return "\n".join(lines + waveform_lines).rstrip() + "\n"


def summary(result: BrowseResult) -> list[dict[str, Any]]:
    """One JSON-able row per variable (for ``edgekit browse`` without ``--out``)."""
    return [
        {"node_id": v.node_id, "path": v.plain_path(), "type": v.data_type, "dims": v.array_dims, "unit": v.unit}
        for v in result.variables
    ]
