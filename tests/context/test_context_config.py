"""ContextConfig: defaults, JSON round trip, validation messages, the generated command line."""

import argparse
import dataclasses
import importlib.util
import shlex
import sys
from pathlib import Path

import pytest

from unspeech.context.config import ContextConfig, add_config_arguments, config_from_args, given_options
from unspeech.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import unsup_model_neg  # noqa: E402

SEED_TRAIN = (
    "--window_length 64 --window_neg_length 64 --filelist X.ark --noend_to_end --embedding_transformation Vgg16big "
    "--l2_reg 0.0001 --batch_size 32 --left_contexts 2 --right_contexts 2 --unit_normalize_var True "
    "--tied_embeddings_transforms True --learn_rate 0.0003 --fc_size 2048"
)
SEED_TRAIN_128 = (
    "--window_length 128 --window_neg_length 128 --filelist X.ark --noend_to_end --embedding_transform Vgg16big "
    "--l2_reg 0.0001 --batch_size 32 --left_contexts 2 --right_contexts 2 --unit_normalize_var True "
    "--tied_embeddings_transforms True --learn_rate 0.0003 --fc_size 2048 --memmap_reuse_cache True --memmap_dir DIR"
)
SEED_GEN_FEAT = (
    "--gen_feat --train_dir RUN --filelist X.ark --num_filters 40 --embedding_transformation Vgg16big "
    "--num_highway_layers 5 --embedding_size 100 --num_dnn_layers 5 --hop_size 1 --additional_params --fc_size 1024 "
    "--window_length 64 --window_neg_length 64 --unit_normalize_var --tied_embeddings_transforms "
    "--nogenerate_speaker_vectors --nogenfeat_combine_contexts --nokaldi_normalize_to_input_length --genfeat_stride 10 "
    "--notest_perf --genfeat_interpolate_outputlength_padding --output_feat_file DIR/ivector_online"
)


def _parse(argv):
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_config_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_follow_the_original_and_validate():
    c = ContextConfig().validate()
    assert (c.window_length, c.window_neg_length, c.negative_samples, c.left_contexts, c.right_contexts) == (50, 50, 4, 2, 2)
    assert (c.embedding_size, c.fc_size, c.feat_size, c.batch_size, c.learn_rate, c.dropout_keep_prob) == (100, 512, 40, 32, 1e-4, 0.9)
    assert c.use_dot_combine and not c.end_to_end and c.embedding_transformation == "BaselineDnn"
    assert (c.num_contexts, c.pairs_per_group, c.group_length) == (4, 8, 250)


def test_json_round_trip(tmp_path):
    c = ContextConfig(filelist="a b/feats.ark", window_length=64, sample_2x_neg=True, learn_rate=3e-4)
    c.to_json(tmp_path / "config.json")
    assert ContextConfig.from_json(tmp_path / "config.json") == c
    assert ContextConfig.from_json(c.to_json()) == c


def test_config_saved_before_input_normalization_keeps_raw_input():
    values = ContextConfig().to_dict()
    del values["normalize_input"]
    assert ContextConfig.from_dict(values).normalize_input is False
    assert ContextConfig.from_dict(ContextConfig().to_dict()).normalize_input is True


