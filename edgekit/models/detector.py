"""The runtime's anomaly detector: baselines, batched scoring, thresholds, alarms and hot reload.

``build_detector(models, feature_names, baseline_dir)`` checks every configured model against the
pipeline's feature names (ModelContractError at start-up if one does not fit) and returns a
:class:`Detector`. ``Detector.score_many(frames)`` scores the frames of a whole worker batch (any
assets) with ONE ``session.run`` per model and returns, per frame, a :class:`Scored` (the frame with
score columns appended, the alarm events of that block, or the error that kept it unscored) — the
same, frame by frame, as ``Detector.score(frame)`` called on each frame in order:

* one model: column ``anomaly_score``; several: ``anomaly_score`` is the first model's score and every
  model also gets ``anomaly_score_<name>``;
* ``normalise = "baseline"`` models read robust z-scores of the asset's baseline
  (``<baseline_dir>/<asset>.json``). An asset without one is commissioned automatically from its first
  ``commission_blocks`` good blocks (scores are NaN meanwhile), then the baseline is saved;
* thresholds, per asset and model: ``threshold`` from the config, else calibrated on the baseline's
  healthy sample to ``target_false_alarm_rate`` (never below the model's own ``edgekit.threshold``
  while ``model_threshold_floor`` is on), else the model's ``edgekit.threshold``;
* hot reload: every ``reload_interval`` the model file's mtime is checked; a changed file is loaded and
  contract-checked *before* it replaces the old session (the old one keeps scoring meanwhile, so no
  block is dropped); a bad file is refused with a ``model_reloaded`` event of severity WARNING and
  ``data["accepted"] = False``, and the old model stays.

Thread-safety: meant to be driven by one worker thread; a lock also makes ``maybe_reload`` safe to call
from another thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import EdgekitError, ModelContractError, PipelineError
from ..types import Event, EventKind, FeatureFrame, Quality, Severity
from .alarms import AlarmBank
from .baseline import (
    Z_CLIP,
    Baseline,
    BaselineLearner,
    baseline_path,
    calibrate_threshold,
    load_baseline,
    normalise_with,
)
from .config import BaselineConfig, ModelConfig
from .scorer import Scorer, load_scorer

__all__ = ["Detector", "Scored", "Threshold", "build_detector"]

log = logging.getLogger("edgekit.models")
F32 = npt.NDArray[np.float32]
SCORE_COLUMN = "anomaly_score"
_BAD = int(Quality.BAD)
_isfinite = math.isfinite
_sum = np.add.reduce
_vdot = np.vdot
_FLOAT32 = np.dtype(np.float32)
# A float32 sum of squares below this bounds every |term| below Z_CLIP (its rounding error is far below 1 %).
_NO_CLIP_SUMSQ = 0.99 * Z_CLIP * Z_CLIP


@dataclass(frozen=True)
class Threshold:
    """An alarm threshold with the healthy median score it is measured against and where it came from."""

    value: float
    centre: float
    source: str  # "config" | "baseline" | "model" | "model (floor above baseline calibration)"


class Scored(NamedTuple):
    """One frame's result of :meth:`Detector.score_many`: the scored frame and its events, or, when
    ``error`` is set, the input frame unscored (no events)."""

    frame: FeatureFrame
    events: list[Event]
    error: Exception | None


@dataclass
class _Rows:
    """The stacked rows of the frames one ``score_many`` call scores (``bounds``: each frame's row range)."""

    frames: Sequence[FeatureFrame]
    todo: Sequence[tuple[int, _Asset, Baseline | None]]
    bounds: Sequence[int]
    values: F32
    quality: npt.NDArray[np.uint8]
    z: F32 | None
    all_based: bool  # every frame has a baseline


@dataclass
class _Slot:
    cfg: ModelConfig
    scorer: Scorer
    name: str = ""
    next_check: float = 0.0
    refused: tuple[int, int] | None = None  # (mtime_ns, size) of the last refused file


@dataclass
class _Asset:
    baseline: Baseline | None = None
    learner: BaselineLearner | None = None
    warned: bool = False
    # per model: (model sha256, the baseline it was calibrated on, threshold, the threshold as float32:
    # scores are float32 and numpy compares them with a Python float in float32)
    thresholds: dict[str, tuple[str, Baseline | None, Threshold | None, float]] = field(default_factory=dict)
    banks: dict[str, AlarmBank] = field(default_factory=dict)
    # per input-column set of the one-frame path: (baseline, channels, location, 1/scale) of those columns
    inputs: dict[tuple[int, ...], tuple[Baseline, tuple[str, ...], F32, F32]] = field(default_factory=dict)


class _Group:
    """Models that read the same columns the same way: the one-frame path builds their input once.

    ``bound``: per row count, the input buffer and each model's bound run (``Scorer.bind``; None where
    binding failed) with its output buffer, reused by every frame of that many rows.
    """

    __slots__ = ("bound", "columns", "key", "normalised", "slots")

    def __init__(self, key: tuple[int, ...], normalised: bool, slots: tuple[int, ...]) -> None:
        self.columns = np.asarray(key, np.intp)
        self.key = key
        self.normalised = normalised  # normalise == "baseline"
        self.slots = slots
        self.bound: dict[int, tuple[F32, list[tuple[Callable[[], object], F32] | None]]] = {}


class Detector:
    """Scores feature frames with the configured models and turns the scores into alarm events."""

    def __init__(
        self,
        slots: Sequence[_Slot],
        feature_names: Sequence[str],
        baseline_dir: Path,
        baseline: BaselineConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = list(slots)
        self.feature_names = tuple(feature_names)
        self.baseline_dir = Path(baseline_dir)
        self.baseline_cfg = baseline
        self._clock = clock
        self._lock = threading.RLock()
        self._assets: dict[str, _Asset] = {}
        self._zone_col = self.feature_names.index("zone") if "zone" in self.feature_names else -1
        self._names = (*self.feature_names, *self._columns(self._slots))
        self.columns: tuple[str, ...] = self._columns(self._slots)
        self._nf = len(self.feature_names)
        # Several models: column nf repeats the first model's score, model j writes column _first + j.
        self._first = self._nf + 1 if len(self.columns) > 1 else self._nf
        now = clock()
        for s in self._slots:
            s.next_check = now + s.cfg.reload_interval
        self._next_reload = min((s.next_check for s in self._slots if s.cfg.reload), default=float("inf"))
        # The one-frame path (see _score_one) serves models that score every asset and channel.
        self._one_ok = all(not s.cfg.assets and not s.cfg.channels for s in self._slots)
        self._groups: tuple[_Group, ...] = self._group_slots()

    def __repr__(self) -> str:
        return f"Detector(models={[repr(s.scorer) for s in self._slots]}, assets={sorted(self._assets)})"

    @staticmethod
    def _columns(slots: Sequence[_Slot]) -> tuple[str, ...]:
        if len(slots) == 1:
            return (SCORE_COLUMN,)
        return (SCORE_COLUMN, *(f"{SCORE_COLUMN}_{s.name}" for s in slots))

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names of the frames ``score`` returns."""
        return self._names

    @property
    def models(self) -> dict[str, Scorer]:
        return {s.name: s.scorer for s in self._slots}

    # -- baselines ----------------------------------------------------------------------------------
    def _asset(self, asset: str) -> _Asset:
        st = self._assets.get(asset)
        if st is None:
            st = _Asset()
            try:
                st.baseline = load_baseline(self.baseline_dir, asset)
            except PipelineError as exc:
                path = baseline_path(self.baseline_dir, asset)
                aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
                path.replace(aside)
                log.error("%s; moved aside to %s, commissioning a new baseline", exc, aside)
            self._assets[asset] = st
        return st

    def set_baseline(self, baseline: Baseline, *, save: bool = True) -> None:
        """Install (and by default persist) a baseline; thresholds of that asset are recalibrated."""
        with self._lock:
            if save:
                baseline.save(self.baseline_dir)
            st = self._asset(baseline.asset)
            st.baseline, st.learner = baseline, None
            st.thresholds.clear()

    def baseline(self, asset: str) -> Baseline | None:
        with self._lock:
            return self._asset(asset).baseline

    def _commission(self, st: _Asset, frame: FeatureFrame) -> None:
        cfg = self.baseline_cfg
        if cfg.commission_blocks <= 0:
            if not st.warned:
                st.warned = True
                log.warning(
                    "asset %r has no baseline in %s and commissioning is off: baseline-normalised models "
                    "give NaN until `edgekit baseline learn` is run", frame.asset, self.baseline_dir,
                )
            return
        if st.learner is None:
            st.learner = BaselineLearner(
                frame.asset, cfg.commission_blocks, scale_floor=cfg.scale_floor,
                scale_floor_abs=cfg.scale_floor_abs, sample_rows=cfg.sample_rows,
            )
            log.info("asset %r: commissioning a baseline from the next %d blocks", frame.asset,
                     cfg.commission_blocks)
        try:
            done = st.learner.add(frame)
        except PipelineError as exc:
            log.warning("%s; commissioning restarts", exc)
            st.learner = None
            return
        if done:
            base = st.learner.fit()
            path = base.save(self.baseline_dir)
            st.baseline, st.learner = base, None
            st.thresholds.clear()
            log.info("asset %r: baseline learned from %d blocks, saved to %s", frame.asset, base.n_blocks, path)

    # -- thresholds ---------------------------------------------------------------------------------
    def threshold(self, asset: str, model: str) -> Threshold | None:
        """The threshold in force for ``model`` on ``asset`` (None: no alarms possible yet)."""
        with self._lock:
            slot = next(s for s in self._slots if s.name == model)
            st = self._asset(asset)
            return self._threshold(st, slot, st.baseline)

    def _threshold(self, st: _Asset, slot: _Slot, base: Baseline | None) -> Threshold | None:
        """The threshold of ``slot`` on this asset with baseline ``base``; cached per model file and baseline."""
        return self._threshold_entry(st, slot, base)[2]

    def _threshold_entry(
        self, st: _Asset, slot: _Slot, base: Baseline | None
    ) -> tuple[str, Baseline | None, Threshold | None, float]:
        """The cached (model sha256, baseline, threshold, threshold as float32) of ``slot`` on this
        asset, calibrated again when the model file or the baseline changed."""
        hit = st.thresholds.get(slot.name)
        if hit is None or hit[0] != slot.scorer.info.sha256 or hit[1] is not base:
            hit = self._calibrate(st, slot, base)
        return hit

    def _calibrate(
        self, st: _Asset, slot: _Slot, base: Baseline | None
    ) -> tuple[str, Baseline | None, Threshold | None, float]:
        key = slot.scorer.info.sha256
        cfg, info = slot.cfg, slot.scorer.info
        healthy = self._healthy_scores(base, slot) if base is not None else None
        centre = float(np.nanmedian(healthy)) if healthy is not None and np.isfinite(healthy).sum() else 0.0
        thr: Threshold | None = None
        if cfg.threshold is not None:
            thr = Threshold(cfg.threshold, min(centre, cfg.threshold), "config")
        elif cfg.calibrate and healthy is not None and np.isfinite(healthy).sum() >= 10:
            value, med = calibrate_threshold(healthy, cfg.target_false_alarm_rate, cfg.threshold_margin)
            if cfg.model_threshold_floor and info.threshold is not None and info.threshold > value:
                thr = Threshold(info.threshold, min(med, info.threshold), "model (floor above baseline calibration)")
            else:
                thr = Threshold(value, med, "baseline")
        elif info.threshold is not None:
            thr = Threshold(info.threshold, min(centre, info.threshold), "model")
        hit = st.thresholds[slot.name] = (key, base, thr, float(np.float32(thr.value)) if thr is not None else 0.0)
        return hit

    def _healthy_scores(self, base: Baseline, slot: _Slot) -> F32:
        info = slot.scorer.info
        if info.normalise == "baseline":
            bc = self.baseline_cfg
            x = base.sample_crossfit(info.inputs, scale_floor=bc.scale_floor, scale_floor_abs=bc.scale_floor_abs)
        else:
            x = base.sample_raw(info.inputs)
        if slot.cfg.channels:
            wanted = [i for i, c in enumerate(base.channels) if c in set(slot.cfg.channels)]
            x = x[np.isin(base.sample_channel, wanted)]
        return slot.scorer.score(x)

    # -- scoring ------------------------------------------------------------------------------------
    def score(self, frame: FeatureFrame) -> tuple[FeatureFrame, list[Event]]:
        """Append score columns to ``frame`` and return the alarm events of this block.

        Raises what scoring raised (e.g. PipelineError for a frame whose feature names differ).
        """
        (scored, events, error), = self.score_many((frame,))
        if error is not None:
            raise error
        return scored, events

    def score_many(self, frames: Sequence[FeatureFrame]) -> list[Scored]:
        """Score several frames (any assets, in arrival order) with ONE ``session.run`` per model.

        The result is, frame by frame, exactly what ``score`` called on each frame in the same order
        gives: commissioning, baselines, thresholds, k-of-n windows, hysteresis and events advance per
        asset and channel in frame order. Differences: hot reload is checked once per call (its events
        go with the first frame); a frame that cannot be scored comes back unscored with its
        ``error`` set and leaves no trace in any state (no commissioning, no alarm window).
        """
        with self._lock:
            now = self._clock()
            reload_events = self._reload_due(now) if now >= self._next_reload else []
            one = self._score_one(frames[0]) if len(frames) == 1 else None
            results = [Scored(one[0], one[1], None)] if one is not None else self._score_locked(frames)
        if reload_events:
            for r in results:  # the first frame that was scored carries them (as score() would)
                if r.error is None:
                    r.events[:0] = reload_events
                    break
            else:
                if results:
                    results[0].events[:0] = reload_events
        return results

    def _group_slots(self) -> tuple[_Group, ...]:
        groups: dict[tuple[bool, tuple[int, ...]], list[int]] = {}
        for j, slot in enumerate(self._slots):
            info = slot.scorer.info
            groups.setdefault((info.normalise == "baseline", tuple(slot.scorer.columns.tolist())), []).append(j)
        return tuple(_Group(key, normalised, tuple(js)) for (normalised, key), js in groups.items())

    def _score_one(self, frame: FeatureFrame) -> tuple[FeatureFrame, list[Event]] | None:
        """The common case of one frame, without the batch bookkeeping; None when it does not apply.

        Applies to a frame of an asset with a baseline, every row finite and none BAD, models that score
        every asset and channel. Anything else (commissioning, NaN or BAD rows, a failing run) returns
        None *before any state changed*, and the caller takes the general path, which gives the same
        result. Equal to ``_score_locked((frame,))`` bit for bit: the same float32 operations on the same
        elements (normalising only the model's columns instead of all), the same run of the same rows.
        Each numpy call costs a few us right after feature extraction (cold caches), so this path makes
        as few as it can: per input-column set one take, two in-place ufuncs and one ``vdot`` (which
        shows the clip and the finiteness check are no-ops), per model one run bound to reused buffers
        (``Scorer.bind``, from the second frame of a row count on), one concatenate for the scored frame,
        and a quiet block's threshold check in Python on the few scores.
        """
        if not self._one_ok or (frame.names is not self.feature_names and frame.names != self.feature_names):
            return None
        st = self._assets.get(frame.asset)
        if st is None or st.baseline is None:
            return None
        base = st.baseline
        values = frame.values
        n = values.shape[0]
        if values.dtype is not _FLOAT32 or n == 0 or max(frame.quality.tolist()) >= _BAD:
            return None
        slots = self._slots
        cols: list[F32] = [values]
        # (slot, its input rows, its (n, 1) scores, group, its threshold entry in st.thresholds)
        runs: list[tuple[_Slot, F32, F32, _Group, tuple[str, Baseline | None, Threshold | None, float]]] = []
        for group in self._groups:
            entry = group.bound.get(n)
            if entry is None:
                x = values.take(group.columns, axis=1)
            else:  # the bound runs' input buffer ("clip": no bounds check buffering; indices are valid)
                x = values.take(group.columns, 1, entry[0], "clip")
            if group.normalised:
                hit = st.inputs.get(group.key)
                if hit is None or hit[0] is not base or hit[1] != frame.channels:
                    loc, inv = base.aligned(frame.names, frame.channels)
                    hit = st.inputs[group.key] = (base, frame.channels, loc.take(group.columns, axis=1),
                                                  inv.take(group.columns, axis=1))
                # normalise_with, on the model's columns only (its clip follows)
                np.subtract(x, hit[2], x)  # out=x, positional: cheaper to parse
                np.multiply(x, hit[3], x)
            # One call tells the common case: a sum of squares below Z_CLIP^2 means every value is finite
            # and inside the clip range, so clipping would change nothing (NaN fails the comparison).
            if not _vdot(x, x) < _NO_CLIP_SUMSQ:
                if group.normalised:
                    np.minimum(x, Z_CLIP, out=x)
                    np.maximum(x, -Z_CLIP, out=x)
                # A sum is finite only if every term is (inf + -inf is NaN); a sum of finite values that
                # overflows just takes the general path.
                if not _isfinite(_sum(x, None)):
                    return None
            for k, j in enumerate(group.slots):
                slot = slots[j]
                bound = entry[1][k] if entry is not None else None
                try:
                    if bound is not None:
                        bound[0]()
                        col = bound[1]
                    else:
                        col = slot.scorer.run(x).reshape(n, 1)
                except Exception:  # onnxruntime's own errors: the general path reports them per frame
                    if entry is not None:
                        entry[1][k] = None  # and this model runs unbound from now on
                    return None
                # Thresholds before any alarm state moves, as in the general path.
                hit_thr = self._threshold_entry(st, slot, base)
                runs.append((slot, x, col, group, hit_thr))
                cols.append(col)
            if entry is None:  # this row count is new: bind its runs to x from the next frame on
                if len(group.bound) >= 8:
                    group.bound.clear()
                group.bound[n] = (x, [slots[j].scorer.bind(x) for j in group.slots])
        # The scored frame: features, then (several models) the first model's score again, then each.
        if len(runs) > 1:
            cols.insert(1, runs[0][2])
        out = np.concatenate(cols, 1)
        events: list[Event] = []
        for slot, x, col, group, hit_thr in runs:
            thr = hit_thr[2]
            if thr is None:
                continue
            bank = st.banks.get(slot.name)
            if bank is not None and not bank.any_active and bank.channels == frame.channels:
                # No score at or above the threshold (compared in float32, as numpy does): quiet block.
                # NaN compares False.
                at = hit_thr[3]
                for (v,) in col.tolist():
                    if v >= at:
                        break
                else:
                    bank.quiet()
                    continue
            zsel = x if group.normalised else base.normalise(values, frame.names, frame.channels).take(
                group.columns, axis=1)
            events.extend(self._alarms(st, slot, thr, frame, col.reshape(n), zsel))
        return _scored_frame(frame, out, self._names), events

    def _score_locked(self, frames: Sequence[FeatureFrame]) -> list[Scored]:
        # 1. Per frame, in order: layout check, asset state, commissioning -> the baseline each frame is
        #    normalised by (a frame that completes its asset's commissioning is scored, as in score()).
        results: list[Scored] = []
        todo: list[tuple[int, _Asset, Baseline | None]] = []
        fs: list[FeatureFrame] = []
        all_based = True
        for i, frame in enumerate(frames):
            results.append(Scored(frame, [], None))
            if frame.names is not self.feature_names and frame.names != self.feature_names:
                results[i] = Scored(frame, [], PipelineError(
                    f"Detector.score: frame of {frame.asset!r} has {len(frame.names)} feature names that differ "
                    f"from the {len(self.feature_names)} the models were checked against at build"))
                continue
            st = self._assets.get(frame.asset) or self._asset(frame.asset)
            if st.baseline is None:
                self._commission(st, frame)
                all_based = all_based and st.baseline is not None
            todo.append((i, st, st.baseline))
            fs.append(frame)
        if not todo:
            return results
        # 2. Stack every row of every frame: normalise once, one run per model.
        if len(fs) == 1:
            values, quality = fs[0].values, fs[0].quality
            bounds = [0, values.shape[0]]
        else:
            values = np.concatenate([f.values for f in fs])
            quality = np.concatenate([f.quality for f in fs])
            bounds = [0]
            for f in fs:
                bounds.append(bounds[-1] + f.values.shape[0])
        rows = _Rows(fs, todo, bounds, values, quality, self._normalise(fs, todo, values), all_based)
        nf = self._nf
        out = np.empty((values.shape[0], nf + len(self.columns)), dtype=np.float32)
        out[:, :nf] = values
        first = self._first
        slot_scores = []
        for j, slot in enumerate(self._slots):
            try:
                scores = self._score_rows(slot, rows)
            except Exception as exc:  # onnxruntime's own errors: find the frames that fail alone
                scores = self._score_rows_one_by_one(slot, rows, results, exc)
            out[:, first + j] = scores
            slot_scores.append(scores)  # contiguous: cheaper to compare than the column of out
        if first > nf:
            out[:, nf] = out[:, nf + 1]
        # 3. Per frame, in order: thresholds, alarms, the scored frame. A block with no score at or above
        #    the threshold on an asset without an active alarm only advances its k-of-n window.
        z = rows.z
        single = len(fs) == 1
        per_slot = []
        for j, slot in enumerate(self._slots):
            thrs = [self._threshold(st, slot, base) for _, st, base in todo]
            lowest = np.inf
            for t in thrs:
                if t is not None and t.value < lowest:
                    lowest = t.value
            # A row below the lowest threshold of the batch is below its own; NaN compares False.
            per_slot.append((slot, slot.name, thrs, slot_scores[j], np.greater_equal(slot_scores[j], lowest).tolist()))
        for k, (i, st, base) in enumerate(todo):
            if results[i].error is not None:
                continue
            frame = fs[k]
            a, b = bounds[k], bounds[k + 1]
            events = results[i].events
            for slot, name, thrs, scores, above in per_slot:
                thr = thrs[k]
                if thr is None:
                    continue
                bank = st.banks.get(name)
                if (bank is not None and not bank.any_active and True not in above[a:b]
                        and bank.channels == frame.channels):
                    bank.quiet()
                else:
                    events.extend(self._alarms(st, slot, thr, frame, scores[a:b],
                                               None if base is None or z is None
                                               else z[a:b].take(slot.scorer.columns, axis=1)))
            results[i] = Scored(_scored_frame(frame, out if single else out[a:b], self._names), events, None)
        return results

    @staticmethod
    def _normalise(fs: Sequence[FeatureFrame], todo: Sequence[tuple[int, _Asset, Baseline | None]],
                   values: F32) -> F32 | None:
        """Robust z-scores of the stacked ``values`` (rows of frames without a baseline: NaN)."""
        if len(fs) == 1:
            base = todo[0][2]
            return None if base is None else base.normalise(values, fs[0].names, fs[0].channels)
        if all(b is None for _, _, b in todo):
            return None
        locs, invs = [], []
        for f, (_, _, base) in zip(fs, todo, strict=True):
            if base is None:
                nan = np.full(f.values.shape, np.nan, np.float32)
                locs.append(nan)
                invs.append(nan)
            else:
                loc, inv = base.aligned(f.names, f.channels)
                locs.append(loc)
                invs.append(inv)
        return normalise_with(values, np.concatenate(locs), np.concatenate(invs))

    @staticmethod
    def _row_quality(slot: _Slot, rows: _Rows) -> npt.NDArray[np.uint8]:
        """Row quality with BAD on every row this slot must not score (other assets/channels, no baseline)."""
        cfg = slot.cfg
        needs_base = slot.scorer.info.normalise == "baseline"
        if not cfg.assets and not cfg.channels and (rows.all_based or not needs_base):
            return rows.quality
        q = rows.quality.copy()
        for k, (f, (_, _, base)) in enumerate(zip(rows.frames, rows.todo, strict=True)):
            if (cfg.assets and f.asset not in cfg.assets) or (needs_base and base is None):
                q[rows.bounds[k]:rows.bounds[k + 1]] = _BAD
        if cfg.channels:
            chans = [c for f in rows.frames for c in f.channels]
            q[~np.isin(np.asarray(chans), cfg.channels)] = _BAD
        return q

    def _score_rows(self, slot: _Slot, rows: _Rows) -> F32:
        scorer = slot.scorer
        if scorer.info.normalise == "baseline":
            if rows.z is None:
                return np.full(rows.values.shape[0], np.nan, np.float32)
            x = scorer.select(rows.z)
        else:
            x = scorer.select(rows.values)
        return scorer.score(x, self._row_quality(slot, rows))

    def _score_rows_one_by_one(self, slot: _Slot, rows: _Rows, results: list[Scored], exc: Exception) -> F32:
        """The batched run failed: score frame by frame; frames that fail alone come back with the error."""
        scores = np.full(rows.values.shape[0], np.nan, np.float32)
        if len(rows.frames) == 1:
            results[rows.todo[0][0]] = Scored(rows.frames[0], [], exc)
            return scores
        for k, (i, st, base) in enumerate(rows.todo):
            a, b = rows.bounds[k], rows.bounds[k + 1]
            one = _Rows([rows.frames[k]], [(i, st, base)], [0, b - a], rows.values[a:b], rows.quality[a:b],
                        None if rows.z is None else rows.z[a:b], base is not None)
            try:
                scores[a:b] = self._score_rows(slot, one)
            except Exception as err:  # onnxruntime's own error types
                results[i] = Scored(rows.frames[k], [], err)
        return scores

    def _alarms(
        self, st: _Asset, slot: _Slot, thr: Threshold, frame: FeatureFrame, scores: F32, zsel: F32 | None
    ) -> list[Event]:
        """Advance the alarm bank; ``zsel``: the model's inputs as baseline z-scores (for the evidence)."""
        name = slot.name
        bank = st.banks.get(name)
        if bank is None or bank.channels != frame.channels:
            bank = st.banks[name] = AlarmBank(slot.cfg.alarm, asset=frame.asset, model=name,
                                              channels=frame.channels)
        zone = frame.values[:, self._zone_col] if self._zone_col >= 0 else None

        def evidence(i: int) -> list[dict[str, Any]]:  # called only for an emitted alarm_raised event
            if zsel is None:
                return []
            cols = slot.scorer.columns
            row = zsel[i].astype(np.float64)
            order = np.argsort(-np.nan_to_num(np.abs(row), nan=-1.0))[: slot.cfg.alarm.top_features]
            return [
                {"name": slot.scorer.info.inputs[j], "z": round(float(row[j]), 3),
                 "value": float(frame.values[i, cols[j]])}
                for j in order if np.isfinite(row[j])
            ]

        return bank.update(scores, threshold=thr.value, centre=thr.centre, zone=zone, ts=frame.t0,
                           seq=frame.seq, evidence=evidence)

    # -- hot reload ---------------------------------------------------------------------------------
    def _reload_due(self, now: float) -> list[Event]:
        events = self.maybe_reload(now=now)
        self._next_reload = min((s.next_check for s in self._slots if s.cfg.reload), default=float("inf"))
        return events

    def maybe_reload(self, *, force: bool = False, now: float | None = None) -> list[Event]:
        """Check model files whose interval is due (all if ``force``); swap in valid new versions."""
        events: list[Event] = []
        with self._lock:
            t = self._clock() if now is None else now
            for slot in self._slots:
                if not slot.cfg.reload or (not force and t < slot.next_check):
                    continue
                slot.next_check = t + slot.cfg.reload_interval
                ev = self._reload_slot(slot)
                if ev is not None:
                    events.append(ev)
        return events

    def _reload_slot(self, slot: _Slot) -> Event | None:
        path = Path(slot.cfg.path)
        name = slot.name
        try:
            st = path.stat()
        except OSError as exc:
            key = (-1, -1)
            if slot.refused == key:
                return None
            slot.refused = key
            return self._reload_event(name, False, f"model file {path} is unreadable ({exc}); keeping "
                                      f"version {slot.scorer.info.version!r}", str(exc))
        if st.st_mtime_ns == slot.scorer.mtime_ns or slot.refused == (st.st_mtime_ns, st.st_size):
            return None
        try:
            new = load_scorer(path, self.feature_names, intra_op_threads=slot.cfg.intra_op_threads)
        except ModelContractError as exc:
            slot.refused = (st.st_mtime_ns, st.st_size)
            log.warning("model %s: new file refused, old model stays: %s", name, exc)
            return self._reload_event(name, False, f"model {name}: new file refused, keeping version "
                                      f"{slot.scorer.info.version!r}: {exc}", str(exc))
        old = slot.scorer
        slot.scorer, slot.refused = new, None
        self._groups = self._group_slots()
        if new.info.sha256 == old.info.sha256:
            return None  # touched, same content
        log.info("model %s reloaded: version %r -> %r", name, old.info.version, new.info.version)
        return self._reload_event(
            name, True, f"model {name} reloaded: version {old.info.version!r} -> {new.info.version!r}", "",
            old=old.info.version, new=new.info.version, sha256=new.info.sha256,
        )

    @staticmethod
    def _reload_event(model: str, accepted: bool, message: str, error: str, **extra: Any) -> Event:
        return Event(
            kind=EventKind.MODEL_RELOADED, source=f"model/{model}", message=message,
            severity=Severity.INFO if accepted else Severity.WARNING,
            data={"model": model, "accepted": accepted, "error": error, **extra},
        )


def build_detector(
    models: Sequence[ModelConfig],
    feature_names: Sequence[str],
    baseline_dir: str | Path,
    *,
    baseline: BaselineConfig | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Detector:
    """Load and contract-check every model; raise ModelContractError naming the model and the breach."""
    if not models:
        raise ModelContractError("build_detector: no models configured")
    seen: set[str] = set()
    slots = []
    for i, cfg in enumerate(models):
        name = cfg.model_name
        if name in seen:
            raise ModelContractError(f"models[{i}]: name {name!r} is used twice; give each model a unique name")
        seen.add(name)
        try:
            scorer = load_scorer(cfg.path, feature_names, intra_op_threads=cfg.intra_op_threads)
        except EdgekitError as exc:
            raise ModelContractError(f"models[{i}] ({name}): {exc}") from exc
        if cfg.threshold is None and not cfg.calibrate and scorer.info.threshold is None:
            raise ModelContractError(
                f"models[{i}] ({name}): no threshold: the model declares no edgekit.threshold, the config sets "
                "no threshold and calibrate = false"
            )
        slots.append(_Slot(cfg=cfg, scorer=scorer, name=name))
    return Detector(slots, feature_names, Path(baseline_dir), baseline or BaselineConfig(), clock)


_set = object.__setattr__


def _scored_frame(frame: FeatureFrame, values: F32, names: tuple[str, ...]) -> FeatureFrame:
    """``frame`` with ``values``/``names`` replaced (the score columns appended), built without
    FeatureFrame's ``__init__``: its frozen-dataclass field setting and shape check cost ~1 us warm (2-3 us
    right after feature extraction) per block; ``values`` is ``frame.values`` plus score columns, so the
    check holds by construction. Every field is set (tests/models/test_score_one.py compares with the
    constructor)."""
    new = object.__new__(FeatureFrame)
    _set(new, "asset", frame.asset)
    _set(new, "values", values)
    _set(new, "names", names)
    _set(new, "channels", frame.channels)
    _set(new, "t0", frame.t0)
    _set(new, "seq", frame.seq)
    _set(new, "quality", frame.quality)
    _set(new, "reasons", frame.reasons)
    return new
