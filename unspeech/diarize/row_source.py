"""A recording's embedding rows when they may be too many to hold: spooled to disk, read in blocks.

The diarizer's rows stage (pooling, the speaker count, clustering, assigning rows to speakers)
only ever needs a block of consecutive rows, a few thousand rows picked out by index, or a sum
over all rows. Everything here works on any *row source* that answers ``len(x)``, ``x.shape``,
``x[a:b]`` and ``x[sorted int array]`` with arrays: a NumPy array (a recording in memory), a
:class:`RowView` and a :class:`RowSpool`'s rows on disk. A long recording's rows then never exist
in memory as a whole (rows of 128 float64 values every 100 ms are 147 MB for 4 hours, and every
stage used to hold one or two copies).

* :class:`RowSpool` writes rows block by block to a raw file in a (temporary) folder and hands
  back a :class:`unspeech.kaldi_io.LazyMatrix` over them.
* :class:`RowView` is "rows ``index`` of a source, minus ``mean``, scaled to unit length",
  computed for the rows asked for only.
* :func:`take` gathers rows by index from any source; :func:`block_mean` averages all rows in
  blocks (the same sums, in the same order, whatever the source).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

__all__ = ["ROW_BLOCK", "RowSpool", "RowView", "block_mean", "row_blocks", "take"]

ROW_BLOCK = 1 << 13
"""Rows per block of the block-wise passes (8192 rows of 128 float64 values: 8 MB)."""

_SPAN = 4096
"""A source on disk is read in aligned ranges of at most this many rows (only the ranges holding rows asked for)."""


def row_blocks(x, step: int = ROW_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, rows first .. first + step - 1)`` of a row source, block by block."""
    for a in range(0, len(x), step):
        yield a, np.asarray(x[a:a + step])


def take(x, index: np.ndarray) -> np.ndarray:
    """Rows ``index`` (sorted, repeats allowed) of a row source as an array ``(len(index), D)``.

    Arrays and views are indexed directly; any other source (rows on disk) is read range by range:
    the indices inside one aligned stretch of :data:`_SPAN` rows share one read of the rows from the
    first to the last of them, so a read never holds more than that many rows."""
    index = np.asarray(index, dtype=np.int64)
    if isinstance(x, (np.ndarray, RowView)):
        return x[index]
    if len(index) == 0:
        return np.zeros((0,) + tuple(x.shape[1:]), dtype=x.dtype)
    if np.any(np.diff(index) < 0):
        raise ValueError("take: the row indices of a source on disk must be sorted")
    breaks = np.flatnonzero(np.diff(index // _SPAN)) + 1
    parts = []
    for group in np.split(index, breaks):
        first = int(group[0])
        parts.append(np.asarray(x[first:int(group[-1]) + 1])[group - first])
    return np.concatenate(parts)


def block_mean(x) -> np.ndarray:
    """Mean row ``(D,)`` float64 of a row source with at least one row, summed block by block."""
    total = np.zeros(x.shape[1], dtype=np.float64)
    for _, block in row_blocks(x):
        total += block.sum(axis=0, dtype=np.float64)
    return total / len(x)


class RowView:
    """Rows ``index`` of ``source``, ``mean`` subtracted, optionally scaled to unit length (float64).

    Nothing is computed until rows are asked for: ``view[a:b]`` and ``view[sorted indices]`` give
    arrays of the transformed rows (a boolean mask of the view's rows works too); ``len``, ``shape`` and ``ndim`` are those of the view.

    Parameters
    ----------
    source : a row source ``(N, D)`` (array, :class:`RowView`, rows on disk)
    index : ndarray of shape (M,), int, sorted, optional; the rows of ``source`` seen (default all)
    mean : ndarray of shape (D,), optional; subtracted from every row
    normalise : bool, scale every row to unit length (zero rows stay zero)
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, source, index: np.ndarray | None = None, mean: np.ndarray | None = None, normalise: bool = False):
        self.source = source
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.normalise = bool(normalise)

    def __len__(self) -> int:
        return len(self.source) if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), int(self.source.shape[1]))

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            a, b, step = key.indices(len(self))
            if step != 1:
                raise IndexError("RowView: row slices of step 1 only")
            b = max(a, b)
            rows = np.asarray(self.source[a:b]) if self.index is None else take(self.source, self.index[a:b])
        else:
            key = np.asarray(key)
            key = np.flatnonzero(key) if key.dtype == bool else key.astype(np.int64, copy=False)
            if key.ndim != 1:
                raise IndexError("RowView: a row slice or a 1-d array of row indices")
            rows = take(self.source, key if self.index is None else self.index[key])
        return self._transform(rows)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All rows (for code that needs them at once)."""
        out = self[0:len(self)]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _transform(self, rows: np.ndarray) -> np.ndarray:
        from unspeech.diarize.profiles import l2_normalize

        x = np.array(rows, dtype=np.float64)  # always a fresh array: callers may change it
        if self.mean is not None:
            x -= self.mean
        return l2_normalize(x, copy=False) if self.normalise else x


class RowSpool:
    """Rows written block by block to ``<folder>/<name>.bin``; :meth:`rows` reads them back lazily.

    Parameters
    ----------
    folder : str or path, an existing folder (the caller removes it; a temporary one in the diarizer)
    name : str, file name stem
    dim : int, values per row
    dtype : numpy dtype of the stored values (float32 or float64)
    """

    def __init__(self, folder: str | os.PathLike, name: str, dim: int, dtype=np.float32):
        self.path = os.path.join(os.fspath(folder), f"{name}.bin")
        self.dim = int(dim)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.n_rows = 0
        self._fh = open(self.path, "wb")

    def append(self, rows: np.ndarray) -> None:
        """Add rows ``(n, dim)`` at the end."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"RowSpool {self.path}: rows of shape (n, {self.dim}) expected, got {rows.shape}")
        self._fh.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.n_rows += len(rows)

    def rows(self):
        """Close the file; the rows as a :class:`unspeech.kaldi_io.LazyMatrix` ``(n_rows, dim)``."""
        from unspeech.kaldi_io import LazyMatrix

        if not self._fh.closed:
            self._fh.close()
        return LazyMatrix(self.path, 0, (self.n_rows, self.dim), self.dtype, where=self.path, validate=False)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
