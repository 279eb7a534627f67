"""Utterance vectors: read, pool frames, pick dimensions, L2-normalise.

Clustering works on one vector per utterance. Inputs come in three shapes:

* frame-level Kaldi matrices ``(T, F)`` (fbank, ``--gen_feat`` output such as ``ivector_online.ark``),
  pooled over time (``mean``, or ``mean+std`` which concatenates the standard deviation);
* utterance-level Kaldi vectors ``(D,)`` (and ``(1, D)`` matrices), taken as they are;
* ``.npz`` files, either with two arrays ``utt_ids`` (n,) and ``vectors`` (n, D), or with one
  array per utterance id (frame-level or utterance-level, pooled like an ark).

Then dimensions are selected (``half_index`` keeps dims ``N:``, the context-tower half of a
combined pos/neg embedding, as the original speaker clustering did; ``dims="a:b"`` picks any
slice) and rows are L2-normalised. Arks are streamed: a million utterances never live in memory
as a million separate matrices.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from unspeech.errors import ConfigError, DataError

__all__ = [
    "POOLINGS",
    "UtteranceVectors",
    "pool_frames",
    "parse_dims",
    "select_dims",
    "l2_normalize",
    "check_finite",
    "read_utterance_vectors",
    "write_vectors_npz",
    "prepare_vectors",
]

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "mean+std")

Hook = Callable[..., None]


@dataclass
class UtteranceVectors:
    """One vector per utterance.

    Attributes
    ----------
    utt_ids : list of str, length n
    vectors : ndarray of shape (n, D), float32
    source : str
        Where the vectors came from (used in error messages).
    """

    utt_ids: list[str]
    vectors: np.ndarray
    source: str = "<arrays>"

    def __len__(self) -> int:
        return len(self.utt_ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def pool_frames(mat: np.ndarray, pooling: str = "mean", *, utt_id: str = "?", source: str = "<arrays>") -> np.ndarray:
    """Turn one utterance's matrix into a vector.

    Parameters
    ----------
    mat : ndarray of shape (T, F) or (D,)
        A vector is returned unchanged (it is already utterance-level).
    pooling : {"mean", "mean+std"}

    Returns
    -------
    ndarray of shape (F,) or (2F,) for ``mean+std``, float64
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"`pooling` must be one of {', '.join(POOLINGS)}. Received: pooling={pooling!r}")
    arr = np.asarray(mat)
    if arr.ndim == 1:
        return arr.astype(np.float64)
    if arr.ndim != 2:
        raise DataError(f"{source}: utterance {utt_id!r} has shape {arr.shape}, expected (frames, dim) or (dim,)")
    if arr.shape[0] == 0:
        raise DataError(f"{source}: utterance {utt_id!r} has 0 frames")
    mean = arr.mean(axis=0, dtype=np.float64)
    if pooling == "mean":
        return mean
    return np.concatenate([mean, arr.std(axis=0, dtype=np.float64)])


def parse_dims(spec: str) -> slice:
    """Parse ``"a:b"`` (either end may be empty, negatives count from the end) into a slice."""
    parts = str(spec).split(":")
    if len(parts) != 2:
        raise ConfigError(f"`dims` must look like 'a:b' (e.g. '100:' or '0:100'). Received: dims={spec!r}")
    try:
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise ConfigError(f"`dims` must hold integers, as in '100:200'. Received: dims={spec!r}") from None
    return slice(start, stop)


def select_dims(vectors: np.ndarray, *, half_index: int | None = None, dims: str | None = None) -> np.ndarray:
    """Keep some dimensions of ``(n, D)`` vectors.

    ``half_index=N`` keeps dims ``N:`` (``None`` or -1 keeps everything); ``dims="a:b"`` keeps
    ``a:b``. Giving both is an error, and so is a selection that keeps no dimension.
    """
    use_half = half_index is not None and half_index != -1
    if use_half and dims:
        raise ConfigError(f"give `half_index` or `dims`, not both. Received: half_index={half_index}, dims={dims!r}")
    dim = vectors.shape[1]
    if use_half:
        if not 0 < half_index < dim:
            raise ConfigError(
                f"`half_index` must be in [1, {dim - 1}] for {dim}-dim vectors (it keeps dims half_index:). "
                f"Received: half_index={half_index}"
            )
        return vectors[:, half_index:]
    if dims:
        picked = vectors[:, parse_dims(dims)]
        if picked.shape[1] == 0:
            raise ConfigError(f"`dims` selects no dimension of {dim}-dim vectors. Received: dims={dims!r}")
        return picked
    return vectors


