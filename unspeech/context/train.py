"""Training loop of the context model: compiled steps, validation, checkpoints, exact resume.

:func:`train` runs one session of a run (new or resumed, see :mod:`unspeech.context.rundir`).
Every ``steps_per_checkpoint`` steps it validates on a fixed held-out set, logs one line
(step, time per step, loss, accuracy vs. the majority baseline, pairs/s, validation loss and
accuracy, learning rate, example predictions), writes TensorBoard scalars and saves a
checkpoint of model, optimizer, step, sampler position, dropout RNG and early-stopping state.
Ctrl-C (or SIGTERM) saves a checkpoint before leaving; a resumed run continues exactly where
the checkpoint was taken (same batches, same dropout masks).

Several devices: ``distribute=mirrored`` (or ``auto`` with more than one GPU) splits every
batch over the local devices with ``tf.distribute.MirroredStrategy``. Several machines: set
``TF_CONFIG`` on each worker and pass ``--distribute multi_worker``, e.g. for two workers::

    # on host a (worker 0, also writes the checkpoints)
    TF_CONFIG='{"cluster": {"worker": ["a:12345", "b:12345"]}, "task": {"type": "worker", "index": 0}}' \\
        python3 unsup_model_neg.py --distribute multi_worker --filelist feats.scp --train_dir RUN ...
    # on host b: the same command with "index": 1 and --train_dir on a LOCAL scratch folder

Every worker runs the same command; the global batch (``batch_size``) is split over all
replicas of all workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from unspeech.context.config import ContextConfig
from unspeech.context.rundir import CHECKPOINT_DIR, CONFIG_NAME, lock_run_dir, resolve_run, restore_checkpoint
from unspeech.errors import ConfigError

__all__ = ["train", "TrainResult", "make_optimizer", "make_strategy", "configure_runtime", "load_features"]

log = logging.getLogger("unspeech.context.train")

_TRAIN_STREAM = 0  # sampler stream of single-device training batches
_VALIDATION_STREAM = 1
_REPLICA_STREAM = 100  # sampler stream of per-replica batches when distributed
_EXAMPLES = 6  # example predictions shown per log line


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    ``stop_reason`` is ``"max_steps"``, ``"plateau"`` or ``"interrupted"``; ``history`` has one
    dict per log line (step, loss, accuracy, majority, pairs_per_s, val_loss, val_accuracy, ...).
    """

    run_dir: Path
    config: ContextConfig
    step: int
    stop_reason: str
    resumed: bool
    history: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------- runtime set-up


def configure_runtime(config: ContextConfig) -> None:
    """Threads and logical CPU devices; must run before TensorFlow executes anything."""
    from unspeech.extras import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines stay off the console
    import tensorflow as tf

    if config.num_threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(config.num_threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, config.num_threads))
        except RuntimeError:
            if tf.config.threading.get_intra_op_parallelism_threads() != config.num_threads:
                log.warning("TensorFlow is already running; --num_threads %d not applied", config.num_threads)
    if config.logical_cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * config.logical_cpu_devices)
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) != config.logical_cpu_devices:
                raise ConfigError(
                    "`logical_cpu_devices` must be set before TensorFlow starts; run training in a fresh process"
                ) from None
    if config.mixed_precision and not tf.config.list_physical_devices("GPU"):
        raise ConfigError("`mixed_precision` needs a GPU and none is visible. Received: mixed_precision=True")


def make_strategy(config: ContextConfig):
    """The ``tf.distribute`` strategy for ``config.distribute``."""
    import tensorflow as tf

    if config.distribute == "none":
        return tf.distribute.get_strategy()
    if config.distribute == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    devices = gpus or cpus
    if config.distribute == "auto" and len(devices) < 2:
        return tf.distribute.get_strategy()
    cross = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross)


