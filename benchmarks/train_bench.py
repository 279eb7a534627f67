"""Context-model training throughput: pairs/s and achieved FLOP/s vs. dense float32 matmul.

Times the real compiled training step of :mod:`unspeech.context.train` (Adam, clipping, L2,
dropout) on the seed configuration (Vgg16big, 64-frame windows, 40 bins, batch 32,
fc 2048, tied trunks, unit_normalize_var), counts the model's FLOPs with TensorFlow's
profiler (a training step ~ 3x the forward FLOPs), and measures float32 matmul FLOP/s in
the same process before and after, so the ratio survives a noisy shared machine. Also
reports the sampler's throughput against what the model consumes.

    python benchmarks/train_bench.py --threads 2
    python benchmarks/train_bench.py --threads 2 --transformation Vgg16 --jit
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads (default 2)")
    p.add_argument("--transformation", default="Vgg16big")
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--feat-size", type=int, default=40)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--fc-size", type=int, default=2048)
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--matmul", type=int, default=2048, help="size N of the N x N reference matmul")
    p.add_argument("--jit", action="store_true", help="XLA-compile the step (slow for convolutions on CPU)")
    p.add_argument("--no-remapper", action="store_true", help="switch off grappler's op fusion")
    return p.parse_args()


def matmul_flops_per_s(tf, n: int, reps: int = 8) -> float:
    """Best float32 N x N matmul rate (FLOP/s) over ``reps`` calls."""
    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    f = tf.function(lambda x, y: tf.matmul(x, y))
    f(a, b).numpy()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


def forward_flops(tf, model, batch) -> int:
    """FLOPs of one forward pass of ``model`` on ``batch`` (TensorFlow profiler, float ops)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    spec = {k: tf.TensorSpec(v.shape, tf.float32) for k, v in batch.items()}
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    opts = option_builder.ProfileOptionBuilder(option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return int(model_analyzer.profile(graph, options=opts).total_float_ops)


def main() -> int:
    args = _parse()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from unspeech.context.config import ContextConfig
    from unspeech.context.train import _Session, configure_runtime
    from unspeech.feature_store import FeatureStore

    config = ContextConfig(
        filelist="bench.ark", feat_size=args.feat_size, window_length=args.window, window_neg_length=args.window,
        embedding_transformation=args.transformation, fc_size=args.fc_size, batch_size=args.batch,
        tied_embeddings_transforms=True, unit_normalize_var=True, l2_reg=1e-4, learn_rate=3e-4,
        validation_fraction=0.0, jit_compile=args.jit, num_threads=args.threads, log_tensorboard=False,
    ).validate()
    configure_runtime(config)
    if args.no_remapper:
        tf.config.optimizer.set_experimental_options({"remapping": False})
    rng = np.random.default_rng(0)
    store = FeatureStore.from_arrays([f"u{i}" for i in range(64)],
                                     [rng.normal(size=(1000, args.feat_size)).astype(np.float32) for _ in range(64)])
    mm_before = matmul_flops_per_s(tf, args.matmul)
    with tempfile.TemporaryDirectory() as tmp:
        session = _Session(config, Path(tmp), store, None)
        batch = {k: tf.constant(v) for k, v in session.sampler.sample(0).items()}
        fwd = forward_flops(tf, session.model, batch)
        for _ in range(args.warmup):
            session.train_step(batch)[0].numpy()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            session.train_step(batch)[0].numpy()
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        n_sampled = 0
        while time.perf_counter() - t < 2.0:
            session.sampler.sample(n_sampled)
            n_sampled += 1
        sampler_rate = n_sampled / (time.perf_counter() - t)
        it = iter(session.sampler.dataset(start=0))
        next(it)
        t = time.perf_counter()
        for _ in range(50):
            next(it)
        pipeline_rate = 50 / (time.perf_counter() - t)
    mm_after = matmul_flops_per_s(tf, args.matmul)
    mm = max(mm_before, mm_after)
    step = float(np.median(times))
    train_flops = 3 * fwd
    achieved = train_flops / step
    windows = config.batch_size * (1 + config.num_contexts + config.negative_samples)
    pairs = config.batch_size * config.pairs_per_group
    print(f"| setting | value |\n|---|---|")
    print(f"| model | {args.transformation}, W={args.window}, {args.feat_size} bins, batch {args.batch} groups "
          f"= {pairs} pairs, {windows} windows, fc {args.fc_size}, jit={args.jit}, threads={args.threads} |")
    print(f"| forward FLOPs per step (profiler) | {fwd / 1e9:.1f} G ({fwd / windows / 1e6:.0f} M per window) |")
    print(f"| training step (median of {args.steps}) | {step:.3f} s (min {min(times):.3f}, max {max(times):.3f}) |")
    print(f"| pairs/s | {pairs / step:.0f} |")
    print(f"| achieved FLOP/s (3 x forward / step) | {achieved / 1e9:.1f} G |")
    print(f"| float32 matmul {args.matmul}^2 FLOP/s (before / after) | {mm_before / 1e9:.1f} / {mm_after / 1e9:.1f} G |")
    print(f"| **fraction of matmul FLOP/s** | **{100 * achieved / mm:.0f} %** (target >= 35 %) |")
    print(f"| sampler batches/s (numpy / tf.data) | {sampler_rate:.0f} / {pipeline_rate:.0f} "
          f"= {min(sampler_rate, pipeline_rate) * step:.0f}x what the model consumes |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
