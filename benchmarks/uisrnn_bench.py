"""UIS-RNN: unspeech (TensorFlow + NumPy beam search) against the ``uisrnn`` library (PyTorch).

Both train on the same toy demo data (:mod:`unspeech.uisrnn.toy_data`) with the demo's
options and default model sizes (256-dim input, 512 hidden units, batch 10), then decode the
same test sequences with the default inference options (beam 10, test_iteration 2). Prints the
training time per iteration, the decoding time per test sequence, the accuracy and the ratios.

The reference runs in its own interpreter, e.g. a venv made with::

    python3 -m venv /tmp/uisrnn-ref && /tmp/uisrnn-ref/bin/pip install torch==2.13.0 uisrnn==0.1.2

    python benchmarks/uisrnn_bench.py --reference-python /tmp/uisrnn-ref/bin/python

(or set ``UISRNN_REFERENCE_PYTHON``). Without a reference the script says so and reports
unspeech alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Runs inside the reference interpreter: argv = data_dir iterations learning_rate n_test threads
REFERENCE_RUNNER = r"""
import json, sys, time
import numpy as np
import torch
import uisrnn

data_dir, iterations, rate, n_test, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if threads > 0:
    torch.set_num_threads(threads)
train = np.load(data_dir + "/toy_training_data.npz")
test = np.load(data_dir + "/toy_testing_data.npz")
bounds = np.cumsum(test["test_lengths"])[:-1]
sequences = np.split(test["test_sequence"], bounds)[:n_test]
labels = np.split(test["test_cluster_id"], bounds)[:n_test]
sys.argv = ["reference", "-t", str(iterations), "-l", rate, "--verbosity", "1"]
model_args, training_args, inference_args = uisrnn.parse_arguments()
torch.manual_seed(0)
np.random.seed(0)
model = uisrnn.UISRNN(model_args)
start = time.perf_counter()
model.fit(train["train_sequence"], train["train_cluster_id"], training_args)
train_s = time.perf_counter() - start
model.save(data_dir + "/reference.uisrnn")
model = uisrnn.UISRNN(model_args)
model.load(data_dir + "/reference.uisrnn")
accuracies, times = [], []
for sequence, truth in zip(sequences, labels):
    start = time.perf_counter()
    predicted = model.predict(sequence, inference_args)
    times.append(time.perf_counter() - start)
    accuracies.append(uisrnn.compute_sequence_match_accuracy(truth.tolist(), list(predicted)))
print("RESULT " + json.dumps({"train_s": train_s, "iterations": iterations, "predict_s": times,
                               "accuracy": accuracies, "threads": torch.get_num_threads()}))
