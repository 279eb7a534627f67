"""parse_arguments: the uisrnn library's three option groups, flags and defaults."""

from __future__ import annotations

import sys

import pytest

from unspeech.uisrnn import default_arguments, parse_arguments


def test_defaults_match_the_library():
    model_args, training_args, inference_args = parse_arguments([])
    assert vars(model_args) == dict(observation_dim=256, rnn_hidden_size=512, rnn_depth=1, rnn_dropout=0.2,
                                    transition_bias=None, crp_alpha=1.0, sigma2=None, verbosity=3,
                                    enable_cuda=True)
    assert vars(training_args) == dict(optimizer="adam", learning_rate=1e-3, learning_rate_half_life=0,
                                       train_iteration=20000, batch_size=10, num_permutations=10,
                                       sigma_alpha=1.0, sigma_beta=1.0, regularization_weight=1e-5,
                                       grad_max_norm=5.0, enforce_cluster_id_uniqueness=True)
    # the library's three inference options, then ours: speaker-count limits and the decoding rule
    assert vars(inference_args) == dict(beam_size=10, look_ahead=1, test_iteration=2, num_speakers=None,
                                        max_speakers=None, running_mean="uisrnn")


def test_speaker_limits_and_running_mean_on_the_command_line():
    _, _, inference_args = parse_arguments(["--max_speakers", "3", "--num_speakers=2", "--running_mean", "training"])
    assert (inference_args.max_speakers, inference_args.num_speakers, inference_args.running_mean) == (3, 2, "training")


def test_short_flags_equals_form_and_booleans():
    model_args, training_args, inference_args = parse_arguments(
        ["--train_iteration=1000", "-l=0.001", "-o", "adam", "-t", "7", "-b", "3", "-r", "0.5", "-s", "4",
         "--enable_cuda", "false", "--enforce_cluster_id_uniqueness=no", "--transition_bias", "0.1"])
    assert training_args.train_iteration == 7 and training_args.learning_rate == 0.001
    assert training_args.batch_size == 3 and training_args.regularization_weight == 0.5
    assert training_args.enforce_cluster_id_uniqueness is False
    assert model_args.enable_cuda is False and model_args.transition_bias == 0.1
    assert inference_args.beam_size == 4


def test_reads_sys_argv_without_a_list(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog", "--observation_dim", "8", "--look_ahead", "2"])
    model_args, _, inference_args = parse_arguments()
    assert model_args.observation_dim == 8 and inference_args.look_ahead == 2


@pytest.mark.parametrize("argv", [["--no_such_flag"], ["--enable_cuda", "maybe"], ["-o", "sgd"],
                                  ["--max_speakers", "two"], ["--running_mean", "median"]])
def test_bad_command_lines_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as excinfo:
        parse_arguments(argv)
    assert excinfo.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_default_arguments_overrides_by_group():
    model_args, training_args, inference_args = default_arguments(observation_dim=3, batch_size=None, beam_size=2)
    assert (model_args.observation_dim, training_args.batch_size, inference_args.beam_size) == (3, None, 2)
    with pytest.raises(TypeError, match="unknown UIS-RNN option 'beam'"):
        default_arguments(beam=2)
