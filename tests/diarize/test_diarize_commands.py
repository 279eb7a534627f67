"""`unspeech diarize` and `unspeech score` command lines, including their failure exits."""

import json
from pathlib import Path

import pytest

from unspeech import datadir
from unspeech.cli import main
from unspeech.datadir import Turn

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_conversations"


@pytest.mark.audio
def test_diarize_command_writes_outputs_and_scores(conversations, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["diarize", str(conversations / "wav.scp"), "-o", str(out), "--model", "stats", "--num_speakers", "2",
                 "--backend", "spectral", "--format", "rttm,vad,json", "--plot", "--ref", str(conversations / "rttm"),
                 "--quiet"])
    assert code == 0
    for rid in ("conv000", "conv001"):
        for suffix in (".rttm", ".vad", ".json", ".png"):
            assert (out / f"{rid}{suffix}").is_file()
    assert {t.file_id for t in datadir.read_rttm(out / "all.rttm")} == {"conv000", "conv001"}
    assert json.loads((out / "conv000.json").read_text())["file_id"] == "conv000"
    printed = capsys.readouterr().out
    assert "TOTAL" in printed and "collar 0.25 s each side" in printed


@pytest.mark.audio
def test_diarize_command_exit_code_reports_failures(conversations, tmp_path, capsys):
    (tmp_path / "broken.wav").write_text("not audio")
    out = tmp_path / "out"
    code = main(["diarize", str(conversations / "wav" / "conv000.flac"), str(tmp_path / "broken.wav"),
                 "-o", str(out), "--model", "stats", "--quiet"])
    assert code == 1
    assert "FAILED broken: cannot read audio" in capsys.readouterr().err
    assert (out / "conv000.rttm").is_file() and (out / "conv000.vad").is_file()  # the good file is done


@pytest.mark.audio
@pytest.mark.parametrize("flag, rule", [("--count_rule", "threshold"), ("--count-rule", "relative"), ("--count-rule", "eigengap"), (None, "consensus")])
def test_diarize_command_logs_model_count_rule_and_counts(conversations, tmp_path, caplog, flag, rule):
    import logging

    args = ["diarize", str(conversations / "wav.scp"), "-o", str(tmp_path), "--model", "stats", "--out_dir", str(tmp_path)]
    with caplog.at_level(logging.INFO, logger="unspeech"):
        assert main(args + ([flag, rule] if flag else [])) == 0
    assert "diarizing 2 recording(s): model stats (windowed fbank statistics, no model); backend spectral; " \
           f"speaker count {rule} (" in caplog.text
    assert "conv000: " in caplog.text and "conv001: " in caplog.text  # the count of every recording


def test_diarize_command_rejects_an_unknown_count_rule(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["diarize", str(tmp_path / "a.wav"), "-o", str(tmp_path), "--count-rule", "bic"])
    assert "invalid choice: 'bic'" in capsys.readouterr().err


def test_diarize_command_rejects_conflicting_speech_sources(tmp_path, capsys):
    (tmp_path / "x.rttm").write_text("")
    code = main(["diarize", str(tmp_path / "a.wav"), "-o", str(tmp_path), "--segments", "s", "--oracle-speech",
                 str(tmp_path / "x.rttm"), "--quiet"])
    assert code == 1 and "give either --segments or --oracle-speech" in capsys.readouterr().err


def test_score_command(tmp_path, capsys):
    datadir.write_rttm(tmp_path / "ref.rttm", [Turn("f", "1", 0.0, 10.0, "A"), Turn("f", "1", 10.0, 10.0, "B")])
    datadir.write_rttm(tmp_path / "hyp.rttm", [Turn("f", "1", 1.0, 10.0, "x"), Turn("f", "1", 11.0, 10.0, "y")])
    code = main(["score", "--ref", str(tmp_path / "ref.rttm"), "--hyp", str(tmp_path / "hyp.rttm"), "--collar", "0",
                 "--json", str(tmp_path / "s.json")])
    assert code == 0
    total = [line for line in capsys.readouterr().out.splitlines() if line.startswith("TOTAL")][0]
    assert total.split()[5] == "15.00"  # DER %
    assert json.loads((tmp_path / "s.json").read_text())["total"]["der"] == pytest.approx(0.15)
    assert main(["score", "--ref", str(tmp_path / "nope.rttm"), "--hyp", str(tmp_path / "hyp.rttm")]) == 1
    assert "file not found" in capsys.readouterr().err


@pytest.mark.skipif(not (DEMO / "rttm").is_file(), reason="bundled demo data not present")
def test_newcomer_diarizes_and_scores_the_bundled_demo(tmp_path, capsys):
    audio = DEMO / "wav" / "conv000.flac"
    assert main(["diarize", str(audio), "-o", str(tmp_path), "--plot", "--quiet"]) == 0
    assert (tmp_path / "conv000.png").is_file() and (tmp_path / "conv000.vad").read_text().startswith("spk1: [")
    ref = [t for t in datadir.read_rttm(DEMO / "rttm") if t.file_id == "conv000"]
    datadir.write_rttm(tmp_path / "ref.rttm", ref)
    capsys.readouterr()
    assert main(["score", "--ref", str(tmp_path / "ref.rttm"), "--hyp", str(tmp_path / "conv000.rttm"),
                 "--uem", str(DEMO / "uem"), "--skip-overlap"]) == 0
    row = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("conv000")][0]
    assert float(row[5]) < 30.0  # DER % of the model-free baseline on this conversation (measured 13.7)


def test_a_second_diarize_run_into_the_same_folder_is_refused(conversations, tmp_path, capsys):
    from unspeech._fileutil import output_lock

    out = tmp_path / "out"
    with output_lock(out, "diarize run"):
        code = main(["diarize", str(conversations / "wav" / "conv000.flac"), "-o", str(out), "--model", "stats",
                     "--num_speakers", "2", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert "out is being written by another diarize run (pid" in err and len(err.strip().splitlines()) == 1
    assert not (out / "conv000.rttm").exists()
