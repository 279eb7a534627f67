"""All feature matrices of a corpus in one contiguous array plus an offsets index.

The original toolkit kept features in a Python dict and cached every utterance in a memmap
file of its own. :class:`FeatureStore` instead holds frames ``offsets[i]:offsets[i+1]`` of
utterance ``i`` in one ``(total_frames, dim)`` array, in RAM or as ONE memory-mapped file.
Building a memmap store streams the input, so its peak memory does not grow with the corpus.

Cache files in ``memmap_dir`` (``<name>`` is derived from the source path, dtype and limit):

``<name>.feats``
    raw little-endian frames, ``total_frames * dim`` values of the store dtype, then a 16-byte
    build token.
``<name>.index.npz``
    utterance ids, offsets, dim, dtype, the build token and a fingerprint of the source files
    (path, size, mtime). Both are written under temporary names; the data is renamed into place
    first and the index last, and a store opens only when the tokens agree, so an interrupted
    rebuild is noticed (and, with ``reuse``, built again) instead of serving the old frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from unspeech._fileutil import temp_path_beside
from unspeech.errors import ConfigError, DataError

__all__ = ["FeatureStore", "STORE_DTYPES"]

STORE_DTYPES = ("float32", "float16", "float64")

log = logging.getLogger(__name__)

# Random bytes written after the frames of a .feats file and kept in its index: they tie the two
# files of one build together.
_BUILD_TOKEN_BYTES = 16


def _check_dtype(dtype: str | np.dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.name not in STORE_DTYPES:
        raise ConfigError(f"memmap dtype must be one of {', '.join(STORE_DTYPES)}. Received: dtype={dt.name}")
    return dt


def _source_files(rspecifier: str) -> tuple[str | None, list[str]]:
    """(script file or None, data files) behind an rspecifier; pipes are returned as commands."""
    from unspeech.kaldi_io import _split_location, parse_rspecifier, read_scp_entries

    kind, target = parse_rspecifier(rspecifier)
    if kind == "scp" and not target.endswith("|"):
        if not os.path.exists(target):
            raise DataError(f"file not found: {target}")
        files = []
        for utt, loc in read_scp_entries(target):
            try:
                files.append(_split_location(loc)[0])
            except ValueError as exc:  # a malformed [rows,cols] range
                raise DataError(f"{target}: utterance {utt!r} ({loc}): {exc}") from None
        return target, list(dict.fromkeys(files))
    return None, [target]


def _source_fingerprint(rspecifier: str) -> list[list]:
    """(path, size, mtime_ns) of the script file and every data file; a pipe by its command."""
    scp, files = _source_files(rspecifier)
    result = []
    for p in ([scp] if scp else []) + files:
        if p.endswith("|"):
            result.append(["pipe", p])
            continue
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
            sink = _RamSink(dt, _source_bytes(spec))
            ids, offsets = _collect(spec, sink, progress, limit)
            return cls(ids, offsets, sink.result())
        fingerprint = _source_fingerprint(spec)
        prefix = _cache_prefix(Path(memmap_dir), spec, dt, limit)
        index_path = prefix.with_name(prefix.name + ".index.npz")
        if reuse and index_path.exists():
            try:
                store = cls.open(prefix)
            except DataError as exc:  # a cache, not the data: build it again
                log.warning("%s; rebuilding it", exc)
                return cls._build_memmap(spec, prefix, dt, fingerprint, progress, limit)
            if store._fingerprint != fingerprint:
                raise DataError(
                    f"memmap cache {index_path} was built from a different version of {spec} "
                    "(size or modification time changed); delete the cache or run without reuse"
                )
            return store
        return cls._build_memmap(spec, prefix, dt, fingerprint, progress, limit)

    @classmethod
    def _build_memmap(cls, spec, prefix: Path, dt: np.dtype, fingerprint, progress: bool, limit) -> "FeatureStore":
        feats_path = prefix.with_name(prefix.name + ".feats")
        index_path = prefix.with_name(prefix.name + ".index.npz")
        build = os.urandom(_BUILD_TOKEN_BYTES)
        tmp_feats, tmp_index = temp_path_beside(feats_path), temp_path_beside(index_path)
        try:
            with open(tmp_feats, "wb", buffering=1 << 22) as out:
                sink = _FileSink(out, dt)
                ids, offsets = _collect(spec, sink, progress, limit)
                out.write(build)
            with open(tmp_index, "wb") as fh:
                np.savez(
                    fh,
                    utt_ids=np.array(ids, dtype=str),
                    offsets=offsets,
                    dim=np.int64(sink.dim),
                    dtype=np.str_(dt.name),
                    fingerprint=np.str_(json.dumps(fingerprint)),
                    build=np.str_(build.hex()),
                )
            # data first, index last: a kill between leaves new data under the old index, whose
            # build token then differs from the one at the end of the data (see open)
            os.replace(tmp_feats, feats_path)
            os.replace(tmp_index, index_path)
        except BaseException:
            for tmp in (tmp_feats, tmp_index):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise
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
            build = bytes.fromhex(str(idx["build"])) if "build" in idx.files else b""
        expected = int(offsets[-1]) * dim * dt.itemsize
        size = feats_path.stat().st_size
        if size != expected + _BUILD_TOKEN_BYTES:
            raise DataError(
                f"feature cache {feats_path} has {size} bytes, expected {expected + _BUILD_TOKEN_BYTES} from its index")
        with open(feats_path, "rb") as fh:
            fh.seek(expected)
            if not build or fh.read() != build:
                raise DataError(
                    f"feature cache {feats_path} was not written with its index {index_path.name} "
                    "(interrupted rebuild?)")
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


class _RamSink:
    """Frames gathered into one growing in-RAM array; uncompressed data is read straight in."""

    def __init__(self, dtype: np.dtype, source_bytes: int | None):
        self.dtype = dtype
        self.source_bytes = source_bytes
        self.buf: np.ndarray | None = None
        self.rows = 0
        self.last: np.ndarray | None = None

    def _reserve(self, rows: int, dim: int) -> None:
        if self.buf is None:
            # An uncompressed source holds at most size / (dim * 4) float32 frames.
            guess = (self.source_bytes or 0) // (dim * 4) + rows
            self.buf = np.empty((max(guess, rows, 1024), dim), dtype=self.dtype)
        elif self.rows + rows > len(self.buf):
            grown = np.empty((max(2 * len(self.buf), self.rows + rows), dim), dtype=self.dtype)
            grown[: self.rows] = self.buf[: self.rows]
            self.buf = grown

    def alloc(self, shape: tuple, dtype: np.dtype) -> np.ndarray | None:
        if len(shape) != 2 or dtype != self.dtype or (self.buf is not None and shape[1] != self.buf.shape[1]):
            return None
        self._reserve(shape[0], shape[1])
        self.last = self.buf[self.rows : self.rows + shape[0]]
        return self.last

    def append(self, mat: np.ndarray) -> None:
        if mat is not self.last:
            self._reserve(len(mat), mat.shape[1])
            self.buf[self.rows : self.rows + len(mat)] = mat
        self.rows += len(mat)
        self.last = None

    def result(self) -> np.ndarray:
        # A view of the used rows; the unused tail was never touched, so it costs no memory.
        return self.buf[: self.rows]


class _FileSink:
    """Frames streamed to one raw file: memory stays at one matrix whatever the corpus size."""

    alloc = None

    def __init__(self, fh, dtype: np.dtype):
        self.fh = fh
        self.dtype = dtype.newbyteorder("<")
        self.dim: int | None = None

    def append(self, mat: np.ndarray) -> None:
        self.dim = mat.shape[1]
        if mat.size:  # a 0-frame matrix writes nothing (and memoryview cannot cast an empty shape)
            self.fh.write(memoryview(np.ascontiguousarray(mat, dtype=self.dtype)).cast("B"))


def _check_range(utt: str, mat: np.ndarray, dtype: np.dtype, spec: str) -> None:
    """Refuse values the store dtype cannot hold (float64 -> float32, float32 -> float16 gives inf)."""
    if mat.dtype.itemsize <= dtype.itemsize or not mat.size:
        return
    largest = float(np.abs(mat).max())
    if largest > float(np.finfo(dtype).max):
        raise DataError(
            f"{spec}: utterance {utt!r} holds the value {largest:g}, beyond what {dtype.name} can store "
            f"(largest {float(np.finfo(dtype).max):g}); choose a wider memmap dtype")


def _collect(spec: str, sink, progress: bool, limit: int | None) -> tuple[list[str], np.ndarray]:
    """Stream ``spec`` into ``sink``; check ids and dims; return (utt_ids, offsets)."""
    from unspeech.kaldi_io import _iter_mats

    ids: list[str] = []
    lengths: list[int] = []
    seen: set[str] = set()
    dim = None
    items: Iterator = _iter_mats(spec, True, sink.alloc)
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"reading {Path(spec).name}", unit="utt")
    for utt, mat in items:
        if limit is not None and len(ids) >= limit:
            break
        dim = _check_shape(utt, mat, dim, spec)
        if utt in seen:
            raise DataError(f"{spec}: utterance {utt!r} appears twice")
        seen.add(utt)
        _check_range(utt, mat, sink.dtype, spec)
        sink.append(mat)
        ids.append(utt)
        lengths.append(len(mat))
    if not ids:
        raise DataError(f"{spec}: no matrices found (empty archive)")
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets


def _source_bytes(spec: str) -> int | None:
    """Total size of the uncompressed files behind ``spec`` (None for pipes and gzip)."""
    _, files = _source_files(spec)
    total = 0
    for p in files:
        try:
            with open(p, "rb") as fh:
                if fh.read(2) == b"\x1f\x8b":
                    return None
            total += os.path.getsize(p)
        except OSError:  # pipes, missing files: reading reports the real error
            return None
    return total


def _cache_prefix(memmap_dir: Path, spec: str, dt: np.dtype, limit: int | None) -> Path:
    from unspeech.kaldi_io import parse_rspecifier

    _, target = parse_rspecifier(spec)
    key = target if target.endswith("|") else os.path.abspath(target)
    digest = hashlib.sha1(f"{key}|{dt.name}|{limit}".encode()).hexdigest()[:12]
    stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(target.rstrip("| ")).name)[:60]
    return memmap_dir / f"{stem or 'pipe'}.{digest}.{dt.name}"
