"""The UIS-RNN backend: a model trained on a conversation's rows decodes another; dimension check."""

import numpy as np
import pytest

from unspeech import datadir
from unspeech.diarize.pipeline import Diarizer
from unspeech.errors import DataError

pytestmark = [pytest.mark.audio, pytest.mark.slow]


def _rows_and_labels(conversations, rid):
    """Core embedding rows of a recording (as the diarizer computes them) and their reference speakers."""
    seen = {}
    src = datadir.read_wav_scp(conversations / "wav.scp")[rid]
    # UIS-RNN models are trained on the exported rows (gen_feat), which have no speaker head
    Diarizer(num_speakers=2, speaker_head=False)(src, file_id=rid, hook=lambda step, artifact, **kw: seen.setdefault(step, artifact))
    rows, mask = seen["embeddings"], seen["speech"]
    ref = [t for t in datadir.read_rttm(conversations / "rttm") if t.file_id == rid]
    speaker = []
    for i in range(len(rows)):
        t = (i * 10 + 5) / 100
        speaker.append(next((r.speaker for r in ref if r.onset <= t < r.end), None))
    keep = [i for i, s in enumerate(speaker) if s is not None and mask[i * 10 : i * 10 + 10].mean() >= 0.5]
    return rows[keep].astype(np.float64), [speaker[i] for i in keep]


def test_uisrnn_backend_end_to_end(conversations, tmp_path):
    uisrnn = pytest.importorskip("unspeech.uisrnn")
    rows, labels = _rows_and_labels(conversations, "conv000")
    model_args, training_args, _ = uisrnn.default_arguments(
        observation_dim=rows.shape[1], rnn_hidden_size=16, verbosity=0, enable_cuda=False,
        train_iteration=20, learning_rate=0.01, batch_size=4, num_permutations=2)
    model = uisrnn.UISRNN(model_args)
    model.fit([rows], [labels], training_args)
    model.save(tmp_path / "uisrnn.npz")
    src = datadir.read_wav_scp(conversations / "wav.scp")["conv001"]
    turns = Diarizer(backend="uisrnn", uisrnn=str(tmp_path / "uisrnn.npz"), max_speakers=2)(src, file_id="conv001")
    assert turns and 1 <= len({t.speaker for t in turns}) <= 2
    # a speaker of fewer rows than min_cluster_size is not counted (the recording has ~100 core rows)
    whole = Diarizer(backend="uisrnn", uisrnn=str(tmp_path / "uisrnn.npz"), min_cluster_size=1000)(src, file_id="conv001")
    assert len({t.speaker for t in whole}) == 1


def test_uisrnn_of_other_dimension_is_refused(conversations, tmp_path):
    uisrnn = pytest.importorskip("unspeech.uisrnn")
    model_args, _, _ = uisrnn.default_arguments(observation_dim=8, rnn_hidden_size=8, verbosity=0, enable_cuda=False)
    uisrnn.UISRNN(model_args).save(tmp_path / "small.npz")
    src = datadir.read_wav_scp(conversations / "wav.scp")["conv000"]
    with pytest.raises(DataError, match=r"small.npz: the UIS-RNN expects 8-dimensional observations, but the embedder \(stats\) makes 80"):
        Diarizer(backend="uisrnn", uisrnn=str(tmp_path / "small.npz"), model="stats")(src)
