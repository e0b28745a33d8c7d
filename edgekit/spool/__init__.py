"""The durable spool: an SQLite file between the pipeline and the uplinks (design and contract).

Everything admitted here survives crashes and restarts until every uplink that routes it has
acknowledged it; every record that is *not* kept (a full quota, a corrupt file) is counted and
reported upstream as a gap record. User guide: ``docs/spool.md``.

On-disk format (``FORMAT_VERSION`` 2; one SQLite database in WAL mode, ``<path>`` + ``-wal``/``-shm``)
----------------------------------------------------------------------------------------------
``meta(key TEXT PRIMARY KEY, value TEXT)``
    ``format`` (``"2"``), ``epoch`` (32 hex chars, random, created with the file), ``created``
    (unix time), and after a quarantine ``previous_epoch`` and ``quarantined_file``.
``streams(stream TEXT PRIMARY KEY, last_seq INTEGER, kinds TEXT)``
    The last sequence number *assigned* in each stream (it never decreases, so a seq is never
    reused within an epoch) and the comma-separated record kinds seen in it.
``records(id INTEGER PRIMARY KEY, stream, seq, kind, ts, size, crc, blob, last_seq)``
    One row per *segment*: the records ``seq`` … ``last_seq`` (consecutive seqs) of one stream and
    one kind, admitted by one ``append``/``append_many`` call with the same ``ts``. ``append_many``
    groups each stream's consecutive admitted items of one kind and ts into segments of at most
    ``segment_max_bytes`` (a larger record is a segment alone; a drop inside a run splits it); a
    single ``append`` is a 1-record segment. ``blob`` is :func:`edgekit.codec.pack_segment` output:
    the record blob itself for one record, else a segment blob (the records' blobs back to back with
    a lengths table, or — FeatureFrames that differ only in t0/seq — one stacked header with
    (n, channels, features) values and per-record t0/seq/quality arrays;
    :func:`edgekit.codec.segment_blobs` gives back every record byte for byte). ``size`` = the sum of
    the records' own blob lengths (what the quota counts, so quota arithmetic does not depend on
    how records were grouped); ``crc`` = ``zlib.crc32(blob)`` — one CRC per segment, checked whenever
    a blob is read from the file for an uplink (not when it comes from the delivery cache, see
    below) and by :meth:`Spool.integrity_check`. ``id`` grows with admission order, so
    ``ORDER BY id`` is "oldest first". A covering index ``records_by_last(stream, last_seq, seq, kind,
    size, ts)`` serves paging, acks and backlog counts.
``cursors(uplink TEXT, stream TEXT, acked INTEGER, PRIMARY KEY(uplink, stream))``
    Highest seq acknowledged (cumulatively) by each uplink in each stream; no row means 0.
``open_gaps(stream, reason, first_seq, last_seq, count, since, PRIMARY KEY(stream, reason))``
    Drops counted but not yet sealed into a gap record (see *Gaps*).

Format 1 (one row per record, no ``last_seq``) is **migrated in place on open**: one transaction
adds ``last_seq = seq`` (every old row becomes a 1-record segment), replaces the index and sets
``meta.format`` to 2; a crash before its COMMIT leaves format 1 and the next open migrates again.
There is no way back: an older edgekit refuses a format-2 file (newer format), it does not damage it.

Reading: :meth:`Spool.pending` hands out one :class:`SpoolRow` per record (segments split, records
of a partly acknowledged segment already acked left out); :meth:`Spool.pending_segments` hands out
the stored segments whole (``SpoolRow.count`` records, ``seq`` … ``last_seq``) — what an uplink
sends, without re-encoding. Both count ``limit`` in records.

Invariants
----------
I1  Per stream, seqs are assigned 1, 2, 3, … by :meth:`Spool.append` / ``append_many`` in one
    writer transaction with the rows themselves; a seq is consumed even when its record is dropped
    under ``drop_newest`` or ``oversize`` (so upstream sees a dense sequence in which every hole is
    covered by a gap record's count), and never reused within an epoch. Segments of a stream never
    overlap (each seq is in at most one row).
I2  A record is *pending* for uplink U iff U routes its kind and ``seq > acked(U, stream)``; a
    segment is pending iff its ``last_seq`` is.
I3  A segment is deleted (pruned) only when every uplink that routes its kind has acked its
    ``last_seq`` (a partly acknowledged segment stays whole until then), or when it is dropped by the
    full policy or fails its CRC; pruning runs in bounded chunks (``prune_chunk`` segments per
    transaction) after acks and before any drop, so an ack never stalls the loop on a big delete.
I4  Every dropped record is counted exactly once, in ``open_gaps`` in the *same transaction* as the
    drop; an open gap is sealed into a gap record (also in one transaction) — so the counts in gap
    records always sum to the number of drops, through crashes too. Dropping a segment counts each
    of its records that not every routing uplink has acknowledged (those were delivered, not lost).
I5  Kinds routed by no uplink are assigned a seq but not stored (nobody would ever read them);
    ``stats()["unrouted"]`` counts them. Routes are given at open and may change between runs:
    a new uplink starts with cursor 0 and receives everything still stored.

Durability: what is synced when
-------------------------------
Every public write is one SQLite transaction (``BEGIN IMMEDIATE`` … ``COMMIT``). In WAL mode with
``synchronous=FULL`` (default) the WAL is fsynced at every commit, so when ``append`` returns, the
row survives a power loss; ``append_many`` is one transaction = one fsync for the whole group
(group commit — use it). With ``synchronous="normal"`` a commit survives a process crash (SIGKILL)
but the last transactions may be rolled back by a power loss; the file is never corrupted either
way. Torn writes: WAL frames carry checksums and a commit marker; on the next open SQLite replays
only complete, checksummed transactions, so a kill during a commit loses exactly that uncommitted
transaction (``append`` had not returned, no seq was handed out). Acks and prunes (the delivery
connection) always commit with ``synchronous=NORMAL``: they survive a process crash at once and a
power loss from the next fsynced admission or checkpoint on (the WAL is one sequential file); a
power loss may forget the last acks, whose records are then resent — the collector deduplicates
by (gateway, stream, seq) — and nothing admitted is ever lost by it (a prune commits with its ack).
New files get 32 KiB pages (existing files keep theirs). Deleted rows: ``PRAGMA secure_delete =
FAST`` — bytes of pruned records are zeroed where SQLite rewrites the page anyway, while a page
freed whole keeps its old bytes until it is reused (no extra write per pruned record; the spool
file is not a place to rely on for erasure).

Pipelined admission (``submit``; code and full contract: ``pipeline.py``)
------------------------------------------------------------------------
:meth:`Spool.submit` queues a group for the spool's committer thread and returns an
:class:`Admission` at once; ``Admission.result()`` gives the seqs after the COMMIT (or raises what
failed the transaction); an optional ``done(admission)`` callback runs in the committer thread
then (the runtime wakes its uplinks there). **A submitted record is admitted only when its
transaction commits**: until then it has no seq and is like an item still in the caller's memory
— a crash loses exactly the queued and in-flight submissions, never a committed one, and never part
of a submission (each is all or nothing, in one transaction). Submissions are admitted in
submission order, with the same rules as ``append_many`` (seqs, full policy decided record by
record in that order, quota, gaps, segments). Adaptive group commit: the committer takes
everything queued — up to ``segment_max_bytes`` per transaction, at least one submission — so at
light load each submission commits alone at once (no linger), and under load the submissions
queued during one commit share the next (one fsync for all; records of one stream and kind with
``ts`` ``None`` — stamped with the commit time — form one segment across submissions). Memory is
bounded: ``submit`` blocks while ``submit_pending_bytes`` are queued. Under ``block`` the
committer itself waits for space (the submitter feels it as ``submit`` blocking); ``SpoolFull``
is never raised to a submitter. ``append_many`` first waits for earlier submissions (so one
thread's calls stay in order). ``close`` commits what is queued (under ``block`` without space:
at most ``busy_timeout``, then the rest fails with :class:`~edgekit.errors.SpoolError`, logged).
:meth:`Spool.submit_ack` is ``ack`` applied by the same committer thread (checked at once, merged
per (uplink, stream), returns without waiting; applied only if the spool is still in the epoch
it was queued in — after a quarantine an old seq must not acknowledge the new file's records):
the uplinks' event loop never waits behind a commit's fsync for the ingest lock. Under ``block``
the committer applies queued acks while it waits for space. Until applied the records still count as unacknowledged; a
crash before that loses only the ack (the records are resent, the collector drops duplicates).
:meth:`Spool.flush` waits for queued submissions and acks.

Full policy (``max_bytes`` quota on stored blob bytes, ``reserve_free_bytes`` of free disk)
------------------------------------------------------------------------------------------
The quota counts the stored records' own blob lengths (``sum(size)``; a stacked segment's blob is
smaller, a concatenated one a few bytes per record larger; the file itself is larger by page
overhead and the WAL, bounded by ``wal_size_limit``). The policy is decided record by record, in
call order, before the admitted records are grouped into segments. Free disk is read with :func:`shutil.disk_usage` at most
every ``disk_check_every`` appends or ``disk_check_interval`` seconds; below the reserve the spool
may not grow (the limit becomes the bytes stored now). A batch that does not fit:

* ``drop_oldest``: prune what is fully acked, then drop the oldest non-gap segments whole (by
  admission order, across streams) until it fits; each record lost is counted under reason
  ``drop_oldest``. Records admitted earlier in the same call are not stored yet and so are never
  the "oldest": when even dropping every stored segment cannot make room, the new record is dropped.
* ``drop_newest``: the new record is not stored (``append`` returns ``None``), reason
  ``drop_newest``.
* ``block``: raise :class:`~edgekit.errors.SpoolFull` and admit nothing of the call (all or
  nothing); the caller waits with :meth:`Spool.wait_for_space` and retries — back-pressure.

A single record larger than the whole quota is dropped under every policy (reason ``oversize``;
under ``block`` waiting could never help). ``append_many`` under ``block`` whose items together
exceed the quota raises :class:`~edgekit.errors.SpoolError` (split the batch). Gap records
themselves (kind ``gap``) are exempt: always admitted, never dropped (they are ~100 bytes).

Gaps
----
Drops of stream ``S`` are coalesced per (stream, reason) into one open gap while the first drop is
younger than ``gap_interval``; the next write after that (or :meth:`Spool.pending` when the ingest
side is idle, :meth:`Spool.flush_gaps`, ``close``, or the next open after a crash) seals it into a
:class:`~edgekit.codec.GapRecord` ``(stream=S, first_seq, last_seq, count, reason, ts=time of the
first drop)`` appended as kind ``gap`` to stream ``gap/S`` (:func:`gap_stream`). While an earlier
gap record of ``S`` is still stored (not yet acknowledged: the uplink is probably down) the window
is ``60 x gap_interval``, so an outage accumulates one gap row per stream per minute, not per second
(gap rows are exempt from the quota, so they must stay few). ``count`` is exact; the range may also
contain seqs that were kept and delivered (drops interleaved with admissions). Upstream sees
``missing seqs in range == count`` for ``drop_newest``/``oversize`` (never sent) and
``missing <= count`` for ``drop_oldest``/``corrupt`` (a dropped row may have been sent already).
Route ``"gap"`` to every uplink that should hear about losses.

Corruption and disk full
------------------------
On open, ``PRAGMA quick_check`` (``integrity_on_open``) plus a schema/meta check. A file that is
not a database, fails the check or lacks the schema is *quarantined*: it and its ``-wal``/``-shm``
are renamed to ``<path>.corrupt-<UTC time>`` (+``-wal``/``-shm``, so ``sqlite3`` can still open it
for forensics), an ERROR is logged, a new file with a NEW epoch is created, and one gap record per
stream that could be salvaged from the old file is written, reason ``corrupt``, with ``count`` =
the rows still stored there (best estimate of what was not yet delivered; seqs refer to the old
epoch, named in ``meta.previous_epoch``), or — if nothing could be read — one gap record for stream
``"*"`` with ``count = -1`` (unknown). ``stats()["quarantined"]`` counts it. A file with a *newer*
format version is not touched: :class:`~edgekit.errors.SpoolError`.

During operation, ``SQLITE_FULL`` ("database or disk is full") rolls the transaction back, marks
the disk as low until the next free-space check (so the full policy applies meanwhile) and raises
:class:`SpoolDiskFull`. A malformed-database error (damage the open check missed, or
``integrity_on_open = "off"``) is confirmed with a fresh ``quick_check`` on a new connection; if
confirmed, the file is quarantined exactly as on open (new epoch, gap records) and
:class:`SpoolCorrupt` is raised once; the next call works on the new file (a failing read while
loading at open quarantines too). Both subclass :class:`~edgekit.errors.SpoolError`; nothing of the
failing call was admitted, nothing crashes. Damage SQLite cannot see (bytes changed inside a blob)
fails the row's CRC when :meth:`Spool.pending` reads it: the segment is deleted and its records
counted as drops with reason ``corrupt`` (so they become a gap record like any other drop), never
sent upstream.

Delivery cache: the newest segments this process admitted (up to ``delivery_cache_bytes``, default
32 MiB, oldest evicted first) are kept in memory after their COMMIT, keyed by (stream, first seq);
``pending``/``pending_segments`` still choose rows from the file's index, but take the blob of a
chosen row from the cache when it holds that exact segment (same last seq) — no read-back of the
blob and no CRC check, since these are the very bytes the CRC was computed from. A pruned segment
is forgotten; a reopened (or quarantined) spool starts with an empty cache, so everything admitted
before the open is read from the file and CRC-checked. ``delivery_cache_bytes = 0`` turns it off.

Threads
-------
Two SQLite connections, each with its own lock: the *ingest* connection (``append``,
``append_many``, sealing gaps, ``wait_for_space``) used by the pipeline worker thread (or, for
``submit``, by the spool's committer thread ``spool-commit:<file name>``), and the
*delivery* connection (``pending``, ``ack``, ``first_unacked``, ``backlog``, ``prune``,
``integrity_check``) used by the asyncio loop thread. WAL lets delivery read while ingest commits;
the two writers take turns on the ingest lock (``ack`` and ``prune`` hold it for their short write
transaction — SQLite's ``busy_timeout`` handler would sleep in 1–100 ms steps instead) and every
write transaction is short (one group of rows, or one ack plus at most ``prune_chunk`` deletes).
``pending`` hands out only rows up to each stream's last seq as recorded in memory after the
admitting COMMIT, so an uplink never sees (and acks) a seq the spool has not finished assigning.
Any method may be called from any thread. The in-memory per-stream state (last seqs, kinds,
acks) changes only under the state lock; a quarantine (which may run in the committer thread)
loads the new epoch's state aside and swaps it in at once, so ``first_unacked`` sees one epoch whole.
Lock order: delivery → ingest → in-memory state (``pending`` takes the ingest lock only without
waiting to seal due gaps, and waiting only to drop rows that failed their CRC).

Code: ``schema.py`` (DDL, open/check/quarantine/salvage), ``gaps.py`` (open gaps and sealing),
``base.py`` (shared state, error translation), ``ingest.py`` (admission and the full policy),
``pipeline.py`` (``submit``: the committer thread and :class:`Admission`),
``delivery.py`` (paging, acks, pruning), ``spool.py`` (the :class:`Spool`: open, recover, close).
"""

# edgekit.config imports every section type (this package's config too): load it first, or importing
# edgekit.spool before edgekit.config would enter that cycle from the wrong end.
from .. import config as _config  # noqa: F401  (import order, see above)
from .config import SpoolConfig
from .errors import SpoolCorrupt, SpoolDiskFull
from .gaps import gap_stream
from .pipeline import Admission
from .spool import FORMAT_VERSION, KINDS, Spool, SpoolRow

__all__ = [
    "Admission",
    "FORMAT_VERSION",
    "KINDS",
    "Spool",
    "SpoolConfig",
    "SpoolCorrupt",
    "SpoolDiskFull",
    "SpoolRow",
    "gap_stream",
]
