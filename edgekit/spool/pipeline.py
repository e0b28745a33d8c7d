"""Pipelined admission (``Spool.submit``): one committer thread, adaptive group commit.

Contract (see also the :mod:`edgekit.spool` package docstring, "Pipelined admission"):

* ``submit(items, done)`` validates the items at once (a bad item raises :class:`SpoolError` in the
  caller, nothing queued) and returns an :class:`Admission` without waiting for a commit. It
  blocks only while the bytes queued and not yet committed exceed ``submit_pending_bytes``
  (memory stays flat; a single larger submission is accepted when nothing else is queued).
* A submission is **admitted when its transaction commits** — not before: until then its records
  have no seq and are exactly like items still in the caller's memory (a crash loses them, and
  only them). Submissions are admitted in submission order, each one all or nothing.
* The committer thread takes *everything queued* — up to ``segment_max_bytes`` (at least one
  submission; never more than the quota) — into ONE transaction, one fsync, and runs it through the same admission code as
  ``append_many`` (seqs, full policy, gaps, quotas: identical rules, items in submission order).
  At light load a submission is committed alone as soon as it arrives (no linger, no added
  latency); under load the queue fills while a commit is in flight and the next transaction
  grows with it, so the cost of a commit is shared by more records the busier the spool is.
* ``ts`` ``None`` in an item means "the commit time" (one value per transaction, so records of
  several submissions of one stream and kind can form one segment).
* ``block`` policy: a transaction that does not fit waits for space in the committer
  (``wait_for_space``) and is retried; it never raises :class:`SpoolFull` to the submitter —
  the back-pressure is that ``submit`` blocks once ``submit_pending_bytes`` are queued. While it
  waits it applies the acks queued by ``submit_ack`` (they are what frees the space).
* Any other failure (:class:`SpoolDiskFull`, :class:`SpoolCorrupt`, an error while waiting for
  space, …) rolls the transaction back and fails every submission in it with that exception
  (logged); later submissions are still tried, so a caller that resubmits a failed group sees it
  admitted after them. Nothing ends the committer thread but ``close``.
* ``close`` commits what is queued first; under ``block`` with no space it waits at most
  ``close_timeout`` s and then fails the rest with :class:`SpoolError` (logged at ERROR).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SpoolError, SpoolFull

__all__ = ["Admission", "GroupCommitter"]

log = logging.getLogger("edgekit.spool")

Item = tuple[str, str, Any, "float | None"]


class Admission:
    """One submitted group of records: filled in by the committer thread when its transaction ends."""

    __slots__ = ("items", "nbytes", "stamp", "_done", "_seqs", "_error", "_callback")

    def __init__(self, items: Sequence[Item], nbytes: int, stamp: bool,
                 callback: Callable[[Admission], object] | None) -> None:
        self.items = items
        self.nbytes = nbytes
        self.stamp = stamp  # some ts is None: stamp with the commit time
        self._done = threading.Event()
        self._seqs: list[int | None] | None = None
        self._error: BaseException | None = None
        self._callback = callback

    def done(self) -> bool:
        """True once the group's transaction committed or failed."""
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> list[int | None]:
        """Seq (or ``None``: dropped by the full policy) per item once committed; raises the failure.

        Raises :class:`TimeoutError` if not settled within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"submission of {len(self.items)} records not committed within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._seqs is not None
        return self._seqs

    def exception(self) -> BaseException | None:
        """The failure once settled (``None`` if committed); does not wait."""
        return self._error

    def _settle(self, seqs: list[int | None] | None, error: BaseException | None) -> None:
        self._seqs, self._error = seqs, error
        self._done.set()
        cb, self._callback = self._callback, None
        if cb is not None:
            try:
                cb(self)
            except BaseException:  # a callback must not kill the committer (nor fail committed groups)
                log.exception("spool submit callback failed")


class GroupCommitter:
    """The committer thread of one spool. ``admit(items)`` runs one transaction (append_many's rules);
    ``wait_for_space(timeout, nbytes)`` is the spool's; one transaction takes queued submissions up
    to ``txn_bytes`` (at least one)."""

    def __init__(self, admit: Callable[[list[tuple[str, str, Any, float]]], list[int | None]],
                 ack: Callable[[str, str, int, str], None],
                 wait_for_space: Callable[[float, int], bool], pending_limit: int, txn_bytes: int,
                 name: str) -> None:
        self._admit = admit
        self._ack = ack
        self._acks: dict[tuple[str, str, str], int] = {}  # (uplink, stream, epoch) -> queued cumulative ack
        self._wait_for_space = wait_for_space
        self._limit = max(1, pending_limit)
        self._txn_bytes = txn_bytes
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Admission] = deque()
        self._queued_bytes = 0  # queued + being committed
        self._busy = False
        self._closing = False
        self._close_deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, adm: Admission) -> Admission:
        wait = not self.in_committer()  # a done callback submitting must not wait for itself
        with self._cond:
            while (wait and self._queued_bytes and self._queued_bytes + adm.nbytes > self._limit
                   and not self._closing):
                self._cond.wait()
            if self._closing:
                raise SpoolError("spool is closed")
            self._queue.append(adm)
            self._queued_bytes += adm.nbytes
            self._cond.notify_all()
        return adm

    def submit_ack(self, uplink: str, stream: str, seq: int, epoch: str) -> None:
        """Queue a cumulative ack; the committer applies the highest queued per (uplink, stream),
        only if the spool is still in ``epoch``."""
        with self._cond:
            if self._closing:
                raise SpoolError("spool is closed")
            key = (uplink, stream, epoch)
            if seq > self._acks.get(key, -1):
                self._acks[key] = seq
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far (records and acks) is settled; False on timeout
        (and at once from a done callback: the committer cannot wait for itself)."""
        if self.in_committer():
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._acks or self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def in_committer(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, timeout: float) -> None:
        """Commit what is queued (waiting at most ``timeout`` s for space under ``block``), stop."""
        with self._cond:
            self._closing = True
            self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if not self.in_committer():
            self._thread.join()

    def _take(self) -> tuple[dict[tuple[str, str, str], int], list[Admission]] | None:
        with self._cond:
            while not self._queue and not self._acks:
                if self._closing:
                    return None
                self._cond.wait()
            acks, self._acks = self._acks, {}
            self._busy = True
            if not self._queue:
                return acks, []
            group = [self._queue.popleft()]
            size = group[0].nbytes
            while self._queue and size + self._queue[0].nbytes <= self._txn_bytes:
                adm = self._queue.popleft()
                group.append(adm)
                size += adm.nbytes
            return acks, group

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            acks, group = taken
            try:
                self._apply_acks(acks)  # first: they may free space for the group
                if group:
                    self._commit(group)
            except BaseException as exc:  # never die silently: every later submit would hang
                log.exception("spool committer: a transaction failed unexpectedly")
                self._fail([a for a in group if not a.done()], exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._queued_bytes -= sum(a.nbytes for a in group)
                    self._cond.notify_all()

    def _apply_acks(self, acks: dict[tuple[str, str, str], int]) -> None:
        for (uplink, stream, epoch), seq in acks.items():
            try:
                self._ack(uplink, stream, seq, epoch)
            except Exception as exc:  # not lost: unacked records are sent again
                log.warning("spool: queued ack %s %s %d failed: %s (resent later)", uplink, stream, seq, exc)

    def _commit(self, group: list[Admission]) -> None:
        while True:
            now = time.time()
            items: list[tuple[str, str, Any, float]] = []
            for adm in group:
                if adm.stamp:
                    items.extend((s, k, b, now if ts is None else ts) for s, k, b, ts in adm.items)
                else:
                    items.extend(adm.items)  # type: ignore[arg-type]
            try:
                seqs = self._admit(items)
            except SpoolFull:  # block policy: wait in here; the submitters wait on the pending bound
                if time.monotonic() >= self._close_deadline:
                    err = SpoolError(f"spool closed while full: {len(items)} submitted records were not admitted")
                    log.error("%s", err)
                    self._fail(group, err)
                    return
                with self._cond:  # acks queued meanwhile (submit_ack) are what frees the space
                    acks, self._acks = self._acks, {}
                self._apply_acks(acks)
                try:
                    self._wait_for_space(0.25, sum(a.nbytes for a in group))
                except Exception as exc:  # e.g. its prune failed: like a failed transaction
                    log.error("spool committer: waiting for space failed: %s; %d submitted records were "
                              "not admitted", exc, len(items))
                    self._fail(group, exc)
                    return
                continue
            except BaseException as exc:  # settled into the submissions, never lost
                self._fail(group, exc)
                return
            start = 0
            for adm in group:
                end = start + len(adm.items)
                adm._settle(seqs[start:end], None)
                start = end
            return

    @staticmethod
    def _fail(group: list[Admission], exc: BaseException) -> None:
        for adm in group:
            adm._settle(None, exc)
