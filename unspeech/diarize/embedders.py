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
from typing import Protocol, runtime_checkable

import numpy as np

from unspeech.errors import ConfigError, DataError, UnspeechError

__all__ = ["Embedder", "StatsEmbedder", "ContextEmbedder", "window_starts", "bundled_model", "load_embedder"]


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
    checkpoint : None (latest), a step number or a checkpoint prefix
    batch_size : int, windows per forward pass (bounds memory, not the recording length)
    """

    def __init__(self, run_dir: str | os.PathLike, period_frames: int = 10, checkpoint: str | int | None = None,
                 batch_size: int = 256):
        _check_positive(period_frames=period_frames, batch_size=batch_size)
        from unspeech.context.embed import FrameEmbedder
        from unspeech.context.rundir import load_run

        self.run_dir = os.fspath(run_dir)
        try:
            config, model = load_run(self.run_dir, checkpoint)
        except UnspeechError:
            raise
        except Exception as exc:  # TensorFlow's checkpoint errors: a run of another code version, a broken file
            raise ConfigError(f"cannot load the context model of {self.run_dir}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:300]}") from exc
        self._frames = FrameEmbedder(model, period=int(period_frames), alignment="center", batch_size=int(batch_size))
        self.period_frames = int(period_frames)
        self.window_frames = int(config.window_length)
        self.num_bins = int(config.feat_size)
        self.dim = int(self._frames.output_dim)
        self.name = f"context model {os.path.basename(os.path.normpath(self.run_dir))}"

    def embed(self, fbank: np.ndarray) -> np.ndarray:
        """``(T, num_bins)`` → ``(ceil(T / period_frames), embedding_size)`` float32."""
        return self._frames.embed_utterance(_check_fbank(fbank, self.num_bins))


def bundled_model() -> str:
    """The first training run shipped in the repository's ``models/`` (a folder with ``config.json``),
    else ``"stats"``: what ``unspeech diarize`` uses when no ``--model`` is given."""
    from pathlib import Path

    models = Path(__file__).resolve().parents[2] / "models"
    runs = sorted(p for p in models.glob("*") if (p / "config.json").is_file()) if models.is_dir() else []
    return os.fspath(runs[0]) if runs else "stats"


def load_embedder(model: str | os.PathLike | None = "stats", period_frames: int = 10) -> Embedder:
    """``"stats"`` (or ``None``) gives :class:`StatsEmbedder`; a directory gives :class:`ContextEmbedder`."""
    if model is None or os.fspath(model) == "stats":
        return StatsEmbedder(period_frames=period_frames)
    if not os.path.isdir(model):
        raise ConfigError(f"`model` must be 'stats' or a training run directory. Received: model={os.fspath(model)!r}")
    if not os.path.isfile(os.path.join(model, "config.json")):
        raise ConfigError(f"{os.fspath(model)} is not a run dir of the context model (no config.json)")
    return ContextEmbedder(model, period_frames=period_frames)
