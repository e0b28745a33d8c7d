"""Spool configuration: the ``[spool]`` table (file, durability, quota, full policy, gap coalescing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config.parse import ByteSize, Duration, opt
from ..errors import ConfigError

__all__ = ["SpoolConfig"]


@dataclass(frozen=True)
class SpoolConfig:
    path: str = opt("", "Spool database file; empty means <gateway.data_dir>/spool.sqlite")
    synchronous: Literal["full", "normal"] = opt(
        "full", "full: every commit is fsynced (survives power loss); normal: survives a process crash only")
    max_bytes: ByteSize = opt(1 << 30, "Quota on stored record bytes (blob sizes); beyond it the full policy applies")
    reserve_free_bytes: ByteSize = opt(
        256 << 20, "Free space to leave on the spool's filesystem; below it the spool stops growing")
    full_policy: Literal["drop_oldest", "drop_newest", "block"] = opt(
        "drop_oldest", "When full: drop the oldest stored records, drop the new ones, or block the pipeline")
    gap_interval: Duration = opt(1.0, "Drops within this window are coalesced into one gap record per stream")
    disk_check_every: int = opt(64, "Re-read free disk space at least every N appends")
    disk_check_interval: Duration = opt(5.0, "…and at least this often")
    segment_max_bytes: ByteSize = opt(
        1 << 20, "Consecutive records of one stream admitted together are stored and sent as one segment "
        "of at most this many bytes (a larger record is a segment alone); keep it well below the "
        "uplinks' max_message_bytes")
    prune_chunk: int = opt(512, "Most rows deleted per transaction when pruning acknowledged records")
    integrity_on_open: Literal["quick", "full", "off"] = opt(
        "quick", "Check run on open (PRAGMA quick_check / integrity_check); a failing file is quarantined")
    busy_timeout: Duration = opt(10.0, "How long a writer waits for the other connection's transaction")
    wal_size_limit: ByteSize = opt(64 << 20, "WAL file size kept after a checkpoint (journal_size_limit)")
    delivery_cache_bytes: ByteSize = opt(
        32 << 20, "The newest admitted segments kept in memory (up to this many bytes) so uplinks send "
        "them without reading them back from SQLite; 0 turns the cache off")

    submit_pending_bytes: ByteSize = opt(
        8 << 20, "Pipelined admission (Spool.submit): bytes queued for the committer thread before submit "
        "blocks; everything queued while a commit is in flight is committed in the next transaction")

    def _validate(self) -> None:
        if self.max_bytes < 1:
            raise ConfigError("max_bytes", f"{self.max_bytes!r} must be >= 1 byte")
        if self.disk_check_every < 1:
            raise ConfigError("disk_check_every", f"{self.disk_check_every!r} must be >= 1")
        if self.segment_max_bytes < 1:
            raise ConfigError("segment_max_bytes", f"{self.segment_max_bytes!r} must be >= 1 byte")
        if self.delivery_cache_bytes < 0:
            raise ConfigError("delivery_cache_bytes", f"{self.delivery_cache_bytes!r} must be >= 0")
        if self.submit_pending_bytes < 1:
            raise ConfigError("submit_pending_bytes", f"{self.submit_pending_bytes!r} must be >= 1 byte")
        if self.prune_chunk < 1:
            raise ConfigError("prune_chunk", f"{self.prune_chunk!r} must be >= 1")