def make_optimizer(config: ContextConfig):
    """Adam with the configured schedule and global-norm gradient clipping."""
    import keras

    lr: Any = config.learn_rate
    if config.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if config.lr_warmup_steps else config.learn_rate,
            decay_steps=max(1, config.max_steps - config.lr_warmup_steps),
            warmup_target=config.learn_rate if config.lr_warmup_steps else None,
            warmup_steps=config.lr_warmup_steps,
        )
    elif config.lr_schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(config.learn_rate, config.lr_decay_steps, config.lr_decay_rate)
    optimizer = keras.optimizers.Adam(learning_rate=lr, global_clipnorm=config.gradient_clipping or None)
    if config.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def load_features(config: ContextConfig, progress: bool = False):
    """The training features as a FeatureStore (memory-mapped when ``memmap_dir`` is set)."""
    from unspeech.feature_store import FeatureStore

    if not config.filelist:
        raise ConfigError("`filelist` is required: the Kaldi features (.ark/.scp) to train on")
    return FeatureStore.from_rspecifier(
        config.filelist,
        memmap_dir=config.memmap_dir or None,
        dtype=config.memmap_dtype,
        reuse=config.memmap_reuse_cache,
        progress=progress,
        limit=100 if config.debug else None,
    )


# ---------------------------------------------------------------------- the session


