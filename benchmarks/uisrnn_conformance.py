"""UIS-RNN conformance with the ``uisrnn`` library (issue 17): its test suite, its models, its decoder.

1. **Test suite**: the library's 29 tests (``../shared/peers/uis-rnn/tests``) run against
   ``unspeech.uisrnn`` with only the import lines rewritten (:mod:`tests/uisrnn/peer_suite`).
   The integration test imports torch to seed it: it runs with the reference venv's torch
   appended to ``sys.path`` (after this package's own dependencies).
2. **Models both ways and decoding** on the toy data (:mod:`unspeech.uisrnn.toy_data`):
   the library trains a model; we read its torch file (without torch) and decode the test
   sequences with both running-mean rules; the library decodes the same sequences with the same
   weights. Then we train a model, write it in the library's format, and the library loads and
   decodes it. Identical labels are counted per sequence; the GRU + output head of both are
   compared on one random input.
3. Optionally (``--demo``) the library's ``demo.py``, imports rewritten, on our toy data written in
   the library's layout, with the options of its README (``--train_iteration=1000 -l=0.001``).
4. Optionally (``--fixture DIR``) writes a tiny library-trained model and the library's labels for
   one sequence, the fixture of ``tests/uisrnn/test_uisrnn_compat.py``.

    python benchmarks/uisrnn_conformance.py --reference-python /tmp/uisrnn-ref/bin/python

The reference venv: ``python3 -m venv /tmp/uisrnn-ref && /tmp/uisrnn-ref/bin/pip install
torch==2.13.0+cpu uisrnn==0.1.2``. With torch >= 2.6, ``torch.load`` refuses the NumPy arrays in
every uisrnn model file (the library's own files too) unless told to trust them; the reference
side runs with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "uisrnn"))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Runs in the reference interpreter: argv = mode work_dir; settings in work_dir/config.json
REFERENCE = r"""
import json, sys, time
import numpy as np
import torch
import uisrnn

mode, work = sys.argv[1], sys.argv[2]
cfg = json.load(open(work + "/config.json"))
torch.set_num_threads(cfg["threads"])
torch.manual_seed(cfg["seed"]); np.random.seed(cfg["seed"])
sys.argv = ["reference", "--observation_dim", str(cfg["observation_dim"]), "--rnn_hidden_size", str(cfg["hidden"]),
            "--rnn_depth", str(cfg["depth"]), "-t", str(cfg["iterations"]), "-l", str(cfg["learning_rate"]),
            "--verbosity", "1", "--enable_cuda", "false"]
model_args, training_args, inference_args = uisrnn.parse_arguments()
out = {}
if mode == "train":
    data = np.load(work + "/train.npz")
    model = uisrnn.UISRNN(model_args)
    start = time.perf_counter()
    model.fit(data["sequence"], data["cluster_id"], training_args)
    out["train_s"] = time.perf_counter() - start
    model.save(work + "/" + cfg["save_as"])
else:  # predict: decode the test sequences with each model file, and run the network on one input
    test = np.load(work + "/test.npz")
    bounds = np.cumsum(test["lengths"])[:-1]
    sequences = np.split(test["sequence"], bounds)
    probe = torch.from_numpy(test["probe"]).float()
    for name in cfg["models"]:
        model = uisrnn.UISRNN(model_args)
        model.load(work + "/" + name)
        start = time.perf_counter()
        labels = [list(map(int, model.predict(seq.astype(float), inference_args))) for seq in sequences]
        seconds = time.perf_counter() - start
        with torch.no_grad():
            mean, _ = model.rnn_model(probe.unsqueeze(1), model.rnn_init_hidden)
        out[name] = {"labels": labels, "predict_s": seconds, "probe": mean.squeeze(1).numpy().tolist()}
with open(work + "/" + mode + ".out.json", "w") as handle:
    json.dump(out, handle)
