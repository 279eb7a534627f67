"""Enrolled speaker profiles: sources, nearest profile with an unknown threshold, dimension checks."""

import numpy as np
import pytest

from unspeech import kaldi_io
from unspeech.diarize.profiles import UNKNOWN, SpeakerProfiles
from unspeech.errors import DataError

E = np.eye(4)


def test_assign_nearest_profile_and_unknown():
    profiles = SpeakerProfiles.from_vectors({"alice": E[0] * 3, "bob": E[1]})
    rows = np.array([[1.0, 0.1, 0, 0], [0.1, 2.0, 0, 0], [0.1, 0.1, 1.0, 0]])
    np.testing.assert_array_equal(profiles.assign(rows), [0, 1, 0])
    np.testing.assert_array_equal(profiles.assign(rows, unknown_threshold=0.5), [0, 1, 2])
    assert profiles.labels == ["alice", "bob", UNKNOWN]
    np.testing.assert_allclose(np.linalg.norm(profiles.vectors, axis=1), 1.0)
    assert profiles.assign(np.zeros((0, 4)), 0.5).shape == (0,)


def test_groups_take_distinct_profiles_first():
    profiles = SpeakerProfiles.from_vectors({"alice": E[0], "bob": E[1]})
    # both groups are closest to alice, but the second is the better alice: the first gets bob
    groups = np.array([[1.0, 0.8, 0, 0], [1.0, 0.1, 0, 0], [0.9, 0.0, 0.2, 0]])
    np.testing.assert_array_equal(profiles.assign(groups), [0, 0, 0])
    np.testing.assert_array_equal(profiles.assign_groups(groups), [1, 0, 0])  # the third is left over: nearest
    np.testing.assert_array_equal(profiles.assign_groups(groups, unknown_threshold=0.7), [2, 0, 0])


def test_profiles_from_kaldi_ark_vectors_and_matrices(tmp_path):
    kaldi_io.write_mats(tmp_path / "p.ark", [("carol", E[2].astype(np.float32)),
                                             ("dave", np.stack([E[3], E[3] * 3]).astype(np.float32))],
                        tmp_path / "p.scp")
    profiles = SpeakerProfiles.from_ark(tmp_path / "p.scp")
    assert profiles.names == ["carol", "dave"] and profiles.dim == 4
    np.testing.assert_allclose(profiles.vectors, E[2:])


def test_wrong_dimension_is_a_clear_error(tmp_path):
    kaldi_io.write_mats(tmp_path / "p.ark", [("carol", np.ones(3, np.float32))])
    profiles = SpeakerProfiles.from_ark(tmp_path / "p.ark")
    with pytest.raises(DataError, match=r"p.ark: speaker profiles have dimension 3, but the stats model makes 80"):
        profiles.check_dim(80, "the stats model")
    with pytest.raises(DataError, match="have dimension 3"):
        profiles.assign(np.ones((2, 4)))


@pytest.mark.parametrize(
    "vectors, message",
    [
        ({}, "no speaker profiles"),
        ({"a": np.ones(3), "b": np.ones(4)}, r"different dimensions \[3, 4\]"),
        ({UNKNOWN: np.ones(3)}, "'unknown' is reserved"),
        ({"a": np.array([1.0, np.nan])}, "NaN or infinite"),
        ({"a": np.zeros((0, 3))}, "speaker 'a' has an empty matrix"),
        ({"a": np.ones((2, 2, 2))}, r"expected a vector or matrix, got shape \(2, 2, 2\)"),
    ],
)
def test_bad_profiles_raise(vectors, message):
    with pytest.raises(DataError, match=message):
        SpeakerProfiles.from_vectors(vectors, "prof.scp")


def test_enrollment_names_speakers_by_file_and_needs_speech():
    rows = {"/x/alice.wav": np.array([[1.0, 0.0], [0.8, 0.2]]), "/x/bob.flac": np.array([[0.0, 1.0]])}
    profiles = SpeakerProfiles.from_enrollment(list(rows), rows.__getitem__)
    assert profiles.names == ["alice", "bob"]
    with pytest.raises(DataError, match=r"enrollment audio '/x/carol.wav' of speaker 'carol' contains no speech"):
        SpeakerProfiles.from_enrollment({"carol": "/x/carol.wav"}, lambda path: np.zeros((0, 2)))
    with pytest.raises(DataError, match="no enrollment audio given"):
        SpeakerProfiles.from_enrollment([], rows.__getitem__)
