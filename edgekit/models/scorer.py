"""One loaded ONNX model and its batched scoring: every scorable row of a block in one ``session.run``.

Rows with a NaN/inf input or bad quality are not sent to the model: their score is NaN. A
:class:`Scorer` is immutable once built; hot reload builds a new one and swaps the reference.

Cost: the per-call path is a few numpy calls plus one run. ``run`` calls the session's pybind
``_sess.run`` directly when onnxruntime exposes it: it skips the Python wrapper's per-call feed-name
validation, which saved 5-10 us per run right after a feature extraction (cold caches; measured on
2- and 20-row runs of the zoo's Mahalanobis model and autoencoder, medians of interleaved repeats;
no difference warm). The input name was checked against the graph at load, so that validation adds
nothing here. Without ``_sess`` (another onnxruntime build) the public ``session.run`` is used.
``run_with_ort_values`` (an OrtValue per call) was 5x slower, and IO binding set up per call no faster
for these tiny inputs. One ``RunOptions`` is made at load and passed to every run: with ``None`` the
binding builds a default one per call (~1.5 us of a 10 us run, warm). The output is used as onnxruntime
returns it: the contract check at load requires a float32 (``tensor(float)``) score output.

``bind`` makes a reusable run for the Detector's one-frame path: input and output bound ONCE (IO binding)
to buffers the caller refills in place, so a run skips the feed dict, the input wrapping and the output
allocation (~3.5 us of a 12 us run warm, measured on the zoo's Mahalanobis model and forest, 2 rows).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ModelContractError
from ..types import Quality
from .contract import ModelInfo, inspect_session, open_session

__all__ = ["Scorer", "load_scorer"]

log = logging.getLogger("edgekit.models")
_BAD = int(Quality.BAD)

F32 = npt.NDArray[np.float32]


class Scorer:
    """A contract-checked ONNX session plus the column indices it reads from a feature frame."""

    def __init__(self, info: ModelInfo, session: object, columns: Sequence[int], mtime_ns: int) -> None:
        self.info = info
        self.session = session
        self.columns = np.asarray(columns, dtype=np.intp)
        self.mtime_ns = mtime_ns
        self._outputs = [info.output_name]
        self._input = info.input_name
        inner = getattr(session, "_sess", None)
        self._fast_run = getattr(inner, "run", None) if inner is not None else None
        self._run_options: object = None
        if self._fast_run is not None:
            import onnxruntime

            self._run_options = onnxruntime.RunOptions()

    def __repr__(self) -> str:
        return (
            f"Scorer({self.info.path!r}, version={self.info.version!r}, inputs={self.info.n_inputs}, "
            f"sha256={self.info.sha256[:12]})"
        )

    def select(self, values: F32, names: Sequence[str] | None = None) -> F32:
        """The model's input columns from a ``(rows, features)`` array laid out like the pipeline's names."""
        if names is not None:
            cols = np.asarray([list(names).index(n) for n in self.info.inputs], dtype=np.intp)
            return np.ascontiguousarray(values[:, cols], dtype=np.float32)
        x = values.take(self.columns, axis=1)  # a new C-contiguous array: what session.run wants
        return x if x.dtype == np.float32 else x.astype(np.float32)

    def run(self, x: F32) -> F32:
        """Raw model scores for ``x`` (rows, n_inputs) float32 — all rows must be finite."""
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        if self._fast_run is not None:
            out: F32 = self._fast_run(self._outputs, {self._input: x}, self._run_options)[0]
            return out.reshape(x.shape[0])
        out = self.session.run(self._outputs, {self._input: x})[0]  # type: ignore[attr-defined]
        return np.asarray(out, dtype=np.float32).reshape(x.shape[0])

    def bind(self, x: F32) -> tuple[Callable[[], object], F32] | None:
        """A reusable run on the rows of buffer ``x`` writing their scores into a new ``(rows, 1)`` buffer.

        ``x`` is float32 ``(rows, n_inputs)`` C-contiguous; the caller keeps it alive and refills it in place
        before each call. Checked here: the bound run must give exactly what :meth:`run` gives for the
        current content of ``x``; None if it does not, raises, or this onnxruntime has no IO binding. Not
        thread-safe: one caller at a time (the Detector calls it under its lock).
        """
        n = x.shape[0]
        out = np.empty((n, 1), np.float32)
        try:
            io = self.session.io_binding()  # type: ignore[attr-defined]
            io.bind_input(self._input, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
            shape = [n] if self.info.output_rank == 1 else [n, 1]
            io.bind_output(self._outputs[0], "cpu", 0, np.float32, shape, out.ctypes.data)
            inner = getattr(io, "_iobinding", None)
            fast = getattr(getattr(self.session, "_sess", None), "run_with_iobinding", None)
            if inner is not None and fast is not None:
                run: Callable[[], object] = functools.partial(fast, inner, self._run_options)
            else:
                run = functools.partial(self.session.run_with_iobinding, io)  # type: ignore[attr-defined]
            run()
        except Exception as exc:  # onnxruntime's own error types; the caller runs unbound
            log.debug("model %s: no bound run for %d rows: %s", self.info.path, n, exc)
            return None
        if not np.array_equal(out.reshape(n), self.run(x), equal_nan=True):
            return None
        return run, out

    def score(self, x: F32, quality: npt.NDArray[np.uint8] | None = None) -> F32:
        """Scores for every row; NaN for rows with non-finite inputs or BAD quality (one run for the rest)."""
        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float32)
        # Common case first, cheaply (each numpy call costs a few us right after feature extraction):
        # every value finite and no row BAD -> one run, no masks.
        if np.isfinite(x).all() and (quality is None or max(quality.tolist(), default=0) < _BAD):
            return self.run(x)
        ok = np.isfinite(x).all(axis=1)
        if quality is not None:
            ok &= quality < _BAD
        if ok.all():
            return self.run(x)
        scores = np.full(x.shape[0], np.nan, dtype=np.float32)
        if ok.any():
            scores[ok] = self.run(np.ascontiguousarray(x[ok]))
        return scores


def load_scorer(
    path: str | Path, feature_names: Sequence[str], *, intra_op_threads: int = 1, inter_op_threads: int = 1
) -> Scorer:
    """Read, contract-check and smoke-run a model; raise :class:`ModelContractError` if anything is wrong.

    The smoke run scores a small batch of zeros and requires one score per row, so a model that loads
    but cannot run (or gives the wrong output shape) is refused here rather than on the first live block.
    """
    p = Path(path)
    try:
        st = p.stat()
        blob = p.read_bytes()
    except OSError as exc:
        raise ModelContractError(f"model {p}: cannot read the file: {exc}") from exc
    session = open_session(
        blob, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads, where=str(p)
    )
    info = inspect_session(session, feature_names, where=f"model {p}", sha256=hashlib.sha256(blob).hexdigest())
    names = list(feature_names)
    scorer = Scorer(info, session, [names.index(n) for n in info.inputs], st.st_mtime_ns)
    probe = np.zeros((3, info.n_inputs), dtype=np.float32)
    try:
        raw = scorer.session.run([info.output_name], {info.input_name: probe})[0]  # type: ignore[attr-defined]
    except Exception as exc:  # onnxruntime's own error types
        raise ModelContractError(f"model {p}: test run on a [3, {info.n_inputs}] batch failed: {exc}") from exc
    arr = np.asarray(raw)
    if arr.size != 3:
        raise ModelContractError(
            f"model {p}: test run on a [3, {info.n_inputs}] batch gave output shape {list(arr.shape)}; "
            "wrong output shape: it must give one score per row ([batch] or [batch, 1])"
        )
    if not np.isfinite(arr.astype(np.float64)).all():
        # Not a contract breach (raw-feature models may divide by a feature), but worth knowing.
        log.warning("model %s: an all-zero input row scores %s", p, arr.ravel())
    return scorer
