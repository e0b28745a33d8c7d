"""Turn configured node references (node id and/or browse path) into NodeIds on a live session.

``nsu=<uri>;s=…`` node ids and unprefixed browse-path elements are mapped through the server's
namespace array, so a profile survives a server that numbers its namespaces differently. Browse
paths are resolved in one TranslateBrowsePathsToNodeIds call per 500 paths; a path that does not
resolve yields the StatusCode the server gave, so the tag is reported Bad with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from asyncua import Client, ua

from ...errors import ConfigError

__all__ = ["NodeRefLike", "parse_browse_path", "parse_node_id", "resolve_refs"]

_CHUNK = 500
_TRUE: Any = True
_FALSE: Any = False


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(code)  # type: ignore[arg-type]  # asyncua types codes as NewType UInt32


def _nid(identifier: int) -> ua.NodeId:
    return ua.NodeId(identifier)  # type: ignore[arg-type]


class NodeRefLike(Protocol):
    @property
    def node_id(self) -> str: ...
    @property
    def browse_path(self) -> str: ...
    @property
    def resolve(self) -> str: ...
    @property
    def namespace(self) -> str: ...


def _ns_index(uri: str, ns_array: Sequence[str], what: str) -> int:
    try:
        return list(ns_array).index(uri)
    except ValueError:
        raise ConfigError(what, f"namespace {uri!r} is not on the server (it has {list(ns_array)})") from None


def parse_node_id(text: str, ns_array: Sequence[str]) -> ua.NodeId:
    """Parse ``ns=2;s=…``, ``i=85`` or ``nsu=urn:…;s=…`` into a NodeId."""
    try:
        if text.startswith("nsu="):
            uri, _, rest = text[4:].partition(";")
            return ua.NodeId.from_string(f"ns={_ns_index(uri, ns_array, 'node_id')};{rest}")
        return ua.NodeId.from_string(text)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("node_id", f"{text!r} is not a valid node id: {exc}") from None


def parse_browse_path(path: str, default_ns: int) -> list[ua.QualifiedName]:
    """``"Plant/2:Machine01/SpeedRpm"`` → qualified names; unprefixed elements get ``default_ns``."""
    names: list[ua.QualifiedName] = []
    for element in path.strip("/").split("/"):
        prefix, sep, name = element.partition(":")
        if sep and prefix.isdigit():
            names.append(ua.QualifiedName(name, int(prefix)))
        else:
            names.append(ua.QualifiedName(element, default_ns))
    if not path.strip("/") or any(not q.Name for q in names):
        raise ConfigError("browse_path", f"{path!r} has an empty element")
    return names


def _uses_path(ref: NodeRefLike) -> bool:
    return ref.resolve == "browse_path" or (ref.resolve == "auto" and not ref.node_id)


async def resolve_refs(
    client: Client, refs: Sequence[NodeRefLike], default_namespace: str, ns_array: Sequence[str]
) -> list[ua.NodeId | ua.StatusCode]:
    """One NodeId (or the failing StatusCode) per reference, in order."""
    out: list[ua.NodeId | ua.StatusCode] = [_status(ua.StatusCodes.BadNodeIdUnknown)] * len(refs)
    pending: list[tuple[int, ua.BrowsePath]] = []
    for i, ref in enumerate(refs):
        if not _uses_path(ref):
            out[i] = parse_node_id(ref.node_id, ns_array)
            continue
        uri = ref.namespace or default_namespace
        default_ns = _ns_index(uri, ns_array, "namespace") if uri else 0
        elements = [
            ua.RelativePathElement(
                ReferenceTypeId=_nid(ua.ObjectIds.HierarchicalReferences),
                IsInverse=_FALSE,
                IncludeSubtypes=_TRUE,
                TargetName=q,
            )
            for q in parse_browse_path(ref.browse_path, default_ns)
        ]
        bp = ua.BrowsePath(
            StartingNode=_nid(ua.ObjectIds.ObjectsFolder), RelativePath=ua.RelativePath(Elements=elements)
        )
        pending.append((i, bp))
    for start in range(0, len(pending), _CHUNK):
        chunk = pending[start : start + _CHUNK]
        results = await client.uaclient.translate_browsepaths_to_nodeids([bp for _, bp in chunk])
        for (i, _), result in zip(chunk, results, strict=True):
            if result.StatusCode.is_good() and result.Targets:
                out[i] = result.Targets[0].TargetId  # type: ignore[assignment]
            else:
                out[i] = result.StatusCode if not result.StatusCode.is_good() else _status(
                    ua.StatusCodes.BadNoMatch
                )
    return out
