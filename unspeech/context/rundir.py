"""Run directories: naming, resuming, and loading a trained model back.

A run dir is self-describing::

    RUN/config.json          every option (ContextConfig)
    RUN/train.log            the log lines of all sessions of this run
    RUN/checkpoints/ckpt-N*  model + optimizer + step + sampler position (+ dropout RNG)
    RUN/tensorboard/         TensorBoard event files
    RUN/train.lock           held (flock) by the session training the run: pid, host, start time

New runs are created as ``train_dir/runs/<unix time><params>`` (see
:meth:`ContextConfig.run_name`); pointing ``train_dir`` at an existing run dir resumes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import weakref
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from unspeech.context.config import ContextConfig
from unspeech.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "CHECKPOINT_DIR",
    "is_run_dir",
    "new_run_dir",
    "resolve_run",
    "lock_run_dir",
    "checkpoint_state",
    "find_checkpoint",
    "load_run",
    "restore_checkpoint",
    "init_run",
    "embed_windows",
]

CONFIG_NAME = "config.json"
CHECKPOINT_DIR = "checkpoints"
LOCK_NAME = "train.lock"
_RESUMABLE_KINDS = ("data", "train", "runtime")
_EMBED_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> KerasTowers (traced functions)


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def new_run_dir(config: ContextConfig) -> Path:
    """Create ``train_dir/runs/<timestamp><params>`` (unique) and return it."""
    base = Path(config.train_dir) / "runs"
    base.mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    name = f"{stamp}{config.run_name()}"
    path = base / name
    n = 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base / f"{name}_{n}"


def resolve_run(config: ContextConfig, given: Mapping[str, Any] | None = None) -> tuple[Path, ContextConfig, bool]:
    """Decide where ``config`` trains. Returns ``(run_dir, effective_config, resumed)``.

    If ``config.train_dir`` is a run dir, its saved config wins; options in ``given`` that
    describe the model or the sampling must agree with it (a :class:`ConfigError` lists every
    difference), while data, training and run-time options given on the command line
    (e.g. ``max_steps``, ``learn_rate``) override the saved ones. Otherwise a new run dir is
    created and ``config`` is written to it.
    """
    train_dir = Path(config.train_dir)
    if is_run_dir(train_dir):
        saved = ContextConfig.from_json(train_dir / CONFIG_NAME)
        given = dict(given or {})
        conflicts = [f"{k}: saved {getattr(saved, k)!r}, given {v!r}" for k, v in given.items()
                     if _kind(k) not in _RESUMABLE_KINDS and getattr(saved, k) != v]
        if conflicts:
            raise ConfigError(
                f"{train_dir} is an existing run whose model differs from the flags given: " + "; ".join(conflicts)
                + ". Leave these flags out to resume, or pass a different --train_dir to start a new run"
            )
        overrides = {k: v for k, v in given.items() if _kind(k) in _RESUMABLE_KINDS}
        overrides["train_dir"] = str(train_dir)
        merged = dataclasses.replace(saved, **overrides).validate()
        return train_dir, merged, True
    run_dir = new_run_dir(config)
    effective = dataclasses.replace(config, train_dir=str(run_dir))
    effective.to_json(run_dir / CONFIG_NAME)
    return run_dir, effective, False


@contextlib.contextmanager
def lock_run_dir(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``RUN/train.lock`` (an advisory ``flock``) while one session trains the run.

    A second session on the same run dir would interleave its checkpoints and log with the
    first one's and silently lose steps; it gets a :class:`ConfigError` naming the run dir and
    the holder (pid, host, start time) instead. The lock goes with the process, however it ends.
    """
    from unspeech._fileutil import hold_lock

    def busy(holder: str) -> ConfigError:
        return ConfigError(
            f"{run_dir} is being trained by another session ({holder}); wait for it to end or pass another --train_dir")

    with hold_lock(Path(run_dir) / LOCK_NAME, busy) as path:
        yield path


def _kind(name: str) -> str:
    return ContextConfig.__dataclass_fields__[name].metadata["kind"]


