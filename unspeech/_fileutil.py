"""Atomic file output: write to a temporary name beside the target, rename on success."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_path_beside(path: str | os.PathLike) -> Path:
    """Create an empty temporary file ``.NAME.XXXX.tmp`` in the folder of ``path`` (made if missing)
    with the permissions a plain ``open()`` would give; the caller renames or removes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give it the permissions a plain open() would
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched, so a failed
    run never leaves half-written output behind.
    """
    path = Path(path)
    tmp_path = temp_path_beside(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a file for writing atomically (see :func:`atomic_path`)."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