class _Session:
    """Everything one training session holds; :func:`train` drives it."""

    def __init__(self, config: ContextConfig, run_dir: Path, store, spk2utt):
        import keras
        import tensorflow as tf

        from unspeech.context.model import ContextModel, dummy_inputs, pair_labels, pair_weights
        from unspeech.context.sampling import ContextSampler, feature_statistics, split_utterances

        self.config = c = config
        self.run_dir = run_dir
        self.strategy = make_strategy(c)
        self.replicas = self.strategy.num_replicas_in_sync
        if c.batch_size % self.replicas:
            raise ConfigError(f"`batch_size` must be a multiple of the {self.replicas} replicas. Received: batch_size={c.batch_size}")
        train_idx, val_idx = split_utterances(store, c, spk2utt)
        self.sampler = ContextSampler(store, c, train_idx, spk2utt, stream=_TRAIN_STREAM, name=f"{c.filelist or 'features'} (train)")
        log.info("%s", self.sampler.stats.describe("training data", c.group_length))
        self.validator = None
        if len(val_idx):
            self.validator = ContextSampler(store, c, val_idx, spk2utt, stream=_VALIDATION_STREAM, name=f"{c.filelist or 'features'} (validation)")
            log.info("%s", self.validator.stats.describe("validation data", c.group_length))
        if self.replicas > 1:
            self.replica_sampler = ContextSampler(store, c, train_idx, spk2utt, stream=_REPLICA_STREAM,
                                                  batch_size=c.batch_size // self.replicas, name="train (per replica)")
        keras.utils.set_random_seed(c.seed)
        if c.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        with self.strategy.scope():
            self.model = ContextModel(c)
            self.model(dummy_inputs(c, 1), training=False)
            if c.normalize_input:  # a resumed run's checkpoint overwrites these with the saved values
                self.model.set_input_statistics(*feature_statistics(store, train_idx, seed=c.seed))
            self.optimizer = make_optimizer(c)
            self.optimizer.build(self.model.trainable_variables)
        self.labels = tf.constant(pair_labels(c))
        self.weights = tf.constant(pair_weights(c))
        pos = float(pair_labels(c).mean())
        self.majority = max(pos, 1.0 - pos)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_val_loss = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_val_loss")
        self.stale_evals = tf.Variable(0, dtype=tf.int64, trainable=False, name="stale_evals")
        self.sampler_state = tf.Variable(json.dumps(self.sampler.get_state()), dtype=tf.string, trainable=False)
        weight_ids = {id(w) for w in self.model.weights}
        rng_state = [v.value for v in self.model.variables if id(v) not in weight_ids]  # dropout seed states
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step, best_val_loss=self.best_val_loss,
            stale_evals=self.stale_evals, sampler=self.sampler_state, dropout_rng=rng_state,
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(run_dir / CHECKPOINT_DIR),
                                                  max_to_keep=c.keep_checkpoints, checkpoint_name="ckpt")
        self._build_steps()

    # .................................................................. compiled steps

    def _build_steps(self) -> None:
        import tensorflow as tf

        from unspeech.context.model import context_loss, l2_penalty

        c, model, optimizer = self.config, self.model, self.optimizer
        labels, weights, replicas = self.labels, self.weights, self.replicas

        def gradients(batch):
            with tf.GradientTape() as tape:
                logits = model(batch, training=True)
                xent = context_loss(logits, labels, weights)
                loss = xent + l2_penalty(model, c.l2_reg)
                scaled = optimizer.scale_loss(loss / replicas)
            grads = tape.gradient(scaled, model.trainable_variables)
            correct = tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), labels), tf.float32)
            return loss, xent, tf.reduce_mean(correct), tf.sigmoid(logits[0]), grads

        compiled = tf.function(gradients, jit_compile=c.jit_compile, reduce_retracing=True)

        def replica_step(batch):
            loss, xent, acc, probs, grads = compiled(batch)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss, xent, acc, probs

        strategy = self.strategy

        @tf.function
        def train_step(batch):
            loss, xent, acc, probs = strategy.run(replica_step, args=(batch,))
            mean = tf.distribute.ReduceOp.MEAN
            return (strategy.reduce(mean, loss, axis=None), strategy.reduce(mean, xent, axis=None),
                    strategy.reduce(mean, acc, axis=None), strategy.experimental_local_results(probs)[0])

        @tf.function(reduce_retracing=True)
        def eval_step(batch):
            logits = model(batch, training=False)
            xent = context_loss(logits, labels, weights)
            correct = tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), labels), tf.float32)
            return xent, tf.reduce_mean(correct)

        self.train_step = train_step
        self.eval_step = eval_step

    # .................................................................. data

    def dataset(self, start_step: int):
        import tensorflow as tf

        if self.replicas == 1:
            return self.sampler.dataset(start=start_step)
        n = self.replicas
        sampler = self.replica_sampler

        def per_worker(ctx: tf.distribute.InputContext):
            m = n // ctx.num_input_pipelines  # replicas served by this pipeline
            first = ctx.input_pipeline_id * m
            steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max // (2 * n))
            index = steps.flat_map(lambda s: tf.data.Dataset.range(s * n + first, s * n + first + m))
            return sampler.map_batches(index)

        return self.strategy.distribute_datasets_from_function(per_worker)

    def validate(self) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over the fixed validation batches."""
        losses, accs = [], []
        for i in range(self.config.validation_batches):
            xent, acc = self.eval_step(self.validator.sample(i))
            losses.append(float(xent))
            accs.append(float(acc))
        return float(np.mean(losses)), float(np.mean(accs))

    # .................................................................. checkpoints

    def restore(self) -> int:
        latest = self.manager.latest_checkpoint
        if latest:
            restore_checkpoint(self.checkpoint, latest, self.run_dir)
            self.sampler.set_state(json.loads(self.sampler_state.numpy().decode()))
            log.info("resumed %s at step %d", latest, int(self.step.numpy()))
            if self.config.lr_schedule == "constant":
                # the checkpoint holds the optimizer's learning-rate variable; the run's options win
                # (a schedule is rebuilt from them anyway)
                self.optimizer.learning_rate = self.config.learn_rate
        return int(self.step.numpy())

    def save(self) -> str:
        step = int(self.step.numpy())
        self.sampler.next_batch = step
        self.sampler_state.assign(json.dumps(self.sampler.get_state()))
        return self.manager.save(checkpoint_number=step)


def _format_examples(probs: np.ndarray, labels: np.ndarray) -> str:
    """``ctx:0.91 not:0.12 not:0.64!`` (true label, predicted P(is context); ``!`` = wrong)."""
    out = []
    for p, y in list(zip(probs, labels))[:_EXAMPLES]:
        wrong = (p > 0.5) != (y > 0.5)
        out.append(f"{'ctx' if y > 0.5 else 'not'}:{p:.2f}{'!' if wrong else ''}")
    return " ".join(out)


class _StopRequest:
    """SIGINT / SIGTERM set a flag that the loop checks between steps, so that the checkpoint it
    then saves always matches a completed step; a second signal interrupts at once."""

    def __init__(self):
        self.requested = False

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stop requested (signal %d): finishing the current step, then saving a checkpoint", signum)

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def _run_log(run_dir: Path, debug: bool):
    """Append this package's log records to ``RUN/train.log``."""
    logger = logging.getLogger("unspeech")
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > handler.level:
        logger.setLevel(handler.level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


def train(config: ContextConfig, given: Mapping[str, Any] | None = None, *, store=None,
          spk2utt: Mapping[str, Sequence[str]] | None = None, progress: bool = False,
          hook: Callable[..., None] | None = None) -> TrainResult:
    """Train (or resume) a context model.

    Parameters
    ----------
    config : ContextConfig
        All options; ``config.train_dir`` is a run dir to resume or a folder for a new run.
    given : mapping, optional
        The options the user set explicitly (checked against a resumed run's config.json).
    store : FeatureStore, optional
        Features to train on; read from ``config.filelist`` when None.
    spk2utt : mapping speaker -> utterance ids, optional
        Same-speaker negatives; read from ``config.spk2utt`` when None and that is set.
    progress : bool
        Show a progress bar while reading features.
    hook : callable, optional
        Called as ``hook("step", record_or_None, completed=step, total=max_steps or None)`` after
        every training step (``record`` is the log-line dict on checkpoint steps).

    Returns
    -------
    TrainResult
    """
    from unspeech.extras import require_tensorflow

    config = config.validate()
    require_tensorflow("training the context model")  # before a run dir is created
    if store is None:
        from unspeech.kaldi_io import check_rspecifier_exists

        if not config.filelist:
            raise ConfigError("`filelist` is required: the Kaldi features (.ark/.scp) to train on")
        check_rspecifier_exists(config.filelist, "--filelist")
    run_dir, config, resumed = resolve_run(config, given)
    try:
        return _train_session(run_dir, config, resumed, store, spk2utt, progress, hook)
    except BaseException:
        if not resumed and _is_chief(config) and not any((run_dir / CHECKPOINT_DIR).glob("*.index")):
            # a new run that failed before its first checkpoint holds nothing worth keeping
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                run_dir.parent.rmdir()  # train_dir/runs, when this was its only run
        raise


def _train_session(run_dir: Path, config: ContextConfig, resumed: bool, store, spk2utt, progress: bool,
                   hook) -> TrainResult:
    configure_runtime(config)
    lock = lock_run_dir(run_dir) if _is_chief(config) else contextlib.nullcontext()
    with lock, _run_log(run_dir, config.debug):
        log.info("%s run %s", "resuming" if resumed else "new", run_dir)
        if resumed:
            _log_overrides(run_dir, config)
        if store is None:
            store = load_features(config, progress=progress)
        if spk2utt is None and config.spk2utt:
            from unspeech.datadir import read_spk2utt

            spk2utt = read_spk2utt(config.spk2utt)
        try:
            session = _Session(config, run_dir, store, spk2utt)
            with _StopRequest().installed() as stop:
                result = _loop(session, resumed, hook, stop)
            _export_for_inference(run_dir)
            return result
        finally:
            if config.mixed_precision:
                import keras

                keras.mixed_precision.set_global_policy("float32")


def _is_chief(config: ContextConfig) -> bool:
    """False for the non-chief workers of a multi-worker run (they may share the chief's run dir)."""
    if config.distribute != "multi_worker":
        return True
    import os

    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def _log_overrides(run_dir: Path, config: ContextConfig) -> None:
    """Log every option this session runs with that differs from the run's config.json."""
    saved = ContextConfig.from_json(run_dir / CONFIG_NAME)
    for name in ContextConfig.__dataclass_fields__:
        old, new = getattr(saved, name), getattr(config, name)
        if name != "train_dir" and old != new:
            log.info("this session overrides %s: %r (config.json has %r)", name, new, old)


def _export_for_inference(run_dir) -> None:
    """Write ``RUN/model.onnx`` from the final checkpoint (what inference without TensorFlow runs).

    Training has succeeded at this point: an export problem is logged, never raised."""
    from unspeech.extras import has_module

    if not has_module("onnx"):
        log.warning("onnx is not installed, so no %s/model.onnx was written; install it and run "
                    "`unspeech export %s` for inference without TensorFlow", run_dir, run_dir)
        return
    from unspeech.context.onnx_export import export_onnx
    from unspeech.errors import UnspeechError

    try:
        export_onnx(run_dir)
    except UnspeechError as exc:
        log.warning("ONNX export failed (%s); the checkpoints are fine, inference falls back to TensorFlow", exc)


def _loop(session: _Session, resumed: bool, hook, stop: _StopRequest) -> TrainResult:
    import tensorflow as tf

    from unspeech.extras import tensorflow_stderr_filtered

    c = session.config
    step = first_step = session.restore()
    n_params = sum(int(np.prod(v.shape)) for v in session.model.trainable_variables)
    log.info("model %s: %d trainable parameters, %d replica(s), %d pairs per step (majority baseline %.3f)",
             c.embedding_transformation, n_params, session.replicas, c.batch_size * c.pairs_per_group, session.majority)
    writer = tf.summary.create_file_writer(str(session.run_dir / "tensorboard")) if c.log_tensorboard else None
    result = TrainResult(session.run_dir, c, step, "max_steps", resumed)
    labels = session.labels.numpy()
    pairs_per_step = c.batch_size * c.pairs_per_group
    sums = np.zeros(3)  # loss, xent, accuracy since the last log line
    count, t_last, probs = 0, time.perf_counter(), None
    iterator = iter(session.dataset(step))
    try:
        while not (c.max_steps and step >= c.max_steps):
            # the first step traces and optimises the graph: grappler's harmless noise stays off the console
            with tensorflow_stderr_filtered() if step == first_step else contextlib.nullcontext():
                loss, xent, acc, probs = session.train_step(next(iterator))
            step += 1
            session.step.assign(step)
            sums += (float(loss), float(xent), float(acc))
            count += 1
            if writer is not None and step % c.steps_per_summary == 0:
                _write_scalars(writer, step, {"train/loss": float(loss), "train/accuracy": float(acc)})
            if step % c.steps_per_checkpoint == 0:
                elapsed = time.perf_counter() - t_last
                record = _report(session, step, sums / count, elapsed / count, pairs_per_step * count / elapsed,
                                 _format_examples(probs.numpy(), labels), writer)
                result.history.append(record)
                session.save()
                sums[:] = 0
                count, t_last = 0, time.perf_counter()
                if hook is not None:
                    hook("step", record, completed=step, total=c.max_steps or None)
                if record.get("stop"):
                    result.stop_reason = "plateau"
                    break
            elif hook is not None:
                hook("step", None, completed=step, total=c.max_steps or None)
            if stop.requested:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        path = session.save()
        log.warning("interrupted at step %d; checkpoint saved to %s", step, path)
        result.stop_reason = "interrupted"
        result.step = step
        raise
    if step % c.steps_per_checkpoint:  # last partial interval
        session.save()
    result.step = step
    log.info("stopped at step %d (%s)", step, result.stop_reason)
    if writer is not None:
        writer.flush()
    return result


def _report(session: _Session, step: int, means: np.ndarray, step_time: float, pairs_per_s: float,
            examples: str, writer) -> dict[str, Any]:
    """Validate, early-stopping bookkeeping, log line, TensorBoard scalars."""
    c = session.config
    lr = _current_lr(session.optimizer)
    record: dict[str, Any] = dict(step=step, step_time=step_time, loss=means[0], xent=means[1], accuracy=means[2],
                                  majority=session.majority, pairs_per_s=pairs_per_s, learning_rate=lr)
    val_text = "val n/a"
    if session.validator is not None:
        val_loss, val_acc = session.validate()
        record.update(val_loss=val_loss, val_accuracy=val_acc)
        val_text = f"val loss {val_loss:.4f} acc {val_acc:.3f}"
        if val_loss < float(session.best_val_loss.numpy()) - 1e-6:
            session.best_val_loss.assign(val_loss)
            session.stale_evals.assign(0)
        else:
            session.stale_evals.assign_add(1)
            if c.early_stopping_patience and int(session.stale_evals.numpy()) >= c.early_stopping_patience:
                record["stop"] = True
                log.info("validation loss has not improved for %d validations (best %.4f): stopping",
                         c.early_stopping_patience, float(session.best_val_loss.numpy()))
    log.info("step %d | %.3f s/step | loss %.4f (xent %.4f) | acc %.3f (majority %.3f) | %.0f pairs/s | %s | lr %.2e | examples: %s",
             step, step_time, means[0], means[1], means[2], session.majority, pairs_per_s, val_text, lr, examples)
    if writer is not None:
        keys = ("loss", "xent", "accuracy", "pairs_per_s", "learning_rate", "val_loss", "val_accuracy")
        _write_scalars(writer, step, {("val/" + k[4:]) if k.startswith("val_") else f"train/{k}": record[k]
                                      for k in keys if k in record})
    return record


def _current_lr(optimizer) -> float:
    import tensorflow as tf

    value = optimizer.learning_rate
    return float(tf.convert_to_tensor(getattr(value, "value", value)))  # also for a MirroredVariable


def _write_scalars(writer, step: int, values: Mapping[str, float]) -> None:
    """TensorBoard scalars through TensorFlow's core summary op (no tensorboard package needed)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata.SerializeToString())
