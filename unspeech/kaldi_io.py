"""Kaldi archive (ark) and script (scp) reading and writing.

Plain functions in the spirit of kaldiio (which does the matrix decoding): streaming readers
that never hold a corpus in memory, atomic writers, and the original unspeech API
(``readArk`` / ``readScp`` / ``writeArk`` / ``writeScp``).

Read side
    An *rspecifier* is one of: ``feats.ark``, ``feats.ark.gz``, ``feats.scp``, ``ark:feats.ark``,
    ``scp:feats.scp``, ``ark,t:feats.txt``, ``ark:gunzip -c feats.ark.gz |`` or any ``cmd |`` pipe.
    Binary float/double matrices and vectors (``FM``/``DM``/``FV``/``DV``), compressed matrices
    (``CM``/``CM2``/``CM3``) and text matrices are understood. Script entries may carry a row/column
    range as Kaldi's ``subsegment_data_dir.sh`` and ``limit_feature_dim.sh`` write them
    (``x.ark:3421[3:10]``, ``x.ark:3421[3:10,0:19]``, ``[:,0:19]``; bounds inclusive) and are read as
    kaldiio reads them; a malformed range or one outside the matrix is an error naming the entry
    (Kaldi's allowance of a last row up to 3 past the matrix's last row is clipped with a warning). An entry
    without an offset is a file or ``cmd |`` holding one bare matrix. Every matrix is checked: a truncated
    ark, a bad binary header, NaN/Inf values raise :class:`~unspeech.errors.DataError` naming the
    file and the utterance. Sizes in binary headers (plain and compressed) are checked against the
    bytes left in the file before anything is allocated (streams are read in chunks), a matrix read
    through an scp must end where the archive's next record starts, and ids hold no control
    characters, so a damaged size is one error naming the file, utterance and byte offset, never a
    short or oddly shaped result. Text numbers follow Kaldi's syntax (``1_000`` is refused).
    :func:`iter_mats_lazy` gives long plain binary matrices of an scp or an ark on disk as
    :class:`LazyMatrix` objects that read only the row ranges asked for (hours of frames are
    never held whole); compressed matrices and archives read as a stream (pipes, ``.gz``) are
    read whole as :func:`iter_mats` reads them.

Write side
    :func:`write_mats` writes ``(utt_id, matrix)`` pairs to a binary ark (float32 unless told
    otherwise, optionally Kaldi-compressed) and its scp. New files are written under temporary
    names and renamed at the end, the ark before its scp; an old scp that would not read the new
    ark is removed first, so no kill leaves an scp pointing into an ark it was not written with.
    In append mode a failure truncates the ark back to its old size.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import operator
import os
import re
import stat
import struct
import subprocess
import zlib
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

import numpy as np

from unspeech._fileutil import atomic_path, temp_path_beside
from unspeech.errors import ConfigError, DataError
from unspeech.feature_store import FeatureStore

__all__ = [
    "iter_mats",
    "iter_mats_lazy",
    "LazyMatrix",
    "check_rspecifier_exists",
    "load_mats",
    "read_mat",
    "read_row_ark",
    "write_mats",
    "RowBlocks",
    "read_scp_entries",
    "parse_rspecifier",
    "FeatureStore",
    "COMPRESSION_METHODS",
    "readArk",
    "readScp",
    "writeArk",
    "writeScp",
]

logger = logging.getLogger(__name__)

# Kaldi's CompressionMethod enum (matrix/compressed-matrix.h).
COMPRESSION_METHODS = {
    "auto": 1,  # kAutomaticMethod: what `copy-feats --compress=true` uses
    "speech_feature": 2,  # kSpeechFeature
    "two_byte_auto": 3,
    "two_byte_signed_integer": 4,
    "one_byte_auto": 5,
    "one_byte_unsigned_integer": 6,
    "one_byte_zero_one": 7,
}

# alloc(shape, dtype) -> writable array or None: lets a caller choose where matrices land.
Allocator = Callable[[tuple, np.dtype], "np.ndarray | None"]

_PLAIN_TYPES = {
    b"FM": ("<f4", True),
    b"FV": ("<f4", False),
    b"DM": ("<f8", True),
    b"DV": ("<f8", False),
}

# A number as Kaldi's text matrices hold them (C++ stream syntax): no '_' separators, no hex.
_TEXT_NUMBER = re.compile(rb"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|infinity|nan)", re.IGNORECASE)

# Bytes after the 16-byte global header of a compressed matrix (Kaldi's compressed-matrix.cc):
# CM has an 8-byte header per column, then one byte per value; CM2 two bytes per value; CM3 one.
_COMPRESSED_PAYLOAD = {
    b"CM": lambda rows, cols: cols * 8 + rows * cols,
    b"CM2": lambda rows, cols: 2 * rows * cols,
    b"CM3": lambda rows, cols: rows * cols,
}


# --------------------------------------------------------------------------- rspecifiers


def parse_rspecifier(rspecifier: str | os.PathLike) -> tuple[str, str]:
    """Split an rspecifier into ``(kind, target)`` with kind ``"ark"`` or ``"scp"``.

    ``ark,t:x`` and other Kaldi options before the colon are accepted and ignored (text and
    binary are told apart from the data itself). Without a prefix, a name ending in ``.scp`` is
    a script file and anything else an archive.
    """
    spec = os.fspath(rspecifier).strip()
    if not spec:
        raise ConfigError("empty rspecifier")
    head, sep, rest = spec.partition(":")
    opts = head.split(",")
    if sep and opts[0] in ("ark", "scp") and all(o in ("ark", "scp", "t", "b", "s", "cs", "o", "p") for o in opts):
        return opts[0], rest.strip()
    if spec.endswith(".scp"):
        return "scp", spec
    return "ark", spec


def check_rspecifier_exists(rspecifier: str | os.PathLike, flag: str = "") -> None:
    """Raise :class:`DataError` when the file an rspecifier reads does not exist (cheap: nothing is
    opened; pipes and stdin are not checked). ``flag`` names the option in the message."""
    _, target = parse_rspecifier(rspecifier)
    if target.endswith("|") or target in ("-", ""):
        return
    if not os.path.isfile(target):
        raise DataError(f"file not found: {target}" + (f" ({flag})" if flag else ""))


@contextlib.contextmanager
def _open_stream(target: str) -> Iterator[IO[bytes]]:
    """Open a file, a gzipped file or the stdout of a ``cmd |`` pipe for binary reading."""
    if target.endswith("|"):
        proc = subprocess.Popen(target[:-1], shell=True, stdout=subprocess.PIPE)
        assert proc.stdout is not None
        try:
            yield proc.stdout
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            raise DataError(f"command {target!r} exited with status {code}")
        return
    if target == "-":
        import sys

        yield sys.stdin.buffer
        return
    try:
        raw = open(target, "rb")
    except FileNotFoundError:
        raise DataError(f"file not found: {target}") from None
    except OSError as exc:
        raise DataError(f"cannot open {target}: {exc.strerror}") from None
    with raw:
        magic = raw.peek(2)[:2]
        if magic == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield io.BufferedReader(gz, buffer_size=1 << 20)
        else:
            yield raw


# An utterance id longer than this is garbage, not an id (it is read one byte at a time).
_MAX_KEY_BYTES = 4096
# Reads larger than this go in chunks, so a bogus size costs no more memory than the data there is.
_READ_CHUNK = 1 << 24

# an id (no control characters, no whitespace) after optional whitespace, then the one byte that ends it
_KEY_AHEAD = re.compile(rb"[ \t\n\r]*([^\x00-\x20\x7f]{1,%d})[ \t\n\r]" % _MAX_KEY_BYTES)


def _tell(fd: IO[bytes]) -> int | None:
    try:
        return fd.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _read_key(fd: IO[bytes], where: str) -> str | None:
    """Read an utterance id terminated by a space; None at a clean end of file.

    An id holds no control characters (Kaldi writes only printable tokens), so bytes such as NULs
    after the last matrix are an error at once rather than an id megabytes long.
    """
    peek = getattr(fd, "peek", None)
    if peek is not None:  # fast path: the id and its end are in the read buffer already
        ahead = peek(_MAX_KEY_BYTES + 2)
        found = _KEY_AHEAD.match(ahead)
        if found is not None:
            try:
                key = found.group(1).decode("utf-8")
            except UnicodeDecodeError:
                pass  # the byte-wise path below names the offset
            else:
                fd.read(found.end())
                return key
    chunks = []
    start = None
    while True:
        c = fd.read(1)
        if not c:
            if chunks and b"".join(chunks).strip():
                raise DataError(
                    f"{where}: archive ends inside the id {b''.join(chunks)[:40]!r} at byte {start} (truncated ark?)")
            return None
        if c in b" \t\n\r":  # Kaldi ends an id at a space, a tab or a newline
            if not chunks:
                continue
            break
        if c[0] < 0x20 or c[0] == 0x7F:
            pos = _tell(fd)
            raise DataError(
                f"{where}: byte {c!r} inside an utterance id at byte {pos - 1 if pos is not None else '?'} "
                "(not a Kaldi archive, or garbage after the last matrix?)")
        if not chunks:
            pos = _tell(fd)
            start = pos - 1 if pos is not None else "?"
        chunks.append(c)
        if len(chunks) > _MAX_KEY_BYTES:
            raise DataError(
                f"{where}: no space after {_MAX_KEY_BYTES} bytes of utterance id {b''.join(chunks)[:40]!r}... "
                f"at byte {start} (not a Kaldi archive?)")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(
            f"{where}: utterance id at byte {start} is not valid UTF-8 (not a Kaldi archive?)") from None


def _read_exact(fd: IO[bytes], n: int, where: str) -> bytes:
    """``n`` bytes of ``fd``; large reads go in chunks, so a bogus ``n`` fails on the data there is."""
    if n <= _READ_CHUNK:
        buf = fd.read(n)
    else:
        parts, got = [], 0
        while got < n:
            part = fd.read(min(_READ_CHUNK, n - got))
            if not part:
                break
            parts.append(part)
            got += len(part)
        buf = b"".join(parts)
    if len(buf) != n:
        raise DataError(f"{where}: unexpected end of file, wanted {n} bytes, got {len(buf)} (truncated ark?)")
    return buf


def _bytes_left(fd: IO[bytes]) -> int | None:
    """Bytes between the position of ``fd`` and the end of its file; None for streams (pipes, gzip)."""
    raw = getattr(fd, "raw", None)
    if not isinstance(raw, io.FileIO):
        return None
    try:
        st = os.fstat(raw.fileno())
        return st.st_size - fd.tell() if stat.S_ISREG(st.st_mode) else None
    except (OSError, ValueError):
        return None


def _check_sizes(fd: IO[bytes], kind: str, rows: int, cols: int, nbytes: int, where: str) -> bool:
    """Raise for a negative size or one that needs more bytes than the file holds.

    Returns True when the size was checked against the bytes left (a regular file), False for
    streams, which are then read in chunks so that a bogus size fails on the data there is.
    """
    if rows < 0 or cols < 0:
        raise DataError(f"{where}: corrupt {kind} header: negative size {rows} x {cols}")
    left = _bytes_left(fd)
    if left is not None and nbytes > left:
        raise DataError(
            f"{where}: corrupt {kind} header: {rows} x {cols} needs {nbytes} bytes but only {left} remain "
            "(damaged or truncated ark?)")
    return left is not None


def read_mat(fd: IO[bytes], where: str = "<stream>", alloc: Allocator | None = None) -> np.ndarray:
    """Read one binary or text matrix/vector at the current position of ``fd``.

    Parameters
    ----------
    fd : binary file object positioned just after the utterance id.
    where : str
        Names the file and utterance in error messages.
    alloc : callable, optional
        ``alloc(shape, dtype)`` may return a writable C-contiguous array of that shape and dtype
        (or None); uncompressed binary data is then read straight into it, with no extra copy.

    Returns
    -------
    ndarray of shape (rows, cols) or (dim,), float32 or float64.
    """
    head = fd.read(2)
    if head == b"\0B":
        token = None
        peek = getattr(fd, "peek", None)
        ahead = peek(4)[:4] if peek is not None else b""
        for size in (2, 3):  # fast path: "FM ", "CM2 ", ... in the read buffer
            if ahead[size: size + 1] == b" " and b" " not in ahead[:size]:
                token = fd.read(size + 1)[:size]
                break
        if token is None:  # byte by byte (streams without peek, odd tokens)
            token = b""
            while True:
                c = fd.read(1)
                if not c:
                    raise DataError(f"{where}: unexpected end of file in the matrix header (truncated ark?)")
                if c == b" ":
                    break
                token += c
                if len(token) > 3:
                    raise DataError(f"{where}: unknown binary matrix type {token!r}")
        if token in _PLAIN_TYPES:
            dtype, is_matrix = _PLAIN_TYPES[token]
            size_head = _read_exact(fd, 10 if is_matrix else 5, where)
            if size_head[0] != 4 or (is_matrix and size_head[5] != 4):
                raise DataError(f"{where}: bad size header in {token.decode()} matrix")
            rows = struct.unpack("<i", size_head[1:5])[0]
            cols = struct.unpack("<i", size_head[6:10])[0] if is_matrix else 1
            nbytes = rows * cols * np.dtype(dtype).itemsize
            checked = _check_sizes(fd, token.decode(), rows, cols, nbytes, where)
            shape = (rows, cols) if is_matrix else (rows,)
            # a size not checked against the file (a stream) is only trusted with a buffer once read
            use_alloc = alloc is not None and (checked or nbytes <= _READ_CHUNK)
            out = alloc(shape, np.dtype(dtype)) if use_alloc else None
            if out is None:
                arr = np.frombuffer(_read_exact(fd, nbytes, where), dtype=dtype).reshape(shape)
                return arr.astype(arr.dtype.newbyteorder("="), copy=False)
            got = fd.readinto(memoryview(out).cast("B")) if nbytes else 0
            if got != nbytes:
                raise DataError(f"{where}: unexpected end of file, wanted {nbytes} bytes, got {got} (truncated ark?)")
            return out
        if token in _COMPRESSED_PAYLOAD:
            from kaldiio.matio import read_matrix_or_vector

            # Global header: min, range (float32), rows, cols (int32). The sizes are checked here,
            # before kaldiio decodes exactly these bytes: a negative size would read to the end of
            # the file and a wrong one would eat the next utterance.
            header = _read_exact(fd, 16, where)
            rows, cols = struct.unpack("<ii", header[8:16])
            nbytes = _COMPRESSED_PAYLOAD[token](rows, cols)
            _check_sizes(fd, f"compressed ({token.decode()}) matrix", rows, cols, nbytes, where)
            data = io.BytesIO(b"\0B" + token + b" " + header + _read_exact(fd, nbytes, where))
            try:
                return np.asarray(read_matrix_or_vector(data), dtype=np.float32)
            except (ValueError, AssertionError, struct.error) as exc:
                raise DataError(f"{where}: corrupt compressed matrix ({exc})") from None
        raise DataError(f"{where}: unknown binary matrix type {token!r}; expected FM, DM, FV, DV, CM, CM2 or CM3")
    # Text format: optional whitespace, then '[' ... ']'. A vector sits on one line ("[ 1 2 3 ]");
    # in a matrix every newline (or ';', as Kaldi allows) ends a row, the first row may follow '['.
    text = head
    while text.strip() == b"" and len(text) < 64:
        c = fd.read(1)
        if not c:
            raise DataError(f"{where}: unexpected end of file after the utterance id (truncated ark?)")
        text += c
    if not text.lstrip().startswith(b"["):
        raise DataError(
            f"{where}: bad matrix header {text[:8]!r}: neither binary ('\\0B') nor text ('[') Kaldi data"
        )
    line = text.lstrip()[1:] + fd.readline()
    lines = []
    while b"]" not in line:
        lines.append(line)
        line = fd.readline()
        if not line:
            raise DataError(f"{where}: text matrix is not closed with ']' (truncated ark?)")
    lines.append(line.split(b"]")[0])
    is_vector = len(lines) == 1 and b";" not in lines[0]
    body = b"\n".join(lines).replace(b";", b"\n")
    rows: list[list[float]] = []
    for row in body.split(b"\n"):
        values = row.split()
        if not values:
            continue
        bad = next((v for v in values if not _TEXT_NUMBER.fullmatch(v)), None)
        if bad is not None:
            raise DataError(f"{where}: {bad.decode(errors='replace')!r} in a text matrix is not a number")
        rows.append([float(v) for v in values])
    if is_vector and rows:  # "[ 1 2 3 ]" on one line: a vector, as kaldiio reads it
        return np.asarray(rows[0], dtype=np.float32)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise DataError(f"{where}: text matrix has rows of different lengths {sorted(widths)}")
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), widths.pop() if widths else 0)


def _check_values(arr: np.ndarray, where: str, first_row: int = 0) -> None:
    """Raise :class:`DataError` for NaN/Inf; rows are counted from ``first_row`` in the message."""
    if arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr.reshape(arr.shape[0], -1)))[0]
        raise DataError(f"{where}: matrix contains NaN or Inf (first at row {first_row + int(bad[0])})")


class LazyMatrix:
    """A plain binary matrix (``FM``/``DM``) of an archive on disk, read row range by row range.

    :func:`iter_mats_lazy` gives one for a long matrix, so that a consumer that works through it
    in row blocks (``gen-feat`` on an utterance of hours: 230 MB of float32 for 4 h of 40-dim
    frames) holds only the rows it asked for. Its size header was checked against the bytes in
    the file when it was made; a read that comes up short later (the archive was truncated
    since) is a :class:`DataError` naming the archive, the utterance and the byte offset.

    Parameters
    ----------
    path : str
        The archive.
    offset : int
        Byte offset of the first value (just after the matrix header).
    shape : (rows, cols)
    dtype : ``"<f4"`` or ``"<f8"``
        The stored type; rows come back in it (native byte order).
    where : str
        Names the file and utterance in error messages.
    validate : bool
        Check every row read is finite (:class:`DataError` naming the row).
    """

    ndim = 2

    def __init__(self, path: str, offset: int, shape: tuple[int, int], dtype: str | np.dtype, where: str,
                 validate: bool = True):
        self.path = os.fspath(path)
        self.offset = int(offset)
        self.shape = (int(shape[0]), int(shape[1]))
        self._stored = np.dtype(dtype)
        self.dtype = self._stored.newbyteorder("=")
        self.where = where
        self.validate = bool(validate)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyMatrix({self.path!r}, offset={self.offset}, shape={self.shape}, dtype={self.dtype.name})"

    def __getitem__(self, index: slice | int) -> np.ndarray:
        """Rows ``a:b`` (step 1) as an array of shape (b - a, cols), or row ``i`` as one of shape (cols,)."""
        rows = self.shape[0]
        if isinstance(index, slice):
            first, stop, step = index.indices(rows)
            if step != 1:
                raise IndexError(f"LazyMatrix reads contiguous rows only (step 1). Received: step={step}")
            return self.read_rows(first, max(first, stop))
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"LazyMatrix takes a row slice or a row index, not {type(index).__name__}") from None
        if not -rows <= i < rows:
            raise IndexError(f"row {i} is outside the {rows} rows of {self.where}")
        i %= rows
        return self.read_rows(i, i + 1)[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole matrix (for code that needs all of it)."""
        arr = self.read_rows(0, self.shape[0])
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def read_rows(self, first: int, stop: int) -> np.ndarray:
        """Rows ``first .. stop - 1`` (0 <= first <= stop <= rows): shape (stop - first, cols)."""
        rows, cols = self.shape
        if not 0 <= first <= stop <= rows:
            raise IndexError(f"rows {first}:{stop} are outside the {rows} rows of {self.where}")
        out = np.empty((stop - first, cols), self._stored)
        if out.nbytes:
            pos = self.offset + first * cols * self._stored.itemsize
            view, got = memoryview(out).cast("B"), 0
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    while got < out.nbytes:
                        n = fh.readinto(view[got:])
                        if not n:
                            break
                        got += n
            except OSError as exc:
                raise DataError(f"{self.where}: cannot read {self.path}: {exc.strerror}") from None
            if got != out.nbytes:
                raise DataError(
                    f"{self.where}: rows {first}:{stop} at byte {pos} of {self.path}: unexpected end of file, "
                    f"wanted {out.nbytes} bytes, got {got} (was the archive truncated after it was opened?)")
        out = out.astype(self.dtype, copy=False)
        if self.validate:
            _check_values(out, self.where, first)
        return out