"""


def _reference(python: str, mode: str, work: Path) -> dict:
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    proc = subprocess.run([python, "-c", REFERENCE, mode, str(work)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"reference {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads((work / f"{mode}.out.json").read_text())


def run_test_suite(reference_site: str | None) -> dict:
    """Every peer test file in a fresh interpreter; returns outcomes and wall times per file."""
    import peer_suite

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        peer_suite.copy_suite(Path(scratch))
        for test_file in sorted(Path(scratch).rglob("*_test.py")):
            relative = str(test_file.relative_to(scratch))
            extra = reference_site if relative == "integration_test.py" else None
            result = peer_suite.run_file(test_file, extra_path=extra, timeout=1800)
            outcomes = {name.split(".", 1)[1]: outcome for name, (outcome, _) in result["outcomes"].items()}
            results[relative] = {"outcomes": outcomes, "wall_s": round(result["wall"], 1)}
            passed = sum(o == "pass" for o in outcomes.values())
            print(f"  {relative}: {passed}/{len(outcomes)} passed in {result['wall']:.1f} s "
                  + " ".join(f"[{n}: {o}]" for n, o in outcomes.items() if o != "pass"), flush=True)
    return results


def run_demo(demo_args: list[str]) -> dict:
    """The library's demo.py, imports rewritten, on our toy data written in the library's layout."""
    import peer_suite
    from unspeech.uisrnn.toy_data import make_toy_data

    data = make_toy_data(seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "data").mkdir()
        np.savez(work / "data" / "toy_training_data.npz", train_sequence=data["train_sequence"],
                 train_cluster_id=data["train_cluster_id"])
        as_objects = lambda items: np.array(items + [None], dtype=object)[:-1]  # noqa: E731 (no stacking)
        np.savez(work / "data" / "toy_testing_data.npz", test_sequences=as_objects(data["test_sequences"]),
                 test_cluster_ids=as_objects(data["test_cluster_ids"]))
        text, changed = peer_suite.rewrite_imports((peer_suite.PEER_ROOT / "demo.py").read_text(encoding="utf-8"))
        (work / "demo.py").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "demo.py", *demo_args], cwd=work, capture_output=True, text=True)
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"demo.py failed:\n{proc.stderr[-3000:]}")
    accuracy = [line for line in proc.stdout.splitlines() if "averaged accuracy" in line]
    result = {"args": demo_args, "import_lines_changed": changed, "wall_s": wall,
              "averaged_accuracy": accuracy[-1].split(":")[-1].strip() if accuracy else None}
    print(f"  demo.py {' '.join(demo_args)}: {json.dumps(result)}", flush=True)
    return result


def _probe_outputs(weights, probe: np.ndarray) -> np.ndarray:
    """Our network's outputs for ``probe`` (T, D) fed as one sequence from the learned initial state."""
    hidden = weights.init_hidden[None].astype(np.float64)
    w64 = weights.astype(np.float64)
    outputs = []
    for row in probe.astype(np.float64):
        hidden, output = w64.run_rnn(w64.project_inputs(row[None]), hidden)
        outputs.append(output[0])
    return np.array(outputs)


def run_cross_checks(python: str, args) -> dict:
    from unspeech import uisrnn
    from unspeech.uisrnn.toy_data import make_toy_data

    data = make_toy_data(seed=args.data_seed, num_train_sequences=args.train_sequences,
                         num_test_sequences=args.test_sequences)
    tests = [seq.astype(np.float64) for seq in data["test_sequences"]]
    truths = [ids.tolist() for ids in data["test_cluster_ids"]]
    probe = np.random.default_rng(5).standard_normal((20, 256)).astype(np.float32)
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        config = dict(threads=args.threads, seed=0, observation_dim=256, hidden=args.hidden, depth=args.depth,
                      iterations=args.iterations, learning_rate=args.learning_rate, save_as="theirs.uisrnn",
                      models=["theirs.uisrnn", "ours.uisrnn"])
        (work / "config.json").write_text(json.dumps(config))
        np.savez(work / "train.npz", sequence=data["train_sequence"], cluster_id=data["train_cluster_id"])
        np.savez(work / "test.npz", sequence=np.concatenate(tests[: args.reference_sequences]),
                 lengths=[len(s) for s in tests[: args.reference_sequences]], probe=probe)
        print("reference: training ...", flush=True)
        figures["reference_train_s"] = _reference(python, "train", work)["train_s"]

        print("unspeech: training ...", flush=True)
        model_args, training_args, inference_args = uisrnn.default_arguments(
            rnn_hidden_size=args.hidden, rnn_depth=args.depth, train_iteration=args.iterations,
            learning_rate=args.learning_rate, verbosity=1, enable_cuda=False)
        ours = uisrnn.UISRNN(model_args, seed=0)
        start = time.perf_counter()
        ours.fit(data["train_sequence"], data["train_cluster_id"], training_args)
        figures["unspeech_train_s"] = time.perf_counter() - start
        ours.save(work / "ours.uisrnn", file_format="uisrnn")

        print("reference: decoding both models ...", flush=True)
        reference = _reference(python, "predict", work)
        theirs = uisrnn.UISRNN.from_file(work / "theirs.uisrnn", verbosity=0)
        k = args.reference_sequences
        for name, model in (("theirs.uisrnn", theirs), ("ours.uisrnn", ours)):
            entry = {"reference_predict_s": reference[name]["predict_s"], "sequences_compared": k}
            entry["probe_max_abs_diff"] = float(np.max(np.abs(
                _probe_outputs(model.decoder_weights(), probe) - np.array(reference[name]["probe"]))))
            for rule in ("uisrnn", "training"):
                inference_args.running_mean = rule
                start = time.perf_counter()
                labels = model.predict(tests, inference_args)
                seconds = time.perf_counter() - start
                entry[rule] = {
                    "identical_to_reference": sum(a == b for a, b in zip(labels[:k], reference[name]["labels"])),
                    "accuracy_all": float(np.mean([uisrnn.compute_sequence_match_accuracy(t, p)
                                                   for t, p in zip(truths, labels)])),
                    "accuracy_compared": float(np.mean([uisrnn.compute_sequence_match_accuracy(t, p)
                                                        for t, p in zip(truths[:k], labels[:k])])),
                    "predict_s": seconds,
                }
            entry["reference_accuracy_compared"] = float(np.mean([
                uisrnn.compute_sequence_match_accuracy(t, p) for t, p in zip(truths[:k], reference[name]["labels"])]))
            figures[name] = entry
            print(f"  {name}: {json.dumps(entry)}", flush=True)
    return figures


