"""Every command line parser (issue 15): both spellings of every flag parse to the same option,
--help shows one dashed spelling per option, every option has a help text, and --help fits on a
screen while --help-all lists every option."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import unsup_model_neg
from unspeech.cli import COMMANDS
from unspeech.command_parser import CommandParser

REPO = Path(__file__).resolve().parents[1]
SCREEN = 72  # lines
LONG_HELP_LEFT: set[str] = set()


def _command_parser(name: str) -> CommandParser:
    parser = CommandParser(prog=f"unspeech {name}")
    importlib.import_module(COMMANDS[name][0]).add_arguments(parser)
    return parser


def _all_parsers():
    """(label, parser) of every unspeech command, its subcommands, cluster.py and unsup_model_neg.py."""
    out = []
    for name in sorted(COMMANDS):
        parser = _command_parser(name)
        out.append((f"unspeech {name}", parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                out.extend((f"unspeech {name} {sub}", p) for sub, p in action.choices.items())
    out.append(("unsup_model_neg.py", unsup_model_neg.build_parser([])[0]))
    out.append(("unsup_model_neg.py --gen_feat", unsup_model_neg.build_parser(["--gen_feat"])[0]))
    return out


PARSERS = _all_parsers()


@pytest.mark.parametrize("label, parser", PARSERS, ids=[label for label, _ in PARSERS])
def test_every_flag_parses_in_both_spellings_and_help_shows_one(label, parser):
    parser.format_help(full=True)  # registers the spellings as parsing does
    for action in parser._actions:
        for flag in [s for s in action.option_strings if s.startswith("--")]:
            for other in (flag.replace("_", "-"), "--" + flag[2:].replace("-", "_")):
                found = parser._option_string_actions.get(other)
                assert found is not None and found.dest == action.dest, f"{label}: {other} is not {flag}"
        if action.help is argparse.SUPPRESS or not action.option_strings:
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        assert len(longs) <= 1 and "_" not in "".join(longs), f"{label}: help shows {action.option_strings}"
        assert action.help and action.help.strip(), f"{label}: {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("label, parser", PARSERS, ids=[label for label, _ in PARSERS])
def test_help_fits_on_a_screen_and_help_all_lists_every_option(label, parser):
    brief = parser.format_help()
    full = parser.format_help(full=True)
    if label not in LONG_HELP_LEFT:
        assert len(brief.splitlines()) <= SCREEN, f"{label} --help: {len(brief.splitlines())} lines"
    shown = [s for a in parser._actions if a.help is not argparse.SUPPRESS for s in a.option_strings]
    for flag in shown:
        assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", full), f"{label} --help-all lacks {flag}"
    # no flag is named in another spelling than the one shown (help texts and usage included)
    for word in set(re.findall(r"(?<![\w-])--[a-z][\w-]*", brief + full)):
        if word in parser._option_string_actions:
            assert "_" not in word, f"{label}: help names {word}"


@pytest.mark.parametrize("argv_a, argv_b", [
    (["--output_utt2spk", "u", "--results_csv", "r", "--hdbscan_min_samples_str", "2"],
     ["--output-utt2spk", "u", "--results-csv", "r", "--hdbscan-min-samples-str", "2"]),
    (["--min-cluster-sizes=4", "--half_index", "3"], ["--min_cluster_sizes=4", "--half-index", "3"]),
])
def test_cluster_flags_parse_in_both_spellings(argv_a, argv_b):
    parser = _command_parser("cluster")
    assert parser.parse_args(argv_a) == parser.parse_args(argv_b)


def test_diarize_and_seed_flags_parse_in_both_spellings():
    diarize = _command_parser("diarize")
    common = ["a.wav", "-o", "out"]
    assert diarize.parse_args(common + ["--smooth_size", "5", "--pool_rows", "3", "--vad_reference", "mean"]) == \
        diarize.parse_args(common + ["--smooth-size", "5", "--pool-rows", "3", "--vad-reference", "mean"])
    train = unsup_model_neg.build_parser([])[0]
    assert train.parse_args(["--window_length", "64", "--nounit_normalize_var", "--embedding_transform", "Vgg16"]) == \
        train.parse_args(["--window-length", "64", "--nounit-normalize-var", "--embedding-transform", "Vgg16"])
    parser, module = unsup_model_neg.build_parser(["--gen-feat"])
    assert module.__name__ == "unspeech.commands.gen_feat"
    assert parser.parse_args(["--gen-feat", "--output-feat-file", "x"]).output_feat_file == "x"


def test_short_help_says_how_to_see_every_option():
    assert unsup_model_neg.build_parser(["--gen_feat"])[0].format_help().endswith(
        "more options: unsup_model_neg.py --gen-feat --help-all\n")
    assert _command_parser("gen-feat").format_help().endswith("more options: unspeech gen-feat --help-all\n")
    assert "more options" not in _command_parser("score").format_help()  # short already: no --help-all listed
    assert "--help-all" not in _command_parser("score").format_help()


def test_an_abbreviation_matching_both_spellings_of_one_flag_is_not_ambiguous():
    parser = _command_parser("cluster")
    assert parser.parse_args(["--output-utt", "x"]).output_utt2spk == "x"


def test_help_all_and_the_top_level_help_from_the_command_line():
    full = subprocess.run([sys.executable, "cluster.py", "--help-all"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert full.returncode == 0 and "--dbscan-eps" in full.stdout and full.stderr == ""
    top = subprocess.run([sys.executable, "-m", "unspeech.cli", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert top.returncode == 0 and "console entry point" not in top.stdout
    assert "unspeech diarize my.wav -o out/" in top.stdout and len(top.stdout.splitlines()) <= 40