def _lazy_mat(fd: IO[bytes], path: str, where: str, min_rows: int, validate: bool) -> LazyMatrix | None:
    """A :class:`LazyMatrix` for the plain binary matrix of at least ``min_rows`` rows at the position
    of ``fd`` (a regular file), which is then moved past it; None (``fd`` unmoved) for anything else.

    The sizes are checked against the bytes left in the file (:class:`DataError` naming ``where``);
    whatever this declines, :func:`read_mat` reads (or rejects) as usual.
    """
    peek = getattr(fd, "peek", None)
    if peek is None or _bytes_left(fd) is None:
        return None
    head = peek(15)[:15]
    token = head[2:4]
    if len(head) < 15 or head[:2] != b"\0B" or head[4:5] != b" " or token not in (b"FM", b"DM") \
            or head[5] != 4 or head[10] != 4:
        return None
    rows, cols = struct.unpack("<i", head[6:10])[0], struct.unpack("<i", head[11:15])[0]
    if rows < max(min_rows, 0):
        return None
    dtype = np.dtype(_PLAIN_TYPES[token][0])
    fd.read(15)
    nbytes = rows * cols * dtype.itemsize
    _check_sizes(fd, token.decode(), rows, cols, nbytes, where)
    offset = fd.tell()
    fd.seek(offset + nbytes)
    return LazyMatrix(path, offset, (rows, cols), dtype, where, validate)