def checkpoint_state(run_dir: str | os.PathLike) -> list[str]:
    """Checkpoint prefixes of a run dir, oldest first (empty if none)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(Path(run_dir) / CHECKPOINT_DIR))
    return list(state.all_model_checkpoint_paths) if state else []


def find_checkpoint(run_dir: str | os.PathLike, checkpoint: str | int | None = None) -> str:
    """Checkpoint prefix to load: the latest (None), step ``N`` (int: ``ckpt-N`` of the run)
    or an explicit prefix (str). Raises :class:`ConfigError` when there is none."""
    run_dir = Path(run_dir)
    available = checkpoint_state(run_dir)
    if checkpoint is None:
        if not available:
            raise ConfigError(f"{run_dir} has no checkpoint (train first, or check --train_dir)")
        return available[-1]
    if isinstance(checkpoint, (int, np.integer)):
        prefix = str(run_dir / CHECKPOINT_DIR / f"ckpt-{int(checkpoint)}")
    else:
        prefix = str(checkpoint)
    if not Path(prefix + ".index").is_file():
        names = ", ".join(Path(p).name for p in available) or "none"
        raise ConfigError(f"no checkpoint {prefix} (available in {run_dir}: {names})")
    return prefix


def load_run(run_dir: str | os.PathLike, checkpoint: str | int | None = None):
    """Load a trained run: returns ``(config, model)`` with the checkpoint's weights.

    Parameters
    ----------
    run_dir : path
        A run dir (with ``config.json`` and ``checkpoints/``).
    checkpoint : None, int or str
        None = latest; an int N = the checkpoint saved at step N; a str = a checkpoint prefix.

    The model is in inference mode; embed windows with :func:`embed_windows` or
    ``model.embed_targets`` / ``model.embed_contexts``.
    """
    import tensorflow as tf

    from unspeech.context.model import ContextModel, dummy_inputs

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ConfigError(f"{run_dir} is not a run dir (no {CONFIG_NAME})")
    config = ContextConfig.from_json(run_dir / CONFIG_NAME).validate()
    prefix = find_checkpoint(run_dir, checkpoint)
    model = ContextModel(config)
    model(dummy_inputs(config, 1), training=False)
    restore_checkpoint(tf.train.Checkpoint(model=model), prefix, run_dir, partial=True)
    return config, model


def restore_checkpoint(checkpoint, prefix: str, run_dir: str | os.PathLike, partial: bool = False) -> None:
    """``checkpoint.restore(prefix)``, where a model that does not fit the saved weights (an edited
    config.json, a checkpoint from another run) is one :class:`ConfigError` naming both files."""
    import tensorflow as tf

    try:
        status = checkpoint.restore(prefix)
        (status.expect_partial() if partial else status).assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(
            f"{Path(run_dir) / CONFIG_NAME} does not describe the model saved in {prefix} ({reason}); "
            "was config.json edited, or the checkpoint copied from another run?") from None


def init_run(config: ContextConfig, run_dir: str | os.PathLike, seed: int | None = None):
    """Create a run dir holding an UNTRAINED model: ``config.json`` and one checkpoint.

    The layout is the one training writes, so :func:`load_run`, feature export and the
    diarizer accept it; tests and benchmarks use it where the weights do not matter.
    Returns the model (randomly initialised from ``seed``, default ``config.seed``).
    """
    import tensorflow as tf

    from unspeech.context.model import ContextModel, dummy_inputs

    run_dir = Path(run_dir)
    (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    config = dataclasses.replace(config, train_dir=str(run_dir)).validate()
    config.to_json(run_dir / CONFIG_NAME)
    tf.keras.utils.set_random_seed(config.seed if seed is None else seed)
    model = ContextModel(config)
    model(dummy_inputs(config, 1), training=False)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(run_dir / CHECKPOINT_DIR), max_to_keep=1).save()
    return model


def embed_windows(model, windows: np.ndarray, tower: str = "target", batch_size: int = 256) -> np.ndarray:
    """Embed windows with one tower in inference mode.

    Parameters
    ----------
    model : ContextModel
    windows : ndarray of shape (N, frames, feat_size)
        ``frames`` is ``window_length`` for the target tower, ``window_neg_length`` for the context tower.
    tower : {"target", "context"}
    batch_size : int
        Windows per call (bounds memory).

    Returns
    -------
    embeddings : ndarray of shape (N, embedding_size), float32
    """
    from unspeech.context.towers import KerasTowers

    towers = _EMBED_FNS.get(model)
    if towers is None or towers.batch_size != batch_size:
        towers = _EMBED_FNS[model] = KerasTowers(model, batch_size=batch_size)
    return towers.embed(windows, tower)
