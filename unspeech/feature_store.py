"""All feature matrices of a corpus in one contiguous array plus an offsets index.

The original toolkit kept features in a Python dict and cached every utterance in a memmap
file of its own. :class:`FeatureStore` instead holds frames ``offsets[i]:offsets[i+1]`` of
utterance ``i`` in one ``(total_frames, dim)`` array, in RAM or as ONE memory-mapped file.
Building a memmap store streams the input, so its peak memory does not grow with the corpus.

Cache files in ``memmap_dir`` (``<name>`` is derived from the source path, dtype and limit):

``<name>.feats``
    raw little-endian frames, ``total_frames * dim`` values of the store dtype.
``<name>.index.npz``
    utterance ids, offsets, dim, dtype and a fingerprint of the source files (path, size,
    mtime). It is written last, so its presence means the cache is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from unspeech._fileutil import atomic_path
from unspeech.errors import ConfigError, DataError

__all__ = ["FeatureStore", "STORE_DTYPES"]

STORE_DTYPES = ("float32", "float16", "float64")


def _check_dtype(dtype: str | np.dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in STORE_DTYPES:
        raise ConfigError(f"memmap dtype must be one of {', '.join(STORE_DTYPES)}. Received: dtype={dt.name}")
    return dt


def _source_fingerprint(rspecifier: str) -> list[list]:
    """(path, size, mtime_ns) of the source file and, for an scp, of every ark it points to."""
    from unspeech.kaldi_io import _split_location, parse_rspecifier, read_scp_entries

    kind, target = parse_rspecifier(rspecifier)
    if target.endswith("|"):
        return [["pipe", target]]
    paths = [target]
    if kind == "scp" and os.path.exists(target):
        arks = dict.fromkeys(_split_location(loc)[0] for _, loc in read_scp_entries(target))
        paths += [p for p in arks if not p.endswith("|")]
    result = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"file not found: {p}") from None
        result.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return result


class FeatureStore:
    """Frames of many utterances in one array.

    Parameters
    ----------
    utt_ids : sequence of str, length n
    offsets : ndarray of shape (n + 1,), int64
        Utterance ``i`` is ``data[offsets[i]:offsets[i + 1]]``.
    data : ndarray of shape (total_frames, dim)
        float32, float16 or float64; a ``np.memmap`` for disk-backed stores.
    path : Path, optional
        The ``.feats`` file of a memmap store.
    """

    def __init__(self, utt_ids: Sequence[str], offsets: np.ndarray, data: np.ndarray, path: Path | None = None):
        self.utt_ids = list(utt_ids)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.data = data
        self.path = path
        if len(self.offsets) != len(self.utt_ids) + 1 or self.offsets[-1] != len(data):
            raise DataError("feature store index does not match its data (corrupt cache?)")
        self._index: dict[str, int] | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_arrays(
        cls, utt_ids: Sequence[str], mats: Iterable[np.ndarray], dtype: str = "float32"
    ) -> "FeatureStore":
        """Build an in-RAM store from matrices of shape (T_i, dim)."""
        dt = _check_dtype(dtype)
        mats = [np.asarray(m) for m in mats]
        utt_ids = list(utt_ids)
        if len(mats) != len(utt_ids):
            raise DataError(f"{len(utt_ids)} utterance ids but {len(mats)} matrices")
        if not mats:
            raise DataError("cannot build a feature store from zero utterances")
        dim = _check_shape(utt_ids[0], mats[0], None, "arrays")
        for utt, m in zip(utt_ids, mats):
            _check_shape(utt, m, dim, "arrays")
        if len(set(utt_ids)) != len(utt_ids):
            raise DataError("duplicate utterance ids")
        offsets = np.zeros(len(mats) + 1, dtype=np.int64)
        np.cumsum([len(m) for m in mats], out=offsets[1:])
        data = np.concatenate(mats).astype(dt, copy=False) if offsets[-1] else np.zeros((0, dim), dtype=dt)
        return cls(utt_ids, offsets, data)

    @classmethod
    def from_rspecifier(
        cls,
        rspecifier: str | os.PathLike,
        memmap_dir: str | os.PathLike | None = None,
        dtype: str = "float32",
        reuse: bool = False,
        progress: bool = False,
        limit: int | None = None,
    ) -> "FeatureStore":
        """Read an ark/scp/pipe into a store.

        Parameters
        ----------
        rspecifier : str or path
            Anything :func:`unspeech.kaldi_io.iter_mats` reads.
        memmap_dir : path, optional
            Keep the frames in ONE memory-mapped file in this folder instead of RAM.
        dtype : {"float32", "float16", "float64"}
            Storage type (float16 halves memory; values are rounded to half precision).
        reuse : bool
            Open an existing cache for this source without reading it again. A cache whose
            source files changed since it was built is refused with :class:`DataError`.
        progress : bool
            Show a tqdm bar over utterances.
        limit : int, optional
            Keep only the first ``limit`` utterances.
        """
        dt = _check_dtype(dtype)
        spec = os.fspath(rspecifier)
        if memmap_dir is None:
            from unspeech.kaldi_io import load_mats

            ids, mats = load_mats(spec, limit=limit)
            return cls.from_arrays(ids, mats, dtype=dt.name)
        fingerprint = _source_fingerprint(spec)
        prefix = _cache_prefix(Path(memmap_dir), spec, dt, limit)
        index_path = prefix.with_name(prefix.name + ".index.npz")
        if reuse and index_path.exists():
            store = cls.open(prefix)
            if store._fingerprint != fingerprint:
                raise DataError(
                    f"memmap cache {index_path} was built from a different version of {spec} "
                    "(size or modification time changed); delete the cache or run without reuse"
                )
            return store
        return cls._build_memmap(spec, prefix, dt, fingerprint, progress, limit)

    @classmethod
    def _build_memmap(cls, spec, prefix: Path, dt: np.dtype, fingerprint, progress: bool, limit) -> "FeatureStore":
        from unspeech.kaldi_io import iter_mats

        feats_path = prefix.with_name(prefix.name + ".feats")
        index_path = prefix.with_name(prefix.name + ".index.npz")
        ids: list[str] = []
        lengths: list[int] = []
        seen: set[str] = set()
        dim = None
        items: Iterator = iter_mats(spec)
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"caching {Path(spec).name}", unit="utt")
        with atomic_path(feats_path) as tmp_feats:
            with open(tmp_feats, "wb", buffering=1 << 22) as out:
                for utt, mat in items:
                    if limit is not None and len(ids) >= limit:
                        break
                    dim = _check_shape(utt, mat, dim, spec)
                    if utt in seen:
                        raise DataError(f"{spec}: utterance {utt!r} appears twice")
                    seen.add(utt)
                    out.write(np.ascontiguousarray(mat, dtype=dt.newbyteorder("<")).tobytes())
                    ids.append(utt)
                    lengths.append(len(mat))
            if not ids:
                raise DataError(f"{spec}: no matrices found (empty archive)")
            offsets = np.zeros(len(ids) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            with atomic_path(index_path) as tmp_index:
                with open(tmp_index, "wb") as fh:
                    np.savez(
                        fh,
                        utt_ids=np.array(ids, dtype=str),
                        offsets=offsets,
                        dim=np.int64(dim),
                        dtype=np.str_(dt.name),
                        fingerprint=np.str_(json.dumps(fingerprint)),
                    )
        return cls.open(prefix)

    @classmethod
    def open(cls, prefix: str | os.PathLike) -> "FeatureStore":
        """Open a memmap store from its cache prefix (the path without ``.feats``/``.index.npz``)."""
        prefix = Path(prefix)
        index_path = prefix.with_name(prefix.name + ".index.npz")
        feats_path = prefix.with_name(prefix.name + ".feats")
        if not index_path.exists() or not feats_path.exists():
            raise DataError(f"no complete feature cache at {prefix} (.index.npz and .feats needed)")
        with np.load(index_path) as idx:
            ids = idx["utt_ids"].tolist()
            offsets = idx["offsets"]
            dim = int(idx["dim"])
            dt = np.dtype(str(idx["dtype"])).newbyteorder("<")
            fingerprint = json.loads(str(idx["fingerprint"]))
        expected = int(offsets[-1]) * dim * dt.itemsize
        if feats_path.stat().st_size != expected:
            raise DataError(f"feature cache {feats_path} has {feats_path.stat().st_size} bytes, expected {expected}")
        if expected:
            data = np.memmap(feats_path, dtype=dt, mode="r", shape=(int(offsets[-1]), dim))
        else:
            data = np.zeros((0, dim), dtype=dt)
        store = cls(ids, offsets, data, path=feats_path)
        store._fingerprint = fingerprint
        return store

    # ------------------------------------------------------------------ access

    _fingerprint: list | None = None

    @property
    def lengths(self) -> np.ndarray:
        """Frames per utterance, int64 of shape (n,)."""
        return np.diff(self.offsets)

    @property
    def dim(self) -> int:
        """Feature dimension (columns)."""
        return int(self.data.shape[1])

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> np.ndarray:
        """Frames of utterance ``i``: a (T_i, dim) view, not a copy."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"utterance index {i} out of range for {len(self)} utterances")
        i %= len(self)
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, utt in enumerate(self.utt_ids):
            yield utt, self[i]

    def __contains__(self, utt_id: str) -> bool:
        return utt_id in self._lookup()

    def _lookup(self) -> dict[str, int]:
        if self._index is None:
            self._index = {u: i for i, u in enumerate(self.utt_ids)}
        return self._index

    def index(self, utt_id: str) -> int:
        """Position of ``utt_id``; :class:`KeyError` naming it when absent."""
        try:
            return self._lookup()[utt_id]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in the feature store") from None

    def get(self, utt_id: str) -> np.ndarray:
        """Frames of utterance ``utt_id``, shape (T, dim)."""
        return self[self.index(utt_id)]

    def __repr__(self) -> str:
        where = f", memmap={self.path}" if self.path else ""
        return f"FeatureStore({len(self)} utterances, {self.num_frames} frames x {self.dim}, {self.data.dtype}{where})"


def _check_shape(utt: str, mat: np.ndarray, dim: int | None, source: str) -> int:
    if mat.ndim != 2:
        raise DataError(f"{source}: utterance {utt!r} is not a matrix (shape {mat.shape})")
    if dim is not None and mat.shape[1] != dim:
        raise DataError(f"{source}: utterance {utt!r} has {mat.shape[1]} columns, the corpus has {dim}")
    return mat.shape[1]


def _cache_prefix(memmap_dir: Path, spec: str, dt: np.dtype, limit: int | None) -> Path:
    from unspeech.kaldi_io import parse_rspecifier

    _, target = parse_rspecifier(spec)
    key = target if target.endswith("|") else os.path.abspath(target)
    digest = hashlib.sha1(f"{key}|{dt.name}|{limit}".encode()).hexdigest()[:12]
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(target.rstrip("| ")).name)[:60]
    return memmap_dir / f"{stem or 'pipe'}.{digest}.{dt.name}"