def read_scp_entries(scp_path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """Yield ``(utt_id, extended_filename)`` pairs of a script file, e.g. ``('u1', 'a.ark:17')``."""
    scp_path = os.fspath(scp_path)
    try:
        fh = open(scp_path, "rb")
    except FileNotFoundError:
        raise DataError(f"file not found: {scp_path}") from None
    with fh:
        for lineno, raw in enumerate(fh, 1):  # lines and fields split at ASCII whitespace, as Kaldi does
            try:
                line = raw.decode("utf-8").strip(" \t\r\n\v\f")
            except UnicodeDecodeError:
                raise DataError(f"{scp_path}:{lineno}: not valid UTF-8 (damaged, or not a script file?)") from None
            if not line:
                continue
            parts = raw.strip().split(None, 1)
            if len(parts) != 2:
                raise DataError(f"{scp_path}:{lineno}: expected '<utt-id> <location>', got {line!r}")
            if b"\0" in raw:
                raise DataError(f"{scp_path}:{lineno}: NUL byte in the line (damaged script file?)")
            yield parts[0].decode("utf-8"), parts[1].decode("utf-8")


# Kaldi accepts a last row up to this many rows past the end of the matrix (and clips it), because
# segment times rounded to 10 ms and the 25 ms window can give a row range 1-2 frames too long.
# Kaldi checks last_row < rows + 3 (its length tolerance), so last_row may be rows + 2.
_ROW_SLACK = 3


def _split_location(location: str) -> tuple[str, int | None]:
    """``(path, byte offset or None)`` of an scp location; a ``[rows,cols]`` range is dropped."""
    path, offset, _ = _parse_location(location)
    return path, offset


def _parse_location(location: str) -> tuple[str, int | None, tuple | None]:
    """Split ``x.ark:3421[3:10,0:19]`` into ``("x.ark", 3421, ((3, 10, 1), (0, 19, 1)))``.

    The range part is optional and so is the offset (``x.mat[3:10]``); a pipe (``cmd |``) has
    neither. A range is one or two comma-separated parts (rows, then columns), each ``first:last``
    (inclusive, as Kaldi and kaldiio read them), a single index ``i`` (just that row/column),
    ``first:last:step`` (kaldiio), or empty / ``:`` for all (``None``); bounds are kept as
    ``(first, last, step)``. Raises :class:`ValueError` with a short reason for a malformed range;
    the caller names the entry.
    """
    stripped = location.strip()
    if stripped.endswith("|") or stripped.startswith("|"):
        return location, None, None
    ranges = None
    if stripped.endswith("]") and "[" in stripped:
        stripped, _, spec = stripped[:-1].rpartition("[")
        ranges = _parse_range(spec)
    path, sep, offset = stripped.rpartition(":")
    if sep and offset.isdigit():
        return path, int(offset), ranges
    return stripped, None, ranges


def _parse_range(spec: str) -> tuple:
    parts = spec.strip().split(",")
    if not spec.strip() or len(parts) > 2:
        raise ValueError(f"malformed range [{spec}]: expected [rows] or [rows,cols], e.g. [3:10,0:19]")
    out = []
    for part in parts:
        part = part.strip()
        if part in ("", ":"):
            out.append(None)
            continue
        try:
            nums = [int(x) for x in part.split(":")]
        except ValueError:
            raise ValueError(f"malformed range [{spec}]: {part!r} is not 'first:last' with integers") from None
        if len(nums) > 3:
            raise ValueError(f"malformed range [{spec}]: too many ':' in {part!r}")
        first, last = nums[0], nums[1] if len(nums) > 1 else nums[0]
        step = nums[2] if len(nums) == 3 else 1
        if first < 0 or last < first or step < 1:
            raise ValueError(f"invalid range [{spec}]: {part!r} must be 'first:last' with 0 <= first <= last")
        out.append((first, last, step))
    return tuple(out)


def _apply_range(arr: np.ndarray, ranges: tuple, where: str) -> np.ndarray:
    """Rows/columns ``ranges`` (inclusive bounds) of ``arr`` as a new C-contiguous array.

    A last row below ``rows + _ROW_SLACK`` (3, Kaldi's tolerance) is clipped (with a warning),
    as Kaldi does; any other bound outside the matrix raises :class:`DataError` naming ``where``.
    """
    if len(ranges) > arr.ndim:
        raise DataError(f"{where}: a row and column range needs a matrix, but this entry is a vector of {arr.shape[0]}")
    index = []
    for axis, bounds in enumerate(ranges):
        if bounds is None:
            index.append(slice(None))
            continue
        first, last, step = bounds
        size = arr.shape[axis]
        what = "row" if axis == 0 else "column"
        slack = _ROW_SLACK if axis == 0 and arr.ndim == 2 else 0
        if first >= size or last >= size + slack:
            shape = f"matrix of {arr.shape[0]} rows x {arr.shape[1]} columns" if arr.ndim == 2 else f"vector of {size}"
            raise DataError(f"{where}: {what} range {first}:{last} lies outside the {shape}")
        if last >= size:
            logger.warning(
                "%s: row range %d:%d goes past the %d rows of the matrix; clipped", where, first, last, size)
        index.append(slice(first, last + 1, step))
    return np.ascontiguousarray(arr[tuple(index)])


# What follows a matrix in an ark: the end of the file or the next record ("<id> " + binary or text).
_NEXT_RECORD = re.compile(rb"\s*([^\s\x00-\x1f\x7f]+) (?:\0B|\s*\[)")


def _check_record_end(fd: IO[bytes], path: str, where: str, next_entry: tuple[str, int] | None) -> None:
    """Raise when the matrix just read does not end at the end of ``path`` or at a next record.

    An scp entry is read on its own, so a size field damaged to a smaller or larger (but still
    possible) value would otherwise return a matrix of the wrong shape without a word.
    ``next_entry`` is ``(utt_id, offset)`` of the scp's next entry when it lies further on in the
    same archive: when the archive holds that id just before that offset (as an ark written with
    its scp does), the matrix must end exactly there or before a whole record.
    """
    end = fd.tell()
    key_start = None
    if next_entry is not None:
        key = next_entry[0].encode("utf-8") + b" "
        if end > next_entry[1] - 2:
            raise DataError(
                f"{where}: the matrix runs to byte {end} of {path}, into the next entry at byte "
                f"{next_entry[1]} (damaged size field?)")
        if end == next_entry[1] - len(key) and fd.read(len(key)) == key:
            return  # the usual case: the next entry's id follows the matrix directly
        fd.seek(next_entry[1] - len(key))
        if fd.read(len(key)) == key:
            key_start = next_entry[1] - len(key)
        fd.seek(end)
    tail = fd.read(_MAX_KEY_BYTES + 8)
    if not tail:
        return
    match = _NEXT_RECORD.match(tail)
    ok = match is not None
    if ok:
        try:
            match.group(1).decode("utf-8")
        except UnicodeDecodeError:
            ok = False
    if ok and key_start is not None and end + match.end(1) > key_start:
        ok = False  # "garbage + the next id": the matrix ended short of the next id
    if not ok:
        raise DataError(
            f"{where}: the matrix ends at byte {end} of {path}, where neither the file ends nor a next "
            "record starts (damaged size field?)")


def _next_in_same_ark(entry: tuple[str, str] | None, path: str, offset: int) -> tuple[str, int] | None:
    """``(utt_id, offset)`` of an scp entry that points further on into the archive ``path``."""
    if entry is None:
        return None
    try:
        next_path, next_offset, _ = _parse_location(entry[1])
    except ValueError:  # reported when that entry is read
        return None
    if next_path != path or next_offset is None or next_offset <= offset:
        return None
    return entry[0], next_offset


def _iter_scp(scp_path: str, validate: bool, alloc: Allocator | None = None,
              lazy_rows: int | None = None) -> Iterator[tuple[str, np.ndarray | LazyMatrix]]:
    handles: dict[str, IO[bytes]] = {}
    entries = read_scp_entries(scp_path)
    following = next(entries, None)
    try:
        while following is not None:
            utt, location = following
            following = next(entries, None)
            where = f"{scp_path}: utterance {utt!r} ({location})"
            try:
                path, offset, ranges = _parse_location(location)
            except ValueError as exc:
                raise DataError(f"{where}: {exc}") from None
            alloc_here = alloc if ranges is None else None  # a range is copied out of the full matrix
            if offset is None:  # a file or pipe holding one bare matrix (no key), as Kaldi reads it
                with _open_stream(path) as fd, _named_gzip_errors(path, lambda: f"({where})"):
                    arr = read_mat(fd, where, alloc_here)
                    if fd.read(_MAX_KEY_BYTES).strip():
                        raise DataError(f"{where}: more data follows the matrix in {path} (size field damaged?)")
            else:
                fd = handles.get(path)
                if fd is None:
                    try:
                        fd = handles[path] = open(path, "rb")
                    except FileNotFoundError:
                        raise DataError(f"{where}: archive {path} not found") from None
                    except OSError as exc:  # a directory, no permission, ...
                        raise DataError(f"{where}: cannot open archive {path}: {exc.strerror}") from None
                if offset > os.fstat(fd.fileno()).st_size:
                    raise DataError(f"{where}: offset {offset} is past the end of {path}")
                fd.seek(offset)
                arr = None
                if lazy_rows is not None and ranges is None:
                    arr = _lazy_mat(fd, path, where, lazy_rows, validate)
                if arr is None:
                    arr = read_mat(fd, where, alloc_here)
                _check_record_end(fd, path, where, _next_in_same_ark(following, path, offset))
            if ranges is not None:
                arr = _apply_range(arr, ranges, where)
            if validate and not isinstance(arr, LazyMatrix):  # a LazyMatrix checks the rows it reads
                _check_values(arr, where)
            yield utt, arr
    finally:
        for fd in handles.values():
            fd.close()


class _Counting:
    """A stream (pipe, stdin) that counts what it has read, so errors can give a byte offset."""

    def __init__(self, fd: IO[bytes]):
        self._fd = fd
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        buf = self._fd.read(n)
        self._pos += len(buf)
        return buf

    def readline(self, limit: int = -1) -> bytes:
        buf = self._fd.readline(limit)
        self._pos += len(buf)
        return buf

    def readinto(self, b) -> int:
        got = self._fd.readinto(b)
        self._pos += got or 0
        return got

    def tell(self) -> int:
        return self._pos


@contextlib.contextmanager
def _named_gzip_errors(target: str, what: Callable[[], str]) -> Iterator[None]:
    """Turn gzip/zlib damage (EOFError, BadGzipFile, zlib.error) into one DataError naming the file."""
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{target}: damaged gzip data {what()} ({exc or type(exc).__name__})") from None


def _iter_ark(target: str, validate: bool, alloc: Allocator | None = None,
              lazy_rows: int | None = None) -> Iterator[tuple[str, np.ndarray | LazyMatrix]]:
    if target == "-" or target.endswith("|"):  # stdin may be a regular file, but it has no path to reopen
        lazy_rows = None
    with _open_stream(target) as stream:
        fd = stream if _tell(stream) is not None else _Counting(stream)
        utt = None
        while True:
            with _named_gzip_errors(target, lambda: f"after utterance {utt!r}" if utt else "in the first record"):
                utt = _read_key(fd, target)
                if utt is None:
                    return
                where = f"{target}: utterance {utt!r} at byte {_tell(fd)}"
                arr = _lazy_mat(fd, target, where, lazy_rows, validate) if lazy_rows is not None else None
                if arr is None:
                    arr = read_mat(fd, where, alloc)
            if validate and not isinstance(arr, LazyMatrix):  # a LazyMatrix checks the rows it reads
                _check_values(arr, where)
            yield utt, arr


# one plain binary record: id, space, "\0B", type token, size fields (each after a \x04 size byte)
_ROW_RECORD = re.compile(rb"[ \t\n\r]*([^\x00-\x20\x7f]{1,%d}) \0B(FM|DM) \x04(.{4})\x04(.{4})|"
                         rb"[ \t\n\r]*([^\x00-\x20\x7f]{1,%d}) \0B(FV|DV) \x04(.{4})" % (_MAX_KEY_BYTES, _MAX_KEY_BYTES),
                         re.S)


def read_row_ark(path: str | os.PathLike) -> tuple[list[str], np.ndarray] | None:
    """Every record of an ark of one-row matrices (or vectors) in bulk: ``(ids, (n, D) array)``.

    For the archives of utterance vectors that clustering reads (a million records and more),
    where reading record by record costs tens of microseconds each. Applies only to a regular,
    uncompressed file whose records are all plain binary ``FM``/``DM`` matrices of one row or
    ``FV``/``DV`` vectors, of one type and one dimension; returns None for anything else (text,
    compressed, mixed or multi-row records, trailing bytes), so that the caller falls back to
    :func:`iter_mats`, which reads (or rejects, naming the record) whatever the file holds.
    Values are checked to be finite (:class:`DataError` naming the first bad utterance).
    """
    import mmap

    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode) or os.fstat(fh.fileno()).st_size == 0:
                return None
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError:
        return None
    with buf:
        size = len(buf)
        first = _ROW_RECORD.match(buf, 0)
        if first is None:
            return None
        if first.group(2) is not None:  # a matrix: one row, the columns of the first record
            token, rows_field, cols_field = first.group(2), first.group(3), first.group(4)
            if struct.unpack("<i", rows_field)[0] != 1:
                return None
            dim = struct.unpack("<i", cols_field)[0]
            fields = (2, 3, 4)
            expected = (token, rows_field, cols_field)
            key_group = 1
        else:
            token, dim_field = first.group(6), first.group(7)
            dim = struct.unpack("<i", dim_field)[0]
            fields = (6, 7)
            expected = (token, dim_field)
            key_group = 5
        if dim <= 0:
            return None
        dtype = np.dtype("<f4" if token in (b"FM", b"FV") else "<f8")
        nbytes = dim * dtype.itemsize
        fixed = _read_fixed_stride(buf, first, key_group, nbytes)
        keys, starts, out = fixed if fixed is not None else _read_row_records(buf, fields, expected, key_group, nbytes)
        if keys is None:
            return None
        out = out.view(dtype)
    try:
        ids = [k.decode("utf-8") for k in keys]
    except UnicodeDecodeError:
        return None
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise DataError(f"{path}: utterance {ids[bad]!r} at byte {starts[bad]}: matrix contains NaN or Inf (first at row 0)")
    return ids, out.astype(out.dtype.newbyteorder("="), copy=False)


