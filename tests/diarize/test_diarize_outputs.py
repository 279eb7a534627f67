"""RTTM, vad format and JSON outputs; the timeline picture."""

import json

import pytest

from unspeech.datadir import Turn, read_rttm
from unspeech.diarize.outputs import format_vad, parse_vad, speakers_in_order, to_json_dict, write_outputs
from unspeech.diarize.timeline_plot import plot_timeline, save_timeline
from unspeech.errors import ConfigError, DataError

TURNS = [
    Turn("rec", "1", 5.0, 3.0, "spk1"),
    Turn("rec", "1", 1.0, 2.0, "spk1"),
    Turn("rec", "1", 3.25, 1.5, "spk2"),
]


def test_vad_format_one_speaker_per_line():
    assert format_vad(TURNS) == "spk1: [1.0, 3.0], [5.0, 8.0]\nspk2: [3.25, 4.75]\n"
    assert format_vad([]) == ""
    assert speakers_in_order(TURNS) == ["spk1", "spk2"]


def test_vad_format_round_trip_and_errors():
    back = parse_vad(format_vad(TURNS), file_id="rec")
    assert sorted(back) == sorted(TURNS)
    with pytest.raises(DataError, match=r"x.vad:1: expected 'speaker: \[start, end\], \.\.\.'"):
        parse_vad("spk1 [1.0, 2.0]\n", file_id="x.vad")
    with pytest.raises(DataError, match="ends before it starts"):
        parse_vad("spk1: [3.0, 2.0]\n")


def test_write_outputs_in_all_formats(tmp_path):
    paths = write_outputs(tmp_path, "rec", TURNS, ["rttm", "vad", "json"], duration=9.5)
    assert [p.name for p in paths] == ["rec.rttm", "rec.vad", "rec.json"]
    lines = (tmp_path / "rec.rttm").read_text().splitlines()
    assert lines[0] == "SPEAKER rec 1 1.000 2.000 <NA> <NA> spk1 <NA> <NA>"
    assert sorted(read_rttm(tmp_path / "rec.rttm")) == sorted(TURNS)
    data = json.loads((tmp_path / "rec.json").read_text())
    assert data == to_json_dict(TURNS, "rec", 9.5)
    assert data["segments"][1] == {"start": 3.25, "end": 4.75, "speaker": "spk2"}
    with pytest.raises(ConfigError, match=r"unknown output format\(s\) \['ctm'\]"):
        write_outputs(tmp_path, "rec", TURNS, ["ctm"])


def test_empty_result_writes_empty_files(tmp_path):
    write_outputs(tmp_path, "silent", [], ["rttm", "vad", "json"])
    assert (tmp_path / "silent.rttm").read_text() == ""
    assert json.loads((tmp_path / "silent.json").read_text())["segments"] == []


def test_timeline_has_reference_above_hypothesis(tmp_path):
    ref = [Turn("rec", "1", 1.0, 2.5, "A"), Turn("rec", "1", 3.5, 4.0, "B"), Turn("other", "1", 0, 1, "Z")]
    fig = plot_timeline(TURNS, ref, file_id="rec", duration=9.0)
    top, bottom = fig.axes
    assert top.get_title(loc="left") == "reference" and bottom.get_title(loc="left") == "hypothesis"
    assert [t.get_text() for t in top.get_yticklabels()] == ["A", "B"]
    assert bottom.get_xlim() == (0.0, 9.0)
    save_timeline(tmp_path / "rec.png", TURNS, ref, "rec")
    assert (tmp_path / "rec.png").read_bytes()[:4] == b"\x89PNG"
    save_timeline(tmp_path / "empty.svg", [], None, "rec")
    assert "no speech" in (tmp_path / "empty.svg").read_text()


def test_timeline_colours_follow_the_reference_and_the_title_gives_the_der():
    from matplotlib.colors import to_hex

    ref = [Turn("rec", "1", 1.0, 2.0, "A"), Turn("rec", "1", 3.25, 1.5, "B"), Turn("rec", "1", 5.0, 3.0, "A")]
    hyp = [Turn("rec", "1", 1.0, 2.0, "s2"), Turn("rec", "1", 3.25, 1.5, "s1"), Turn("rec", "1", 5.0, 3.0, "s2"),
           Turn("rec", "1", 8.5, 0.5, "s3")]
    fig = plot_timeline(hyp, ref, file_id="rec", duration=9.5, collar=0.0)
    assert fig._suptitle.get_text().startswith("rec: DER 7.7 % (collar 0 s, overlap scored)")  # 0.5 s FA of 6.5
    top, bottom = fig.axes

    def colours(ax):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        return {label: to_hex(c.get_facecolor()[0]) for label, c in zip(labels, ax.collections)}

    ref_colours, hyp_colours = colours(top), colours(bottom)
    assert hyp_colours["s2"] == ref_colours["A"] and hyp_colours["s1"] == ref_colours["B"]
    assert hyp_colours["s3"] not in ref_colours.values()