"""


def find_reference(path: str | None) -> str | None:
    candidates = [path, os.environ.get("UISRNN_REFERENCE_PYTHON"), "/tmp/uisrnn-ref/bin/python"]
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            probe = subprocess.run([candidate, "-c", "import uisrnn, torch"], capture_output=True)
            if probe.returncode == 0:
                return candidate
            if candidate == path:
                print(f"reference interpreter {candidate} cannot import uisrnn/torch:\n"
                      f"{probe.stderr.decode(errors='replace')[-500:]}")
    return None


def run_reference(python: str, data_dir: str, args) -> dict:
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    proc = subprocess.run([python, "-c", REFERENCE_RUNNER, data_dir, str(args.train_iterations),
                           str(args.learning_rate), str(args.test_sequences), str(args.threads)],
                          capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"reference run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def run_ours(data: dict, data_dir: str, args) -> dict:
    import tensorflow as tf

    from unspeech import uisrnn

    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    model_args, training_args, inference_args = uisrnn.parse_arguments(
        ["-t", str(args.train_iterations), "-l", str(args.learning_rate), "--verbosity", "1"])
    model = uisrnn.UISRNN(model_args)
    start = time.perf_counter()
    model.fit(data["train_sequence"], data["train_cluster_id"], training_args)
    train_s = time.perf_counter() - start
    # steady state: a few more steps after the one-off graph tracing
    extra = max(10, args.train_iterations // 10)
    _, steady_args, _ = uisrnn.parse_arguments(["-t", str(extra), "-l", "1e-9", "--verbosity", "1"])
    start = time.perf_counter()
    model.fit(data["train_sequence"], data["train_cluster_id"], steady_args)
    steady_s = (time.perf_counter() - start) / extra
    model.save(os.path.join(data_dir, "ours.npz"))
    model = uisrnn.UISRNN(model_args)
    model.load(os.path.join(data_dir, "ours.npz"))

    sequences = data["test_sequences"][: args.test_sequences]
    labels = data["test_cluster_ids"][: args.test_sequences]
    times, accuracies = [], []
    for sequence, truth in zip(sequences, labels):
        start = time.perf_counter()
        predicted = model.predict(sequence, inference_args)
        times.append(time.perf_counter() - start)
        accuracies.append(uisrnn.compute_sequence_match_accuracy(truth.tolist(), predicted))
    start = time.perf_counter()
    batched = model.predict(list(sequences), inference_args)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = uisrnn.parallel_predict(model, list(sequences), inference_args, num_processes=args.processes)
    parallel_s = time.perf_counter() - start
    assert parallel == batched == [model.predict(s, inference_args) for s in sequences]
    return {"train_s": train_s, "iterations": args.train_iterations, "steady_iteration_s": steady_s,
            "predict_s": times, "accuracy": accuracies, "batch_total_s": batch_s, "parallel_total_s": parallel_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", help="interpreter with uisrnn + torch installed "
                        "(default: $UISRNN_REFERENCE_PYTHON, then /tmp/uisrnn-ref/bin/python)")
    parser.add_argument("--train-iterations", type=int, default=1000, help="as the demo (default 1000)")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="as the demo (default 0.001)")
    parser.add_argument("--test-sequences", type=int, default=25, help="test sequences to decode (max 25)")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads for both frameworks (0: their defaults)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="worker processes for unspeech's parallel_predict")
    parser.add_argument("--no-reference", action="store_true", help="measure unspeech only")
    parser.add_argument("--json", help="also write the raw figures here")
    args = parser.parse_args(argv)

    from unspeech.uisrnn.toy_data import make_toy_data, save_toy_data

    data = make_toy_data()
    reference = None if args.no_reference else find_reference(args.reference_python)
    print(f"data: {len(data['train_sequence'])} training entries, {args.test_sequences} test sequences "
          f"of {np.mean([len(s) for s in data['test_sequences'][:args.test_sequences]]):.1f} entries; "
          f"{args.train_iterations} iterations at learning rate {args.learning_rate}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory() as data_dir:
        save_toy_data(data_dir, data)
        results["unspeech"] = ours = run_ours(data, data_dir, args)
        print(f"unspeech: {1000 * ours['train_s'] / ours['iterations']:.1f} ms/iteration, "
              f"{np.mean(ours['predict_s']):.3f} s/sequence, accuracy {np.mean(ours['accuracy']):.4f}", flush=True)
        if reference is None:
            print("reference uisrnn not installed (give --reference-python or set UISRNN_REFERENCE_PYTHON): "
                  "reporting unspeech alone")
        else:
            results["uisrnn"] = run_reference(reference, data_dir, args)

    rows = [
        ("train ms/iteration (incl. tracing)", 1000 * ours["train_s"] / ours["iterations"], "train"),
        ("train ms/iteration (steady)", 1000 * ours["steady_iteration_s"], "train"),
        ("predict s/sequence (mean)", float(np.mean(ours["predict_s"])), "predict"),
        ("predict s/sequence (max)", float(np.max(ours["predict_s"])), "predict_max"),
        ("accuracy (mean)", float(np.mean(ours["accuracy"])), "accuracy"),
    ]
    ref = results.get("uisrnn")
    ref_values = {}
    if ref:
        ref_values = {"train": 1000 * ref["train_s"] / ref["iterations"],
                      "predict": float(np.mean(ref["predict_s"])),
                      "predict_max": float(np.max(ref["predict_s"])),
                      "accuracy": float(np.mean(ref["accuracy"]))}
    print(f"\n| {'measure':36s} | {'unspeech':>10s} | {'uisrnn 0.1.2':>12s} | {'speed-up':>8s} |")
    print(f"|{'-' * 38}|{'-' * 12}|{'-' * 14}|{'-' * 10}|")
    for name, value, key in rows:
        other = ref_values.get(key)
        ratio = "" if other is None or key == "accuracy" else f"{other / value:.1f}x"
        other_text = "" if other is None else f"{other:.4g}"
        print(f"| {name:36s} | {value:10.4g} | {other_text:>12s} | {ratio:>8s} |")
    sequential = float(np.sum(ours["predict_s"]))
    count = len(ours["predict_s"])
    print(f"\n{count} sequences: {sequential:.2f} s one by one, {ours['batch_total_s']:.2f} s as one list "
          f"(predict(list), lockstep: {ours['batch_total_s'] / count:.3f} s/sequence), "
          f"{ours['parallel_total_s']:.2f} s with parallel_predict on {args.processes} processes "
          f"({ours['parallel_total_s'] / count:.3f} s/sequence, {sequential / ours['parallel_total_s']:.2f}x "
          f"one by one)")
    if ref:
        print(f"reference torch threads: {ref['threads']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