def _read_fixed_stride(buf, first: re.Match, key_group: int, nbytes: int):
    """The records of ``buf`` as one ``(n, stride)`` byte grid when every record has the first one's
    layout (ids of one length, the same header): ``(keys, data offsets, (n, nbytes) uint8)``, or
    None otherwise.

    Checked byte for byte against the first record's header, with every id byte printable and
    not a space, so it accepts exactly the files the record-by-record walk would read the same way
    (in milliseconds rather than a second or two per million records).
    """
    if first.start(key_group) != 0:
        return None
    key_len, head = first.end(key_group), first.end()
    stride = head + nbytes
    size = len(buf)
    if size % stride:
        return None
    grid = np.frombuffer(buf, dtype=np.uint8).reshape(size // stride, stride)
    header = np.frombuffer(buf, dtype=np.uint8, count=head - key_len, offset=key_len)
    key_bytes = grid[:, :key_len]
    if not ((grid[:, key_len:head] == header).all() and (key_bytes > 0x20).all() and (key_bytes != 0x7F).all()):
        return None
    packed = np.ascontiguousarray(key_bytes).tobytes()
    keys = [packed[i:i + key_len] for i in range(0, len(packed), key_len)]
    return keys, np.arange(len(keys), dtype=np.int64) * stride + head, grid[:, head:].copy()


def _read_row_records(buf, fields: tuple[int, ...], expected: tuple[bytes, ...], key_group: int, nbytes: int):
    """Walk the records of ``buf`` one by one: ``(keys, data offsets, (n, nbytes) uint8)``, or three
    Nones when a record is not of the first one's kind (``fields`` of :data:`_ROW_RECORD` differ
    from ``expected``)."""
    size = len(buf)
    keys: list[bytes] = []
    starts: list[int] = []
    pos = 0
    match = _ROW_RECORD.match
    while pos < size:
        found = match(buf, pos)
        if found is None or found.group(*fields) != expected:
            if found is None and size - pos <= 64 and not buf[pos:].strip():
                break  # a little whitespace after the last record
            return None, None, None
        keys.append(found.group(key_group))
        end = found.end()
        starts.append(end)
        pos = end + nbytes
    if pos > size or not keys:
        return None, None, None  # the last record is cut short: the record reader names it
    raw = np.frombuffer(buf, dtype=np.uint8)
    out = np.empty((len(starts), nbytes), dtype=np.uint8)
    offsets = np.asarray(starts, dtype=np.int64)
    # records lie at a constant stride while their ids keep one length: copy each such run at once
    strides = np.diff(offsets)
    cuts = [0, *(np.flatnonzero(strides[1:] != strides[:-1]) + 1).tolist(), max(len(strides), 1)]
    for lo, hi in zip(cuts[:-1], cuts[1:]):  # records lo..hi share the stride strides[lo]
        count = hi - lo + 1 if len(strides) else 1
        step = int(strides[lo]) if len(strides) else nbytes
        out[lo: lo + count] = np.lib.stride_tricks.as_strided(raw[offsets[lo]:], (count, nbytes), (step, 1))
    del raw
    return keys, starts, out


def iter_mats(rspecifier: str | os.PathLike, *, validate: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """Stream ``(utt_id, matrix)`` pairs from an ark, ark.gz, scp or pipe, in file order.

    Parameters
    ----------
    rspecifier : str or path
        See the module docstring.
    validate : bool
        Check every value is finite (raises :class:`DataError` naming the utterance).

    Yields
    ------
    (str, ndarray of shape (T, F) or (D,))
    """
    yield from _iter_mats(rspecifier, validate)


def iter_mats_lazy(rspecifier: str | os.PathLike, min_rows: int, *,
                   validate: bool = True) -> Iterator[tuple[str, np.ndarray | LazyMatrix]]:
    """As :func:`iter_mats`, but long matrices come as :class:`LazyMatrix` (read on demand).

    A matrix of at least ``min_rows`` rows that is stored as a plain binary ``FM``/``DM`` matrix
    in a regular file (an scp entry ``x.ark:offset`` without a row/column range, or a record of
    an uncompressed ark file) is not read: its header is checked against the bytes left in the
    file (a damaged size is a :class:`DataError` naming the file, utterance and byte offset, as
    with :func:`iter_mats`) and a :class:`LazyMatrix` that reads row ranges on demand is yielded.
    Everything else (shorter matrices, compressed or text matrices, ranged scp entries, bare-matrix
    files, pipes and ``.gz`` archives) is read whole into an array, exactly as :func:`iter_mats`
    reads it. With ``validate``, a :class:`LazyMatrix` checks the rows it reads for NaN/Inf.

    Parameters
    ----------
    rspecifier : str or path
        See the module docstring.
    min_rows : int
        Matrices of fewer rows are read whole.
    validate : bool
        Check every value is finite.

    Yields
    ------
    (str, ndarray of shape (T, F) or (D,), or LazyMatrix of shape (T, F))
    """
    yield from _iter_mats(rspecifier, validate, lazy_rows=int(min_rows))


def _iter_mats(rspecifier, validate: bool = True, alloc: Allocator | None = None, lazy_rows: int | None = None):
    kind, target = parse_rspecifier(rspecifier)
    if kind == "scp":
        return _iter_scp(target, validate, alloc, lazy_rows)
    return _iter_ark(target, validate, alloc, lazy_rows)


def load_mats(
    rspecifier: str | os.PathLike, *, limit: int | None = None, same_dim: bool = True, validate: bool = True
) -> tuple[list[str], list[np.ndarray]]:
    """Read all (or the first ``limit``) matrices into lists ``(utt_ids, mats)``.

    Raises :class:`DataError` for an empty input, duplicate ids, or (with ``same_dim``) matrices
    whose feature dimension differs from the first one.
    """
    ids: list[str] = []
    mats: list[np.ndarray] = []
    seen: set[str] = set()
    for utt, arr in iter_mats(rspecifier, validate=validate):
        if limit is not None and len(ids) >= limit:
            break
        if utt in seen:
            raise DataError(f"{os.fspath(rspecifier)}: utterance {utt!r} appears twice")
        if same_dim and mats and arr.shape[1:] != mats[0].shape[1:]:
            raise DataError(
                f"{os.fspath(rspecifier)}: utterance {utt!r} has dimension {arr.shape[1:]}, "
                f"but {ids[0]!r} has {mats[0].shape[1:]}"
            )
        seen.add(utt)
        ids.append(utt)
        mats.append(arr)
    if not ids:
        raise DataError(f"{os.fspath(rspecifier)}: no matrices found (empty archive)")
    return ids, mats


# --------------------------------------------------------------------------- writing


def _compression_method(compress: bool | int | str | None) -> int | None:
    if compress in (None, False, 0):
        return None
    if compress is True:
        return COMPRESSION_METHODS["auto"]
    if isinstance(compress, str):
        if compress not in COMPRESSION_METHODS:
            raise ConfigError(f"unknown compression {compress!r}; choose from {', '.join(COMPRESSION_METHODS)}")
        return COMPRESSION_METHODS[compress]
    if int(compress) not in COMPRESSION_METHODS.values():
        raise ConfigError(f"compression method must be 1..7 (Kaldi's CompressionMethod). Received: {compress}")
    return int(compress)


def _check_utt_id(utt: str, where: str) -> None:
    if not isinstance(utt, str) or not utt or any(ch.isspace() for ch in utt):
        raise DataError(f"{where}: invalid utterance id {utt!r} (must be non-empty, without whitespace)")


class RowBlocks:
    """A ``(rows, cols)`` matrix given to :func:`write_mats` as consecutive blocks of rows.

    Long recordings (hours of 10 ms frames, or one embedding row per frame) never have to be
    held whole: the writer puts the Kaldi matrix header (the row count is known up front) and
    then each block as it comes, so memory is bounded by the block size. A binary ark gets
    exactly the bytes of the whole matrix written at once; compressed and text output need
    the whole matrix and join the blocks first.

    Parameters
    ----------
    shape : (rows, cols)
        The matrix's shape; the blocks must add up to it (a :class:`DataError` naming the
        utterance otherwise, and nothing is published).
    blocks : iterable of ndarray of shape (r_i, cols)
        Consumed once, in order.
    """

    def __init__(self, shape: tuple[int, int], blocks: Iterable[np.ndarray]):
        rows, cols = (int(v) for v in shape)
        if rows < 0 or cols < 0:
            raise DataError(f"RowBlocks: negative shape {shape}")
        self.shape = (rows, cols)
        self.ndim = 2
        self._blocks = blocks

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self._blocks)

    def checked_blocks(self, where: str) -> Iterator[np.ndarray]:
        """The blocks as 2-D arrays, checked against :attr:`shape` and for NaN/Inf (rows counted over blocks)."""
        rows, cols = self.shape
        done = 0
        for block in self:
            block = np.asarray(block)
            if block.ndim != 2 or block.shape[1] != cols:
                raise DataError(f"{where}: a block of shape {block.shape} in a matrix of {cols} columns")
            if done + len(block) > rows:
                raise DataError(f"{where}: blocks add up to more than the {rows} rows announced")
            try:
                _check_values(block, where)
            except DataError as exc:
                raise DataError(str(exc).replace(f"(first at row ", f"(first at row {done} + ")) from None
            done += len(block)
            yield block
        if done != rows:
            raise DataError(f"{where}: blocks add up to {done} rows, {rows} were announced")

    def join(self, where: str) -> np.ndarray:
        """The whole matrix (for compressed or text output)."""
        blocks = list(self.checked_blocks(where))
        return np.concatenate(blocks) if blocks else np.zeros(self.shape, np.float32)


def _write_blocks(fd: IO[bytes], blocks: RowBlocks, dtype: np.dtype, where: str) -> None:
    """Binary Kaldi matrix (``FM``/``DM``) written block by block: header, then the rows."""
    rows, cols = blocks.shape
    token = b"FM " if dtype == np.float32 else b"DM "
    fd.write(b"\0B" + token + struct.pack("<bi", 4, rows) + struct.pack("<bi", 4, cols))
    for block in blocks.checked_blocks(where):
        fd.write(np.ascontiguousarray(block, dtype=dtype.newbyteorder("<")).tobytes())


def _write_one(fd: IO[bytes], utt: str, arr, dtype: np.dtype, method: int | None, text: bool,
               ark: str = "<ark>") -> int:
    """Write ``utt`` and its matrix (an array or :class:`RowBlocks`); return the offset of the matrix data."""
    from kaldiio.matio import write_array, write_array_ascii

    fd.write(utt.encode("utf-8") + b" ")
    pos = fd.tell()
    if isinstance(arr, RowBlocks):
        where = f"{ark}: utterance {utt!r}"
        if method is None and not text:
            _write_blocks(fd, arr, dtype, where)
            return pos
        arr = arr.join(where)
    if text:
        write_array_ascii(fd, arr)
    else:
        if method is not None and arr.ndim != 2:
            raise DataError(f"utterance {utt!r}: only matrices can be compressed, got shape {arr.shape}")
        write_array(fd, np.ascontiguousarray(arr, dtype=dtype), "<", method)
    return pos


def write_mats(
    ark_path: str | os.PathLike,
    items: Iterable[tuple[str, np.ndarray]],
    scp_path: str | os.PathLike | None = None,
    *,
    compress: bool | int | str | None = False,
    append: bool = False,
    dtype: str = "float32",
    text: bool = False,
    absolute_paths: bool = True,
) -> int:
    """Write ``(utt_id, matrix)`` pairs to a Kaldi ark and, optionally, an scp.

    Parameters
    ----------
    ark_path : path
        Output archive; a name ending in ``.gz`` is gzip-compressed (no scp possible then).
    items : iterable of (str, ndarray of shape (T, F) or (D,), or :class:`RowBlocks`)
        A :class:`RowBlocks` matrix is written block by block (bounded memory).
    scp_path : path, optional
        Script file with ``utt_id ark_path:offset`` lines.
    compress : bool, int or str
        Kaldi matrix compression: True = ``auto`` (as ``copy-feats --compress=true``), or a
        method number / name from :data:`COMPRESSION_METHODS`.
    append : bool
        Append to existing ark/scp instead of replacing them.
    dtype : {"float32", "float64"}
        Storage type of uncompressed matrices.
    text : bool
        Write a text ark (``ark,t``).
    absolute_paths : bool
        The scp names the ark by its absolute path (as Kaldi's tools do when given one), so it
        can be read from any directory; False writes ``ark_path`` as given.

    Returns
    -------
    int : number of matrices written. Nothing is left half-written on error.
    """
    ark_path = Path(ark_path)
    method = _compression_method(compress)
    np_dtype = np.dtype(dtype)
    if np_dtype not in (np.float32, np.float64):
        raise ConfigError(f"dtype must be float32 or float64. Received: dtype={dtype}")
    gz = ark_path.suffix == ".gz"
    if gz and (scp_path is not None or append):
        raise ConfigError(f"{ark_path}: a gzipped ark cannot have an scp or be appended to")
    entries: list[tuple[str, int]] = []
    seen: set[str] = set()

    def _write_all(fd: IO[bytes]) -> None:
        for utt, arr in items:
            _check_utt_id(utt, str(ark_path))
            if utt in seen:
                raise DataError(f"{ark_path}: utterance {utt!r} written twice")
            seen.add(utt)
            if not isinstance(arr, RowBlocks):  # RowBlocks are checked block by block as they are written
                arr = np.asarray(arr)
                if arr.ndim not in (1, 2):
                    raise DataError(f"{ark_path}: utterance {utt!r} has shape {arr.shape}; expected a matrix or vector")
                _check_values(arr, f"{ark_path}: utterance {utt!r}")
            entries.append((utt, _write_one(fd, utt, arr, np_dtype, method, text, str(ark_path))))

    def _scp_lines() -> str:
        name = os.path.abspath(ark_path) if absolute_paths else os.fspath(ark_path)
        return "".join(f"{utt} {name}:{pos}\n" for utt, pos in entries)

    if append and ark_path.exists():
        old_size = ark_path.stat().st_size
        old_scp = Path(scp_path).read_bytes() if scp_path is not None and Path(scp_path).exists() else b""
        try:
            with open(ark_path, "ab") as fd:
                _write_all(fd)
            if scp_path is not None:
                with atomic_path(scp_path) as tmp:
                    tmp.write_bytes(old_scp + _scp_lines().encode("utf-8"))
        except BaseException:
            with open(ark_path, "r+b") as fd:
                fd.truncate(old_size)
            raise
        return len(entries)

    temps = [temp_path_beside(ark_path)] + ([temp_path_beside(scp_path)] if scp_path is not None else [])
    try:
        try:
            with (gzip.open if gz else open)(temps[0], "wb") as fd:
                _write_all(fd)
        except OSError as exc:  # a full disk: name the output, not the temporary file
            raise OSError(exc.errno, exc.strerror, os.fspath(ark_path)) from None
        if scp_path is not None:
            old = Path(scp_path).read_text(encoding="utf-8") if append and Path(scp_path).exists() else ""
            try:
                temps[1].write_text(old + _scp_lines(), encoding="utf-8")
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, os.fspath(scp_path)) from None
        _publish_ark_and_scp(ark_path, scp_path, temps)
    except BaseException:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    return len(entries)