def l2_normalize(vectors: np.ndarray, *, utt_ids: Sequence[str] | None = None) -> np.ndarray:
    """Scale every row of ``(n, D)`` to unit length (in place for float arrays; returned).

    Zero rows cannot be normalised; they stay zero and are named in a warning.
    """
    out = vectors if np.issubdtype(vectors.dtype, np.floating) else vectors.astype(np.float32)
    chunk = 1 << 16
    zero_rows: list[int] = []
    for start in range(0, len(out), chunk):
        block = out[start:start + chunk]
        norms = np.linalg.norm(block, axis=1)
        zero = norms == 0
        if zero.any():
            zero_rows.extend((np.flatnonzero(zero) + start).tolist())
            norms[zero] = 1.0
        block /= norms[:, None].astype(block.dtype)
    if zero_rows:
        names = [utt_ids[i] if utt_ids is not None else f"row {i}" for i in zero_rows[:5]]
        logger.warning("%d all-zero vector(s) left unnormalised, e.g. %s", len(zero_rows), ", ".join(map(str, names)))
    return out


def check_finite(vectors: np.ndarray, utt_ids: Sequence[str] | None = None, source: str = "<arrays>") -> None:
    """Raise :class:`DataError` naming the utterances whose vectors hold NaN or Inf."""
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        idx = np.flatnonzero(bad)
        names = [repr(utt_ids[i]) if utt_ids is not None else f"row {i}" for i in idx[:5]]
        more = f" and {idx.size - 5} more" if idx.size > 5 else ""
        raise DataError(f"{source}: NaN or Inf values in the vectors of {', '.join(names)}{more}")


class _Growing:
    """An (n, D) float32 buffer that doubles when full, so streaming needs no per-row objects."""

    def __init__(self) -> None:
        self.buf: np.ndarray | None = None
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        if self.buf is None:
            self.buf = np.empty((1024, row.shape[0]), dtype=np.float32)
        elif self.n == len(self.buf):
            bigger = np.empty((2 * len(self.buf), self.buf.shape[1]), dtype=np.float32)
            bigger[: self.n] = self.buf
            self.buf = bigger
        self.buf[self.n] = row
        self.n += 1

    def result(self) -> np.ndarray:
        assert self.buf is not None
        return self.buf[: self.n].copy() if self.n < len(self.buf) // 2 else self.buf[: self.n]


def _iter_npz(path: str) -> Iterator[tuple[str, np.ndarray]]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None
    with archive:
        if "utt_ids" in archive.files and "vectors" in archive.files:
            ids = archive["utt_ids"]
            vecs = archive["vectors"]
            if vecs.ndim != 2 or ids.shape != (vecs.shape[0],):
                raise DataError(
                    f"{path}: `utt_ids` {ids.shape} and `vectors` {vecs.shape} do not match; "
                    "expected (n,) ids and (n, D) vectors"
                )
            for utt, vec in zip(ids.tolist(), vecs):
                yield str(utt), vec
        else:
            for utt in archive.files:
                yield utt, archive[utt]


def _iter_source(source: str) -> Iterator[tuple[str, np.ndarray]]:
    if source.endswith(".npz"):
        if not os.path.isfile(source):
            raise DataError(f"file not found: {source}")
        return _iter_npz(source)
    from unspeech import kaldi_io

    return kaldi_io.iter_mats(source)


def _read_row_ark(source: str) -> tuple[list[str], np.ndarray] | None:
    """:func:`unspeech.kaldi_io.read_row_ark` for a plain ark path or ``ark:path`` rspecifier, else None."""
    if source.endswith(".npz"):
        return None
    from unspeech import kaldi_io

    kind, target = kaldi_io.parse_rspecifier(source)
    if kind != "ark" or target.endswith("|") or target.endswith(".gz") or target in ("-", ""):
        return None
    return kaldi_io.read_row_ark(target)


