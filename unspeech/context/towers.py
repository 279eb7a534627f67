"""The two embedding towers of a trained run, behind one small interface, on either runtime.

Inference code (``--gen_feat`` export, the diarizer) needs only "embed these windows with this
tower". Two implementations give the same numbers (within 1e-4, checked at export):

* :class:`OnnxTowers` -- ``RUN/model.onnx`` through ONNX Runtime: the default install, no
  TensorFlow import, faster on CPU (see ``benchmarks/inference_bench.py``).
* :class:`KerasTowers` -- the checkpoint through TensorFlow/Keras (the ``train`` extra): used
  for a run without an up-to-date ``model.onnx`` or when a specific checkpoint is asked for.

:func:`load_towers` picks one (``runtime="auto"``) and says which in the log.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from unspeech.context.config import ContextConfig
from unspeech.errors import ConfigError, UnspeechError
from unspeech.extras import TRAIN_HINT, MissingExtraError, has_tensorflow

__all__ = ["RUNTIMES", "INT8_NAME", "Towers", "OnnxTowers", "KerasTowers", "load_towers", "latest_checkpoint_name", "onnx_metadata",
           "onnx_checkpoint_name"]

log = logging.getLogger("unspeech.context")

RUNTIMES = ("auto", "onnx", "onnx-int8", "keras")
TOWERS = ("target", "context")
ONNX_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"  # opt-in: int8 weights (`unspeech export --int8`), faster, not bit-equal


class Towers(Protocol):
    """Window embedder: ``embed(windows (N, frames, F), tower) -> (N, embedding_size)`` float32."""

    config: ContextConfig
    runtime: str

    def embed(self, windows: np.ndarray, tower: str = "target") -> np.ndarray:
        ...


def _check_windows(config: ContextConfig, windows: np.ndarray, tower: str) -> np.ndarray:
    if tower not in TOWERS:
        raise ConfigError(f"`tower` must be 'target' or 'context'. Received: tower={tower!r}")
    length = config.window_length if tower == "target" else config.window_neg_length
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1:] != (length, config.feat_size):
        raise ConfigError(f"{tower} windows must have shape (N, {length}, {config.feat_size}). Received: {windows.shape}")
    return windows


class OnnxTowers:
    """Both towers of an exported ``model.onnx`` through ONNX Runtime (CPU).

    Parameters
    ----------
    source : path of the ``.onnx`` file, or its bytes
    config : ContextConfig of the run (window lengths, feature and embedding sizes)
    threads : int, intra-op threads (0 = ONNX Runtime's default: one per core)
    runtime : str, the name logs give it ("onnx", or "onnx-int8" for the quantized file)
    """

    def __init__(self, source: str | os.PathLike | bytes, config: ContextConfig, threads: int = 0,
                 runtime: str = "onnx"):
        self.runtime = runtime
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no graph-optimisation chatter on stderr
        # idle threads sleep instead of spinning: spinning halves throughput on a busy machine
        # (parallel jobs, --nj workers) and gains little on an idle one (benchmarks/inference_bench.py)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = int(threads)
        where = "the exported model" if isinstance(source, bytes) else os.fspath(source)
        try:
            self.session = ort.InferenceSession(source if isinstance(source, bytes) else os.fspath(source),
                                                sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime's errors for a broken / foreign file
            raise ConfigError(f"cannot load {where}: {str(exc).splitlines()[0][:300]}") from exc
        self.config = config
        shapes = {i.name: i.shape[1:] for i in self.session.get_inputs()}
        want = {"targets": [config.window_length, config.feat_size], "contexts": [config.window_neg_length, config.feat_size]}
        if shapes != want:
            raise ConfigError(f"{where} expects inputs {shapes}, but the run's config.json says {want}: "
                              "export the run again (unspeech export RUN_DIR)")
        self._empty = {
            "targets": np.zeros((1, config.window_length, config.feat_size), np.float32),
            "contexts": np.zeros((1, config.window_neg_length, config.feat_size), np.float32),
        }

    def embed(self, windows: np.ndarray, tower: str = "target") -> np.ndarray:
        """``(N, frames, F)`` -> ``(N, embedding_size)`` float32 with the named tower."""
        windows = _check_windows(self.config, windows, tower)
        if len(windows) == 0:
            return np.zeros((0, self.config.embedding_size), np.float32)
        name, output = ("targets", "target_embeddings") if tower == "target" else ("contexts", "context_embeddings")
        feeds = dict(self._empty, **{name: windows})  # the other tower gets one zero window
        return self.session.run([output], feeds)[0]


class KerasTowers:
    """Both towers of a Keras :class:`~unspeech.context.model.ContextModel` (TensorFlow).

    A short batch is zero-padded to the next power of two (at most ``batch_size``), so only a
    handful of shapes are ever traced.
    """

    runtime = "keras"

    def __init__(self, model, batch_size: int = 256):
        self.model = model
        self.config = model.config
        self.batch_size = int(batch_size)
        self._fns: dict[str, object] = {}

    def embed(self, windows: np.ndarray, tower: str = "target") -> np.ndarray:
        import tensorflow as tf

        windows = _check_windows(self.config, windows, tower)
        fn = self._fns.get(tower)
        if fn is None:
            method = self.model.embed_targets if tower == "target" else self.model.embed_contexts
            fn = self._fns[tower] = tf.function(lambda x: method(x, training=False))
        out = []
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start:start + self.batch_size]
            n = len(chunk)
            pad = min(self.batch_size, max(8, 1 << (n - 1).bit_length())) - n
            if pad > 0:
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.float32)])
            out.append(fn(chunk).numpy()[:n])
        return np.concatenate(out) if out else np.zeros((0, self.config.embedding_size), np.float32)


_CKPT_LINE = re.compile(r'^model_checkpoint_path:\s*"(.*)"\s*$')


def latest_checkpoint_name(run_dir: str | os.PathLike) -> str | None:
    """File name of the run's latest checkpoint (``ckpt-N``) read from ``checkpoints/checkpoint``
    without TensorFlow; None when the run has no checkpoints (e.g. an installed bundled model)."""
    state = Path(run_dir) / "checkpoints" / "checkpoint"
    if not state.is_file():
        return None
    for line in state.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _CKPT_LINE.match(line.strip())
        if m:
            return os.path.basename(m.group(1))
    return None


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata a ``model.onnx`` holds (``config``, ``checkpoint``, ``checkpoint_sha256``, see
    :mod:`unspeech.context.onnx_export`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime's errors for a broken / foreign file
        raise ConfigError(f"cannot load {os.fspath(path)}: {str(exc).splitlines()[0][:300]}") from exc
    return dict(session.get_modelmeta().custom_metadata_map)


def onnx_checkpoint_name(path: str | os.PathLike) -> str:
    """The ``checkpoint`` recorded in a ``model.onnx`` by the export ("" if none)."""
    return onnx_metadata(path).get("checkpoint", "")


def load_towers(run_dir: str | os.PathLike, checkpoint: str | int | None = None, runtime: str = "auto",
                batch_size: int = 256, threads: int = 0) -> Towers:
    """The towers of a run directory on the chosen runtime.

    ``runtime="auto"``: ``model.onnx`` when it exists and was exported from the run's latest
    checkpoint (or the run has no checkpoints, as an installed bundled model) and no
    ``checkpoint`` is asked for; otherwise TensorFlow. ``"onnx"`` / ``"keras"`` force one;
    ``"onnx-int8"`` runs ``model.int8.onnx`` (``unspeech export --int8``: int8 weights, about 2-3x the
    float32 throughput of dense towers on CPUs with VNNI, embeddings within a few 1e-3 in cosine;
    never chosen by ``"auto"`` because its results differ from the checkpoint's).
    Raises :class:`ConfigError` / :class:`MissingExtraError` with one line saying what to do.
    """
    from unspeech.context.rundir import CONFIG_NAME

    if runtime not in RUNTIMES:
        raise ConfigError(f"`runtime` must be one of {', '.join(RUNTIMES)}. Received: runtime={runtime!r}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"model directory {run_dir} does not exist")
    if not (run_dir / CONFIG_NAME).is_file():
        raise ConfigError(f"{run_dir} is not a run dir of the context model (no {CONFIG_NAME})")
    config = ContextConfig.from_json(run_dir / CONFIG_NAME).validate()
    onnx_path = run_dir / ONNX_NAME
    if runtime == "auto":
        runtime = _choose_runtime(run_dir, onnx_path, checkpoint)
    if runtime == "onnx-int8":
        path = run_dir / INT8_NAME
        if checkpoint not in (None, ""):
            raise ConfigError("a specific --checkpoint needs the TensorFlow runtime (model.int8.onnx holds one checkpoint)")
        if not path.is_file():
            raise ConfigError(f"{run_dir} has no {INT8_NAME}: write it with `unspeech export {run_dir} --int8`")
        latest = latest_checkpoint_name(run_dir)
        if latest is not None and onnx_checkpoint_name(path) != latest:
            log.warning("%s was exported from another checkpoint than the run's latest (%s): run "
                        "`unspeech export %s --int8` to update it", path, latest, run_dir)
        return OnnxTowers(path, config, threads=threads, runtime="onnx-int8")
    if runtime == "onnx":
        if checkpoint not in (None, ""):
            raise ConfigError("a specific --checkpoint needs the TensorFlow runtime (model.onnx holds one checkpoint)")
        if not onnx_path.is_file():
            raise ConfigError(f"{run_dir} has no {ONNX_NAME}: export it with `unspeech export {run_dir}`")
        return OnnxTowers(onnx_path, config, threads=threads)
    if not has_tensorflow():
        raise MissingExtraError(f"loading the checkpoint of {run_dir} needs TensorFlow: {TRAIN_HINT}")
    import tensorflow as tf

    from unspeech.context.rundir import load_run

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already initialised in this process: keep its threads
            pass
    try:
        _, model = load_run(run_dir, checkpoint)
    except UnspeechError:
        raise
    except Exception as exc:  # TensorFlow's checkpoint errors: a run of another code version, a broken file
        raise ConfigError(f"cannot load the context model of {run_dir}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:300]}") from exc
    return KerasTowers(model, batch_size=batch_size)


def _choose_runtime(run_dir: Path, onnx_path: Path, checkpoint) -> str:
    if checkpoint not in (None, ""):
        return "keras"
    latest = latest_checkpoint_name(run_dir)
    if not onnx_path.is_file():
        if latest is not None and has_tensorflow():
            return "keras"
        raise MissingExtraError(f"{run_dir} has no {ONNX_NAME}: export it with `unspeech export {run_dir}` "
                                f"(needs TensorFlow: {TRAIN_HINT})") if latest is not None else \
            ConfigError(f"{run_dir} has neither {ONNX_NAME} nor checkpoints")
    exported = onnx_checkpoint_name(onnx_path)
    if latest is None or exported == latest:
        return "onnx"
    if has_tensorflow():
        log.warning("%s was exported from %s but the run's latest checkpoint is %s: using TensorFlow "
                    "(run `unspeech export %s` to update it)", onnx_path, exported or "an unknown checkpoint", latest, run_dir)
        return "keras"
    log.warning("%s was exported from %s but the run's latest checkpoint is %s; TensorFlow is not installed, "
                "so the older export is used", onnx_path, exported or "an unknown checkpoint", latest)
    return "onnx"