def _publish_ark_and_scp(ark_path: Path, scp_path, temps: list[Path]) -> None:
    """Rename the written temporaries into place: the ark, then its scp.

    An scp must never point into an ark it was not written with. An existing scp whose lines
    differ from the new one (other ids, other offsets) is therefore removed before the ark is
    replaced: a kill between the renames leaves no scp (readers stop at the missing file) rather
    than the old scp reading the new ark at the old offsets. An identical old scp (a re-export
    of the same utterances and shapes) stays, as it reads the new ark correctly.
    """
    if scp_path is not None and os.path.exists(scp_path):
        if Path(scp_path).read_bytes() != temps[1].read_bytes():
            os.unlink(scp_path)
    os.replace(temps[0], ark_path)
    if scp_path is not None:
        os.replace(temps[1], scp_path)


# --------------------------------------------------------------------------- original API


def readArk(
    filename: str | os.PathLike,
    limit: int | None = None,
    memmap_dir: str | os.PathLike | None = None,
    memmap_dtype: str = "float32",
) -> tuple[list[str], list[np.ndarray]]:
    """Original unspeech reader: ``utt_ids, feats = readArk('x.ark.gz', memmap_dir='cache')``.

    With ``memmap_dir`` the matrices are views into ONE memory-mapped :class:`FeatureStore`
    file in that folder (reused when its source is unchanged); otherwise plain arrays.
    """
    if memmap_dir is None:
        ids, mats = load_mats(filename, limit=limit)
        return ids, [np.asarray(m, dtype=memmap_dtype) for m in mats]
    store = FeatureStore.from_rspecifier(filename, memmap_dir=memmap_dir, dtype=memmap_dtype, reuse=True, limit=limit)
    return list(store.utt_ids), [store[i] for i in range(len(store))]


