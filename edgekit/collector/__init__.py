"""edgekit.collector: receive from gateways, store durably (SQLite), then acknowledge.

Public API: :class:`Collector` (``serve(stop_event)``), :func:`run_in_thread` (in-process, for the
demo and tests), :func:`store_summary` / :func:`store_stats` (read a store), :class:`Store`,
:class:`AllowList`. Command line: ``edgekit collect``, ``edgekit store stats|export``.
"""

from .auth import AllowList
from .server import Collector, CollectorThread, run_in_thread
from .store import Store, store_stats, store_summary

__all__ = ["AllowList", "Collector", "CollectorThread", "Store", "run_in_thread", "store_stats", "store_summary"]
