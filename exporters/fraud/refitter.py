"""The outlier refitter: the one process of the fraud service that imports PyOD.

Importing PyOD (with scikit-learn, numba and matplotlib) costs a process about 200 MB;
the request workers must not pay that each. The refitter fits PyOD's detector on a
window of feature rows sent by a worker and answers with what scoring needs: the
imputed training columns sorted, the detector's own training scores and the medians
used for missing values. Workers score new checks from those (exporters.fraud.ecdf).

One refitter serves every gunicorn worker: the master starts it (gunicorn_conf) and
workers inherit its address; a service running in a single process (tests) starts a
private one on its first refit. Wire format: multiprocessing.connection over a Unix
socket in a private directory, HMAC-authenticated with a random key, carrying only
.npz bytes loaded with allow_pickle=False, so nothing received is ever unpickled.
The child reads its key from stdin and exits when stdin closes (its parent is gone).

Run by `Refitter.start()`: `python -m exporters.fraud.refitter SOCKET_PATH`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Client, Listener

import numpy as np

log = logging.getLogger("ticketmon.fraud.refitter")

DETECTORS = ("ECOD", "COPOD")  # the empirical-CDF detectors a worker can score alone
MAX_ROWS = 200_000
MAX_FEATURES = 64


class RefitError(RuntimeError):
    """The refitter could not be reached or refused the window; the last model stays."""


@dataclass(frozen=True)
class Fit:
    """What a worker needs to score against a fitted window."""

    detector: str
    sorted_columns: np.ndarray  # (features, rows), each column sorted ascending
    training_scores: np.ndarray  # (rows,) the detector's decision_scores_
    medians: np.ndarray  # (features,) stand-ins for missing values


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _load(data: bytes) -> dict[str, np.ndarray]:
    if not data.startswith(b"PK"):  # np.load would otherwise try (and refuse) a pickle
        raise ValueError("not an .npz archive")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


# ---- child side ---------------------------------------------------------------------

def impute(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians of the known values (0 for a column nobody sent) fill the gaps."""
    known = ~np.isnan(rows)
    medians = np.zeros(rows.shape[1])
    for j in range(rows.shape[1]):
        if known[:, j].any():
            medians[j] = np.median(rows[known[:, j], j])
    return np.where(known, rows, medians), medians


def fit_window(detector: str, rows: np.ndarray) -> Fit:
    """Fit PyOD's detector on the window (the refitter's job; imports PyOD)."""
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, not {detector!r}")
    if rows.ndim != 2 or not 2 <= rows.shape[0] <= MAX_ROWS or not \
            1 <= rows.shape[1] <= MAX_FEATURES:
        raise ValueError(f"window must be 2..{MAX_ROWS} rows of 1..{MAX_FEATURES} features, "
                         f"got shape {rows.shape}")
    if np.isinf(rows).any():
        raise ValueError("window holds infinite values")
    data, medians = impute(rows.astype(np.float64, copy=False))
    if detector == "ECOD":
        from pyod.models.ecod import ECOD as Model
    else:
        from pyod.models.copod import COPOD as Model
    with warnings.catch_warnings():  # scipy's skew warns on constant columns: expected here
        warnings.simplefilter("ignore")
        model = Model().fit(data)
    return Fit(detector, np.sort(data, axis=0).T.copy(),
               np.asarray(model.decision_scores_, dtype=np.float64), medians)


def answer(request: bytes) -> bytes:
    """One request to one reply; a bad request gets an error reply, never a crash."""
    try:
        doc = _load(request)
        detector = str(doc["detector"])
        result = fit_window(detector, np.asarray(doc["rows"], dtype=np.float64))
    except Exception as exc:
        return _npz(error=np.array(f"{type(exc).__name__}: {exc}"[:500]))
    return _npz(detector=np.array(result.detector), sorted_columns=result.sorted_columns,
                training_scores=result.training_scores, medians=result.medians)


def _exit_when_parent_goes() -> None:
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
    os._exit(0)