def readScp(filename: str | os.PathLike, limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Read the matrices an scp points to: ``(utt_ids, feats)``."""
    return load_mats(f"scp:{os.fspath(filename)}", limit=limit)


def writeArk(
    filename: str | os.PathLike, feats: Iterable[np.ndarray], utt_ids: Iterable[str], append: bool = False
) -> list[str]:
    """Original writer: returns ``"filename:offset"`` pointers, one per utterance, for :func:`writeScp`."""
    feats = list(feats)
    utt_ids = list(utt_ids)
    if len(feats) != len(utt_ids):
        raise DataError(f"{filename}: {len(feats)} matrices but {len(utt_ids)} utterance ids")
    scp_tmp = Path(os.fspath(filename) + ".pointers.tmp")
    try:
        write_mats(filename, zip(utt_ids, feats), scp_tmp, append=append, absolute_paths=False)
        lines = scp_tmp.read_text(encoding="utf-8").splitlines()
    finally:
        with contextlib.suppress(FileNotFoundError):
            scp_tmp.unlink()
    return [line.split(None, 1)[1] for line in lines[-len(utt_ids) :]] if utt_ids else []


def writeScp(filename: str | os.PathLike, utt_ids: Iterable[str], pointers: Iterable[str]) -> None:
    """Write ``utt_id pointer`` lines (pointers as returned by :func:`writeArk`)."""
    utt_ids, pointers = list(utt_ids), list(pointers)
    if len(utt_ids) != len(pointers):
        raise DataError(f"{filename}: {len(utt_ids)} ids but {len(pointers)} pointers")
    with atomic_path(filename) as tmp:
        tmp.write_text("".join(f"{u} {p}\n" for u, p in zip(utt_ids, pointers)), encoding="utf-8")
