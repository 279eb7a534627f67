"""Train, save, reload and evaluate UIS-RNN on bundled toy data.

    python3 -m unspeech.uisrnn.demo --train_iteration=1000 -l=0.001

takes every flag of :func:`unspeech.uisrnn.parse_arguments` plus the demo's own (``--help``).
The data come from :mod:`unspeech.uisrnn.toy_data` (deterministic, nothing downloaded): 100
training conversations and 25 test conversations of about 95 entries, 2-4 speakers each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence


def _demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--out_dir", "--out-dir", dest="out_dir", default=os.path.join("exp", "uisrnn_demo"),
                        help="folder of the demo's files: the saved model and the result summary "
                             "(default exp/uisrnn_demo)")
    parser.add_argument("--saved_model", default=None,
                        help="where the trained model is saved (default OUT_DIR/saved_model.uisrnn.npz)")
    parser.add_argument("--data_seed", type=int, default=0, help="seed of the toy data (default 0)")
    parser.add_argument("--num_train_sequences", type=int, default=100)
    parser.add_argument("--num_test_sequences", type=int, default=25)
    parser.add_argument("--num_processes", type=int, default=os.cpu_count() or 1,
                        help="decode the test sequences in this many processes")
    parser.add_argument("--result_file", default="auto",
                        help="summary file appended by output_result ('auto': OUT_DIR/layer_..._result.txt, "
                             "'none': no file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from unspeech import uisrnn
    from unspeech.uisrnn.toy_data import make_toy_data

    argv = list(sys.argv[1:] if argv is None else argv)
    demo_parser = _demo_parser()
    if "-h" in argv or "--help" in argv:
        demo_parser.print_help()
    demo_args, rest = demo_parser.parse_known_args(argv)
    model_args, training_args, inference_args = uisrnn.parse_arguments(rest)
    os.makedirs(demo_args.out_dir, exist_ok=True)  # the demo's files go here, never into the working directory
    saved_model = demo_args.saved_model or os.path.join(demo_args.out_dir, "saved_model.uisrnn.npz")

    data = make_toy_data(seed=demo_args.data_seed, observation_dim=model_args.observation_dim,
                         num_train_sequences=demo_args.num_train_sequences,
                         num_test_sequences=demo_args.num_test_sequences)
    train_sequence, train_cluster_id = data["train_sequence"], data["train_cluster_id"]
    test_sequences, test_cluster_ids = data["test_sequences"], data["test_cluster_ids"]

    model = uisrnn.UISRNN(model_args)
    started = time.perf_counter()
    model.fit(train_sequence, train_cluster_id, training_args)
    print(f"Training took {time.perf_counter() - started:.1f} s")
    model.save(saved_model)
    # A fresh model loaded from the file predicts exactly like the trained one.
    model = uisrnn.UISRNN(model_args)
    model.load(saved_model)

    started = time.perf_counter()
    predictions = uisrnn.parallel_predict(model, test_sequences, inference_args,
                                          num_processes=demo_args.num_processes)
    print(f"Prediction took {time.perf_counter() - started:.2f} s for {len(test_sequences)} sequences")
    test_record = []
    for truth, predicted in zip(test_cluster_ids, predictions):
        accuracy = uisrnn.compute_sequence_match_accuracy(truth.tolist(), predicted)
        test_record.append((accuracy, len(truth)))
        print("Ground truth labels:")
        print(" ".join(truth.tolist()))
        print("Predicted labels:")
        print(" ".join(map(str, predicted)))
        print("-" * 80)
    result_file = None if demo_args.result_file == "none" else demo_args.result_file
    if result_file == "auto":  # the library's file name, in OUT_DIR
        from unspeech.uisrnn.utils import result_file_name

        result_file = os.path.join(demo_args.out_dir, result_file_name(model_args))
    print("Finished diarization experiment")
    print(uisrnn.output_result(model_args, training_args, test_record, filename=result_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