def serve(address: str) -> None:
    key = bytes.fromhex(sys.stdin.buffer.readline().decode().strip())
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    listener = Listener(address, family="AF_UNIX", authkey=key)
    from pyod.models.ecod import ECOD  # noqa: F401 - pay the import before the first fit
    while True:
        try:
            conn = listener.accept()
        except Exception as exc:
            log.warning("refitter refused a connection", extra={"error": str(exc)[:200]})
            continue
        with conn:
            try:
                conn.send_bytes(answer(conn.recv_bytes(maxlength=64 * 1024 * 1024)))
            except (OSError, EOFError) as exc:
                log.warning("refitter connection failed", extra={"error": str(exc)[:200]})


# ---- parent side --------------------------------------------------------------------

class Refitter:
    """Starts, restarts and stops the refitter child; `fit` is safe from any process
    forked after `start`, since it only needs the socket address and key."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.directory = ""
        self.address = ""
        self.key = b""
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._owner = 0

    def start(self, supervise: bool = False) -> Refitter:
        self.directory = tempfile.mkdtemp(prefix="ticketmon-fraud-refit-")  # mode 0700
        self.address = os.path.join(self.directory, "refit.sock")
        self.key = os.urandom(32)
        self._owner = os.getpid()
        self._spawn()
        if supervise:
            threading.Thread(target=self._supervise, name="fraud-refitter-supervisor",
                             daemon=True).start()
        return self

    def _spawn(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "exporters.fraud.refitter", self.address],
            stdin=subprocess.PIPE)
        assert self._proc.stdin is not None
        self._proc.stdin.write(self.key.hex().encode() + b"\n")
        self._proc.stdin.flush()

    def _supervise(self) -> None:
        """Restart a refitter that died (OOM, kill) at the same address and key."""
        delay = 1.0
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None:
                proc.wait()  # also returns if gunicorn's master reaped it first
            if self._stopping.wait(delay):
                return
            log.warning("outlier refitter exited; restarting", extra={"delay_s": delay})
            self._spawn()
            delay = min(delay * 2, 60.0)

    def forget(self) -> None:
        """In a forked worker: drop the inherited pipe, so only the master keeps the
        child alive (it exits on EOF once the master is gone)."""
        if self._proc is not None and os.getpid() != self._owner and self._proc.stdin:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()  # this process's copy of the pipe only
            self._proc = None

    def stop(self) -> None:
        if os.getpid() != self._owner:
            return
        self._stopping.set()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def fit(self, detector: str, rows: np.ndarray) -> Fit:
        """Send the window, wait for the fit (never called on the request path)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn = Client(self.address, family="AF_UNIX", authkey=self.key)
                break
            except (OSError, EOFError) as exc:  # not there yet, or restarting under us
                if time.monotonic() > deadline:
                    raise RefitError(f"refitter not reachable: {exc}") from None
                time.sleep(0.2)
        with conn:
            conn.send_bytes(_npz(detector=np.array(detector),
                                 rows=np.ascontiguousarray(rows, dtype=np.float64)))
            if not conn.poll(max(deadline - time.monotonic(), 1.0)):
                raise RefitError(f"refitter did not answer within {self.timeout:g}s")
            try:
                doc = _load(conn.recv_bytes())
            except (EOFError, OSError, ValueError) as exc:
                raise RefitError(f"refitter answer unreadable: {exc}") from None
        return _check_answer(doc, detector, rows.shape)


def _check_answer(doc: dict[str, np.ndarray], detector: str, shape: tuple[int, int]) -> Fit:
    if "error" in doc:
        raise RefitError(f"refit refused: {doc['error']}")
    try:
        fit = Fit(str(doc["detector"]), doc["sorted_columns"].astype(np.float64),
                  doc["training_scores"].astype(np.float64), doc["medians"].astype(np.float64))
    except (KeyError, ValueError, TypeError) as exc:
        raise RefitError(f"refitter answer malformed: {exc!r}") from None
    rows, features = shape
    if (fit.detector != detector or fit.sorted_columns.shape != (features, rows)
            or fit.training_scores.shape != (rows,) or fit.medians.shape != (features,)
            or not np.isfinite(fit.sorted_columns).all()
            or not np.isfinite(fit.training_scores).all()):
        raise RefitError("refitter answer does not match the window sent")
    return fit


shared: Refitter | None = None  # set in the gunicorn master before workers fork


if __name__ == "__main__":
    from ticketmon.core import logs

    logs.setup()
    serve(sys.argv[1])
