"""The API surface of the ``uisrnn`` library (names, signatures, return types, logger, contrib) and its
model files, tested with our own cases; the library's test files run in test_uisrnn_peer_suite.py."""

from __future__ import annotations

import importlib.util
import inspect
import io
import json
import pickle
import string
import zipfile
from pathlib import Path

import numpy as np
import pytest

from unspeech import cli, uisrnn
from unspeech.errors import ConfigError, DataError
from unspeech.uisrnn import evals, model_io, torch_format, utils
from unspeech.uisrnn.contrib import contrib_template, range_search_crp_alpha

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "uisrnn_0.1.2_tiny.uisrnn"  # trained and saved by uisrnn 0.1.2 (see its .json)


@pytest.fixture(scope="module")
def reference():
    return json.loads((DATA / "uisrnn_0.1.2_tiny.json").read_text())


# -- names, signatures, return types ---------------------------------------------------------
def test_module_paths_of_the_library_exist():
    from unspeech.uisrnn.uisrnn import UISRNN, parallel_predict

    assert UISRNN is uisrnn.UISRNN and parallel_predict is uisrnn.parallel_predict
    assert uisrnn.UISRNN.online_predict is uisrnn.UISRNN.predict_online
    assert contrib_template.example_function() is True


@pytest.mark.parametrize("function,leading", [
    (uisrnn.UISRNN.fit, ["self", "train_sequences", "train_cluster_ids", "args"]),
    (uisrnn.UISRNN.fit_concatenated, ["self", "train_sequence", "train_cluster_id", "args"]),
    (uisrnn.UISRNN.predict, ["self", "test_sequences", "args"]),
    (uisrnn.UISRNN.predict_single, ["self", "test_sequence", "args"]),
    (uisrnn.UISRNN.save, ["self", "filepath"]),
    (uisrnn.UISRNN.load, ["self", "filepath"]),
    (uisrnn.parallel_predict, ["model", "test_sequences", "args", "num_processes"]),
    (evals.compute_sequence_match_accuracy, ["sequence1", "sequence2"]),
    (evals.get_list_inverse_index, ["unique_ids"]),
    (utils.enforce_cluster_id_uniqueness, ["cluster_ids"]),
    (utils.concatenate_training_data, ["train_sequences", "train_cluster_ids", "enforce_uniqueness", "shuffle"]),
    (utils.sample_permuted_segments, ["index_sequence", "number_samples"]),
    (utils.resize_sequence, ["sequence", "cluster_id", "num_permutations"]),
    (utils.estimate_transition_bias, ["cluster_ids", "smooth"]),
    (utils.generate_random_string, ["length"]),
    (range_search_crp_alpha.estimate_crp_alpha, ["train_cluster_id", "search_range", "search_step"]),
])
def test_signatures_start_like_the_librarys(function, leading):
    names = list(inspect.signature(function).parameters)
    assert names[: len(leading)] == leading
    # whatever we add comes after, with a default, so positional calls of the library still bind
    extra = list(inspect.signature(function).parameters.values())[len(leading):]
    assert all(p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD for p in extra)


def test_parallel_predict_keeps_the_librarys_default_of_four_processes():
    assert inspect.signature(uisrnn.parallel_predict).parameters["num_processes"].default == 4
    assert inspect.signature(range_search_crp_alpha.estimate_crp_alpha).parameters["search_step"].default == 0.01


def test_logger_levels_and_fatal():
    stream = io.StringIO()
    logger = utils.Logger(verbosity=2, stream=stream)
    logger.error("e")
    logger.warning("w")
    logger.info("hidden at verbosity 2")
    logger.debug("hidden too")
    assert stream.getvalue().splitlines() == ["[uisrnn ERROR] e", "[uisrnn WARNING] w"]
    with pytest.raises(RuntimeError, match=r"\[uisrnn FATAL\] stop"):
        utils.Logger(verbosity=0, stream=stream).fatal("stop")
    verbose = utils.Logger(verbosity=4, stream=stream)
    verbose.debug("d")
    assert stream.getvalue().splitlines()[-1] == "[uisrnn DEBUG] d"


def test_generate_random_string():
    values = {utils.generate_random_string() for _ in range(20)}
    assert len(values) == 20
    assert all(len(v) == 6 and set(v) <= set(string.ascii_uppercase + string.digits) for v in values)
    assert len(utils.generate_random_string(11)) == 11 and utils.generate_random_string(0) == ""
    with pytest.raises(ConfigError, match="`length` must be a non-negative integer"):
        utils.generate_random_string(-1)


