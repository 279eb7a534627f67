"""Frame-level embedders: fbank ``(T, F)`` → one embedding row every ``period_frames`` frames.

Every embedder follows the :class:`Embedder` protocol and the row convention of Kaldi's online
i-vectors (and of ``--gen_feat`` export): a recording of ``T`` frames gives
``ceil(T / period_frames)`` rows, and row ``i`` stands for frames
``[i * period_frames, (i + 1) * period_frames)``.

* :class:`StatsEmbedder` — a **baseline without a model**: per-recording mean/variance
  normalised fbank, then the mean and log standard deviation of every bin over a window of
  ``window_frames`` frames centred on the row's block (shifted to stay inside the recording;
  ``2 * F`` dims). It knows nothing about speakers beyond spectral statistics; it exists so the
  pipeline works and can be compared without a trained run.
* :class:`ContextEmbedder` — the unspeech context model of a training run directory, through
  the ``--gen_feat`` export code (window centred on frame ``i * period_frames``, edge padding).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from unspeech.errors import ConfigError, DataError

__all__ = ["Embedder", "StatsEmbedder", "ContextEmbedder", "window_starts", "BUNDLED_MODEL", "bundled_model",
           "bundled_models_dir", "resolve_model", "check_model_dir", "load_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """What the diarization pipeline needs from an embedding extractor."""

    name: str
    dim: int
    period_frames: int
    window_frames: int

    def embed(self, fbank: np.ndarray) -> np.ndarray:
        """``(T, F)`` float32 features → ``(ceil(T / period_frames), dim)`` float32 rows."""
        ...


def window_starts(n_frames: int, window_frames: int, period_frames: int) -> np.ndarray:
    """First frame of each row's window: ``(ceil(T / period),) int64`` (see the module notes)."""
    n_rows = -(-n_frames // period_frames)
    centres = np.arange(n_rows, dtype=np.int64) * period_frames + period_frames // 2
    return np.clip(centres - window_frames // 2, 0, max(n_frames - window_frames, 0))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) < 1:
            raise ConfigError(f"`{name}` must be >= 1. Received: {name}={value}")


def _check_fbank(fbank: np.ndarray, num_bins: int | None = None) -> np.ndarray:
    fbank = np.asarray(fbank, dtype=np.float32)
    if fbank.ndim != 2 or fbank.shape[0] == 0:
        raise DataError(f"expected features of shape (T, F) with T >= 1, got shape {fbank.shape}")
    if num_bins is not None and fbank.shape[1] != num_bins:
        raise DataError(f"features have {fbank.shape[1]} bins but the model expects {num_bins}")
    return fbank


class StatsEmbedder:
    """Windowed fbank statistics (mean and log std per bin): the model-free baseline.

    Parameters
    ----------
    window_frames : int, frames per window (150 = 1.5 s)
    period_frames : int, frames between rows (10 = 100 ms)
    num_bins : int, expected feature dimension
    """

    name = "stats"

    def __init__(self, window_frames: int = 150, period_frames: int = 10, num_bins: int = 40):
        _check_positive(window_frames=window_frames, period_frames=period_frames, num_bins=num_bins)
        self.window_frames = int(window_frames)
        self.period_frames = int(period_frames)
        self.num_bins = int(num_bins)
        self.dim = 2 * self.num_bins
        # rows depend on the whole recording (per-recording normalisation): no chunked embedding
        self.context_frames = None

    def embed(self, fbank: np.ndarray) -> np.ndarray:
        """``(T, num_bins)`` → ``(ceil(T / period_frames), 2 * num_bins)`` float32."""
        x = _check_fbank(fbank, self.num_bins).astype(np.float64)
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-5)
        n = len(x)
        lo = window_starts(n, self.window_frames, self.period_frames)
        hi = np.minimum(lo + self.window_frames, n)
        zeros = np.zeros((1, x.shape[1]))
        csum = np.concatenate([zeros, np.cumsum(x, axis=0)])  # shape: (T + 1, F)
        csq = np.concatenate([zeros, np.cumsum(x * x, axis=0)])
        count = (hi - lo)[:, None]
        mean = (csum[hi] - csum[lo]) / count
        var = np.maximum((csq[hi] - csq[lo]) / count - mean * mean, 1e-6)
        return np.hstack([mean, 0.5 * np.log(var)]).astype(np.float32)


class ContextEmbedder:
    """Embeddings of the unspeech context model saved in a training run directory.

    Rows come from :class:`unspeech.context.embed.FrameEmbedder` (the ``--gen_feat`` export)
    with ``alignment="center"``: row ``i``'s window is centred on frame ``i * period_frames``
    and edge-padded, so a recording shorter than a window still gets its rows.

    Parameters
    ----------
    run_dir : path of a run directory (``config.json`` + checkpoints)
    period_frames : int, frames between rows (the export's ``genfeat_stride``)
    checkpoint : None (latest), a step number or a checkpoint prefix (needs TensorFlow)
    batch_size : int, windows per forward pass (bounds memory, not the recording length)
    runtime : "auto" (``model.onnx`` through ONNX Runtime when current, else TensorFlow), "onnx" or "keras"
    speaker_head : bool, pass the rows through the run's speaker head (``speaker_head.npz``, see
        :mod:`unspeech.context.speaker_head`) when it has one fitted on this checkpoint and period;
        False gives the context model's own rows, as ``--gen_feat`` exports them
    """

    def __init__(self, run_dir: str | os.PathLike, period_frames: int = 10, checkpoint: str | int | None = None,
                 batch_size: int = 256, runtime: str = "auto", speaker_head: bool = True):
        _check_positive(period_frames=period_frames, batch_size=batch_size)
        from unspeech.context.embed import FrameEmbedder
        from unspeech.context.towers import load_towers

        self.run_dir = os.fspath(run_dir)
        towers = load_towers(self.run_dir, checkpoint, runtime=runtime, batch_size=int(batch_size))
        self._frames = FrameEmbedder(towers, period=int(period_frames), alignment="center", batch_size=int(batch_size))
        self.runtime = towers.runtime
        self.period_frames = int(period_frames)
        self.window_frames = int(towers.config.window_length)
        self.num_bins = int(towers.config.feat_size)
        self.head = None
        if speaker_head:
            from unspeech.context.speaker_head import load_run_head

            self.head = load_run_head(self.run_dir, self.period_frames, checkpoint)
        self.dim = int(self.head.output_dim if self.head is not None else self._frames.output_dim)
        # frames on either side that can change a row: its window, and the head's neighbouring rows
        head_rows = int(self.head.context) if self.head is not None else 0
        self.context_frames = self.window_frames + (head_rows + 1) * self.period_frames
        self.name = (f"context model {os.path.basename(os.path.normpath(self.run_dir))}"
                     f"{' + speaker head' if self.head is not None else ''} ({self.runtime} runtime)")

    def embed(self, fbank: np.ndarray) -> np.ndarray:
        """``(T, num_bins)`` → ``(ceil(T / period_frames), dim)`` float32 (``dim``: the speaker head's
        output size when it is used, else the model's embedding size)."""
        rows = self._frames.embed_utterance(_check_fbank(fbank, self.num_bins))
        return rows if self.head is None else self.head.transform(rows)


BUNDLED_MODEL = "unspeech_dnn_w32_libri200"


def bundled_models_dir() -> Path:
    """Folder of the context models shipped inside the package (``unspeech/models``)."""
    return Path(__file__).resolve().parents[1] / "models"


def bundled_model(name: str = BUNDLED_MODEL) -> str:
    """Path of a context model shipped with the package (the default of ``unspeech diarize``).

    Raises :class:`ConfigError` naming the shipped models when ``name`` is not one of them (a
    broken install: the package data is missing)."""
    path = bundled_models_dir() / name
    if not (path / "config.json").is_file():
        shipped = sorted(p.name for p in bundled_models_dir().glob("*") if (p / "config.json").is_file())
        raise ConfigError(f"no bundled context model {name!r} in {bundled_models_dir()} "
                          f"(shipped: {', '.join(shipped) or 'none; reinstall unspeech'})")
    return os.fspath(path)


def resolve_model(model: str | os.PathLike | None) -> str:
    """``None`` → the bundled model; ``"stats"`` stays; the name of a bundled model → its path;
    anything else is taken as a run directory (checked by :func:`load_embedder`)."""
    if model is None:
        return bundled_model()
    model = os.fspath(model)
    if model != "stats" and not os.path.exists(model) and (bundled_models_dir() / model / "config.json").is_file():
        return bundled_model(model)
    return model


def load_embedder(model: str | os.PathLike | None = "stats", period_frames: int = 10, runtime: str = "auto",
                  speaker_head: bool = True) -> Embedder:
    """``"stats"`` gives :class:`StatsEmbedder`; a run directory (or a bundled model's name, or
    ``None`` for the bundled default) gives :class:`ContextEmbedder` on ``runtime`` (with its
    speaker head unless ``speaker_head=False``)."""
    model = resolve_model(model)
    if model == "stats":
        return StatsEmbedder(period_frames=period_frames)
    check_model_dir(model)
    return ContextEmbedder(model, period_frames=period_frames, runtime=runtime, speaker_head=speaker_head)


def check_model_dir(model: str) -> None:
    """Raise :class:`ConfigError` unless ``model`` is a run directory with ``config.json`` (cheap: no import)."""
    if not os.path.isdir(model):
        raise ConfigError(f"`model` must be 'stats', a bundled model's name or a training run directory; "
                          f"{model!r} does not exist")
    if not os.path.isfile(os.path.join(model, "config.json")):
        raise ConfigError(f"{model} is not a run dir of the context model (no config.json)")
