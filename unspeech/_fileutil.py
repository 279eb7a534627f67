"""Atomic file output: write to a temporary name beside the target, rename on success."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _owner_tag() -> str:
    import socket

    return f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries of ``path`` left by killed processes of this host (``.NAME.HOST-PID.*.tmp``
    whose PID is gone); those of live processes and of other hosts stay."""
    host = _owner_tag().rsplit("-", 1)[0]
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{glob.escape(host)}-*.tmp"):
        pid = tmp.name[len(path.name) + len(host) + 3 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            # with the temporaries of its own temporaries (a writer that writes through atomic_path)
            for stale in [tmp, *tmp.parent.glob(f".{glob.escape(tmp.name)}.*.tmp")]:
                if stale.is_dir() and not stale.is_symlink():  # a work folder (temp_dir_beside)
                    shutil.rmtree(stale, ignore_errors=True)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
        except OSError:  # alive, under another user
            pass


def temp_path_beside(path: str | os.PathLike) -> Path:
    """Create an empty temporary file ``.NAME.HOST-PID.XXXX.tmp`` in the folder of ``path`` (made if
    missing) with the permissions a plain ``open()`` would give; the caller renames or removes it.
    Temporaries of the same ``path`` that a killed process of this host left behind are removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give it the permissions a plain open() would
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """Create a work folder ``.NAME.HOST-PID.XXXX.tmp`` beside ``path`` (for the pieces of an output
    being built); the caller removes it. A killed process's folder is removed by the next write of
    ``path`` (see :func:`temp_path_beside`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp", dir=path.parent))


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


@contextlib.contextmanager
def hold_lock(lock_path: str | os.PathLike, busy: Callable[[str], Exception]) -> Iterator[Path]:
    """Hold an advisory ``flock`` on ``lock_path`` (created if missing) for the ``with`` body.

    The file records the holder (``pid N on HOST since TIME``). When another process holds it,
    ``busy(holder)`` is raised at once (no waiting). The lock goes with the process however it
    ends. On a normal exit the file is removed while still locked, so a run leaves nothing behind;
    a process that locked the removed file in the meantime sees that the path no longer names it
    and locks the new file instead (two holders are never possible). A killed holder leaves the
    file, unlocked: the next run takes it over.
    """
    import fcntl
    import socket
    import time

    while True:
        fh = open(lock_path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "a process that has not written its pid yet"
            fh.close()
            raise busy(holder) from None
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        fh.close()  # its last holder removed this file after we opened it: lock the one the path names now
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        yield Path(lock_path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # still locked: nobody can hold this file after us
        fh.close()  # releases the lock


def publish_folder(stage: str | os.PathLike, target: str | os.PathLike, marker: str, marker_bytes: bytes) -> None:
    """Move the files written under ``stage`` into ``target`` as one set, ``marker`` last.

    The set's marker (a data dir's ``feats.scp``: without it Kaldi's scripts and our readers refuse
    the folder) is removed from ``target`` first, every other file of ``stage`` (sub-folders
    included) is renamed over its counterpart, and ``marker_bytes`` are written to ``marker`` last
    (atomically). A kill at any point leaves the complete old set, a folder without its marker,
    or the complete new set, never a marker beside tables of another run. ``stage`` (made with
    :func:`temp_dir_beside`, on the same file system) is removed at the end.
    """
    stage, target = Path(stage), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target / marker)
    for path in sorted(stage.rglob("*")):
        rel = path.relative_to(stage)
        if path.is_dir() or rel == Path(marker):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target / rel)
    with atomic_path(target / marker) as tmp:
        tmp.write_bytes(marker_bytes)
    shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str = "run") -> Iterator[Path]:
    """One writer per output: hold ``.NAME.lock`` beside ``path`` (a file or a folder) for the body.

    A second writer of the same output gets a :class:`~unspeech.errors.ConfigError` naming the
    output and the holder (pid, host, start time) at once; see :func:`hold_lock`.
    """
    from unspeech.errors import ConfigError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def busy(holder: str) -> ConfigError:
        return ConfigError(f"{path} is being written by another {what} ({holder}); wait for it to end")

    with hold_lock(path.parent / f".{path.name}.lock", busy) as lock:
        yield lock