def test_json_errors(tmp_path):
    (tmp_path / "bad.json").write_text('{"window_length": 64, "no_such_flag": 1}')
    with pytest.raises(ConfigError, match="unknown option.*no_such_flag"):
        ContextConfig.from_json(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ContextConfig.from_json(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="no config file"):
        ContextConfig.from_json(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dropout_keep_prob": 0.0}, r"`dropout_keep_prob` must be in \(0, 1\]. Received: dropout_keep_prob=0.0"),
        ({"window_length": 0}, "`window_length` must be >= 1. Received: window_length=0"),
        ({"left_contexts": 0, "right_contexts": 0}, "must be >= 1 \\(a group needs a positive pair\\)"),
        ({"negative_samples": 0}, "`negative_samples` must be >= 1"),
        ({"end_to_end": True}, "`end_to_end` \\(raw-waveform input\\) is not supported"),
        ({"tied_embeddings_transforms": True, "window_neg_length": 40}, "`window_length` must equal `window_neg_length`"),
        ({"embedding_transformation": "DenseNet"}, "`embedding_transformation` must be one of Vgg16big, .*Received: embedding_transformation='DenseNet'"),
        ({"lr_schedule": "cosine"}, "`max_steps` must be >= 1"),
        ({"lr_warmup_steps": 10}, "only used by lr_schedule=cosine"),
        ({"unit_normalize": True, "unit_normalize_var": True}, "exclude each other"),
        ({"batch_size": "32"}, "`batch_size` must be an integer"),
        ({"validation_fraction": 1.0}, "`validation_fraction` must be in \\[0, 1\\)"),
        ({"memmap_dtype": "int8"}, "`memmap_dtype` must be one of float32, float16"),
    ],
)
def test_validation_messages(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(ContextConfig(), **changes).validate()


def test_run_name_like_the_original():
    c = config_from_args(_parse(shlex.split(SEED_TRAIN)))
    c = dataclasses.replace(c, filelist="data/train/feats.ark", dropout_keep_prob=0.9)
    assert c.run_name() == (
        "feats_transVgg16big_nsampling_rnd_win64_neg_samples4_lcontexts2_rcontexts2_flts40_embsize100_fc_size2048"
        "_unit_norm_var_dropout_keep0.9_l2_reg0.0001_featinput_feats.ark_dot_combine_tied_embs"
    )
    assert "_nsampling_same_spk_" in dataclasses.replace(c, spk2utt="spk2utt").run_name()


def test_seed_training_command_lines_parse_verbatim():
    args = _parse(shlex.split(SEED_TRAIN))
    c = config_from_args(args)
    assert (c.window_length, c.window_neg_length, c.filelist, c.end_to_end) == (64, 64, "X.ark", False)
    assert (c.embedding_transformation, c.l2_reg, c.batch_size, c.learn_rate, c.fc_size) == ("Vgg16big", 1e-4, 32, 3e-4, 2048)
    assert c.unit_normalize_var and c.tied_embeddings_transforms
    c = config_from_args(_parse(shlex.split(SEED_TRAIN_128)))
    assert (c.window_length, c.embedding_transformation, c.memmap_reuse_cache, c.memmap_dir) == (128, "Vgg16big", True, "DIR")


def test_seed_lines_through_the_entry_point_parser():
    parser, module = unsup_model_neg.build_parser(shlex.split(SEED_TRAIN))
    assert module.__name__ == "unspeech.commands.train"
    args = parser.parse_args(shlex.split(SEED_TRAIN))
    assert args.gen_feat is False and args.window_length == 64
    if importlib.util.find_spec("unspeech.commands.gen_feat") is None:
        assert unsup_model_neg.main(shlex.split(SEED_GEN_FEAT)) == 1
    else:
        parser, module = unsup_model_neg.build_parser(shlex.split(SEED_GEN_FEAT))
        assert module.__name__ == "unspeech.commands.gen_feat"
        args = parser.parse_args(shlex.split(SEED_GEN_FEAT))
        assert args.window_length == 64 and args.feat_size == 40 and args.fc_size == 1024


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--unit_normalize"], True),
        (["--nounit_normalize"], False),
        (["--unit_normalize", "True"], True),
        (["--unit_normalize", "false"], False),
        (["--unit_normalize=true"], True),
        (["--unit_normalize=0"], False),
    ],
)
def test_bool_flag_forms(argv, expected):
    assert _parse(argv).unit_normalize is expected


def test_aliases_and_marker():
    args = _parse(["--num_filters", "13", "--embedding_transform", "LSTM", "--additional_params", "--fc_size", "8"])
    assert given_options(args) == {"feat_size": 13, "embedding_transformation": "LSTM", "fc_size": 8}


def test_only_given_flags_are_in_the_namespace():
    assert given_options(_parse([])) == {}
    assert config_from_args(_parse([])) == ContextConfig()


def test_help_lists_flags_with_defaults():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    text = " ".join(parser.format_help().split())  # undo line wrapping
    for flag in ("--window_length", "--spk2utt", "--negative_samples", "--embedding_transformation", "--l2_reg",
                 "--max_steps", "--end_to_end", "--validation_fraction", "--lr_schedule"):
        assert flag in text
    assert "(default: 50)" in text and "NOT SUPPORTED" in text


def test_bad_flag_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        unsup_model_neg.main(["--window_length", "abc"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["unsup_model_neg.py: error: argument --window-length: invalid int value: 'abc' (see --help)"]
    with pytest.raises(SystemExit):
        unsup_model_neg.main(["--unit_normalize_var", "maybe"])
    assert "expected true or false, got 'maybe'" in capsys.readouterr().err


def test_invalid_combination_exits_1(capsys):
    assert unsup_model_neg.main(["--end_to_end", "--filelist", "x.ark"]) == 1
    assert "error: `end_to_end` (raw-waveform input) is not supported" in capsys.readouterr().err