def read_utterance_vectors(
    source: str | os.PathLike,
    *,
    pooling: str = "mean",
    hook: Hook | None = None,
) -> UtteranceVectors:
    """Read one vector per utterance from an ark/scp/pipe rspecifier or an ``.npz`` file.

    Frame-level matrices are pooled with ``pooling`` (see :func:`pool_frames`). Raises
    :class:`DataError` for an empty input, a repeated utterance id, vectors whose dimension
    differs from the first one (naming both utterances), and NaN/Inf values (naming them).
    ``hook("read", None, completed=k, total=None)`` is called every 10,000 utterances.
    """
    source = os.fspath(source)
    if pooling == "mean":  # an ark of one-row records (the usual utterance vectors) is read in bulk
        bulk = _read_row_ark(source)
        if bulk is not None:
            ids, vectors = bulk
            if len(set(ids)) != len(ids):  # name the first repeat only when there is one
                seen_ids: set[str] = set()
                for utt in ids:
                    if utt in seen_ids:
                        raise DataError(f"{source}: utterance {utt!r} appears twice")
                    seen_ids.add(utt)
            if hook is not None:
                hook("read", None, completed=len(ids), total=len(ids))
            return UtteranceVectors(ids, vectors.astype(np.float32, copy=False), source)
    buf = _Growing()
    ids: list[str] = []
    seen: set[str] = set()
    for utt, mat in _iter_source(source):
        vec = pool_frames(mat, pooling, utt_id=utt, source=source)
        if ids and vec.shape[0] != buf.buf.shape[1]:
            raise DataError(
                f"{source}: utterance {utt!r} gives a {vec.shape[0]}-dim vector, "
                f"but {ids[0]!r} gives {buf.buf.shape[1]} dims (dimension mismatch)"
            )
        if utt in seen:
            raise DataError(f"{source}: utterance {utt!r} appears twice")
        if not np.isfinite(vec).all():
            raise DataError(f"{source}: NaN or Inf values in utterance {utt!r}")
        seen.add(utt)
        ids.append(utt)
        buf.append(vec)
        if hook is not None and len(ids) % 10000 == 0:
            hook("read", None, completed=len(ids), total=None)
    if not ids:
        raise DataError(f"{source}: no utterances found (empty input)")
    if hook is not None:
        hook("read", None, completed=len(ids), total=len(ids))
    return UtteranceVectors(ids, buf.result(), source)


def write_vectors_npz(path: str | os.PathLike, utt_ids: Iterable[str], vectors: np.ndarray) -> None:
    """Write utterance vectors as ``.npz`` with arrays ``utt_ids`` (n,) and ``vectors`` (n, D), atomically."""
    from unspeech._fileutil import atomic_path

    ids = np.asarray(list(utt_ids), dtype=str)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(ids) != len(vectors):
        raise DataError(f"{path}: need (n,) ids and (n, D) vectors; got {ids.shape} and {vectors.shape}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, utt_ids=ids, vectors=vectors)


def prepare_vectors(
    data: UtteranceVectors,
    *,
    half_index: int | None = None,
    dims: str | None = None,
    normalize: bool = True,
    copy: bool = True,
) -> UtteranceVectors:
    """Select dimensions, check values and L2-normalise; returns a new :class:`UtteranceVectors`.

    ``copy=False`` lets a caller that owns ``data`` have its float32 vectors normalised in place
    (no second copy of a million vectors)."""
    vectors = select_dims(data.vectors, half_index=half_index, dims=dims)
    vectors = np.array(vectors, dtype=np.float32, copy=True) if copy else np.ascontiguousarray(vectors, dtype=np.float32)
    check_finite(vectors, data.utt_ids, data.source)
    if normalize:
        l2_normalize(vectors, utt_ids=data.utt_ids)
    return UtteranceVectors(list(data.utt_ids), vectors, data.source)
