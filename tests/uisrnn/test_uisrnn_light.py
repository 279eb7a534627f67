"""UIS-RNN without TensorFlow: load, predict and save run on NumPy alone; training says what to install."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from light_env import run_cli_without_tf, run_python_without_tf
from unspeech import kaldi_io

from uisrnn_testdata import conversation

MISSING = "needs TensorFlow, which is not installed: pip install 'unspeech[train]'"


@pytest.fixture(scope="module")
def saved(trained_2d, tmp_path_factory):
    """The shared trained model, a test conversation saved as .npy, and this process's labels."""
    model, model_args, inference_args, path = trained_2d
    sequence, _ = conversation(np.random.default_rng(21), list("ABCDCA"), turn=4)
    folder = tmp_path_factory.mktemp("light")
    np.save(folder / "sequence.npy", sequence)
    expected = {
        "single": model.predict(sequence, inference_args),
        "batch": model.predict([sequence, sequence[:7]], inference_args),
        "online": list(model.predict_online(sequence, inference_args)),
        "max2": model.predict(sequence, inference_args, max_speakers=2),
    }
    return path, folder, sequence, expected


def test_load_predict_and_save_run_without_tensorflow(saved):
    path, folder, _, expected = saved
    code = textwrap.dedent(f"""
        import json
        import numpy as np
        from unspeech import uisrnn
        sequence = np.load({str(folder / "sequence.npy")!r})
        model = uisrnn.UISRNN.from_file({str(path)!r}, verbosity=0)
        _, _, inference_args = uisrnn.default_arguments()
        model_args, _, _ = uisrnn.default_arguments(observation_dim=2, rnn_hidden_size=32, verbosity=0)
        again = uisrnn.UISRNN(model_args)
        again.load({str(path)!r})
        again.save({str(folder / "resaved.npz")!r})
        resaved = uisrnn.UISRNN.from_file({str(folder / "resaved.npz")!r}, verbosity=0)
        result = {{
            "single": model.predict(sequence, inference_args),
            "batch": again.predict([sequence, sequence[:7]], inference_args),
            "online": list(model.predict_online(sequence, inference_args)),
            "max2": resaved.predict(sequence, inference_args, max_speakers=2),
            "parallel": uisrnn.parallel_predict(model, [sequence, sequence[:7]], inference_args, 2),
            "tensorflow": [name for name in ("tensorflow", "keras") if sys.modules.get(name) is not None],
        }}
        print(json.dumps(result))
    """)
    proc = run_python_without_tf(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("tensorflow") == []
    assert result.pop("parallel") == expected["batch"]
    assert result == expected


def test_fit_without_tensorflow_names_the_extra_to_install():
    code = textwrap.dedent("""
        import numpy as np
        from unspeech import uisrnn
        from unspeech.extras import MissingExtraError
        model_args, training_args, _ = uisrnn.default_arguments(observation_dim=2, verbosity=0)
        model = uisrnn.UISRNN(model_args)
        try:
            model.fit(np.zeros((4, 2)), ["a", "a", "b", "b"], training_args)
        except MissingExtraError as exc:
            print("MissingExtraError:", exc)
    """)
    proc = run_python_without_tf(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "MissingExtraError: UIS-RNN training " + MISSING + \
        " (CPU) or 'unspeech[train-gpu]' (CUDA)"


def test_cli_predicts_without_tensorflow_and_refuses_to_train(saved, tmp_path):
    path, folder, sequence, expected = saved
    ark = tmp_path / "emb.ark"
    kaldi_io.write_mats(ark, [("rec1", sequence.astype(np.float32))])
    labels = tmp_path / "labels.txt"
    proc = run_cli_without_tf(["uisrnn", "predict", "--input-ark", str(ark), "--model", str(path),
                               "--output_labels", str(labels), "--quiet"])
    assert proc.returncode == 0, proc.stderr
    assert labels.read_text().split() == ["rec1"] + [str(v) for v in expected["single"]]
    # the same through `unspeech cluster --mode uisrnn` (= cluster.py)
    cluster_labels = tmp_path / "cluster_labels.txt"
    proc = run_cli_without_tf(["cluster", "--mode", "uisrnn", "-i", str(ark), "--model", str(path),
                               "--output_labels", str(cluster_labels), "-q"])
    assert proc.returncode == 0, proc.stderr
    assert cluster_labels.read_text() == labels.read_text()

    model_out = tmp_path / "new.npz"
    proc = run_cli_without_tf(["uisrnn", "train", "--input-ark", str(ark), "--rttm", str(tmp_path / "none.rttm"),
                               "--model", str(model_out), "--observation_dim", "2"])
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"unspeech uisrnn: error: unspeech uisrnn train {MISSING} (CPU) "
                                                "or 'unspeech[train-gpu]' (CUDA)"]
    assert not model_out.exists()
