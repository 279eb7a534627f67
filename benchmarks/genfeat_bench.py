"""Feature-export benchmark: real-time factor and FLOP/s of Vgg16big (W=64, 40 bins, stride 10).

In one run it measures:

1. this machine's dense float32 matmul FLOP/s (``tf.matmul`` of two N x N matrices), the reference;
2. the export throughput: ``FrameEmbedder`` over ``--minutes`` of features, as real-time
   factor (seconds of compute per second of audio, 10 ms frames) and as achieved FLOP/s, the
   model's FLOPs counted by TensorFlow's profiler on the traced graph; the ratio to (1) is the
   figure of merit (target >= 60 %);
3. peak RSS of ``gen_feat`` on ONE utterance of ``--long-minutes`` (default 60) in a child
   process (target < 1 GB): memory is bounded by the batch, not the utterance.

The model is randomly initialised: speed does not depend on the weights.

    python benchmarks/genfeat_bench.py --minutes 5 --long-minutes 60
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def seed_config(train_dir: str):
    from unspeech.context.config import ContextConfig

    return ContextConfig(feat_size=40, window_length=64, window_neg_length=64, embedding_transformation="Vgg16big",
                         fc_size=1024, embedding_size=100, unit_normalize_var=True, tied_embeddings_transforms=True,
                         train_dir=train_dir).validate()


def make_run(run_dir: Path):
    from unspeech.context.rundir import init_run

    return init_run(seed_config(str(run_dir)), run_dir)


def graph_flops(fn, spec) -> int:
    """Float operations of one call of ``fn`` as TensorFlow's profiler counts them (2 per multiply-add)."""
    import tensorflow as tf
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    concrete = tf.function(fn).get_concrete_function(spec)
    opts = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return int(profile(concrete.graph, options=opts).total_float_ops)


def matmul_flops_per_s(n: int = 2048, seconds: float = 3.0) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mm(a, b).numpy()
        reps += 1
    return 2.0 * n**3 * reps / (time.perf_counter() - t0)


CHILD = r"""
import json, resource, sys

def peak_rss_mb():
    # VmHWM is reset by exec; ru_maxrss would still hold the parent's peak at fork time
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024

from unspeech.context.export import GenFeatOptions, gen_feat
s = gen_feat(sys.argv[1], sys.argv[2], GenFeatOptions(output_feat_file=sys.argv[3], quiet=True, genfeat_batch_size=int(sys.argv[4])))
print(json.dumps({"rows_rss_mb": peak_rss_mb(), "rtf": s["rtf"], "frames": s["frames"]}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0, help="audio minutes for the throughput measurement")
    p.add_argument("--long-minutes", type=float, default=60.0, help="length of the single utterance for peak RSS (0 = skip)")
    p.add_argument("--batch-size", type=int, default=128, help="windows per model call (gen_feat's default)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0 = default)")
    args = p.parse_args(argv)

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)

    from unspeech.context.embed import FrameEmbedder

    work = Path(tempfile.mkdtemp(prefix="genfeat_bench_"))
    model = make_run(work / "run")
    config = model.config
    print(f"machine: {os.cpu_count()} CPUs, TensorFlow {tf.__version__}")

    ref = matmul_flops_per_s()
    print(f"dense float32 matmul (2048^3): {ref / 1e9:.1f} GFLOP/s  (reference)")

    flops_per_window = graph_flops(lambda x: model.embed_targets(x, training=False),
                                   tf.TensorSpec((1, config.window_length, config.feat_size), tf.float32))
    print(f"Vgg16big target tower: {flops_per_window / 1e6:.1f} MFLOP per window (profiler count)")

    frames = int(args.minutes * 60 * 100)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((frames, 40)).astype(np.float32)
    emb = FrameEmbedder(model, period=10, batch_size=args.batch_size)
    emb.embed_utterance(feats[:3000])  # trace and warm up
    t0 = time.perf_counter()
    rows = emb.embed_utterance(feats)
    dt = time.perf_counter() - t0
    achieved = len(rows) * flops_per_window / dt
    rtf = dt / (frames / 100.0)
    print(f"export of {args.minutes:g} min ({len(rows)} windows, stride 10): {dt:.2f} s, "
          f"real-time factor {rtf:.4f} ({1 / rtf:.0f}x faster than real time)")
    print(f"achieved {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / ref:.1f} % of dense matmul (target >= 60 %)")

    if args.long_minutes > 0:
        from unspeech import kaldi_io

        long_frames = int(args.long_minutes * 60 * 100)
        ark = work / "long.ark"
        kaldi_io.write_mats(ark, [("one-long-utterance", rng.standard_normal((long_frames, 40)).astype(np.float32))])
        out = subprocess.run([sys.executable, "-c", CHILD, str(work / "run"), str(ark), str(work / "out" / "ivector_online"),
                              str(args.batch_size)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"gen_feat on one {args.long_minutes:g}-minute utterance ({long_frames} frames): peak RSS "
              f"{r['rows_rss_mb']:.0f} MB (target < 1024 MB), real-time factor {r['rtf']:.4f}")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(f"(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