def test_get_list_inverse_index():
    assert evals.get_list_inverse_index(("x", 7, None)) == {"x": 0, 7: 1, None: 2}
    assert evals.get_list_inverse_index([]) == {}
    with pytest.raises(DataError, match=r"'b' appears at positions 1 and 3"):
        evals.get_list_inverse_index(["a", "b", "c", "b"])


# -- contrib.range_search_crp_alpha ----------------------------------------------------------
def test_crp_helpers_count_speakers_and_turns():
    ids = ["x", "x", "y", "y", "x", "z", "z", "y"]
    assert range_search_crp_alpha._get_normalized_id(ids).tolist() == [0, 0, 1, 1, 0, 2, 2, 1]
    assert range_search_crp_alpha._get_k_t(ids).tolist() == [1, 1, 2, 2, 2, 3, 3, 3]
    assert range_search_crp_alpha._get_n_kt(ids).tolist() == [
        [0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0], [2, 1, 0], [2, 1, 1], [2, 1, 1], [2, 2, 1]]


def _brute_force_alpha(new_changes, m_values, grid):
    scores = [new_changes * np.log(a) - sum(np.log(m + a) for m in m_values) for a in grid]
    return grid[int(np.argmax(scores))]


def test_crp_alpha_maximises_the_change_likelihood():
    # x x y x: y is new (M=0), back to x (M=1); p q p q r: q new (M=0), p (M=1), q (M=1), r new (M=2)
    sequences = [["x", "x", "y", "x"], ["p", "q", "p", "q", "r"]]
    grid = np.round(0.01 * np.arange(1, 201), 12)
    expected = _brute_force_alpha(3, [0, 1, 0, 1, 1, 2], grid)
    assert expected == pytest.approx(0.39)  # the root of 2 - 4a - 3a^2, 0.387
    assert range_search_crp_alpha.estimate_crp_alpha(sequences, 2.0, 0.01) == expected
    # the same labels concatenated with per-sequence prefixes, as fit() data often is
    prefixed = np.concatenate([[f"seq{i}_{label}" for label in seq] for i, seq in enumerate(sequences)])
    assert range_search_crp_alpha.estimate_crp_alpha(prefixed, 2.0, 0.01) == expected


def test_crp_alpha_goes_to_the_grid_ends():
    only_returns = [["a", "a", "b", "a", "b", "a"]]  # one new speaker, then only returns: small alpha
    assert range_search_crp_alpha.estimate_crp_alpha(only_returns, 1.0, 0.05) == 0.05
    only_new = [["a", "b", "c", "d", "e"]]  # every change opens a speaker: the largest alpha tried
    assert range_search_crp_alpha.estimate_crp_alpha(only_new, 3.0, 0.5) == 3.0


