"""DER / JER through pyannote.metrics: hand-computed cases and the md-eval collar convention."""

import pytest

from unspeech.datadir import Turn, write_rttm, write_uem
from unspeech.diarize.scoring import score_rttm, score_turns
from unspeech.errors import ConfigError, DataError

REF = [Turn("f", "1", 0.0, 10.0, "A"), Turn("f", "1", 10.0, 10.0, "B")]
SHIFTED = [Turn("f", "1", 1.0, 10.0, "x"), Turn("f", "1", 11.0, 10.0, "y")]  # everything 1 s late


def test_reference_against_itself_scores_zero():
    report = score_turns(REF, REF, collar=0.0)
    assert report.total.der == 0.0 and report.total.jer == 0.0
    assert report.files[0].scored == pytest.approx(20.0)
    assert (report.files[0].ref_speakers, report.files[0].hyp_speakers) == (2, 2)


def test_shifted_hypothesis_without_collar():
    f = score_turns(REF, SHIFTED, collar=0.0).files[0]
    # missed 0-1 s, confusion 10-11 s (x is mapped to A), false alarm 20-21 s; 20 s of reference speech
    assert (f.missed, f.confusion, f.false_alarm) == pytest.approx((1.0, 1.0, 1.0))
    assert f.der == pytest.approx(3.0 / 20.0)


def test_collar_is_md_eval_seconds_on_each_side():
    f = score_turns(REF, SHIFTED, collar=0.25).files[0]
    # +-0.25 s around 0, 10 and 20 s is not scored (the scored region runs from 0 to 21 s):
    # reference 20 - 0.25 - 0.5 - 0.25 = 19 s; each error loses 0.25 s of its 1 s
    assert f.scored == pytest.approx(19.0)
    assert (f.missed, f.confusion, f.false_alarm) == pytest.approx((0.75, 0.75, 0.75))
    assert f.der == pytest.approx(2.25 / 19.0)


def test_collar_equals_pyannote_total_width_of_twice_the_value():
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(uri="f"), Annotation(uri="f")
    for t, ann in [(x, ref) for x in REF] + [(x, hyp) for x in SHIFTED]:
        ann[Segment(t.onset, t.onset + t.duration)] = t.speaker
    direct = DiarizationErrorRate(collar=0.5)(ref, hyp, uem=Timeline([Segment(0, 21)], uri="f"))
    assert score_turns(REF, SHIFTED, collar=0.25).total.der == pytest.approx(direct)


def test_uem_limits_the_scored_region(tmp_path):
    f = score_turns(REF, SHIFTED, uem={"f": [(0.0, 15.0)]}, collar=0.0).files[0]
    assert f.false_alarm == 0.0 and f.der == pytest.approx(2.0 / 15.0)
    with pytest.raises(DataError, match="the UEM has no entry for reference file 'f'"):
        score_turns(REF, SHIFTED, uem={"g": [(0.0, 1.0)]})


def test_skip_overlap_leaves_overlapped_reference_out():
    ref = [Turn("f", "1", 0.0, 10.0, "A"), Turn("f", "1", 8.0, 12.0, "B")]
    hyp = [Turn("f", "1", 0.0, 20.0, "x")]
    scored = score_turns(ref, hyp, collar=0.0).files[0]
    assert scored.der == pytest.approx((8.0 + 2.0) / 22.0)  # confusion 0-8 s, one of two speakers missed 8-10 s
    skipped = score_turns(ref, hyp, collar=0.0, skip_overlap=True).files[0]
    assert skipped.scored == pytest.approx(18.0) and skipped.der == pytest.approx(8.0 / 18.0)


def test_missing_hypothesis_file_counts_as_missed_and_totals_add_up():
    ref = REF + [Turn("g", "1", 0.0, 5.0, "C")]
    report = score_turns(ref, REF, collar=0.0)
    assert [f.file_id for f in report.files] == ["f", "g"]
    assert report.files[1].missed == pytest.approx(5.0) and report.files[1].der == pytest.approx(1.0)
    assert report.total.scored == pytest.approx(25.0) and report.total.der == pytest.approx(5.0 / 25.0)
    text = report.to_text()
    assert "TOTAL" in text and "collar 0 s each side" in text
    assert "# scored_s: reference speech scored (silence, collars left out); DER% = FA% + MISS% + CONF%" in text


def test_bad_scoring_input_raises(tmp_path):
    with pytest.raises(DataError, match="the reference has no SPEAKER turns"):
        score_turns([], REF)
    with pytest.raises(ConfigError, match="`collar` must be >= 0"):
        score_turns(REF, REF, collar=-0.1)
    with pytest.raises(DataError, match="file not found"):
        score_rttm(tmp_path / "missing.rttm", tmp_path / "missing.rttm")


def test_score_rttm_files(tmp_path):
    write_rttm(tmp_path / "ref.rttm", REF)
    write_rttm(tmp_path / "hyp.rttm", SHIFTED)
    write_uem(tmp_path / "all.uem", {"f": [(0.0, 21.0)]})
    report = score_rttm(tmp_path / "ref.rttm", tmp_path / "hyp.rttm", tmp_path / "all.uem", collar=0.0)
    assert report.total.der == pytest.approx(0.15)
    assert report.to_dict()["total"]["file_id"] == "TOTAL"