def write_fixture(python: str, directory: Path) -> None:
    """A tiny library-trained model and the library's labels for a few sequences (test fixture)."""
    from unspeech.uisrnn.toy_data import make_conversation

    rng = np.random.default_rng(3)
    parts, ids = [], []
    for index in range(6):
        entries, labels = make_conversation(rng, 4, 3, 40, noise_std=0.05)
        parts.append(entries)
        ids.append(np.char.add(f"{index}_", labels.astype(str)))
    # increasingly noisy test conversations, where the decoding rules start to disagree
    tests = [make_conversation(rng, 4, 3, 30, noise_std=noise) for noise in (0.05, 0.3, 0.5, 0.7, 0.9)]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "config.json").write_text(json.dumps(dict(
            threads=1, seed=0, observation_dim=4, hidden=8, depth=2, iterations=60, learning_rate=0.01,
            save_as="tiny.uisrnn", models=["tiny.uisrnn"])))
        np.savez(work / "train.npz", sequence=np.concatenate(parts), cluster_id=np.concatenate(ids))
        np.savez(work / "test.npz", sequence=np.concatenate([seq for seq, _ in tests]),
                 lengths=[len(seq) for seq, _ in tests], probe=tests[0][0][:5].astype(np.float32))
        _reference(python, "train", work)
        predicted = _reference(python, "predict", work)["tiny.uisrnn"]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "uisrnn_0.1.2_tiny.uisrnn").write_bytes((work / "tiny.uisrnn").read_bytes())
        (directory / "uisrnn_0.1.2_tiny.json").write_text(json.dumps({
            "made_by": "benchmarks/uisrnn_conformance.py --fixture (uisrnn 0.1.2, torch 2.13.0 CPU)",
            "model_args": {"observation_dim": 4, "rnn_hidden_size": 8, "rnn_depth": 2},
            "inference_args": {"beam_size": 10, "look_ahead": 1, "test_iteration": 2},
            "sequences": [seq.tolist() for seq, _ in tests], "truths": [ids.tolist() for _, ids in tests],
            "labels": predicted["labels"], "probe_input": tests[0][0][:5].tolist(),
            "probe_outputs": predicted["probe"]}, indent=1))
    print(f"wrote the fixture into {directory}")


def main(argv=None) -> int:
    from uisrnn_bench import find_reference

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="interpreter with uisrnn + torch (default: $UISRNN_REFERENCE_PYTHON "
                        "or /tmp/uisrnn-ref/bin/python)")
    parser.add_argument("--skip-suite", action="store_true", help="do not run the library's test files")
    parser.add_argument("--skip-cross", action="store_true", help="do not train/convert/decode on toy data")
    parser.add_argument("--demo", action="store_true",
                        help="also run the library's demo.py (imports rewritten) with --train_iteration=1000 -l=0.001")
    parser.add_argument("--fixture", type=Path, help="write the tiny reference model + labels into this folder")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--learning-rate", type=float, default=0.005)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--train-sequences", type=int, default=100)
    parser.add_argument("--test-sequences", type=int, default=25)
    parser.add_argument("--reference-sequences", type=int, default=6,
                        help="test sequences the (slow) reference decodes per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the reference")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    python = find_reference(args.reference_python)
    if python is None:
        print("no reference interpreter with uisrnn + torch: nothing to compare against")
        return 1
    if args.fixture:
        write_fixture(python, args.fixture)
        return 0
    site = subprocess.run([python, "-c", "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    figures = {"reference_python": python}
    if not args.skip_suite:
        print("the uisrnn library's test files, imports rewritten to unspeech.uisrnn:", flush=True)
        suite = run_test_suite(site)
        figures["suite"] = suite
        outcomes = [o for entry in suite.values() for o in entry["outcomes"].values()]
        print(f"  total: {sum(o == 'pass' for o in outcomes)}/{len(outcomes)} passed", flush=True)
    if not args.skip_cross:
        figures["cross"] = run_cross_checks(python, args)
    if args.demo:
        print("the library's demo.py, imports rewritten to unspeech.uisrnn:", flush=True)
        figures["demo"] = run_demo(["--train_iteration=1000", "-l=0.001"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