@pytest.mark.parametrize("labels,kwargs,error,message", [
    ([["a", "a", "a"]], {}, DataError, "holds no speaker change"),
    (np.array(["a", "b"]), {}, DataError, r"must look like '<sequence>_<speaker>'.*entry 0 is 'a'"),
    ([["a", "b"]], {"search_step": 0.0}, ConfigError, "`search_step` and `search_range` must be > 0"),
    ([["a", "b"]], {"search_range": 0.1, "search_step": 0.5}, ConfigError, "search_step <= search_range"),
])
def test_crp_alpha_errors(labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        range_search_crp_alpha.estimate_crp_alpha(labels, **kwargs)


# -- the library's model files ---------------------------------------------------------------
def test_a_model_trained_by_the_library_decodes_to_the_librarys_labels(reference):
    model = uisrnn.UISRNN.from_file(FIXTURE, verbosity=0)
    assert (model.observation_dim, model.rnn_hidden_size, model.rnn_depth) == (4, 8, 2)
    _, _, inference_args = uisrnn.default_arguments()
    sequences = [np.array(seq) for seq in reference["sequences"]]
    assert model.predict(sequences, inference_args) == reference["labels"]
    # the network itself: outputs of the same input from the learned initial state
    weights = model.decoder_weights()
    hidden, outputs = weights.init_hidden[None], []
    for row in np.array(reference["probe_input"], np.float32):
        hidden, output = weights.run_rnn(weights.project_inputs(row[None]), hidden)
        outputs.append(output[0])
    np.testing.assert_allclose(outputs, reference["probe_outputs"], atol=1e-6)
    # decoding with the mean of all outputs (our training's rule) gives other labels here
    inference_args.running_mean = "training"
    assert model.predict(sequences, inference_args) != reference["labels"]


def test_formats_convert_both_ways_exactly(tmp_path, reference):
    model_args, _, inference_args = uisrnn.default_arguments(observation_dim=4, rnn_hidden_size=8, rnn_depth=2,
                                                             verbosity=0)
    model = uisrnn.UISRNN(model_args).load(FIXTURE)
    model.save(tmp_path / "ours.npz")
    model.save(tmp_path / "theirs.uisrnn", file_format="uisrnn")
    header_a, weights_a, format_a = model_io.read_model(FIXTURE)
    header_b, weights_b, format_b = model_io.read_model(tmp_path / "theirs.uisrnn")
    _, weights_c, format_c = model_io.read_model(tmp_path / "ours.npz")
    assert (format_a, format_b, format_c) == ("uisrnn", "uisrnn", "unspeech")
    assert header_a == header_b
    for name in ("dense1_kernel", "dense2_bias", "init_hidden", "sigma2"):
        np.testing.assert_array_equal(getattr(weights_a, name), getattr(weights_b, name))
        np.testing.assert_array_equal(getattr(weights_a, name), getattr(weights_c, name))
    for a, b in zip(weights_a.kernels + weights_a.biases, weights_b.kernels + weights_b.biases):
        np.testing.assert_array_equal(a, b)
    # the written file has torch.save's layout: a zip with the pickle and one record per tensor
    with zipfile.ZipFile(tmp_path / "theirs.uisrnn") as archive:
        names = set(archive.namelist())
    assert {"archive/data.pkl", "archive/version", "archive/byteorder", "archive/data/0"} <= names
    sequences = [np.array(seq) for seq in reference["sequences"][:2]]
    assert uisrnn.UISRNN.from_file(tmp_path / "ours.npz", verbosity=0).predict(sequences, inference_args) == \
        reference["labels"][:2]


def test_convert_command_both_ways_and_its_errors(tmp_path, capsys):
    ours, back = tmp_path / "from_uisrnn.npz", tmp_path / "back.uisrnn"
    assert cli.main(["uisrnn", "convert", str(FIXTURE), str(ours), "--quiet"]) == 0
    assert cli.main(["uisrnn", "convert", str(ours), str(back), "--to", "uisrnn"]) == 0
    assert model_io.read_model(back)[0] == model_io.read_model(FIXTURE)[0]
    assert cli.main(["uisrnn", "convert", str(tmp_path / "missing.npz"), str(tmp_path / "x.npz")]) == 1
    assert "model file not found" in capsys.readouterr().err
    assert cli.main(["uisrnn", "convert", str(ours), str(ours)]) == 1
    assert "would overwrite its source" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_a_torch_file_with_foreign_objects_is_refused_without_running_them(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.uisrnn"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"rnn_state_dict": Payload()}, protocol=2))
    with pytest.raises(DataError, match=r"holds a _?_?builtins?_?_?\.print object.*refusing to load it"):
        uisrnn.UISRNN.from_file(path)
    assert "must never run" not in capsys.readouterr().out


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    storage = torch_format._Storage("0", np.zeros(2, "<f4"))

    class LongTensor:  # claims 5 values of a 2-value storage
        def __reduce__(self):
            return (torch_format._Global("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (5,), (1,), False))

    buffer = io.BytesIO()
    torch_format._TorchPickler(buffer, protocol=2).dump({"rnn_state_dict": {"gru.weight_ih_l0": LongTensor()}})
    path = tmp_path / "long.uisrnn"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("long/data.pkl", buffer.getvalue())
        archive.writestr("long/data/0", storage.array.tobytes())
    with pytest.raises(DataError, match="tensor record reaches past its storage"):
        model_io.read_model(path)


def test_writing_the_library_format_needs_a_transition_bias(tmp_path):
    model_args, _, _ = uisrnn.default_arguments(observation_dim=4, rnn_hidden_size=8, verbosity=0)
    with pytest.raises(DataError, match="no transition bias yet"):
        uisrnn.UISRNN(model_args).save(tmp_path / "m.uisrnn", file_format="uisrnn")
    with pytest.raises(ConfigError, match="`file_format` must be one of"):
        uisrnn.UISRNN(model_args).save(tmp_path / "m.npz", file_format="torch")
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (optional)")
def test_torch_reads_what_we_write(tmp_path):  # pragma: no cover - runs where torch is installed
    import torch

    model_args, _, _ = uisrnn.default_arguments(observation_dim=4, rnn_hidden_size=8, rnn_depth=2, verbosity=0)
    model = uisrnn.UISRNN(model_args).load(FIXTURE)
    model.save(tmp_path / "m.uisrnn", file_format="uisrnn")
    content = torch.load(tmp_path / "m.uisrnn", weights_only=False)
    np.testing.assert_array_equal(content["sigma2"], model.decoder_weights().sigma2)
    assert tuple(content["rnn_state_dict"]["gru.weight_ih_l1"].shape) == (24, 8)
