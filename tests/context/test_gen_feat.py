"""Feature export: row layout, equality with the model applied directly, sharding, --test_perf."""

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from unspeech import kaldi_io  # noqa: E402
from unspeech.context.config import ContextConfig  # noqa: E402
from unspeech.context.embed import FrameEmbedder, num_output_rows, speaker_vector, window_starts  # noqa: E402
from unspeech.context.export import GenFeatOptions, gen_feat, merge_jobs  # noqa: E402
from unspeech.context.rundir import embed_windows, init_run, load_run  # noqa: E402
from unspeech.errors import ConfigError, DataError  # noqa: E402

W = 8
LENGTHS = {"a-short": 3, "b-exact": W, "c-long": 95, "d-mid": 41, "e-one": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run dir with an untrained (randomly initialised) tiny model, saved like training does."""
    d = tmp_path_factory.mktemp("gen_feat")
    run_dir = d / "run"
    init_run(ContextConfig(feat_size=5, window_length=W, window_neg_length=W, embedding_transformation="BaselineDnn",
                           num_dnn_layers=1, fc_size=8, embedding_size=4, left_contexts=1, right_contexts=1,
                           negative_samples=2, batch_size=4), run_dir, seed=3)
    rng = np.random.default_rng(0)
    feats = {u: rng.standard_normal((n, 5)).astype(np.float32) for u, n in LENGTHS.items()}
    kaldi_io.write_mats(d / "feats.ark", feats.items(), d / "feats.scp")
    return d, run_dir, feats


def test_row_counts_follow_kaldi_convention():
    assert [num_output_rows(t, 10) for t in (1, 9, 10, 11, 95, 100)] == [1, 1, 1, 2, 10, 10]
    np.testing.assert_array_equal(window_starts(25, 8, 10, "start"), [0, 10, 20])
    np.testing.assert_array_equal(window_starts(25, 8, 10, "center"), [-4, 6, 16])
    with pytest.raises(ConfigError, match="`alignment` must be one of start, center"):
        window_starts(25, 8, 10, "left")


@pytest.mark.parametrize("alignment", ["start", "center"])
def test_rows_equal_model_applied_to_windows(run, alignment):
    d, run_dir, feats = run
    _, model = load_run(run_dir)
    emb = FrameEmbedder(model, period=3, alignment=alignment, batch_size=7)
    out = dict(emb.embed(feats.items()))
    assert list(out) == list(feats)  # every id, input order
    for utt, x in feats.items():
        starts = window_starts(len(x), W, 3, alignment)
        idx = np.clip(starts[:, None] + np.arange(W), 0, len(x) - 1)  # edge padding
        expected = embed_windows(model, x[idx])
        assert out[utt].shape == (num_output_rows(len(x), 3), 4)
        np.testing.assert_allclose(out[utt], expected, rtol=1e-5, atol=1e-6)


def test_interpolate_padding_and_normalize_to_input_length(run):
    d, run_dir, feats = run
    _, model = load_run(run_dir)
    x = feats["c-long"]  # 95 frames, period 10 -> 10 rows; full windows start at 0..80 -> rows 0..8
    rows = FrameEmbedder(model, period=10, interpolate_padding=True).embed_utterance(x)
    assert rows.shape == (10, 4)
    np.testing.assert_allclose(rows[9], rows[8])  # the last row repeats the last full window
    np.testing.assert_allclose(rows[:9], embed_windows(model, np.stack([x[s:s + W] for s in range(0, 90, 10)])), atol=1e-6)
    dense = FrameEmbedder(model, period=10, normalize_to_input_length=True).embed_utterance(x)
    plain = FrameEmbedder(model, period=10).embed_utterance(x)
    assert dense.shape == (95, 4)
    np.testing.assert_allclose(dense[np.arange(95)], plain[np.arange(95) // 10])


def test_combine_contexts_and_speaker_vectors(run):
    d, run_dir, feats = run
    _, model = load_run(run_dir)
    x = feats["d-mid"]
    both = FrameEmbedder(model, period=5, combine_contexts=True).embed_utterance(x)
    target = FrameEmbedder(model, period=5).embed_utterance(x)
    assert both.shape == (9, 8)
    np.testing.assert_allclose(both[:, :4], target, atol=1e-6)
    idx = np.clip(window_starts(41, W, 5)[:, None] + np.arange(W), 0, 40)
    np.testing.assert_allclose(both[:, 4:], embed_windows(model, x[idx], tower="context"), atol=1e-6)
    vec = speaker_vector(target)
    np.testing.assert_allclose(np.linalg.norm(vec), 1.0, rtol=1e-5)


def test_gen_feat_writes_kaldi_outputs(run, tmp_path):
    d, run_dir, feats = run
    prefix = str(tmp_path / "out" / "ivector_online")
    summary = gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, quiet=True))
    assert summary["utterances"] == len(feats)
    assert (tmp_path / "out" / "ivector_period").read_text() == "10\n"
    ids, rows = kaldi_io.load_mats(f"scp:{prefix}.scp")
    assert ids == list(feats)
    assert [len(r) for r in rows] == [num_output_rows(n, 10) for n in LENGTHS.values()]
    # speaker vectors, npz
    gen_feat(str(run_dir), str(d / "feats.scp"), GenFeatOptions(output_feat_file=str(tmp_path / "spk"),
             generate_speaker_vectors=True, output_format="npz", quiet=True))
    with np.load(tmp_path / "spk.npz") as z:
        assert sorted(z.files) == sorted(feats) and z["c-long"].shape == (4,)


@pytest.mark.parametrize("source", ["feats.ark", "feats.scp"])
def test_sharded_equals_unsharded(run, tmp_path, source):
    d, run_dir, feats = run
    one = str(tmp_path / "one" / "ivector_online")
    gen_feat(str(run_dir), str(d / source), GenFeatOptions(output_feat_file=one, quiet=True))
    many = str(tmp_path / "many" / "ivector_online")
    for j in (1, 2, 3):
        gen_feat(str(run_dir), str(d / source), GenFeatOptions(output_feat_file=many, job=j, num_jobs=3, quiet=True))
    merge_jobs(many, 3, period=10)
    a_ids, a = kaldi_io.load_mats(f"scp:{one}.scp", same_dim=True)
    b_ids, b = kaldi_io.load_mats(f"scp:{many}.scp", same_dim=True)
    assert a_ids == b_ids == list(feats)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert (tmp_path / "many" / "ivector_period").read_text() == "10\n"


def test_test_perf_leaves_weights_unchanged(run):
    d, run_dir, feats = run
    _, before = load_run(run_dir)
    weights_before = [v.numpy().copy() for v in before.weights]
    summary = gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(test_perf=True, test_perf_batches=3, quiet=True))
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["majority_baseline"] == pytest.approx(2 / 4)
    _, after = load_run(run_dir)
    for x, y in zip(weights_before, after.weights):
        np.testing.assert_array_equal(x, y.numpy())


def test_errors(run, tmp_path):
    d, run_dir, feats = run
    with pytest.raises(ConfigError, match=r"--embedding_transformation 'Vgg16big' \(run has 'BaselineDnn'\)"):
        gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=str(tmp_path / "x"), quiet=True),
                 given={"embedding_transformation": "Vgg16big", "learn_rate": 0.1})
    kaldi_io.write_mats(tmp_path / "wrong.ark", [("u1", np.zeros((20, 13), np.float32))])
    with pytest.raises(DataError, match=r"wrong\.ark: utterance 'u1' has 13-dimensional features.*feat_size=5"):
        gen_feat(str(run_dir), str(tmp_path / "wrong.ark"), GenFeatOptions(output_feat_file=str(tmp_path / "y"), quiet=True))
    assert not list(tmp_path.glob("y*"))
    with pytest.raises(ConfigError, match="output_feat_file` is required"):
        GenFeatOptions().validate()
    with pytest.raises(ConfigError, match="hop_size"):
        GenFeatOptions(output_feat_file="x", hop_size=2).validate()
    with pytest.raises(DataError, match=r"job output .*ivector_online\.1\.json is missing \(did job 1 finish\?"):
        merge_jobs(str(tmp_path / "ivector_online"), 2)


SEED_GEN_FEAT = (
    "--gen_feat --train_dir {run} --filelist {ark} --num_filters 40 --embedding_transformation Vgg16big "
    "--num_highway_layers 5 --embedding_size 100 --num_dnn_layers 5 --hop_size 1 --additional_params "
    "--fc_size 1024 --window_length 64 --window_neg_length 64 --unit_normalize_var --tied_embeddings_transforms "
    "--nogenerate_speaker_vectors --nogenfeat_combine_contexts --nokaldi_normalize_to_input_length "
    "--genfeat_stride 10 --notest_perf --genfeat_interpolate_outputlength_padding --output_feat_file {out}/ivector_online"
)


@pytest.mark.slow
def test_seed_gen_feat_command_line(tmp_path, capsys):
    """The original README's export command, verbatim but for paths, through `unspeech gen-feat`."""
    from unspeech.cli import main

    run_dir = tmp_path / "run"
    init_run(ContextConfig(feat_size=40, window_length=64, window_neg_length=64, embedding_transformation="Vgg16big",
                           fc_size=1024, embedding_size=100, unit_normalize_var=True, tied_embeddings_transforms=True),
             run_dir)
    rng = np.random.default_rng(1)
    lengths = {"u-long": 230, "u-short": 20}
    kaldi_io.write_mats(tmp_path / "x.ark", [(u, rng.standard_normal((n, 40)).astype(np.float32)) for u, n in lengths.items()])
    argv = SEED_GEN_FEAT.format(run=run_dir, ark=tmp_path / "x.ark", out=tmp_path / "out").split()
    assert argv.pop(0) == "--gen_feat"
    assert main(["gen-feat", *argv, "--quiet"]) == 0
    ids, rows = kaldi_io.load_mats(f"scp:{tmp_path / 'out' / 'ivector_online.scp'}")
    assert ids == ["u-long", "u-short"]
    assert [r.shape for r in rows] == [(23, 100), (2, 100)]
    assert (tmp_path / "out" / "ivector_period").read_text() == "10\n"
    # a model flag that disagrees with the run: one clear line, exit 1, nothing written
    bad = [a if a != "1024" else "2048" for a in argv]
    bad[bad.index(str(tmp_path / "out") + "/ivector_online")] = str(tmp_path / "bad" / "ivector_online")
    assert main(["gen-feat", *bad, "--quiet"]) == 1
    assert "--fc_size 2048 (run has 1024)" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("output_format", ["kaldi_bin", "npz"])
def test_empty_input_leaves_existing_outputs(run, tmp_path, output_format):
    """A failed export (empty input) exits with an error and keeps the previous export intact (issue 14)."""
    d, run_dir, feats = run
    prefix = str(tmp_path / "ivector_online")
    opts = GenFeatOptions(output_feat_file=prefix, output_format=output_format, quiet=True)
    gen_feat(str(run_dir), str(d / "feats.ark"), opts)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "empty.ark").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.ark: no utterances to export"):
        gen_feat(str(run_dir), str(tmp_path / "empty.ark"), opts)
    for j in (1, 2):  # a job array over an empty input: the merge refuses before writing
        gen_feat(str(run_dir), str(tmp_path / "empty.ark"), dataclasses.replace(opts, job=j, num_jobs=2))
    with pytest.raises(DataError, match=r"ivector_online: the 2 jobs exported no utterances"):
        merge_jobs(prefix, 2, output_format)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name in before}
    assert after == before


def test_job_reexport_never_leaves_a_mixed_merged_scp(run, tmp_path):
    """A merged scp points into the job arks: once a job of a new export replaces its ark, the old
    merged scp is gone (readers stop at it) until the new merge, never half old, half new (issue 14)."""
    d, run_dir, feats = run
    prefix = str(tmp_path / "ivector_online")
    for j in (1, 2):
        gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, job=j, num_jobs=2, quiet=True))
    merge_jobs(prefix, 2)
    assert (tmp_path / "ivector_online.scp").exists()
    gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, job=1, num_jobs=2, quiet=True))
    assert not (tmp_path / "ivector_online.scp").exists()
    gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, job=2, num_jobs=2, quiet=True))
    merge_jobs(prefix, 2)
    assert kaldi_io.load_mats(f"scp:{prefix}.scp")[0] == list(feats)


def test_second_export_to_one_prefix_is_refused(run, tmp_path):
    from unspeech._fileutil import hold_lock

    d, run_dir, feats = run
    prefix = str(tmp_path / "ivector_online")
    with hold_lock(tmp_path / ".ivector_online.lock", RuntimeError):  # another export holding the prefix
        with pytest.raises(ConfigError, match=r"ivector_online is being written by another export \(pid \d+ on "):
            gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, quiet=True))
        # its jobs lock their own prefixes, so a job array of that prefix is not blocked by it
        gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, job=1, num_jobs=2, quiet=True))
    assert not (tmp_path / "ivector_online.scp").exists()


def test_nj_workers_die_with_their_parent(tmp_path):
    """A SIGKILLed --nj export leaves no worker behind to rename job files into place later."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    script = textwrap.dedent("""
        import multiprocessing as mp, os, sys, time
        from unspeech.context.export import _die_with_parent

        def work(_):
            print(os.getpid(), flush=True)
            time.sleep(60)

        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(1, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
                pool.map(work, [0])
    """)
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            with open(f"/proc/{worker}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":  # dead, not yet reaped
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its killed parent")


class _Killed(BaseException):
    """Stands for SIGKILL at a rename: nothing after it runs."""


@pytest.mark.parametrize("survive", range(6))
def test_reexport_killed_at_any_rename_leaves_old_new_or_no_scp(run, tmp_path, monkeypatch, survive):
    """Re-export with another period, killed before rename number `survive`: PREFIX.scp, its rows
    and the folder's ivector_period are all the old export's or all the new one's, or there is no
    scp (readers stop there); never new rows under an old period or the other way round (issue 14)."""
    import os

    d, run_dir, feats = run
    prefix = str(tmp_path / "out" / "ivector_online")

    def state(p):
        folder = os.path.dirname(p)
        if not os.path.exists(p + ".scp"):
            return None
        ids, rows = kaldi_io.load_mats(f"scp:{p}.scp")
        return ids, [r.tolist() for r in rows], open(os.path.join(folder, "ivector_period")).read()

    gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, quiet=True))
    new_ref = str(tmp_path / "ref" / "ivector_online")
    gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=new_ref, genfeat_stride=5, quiet=True))
    old, new = state(prefix), state(new_ref)
    assert old[2] == "10\n" and new[2] == "5\n"
    real, calls = os.replace, []

    def replace(src, dst):
        if len(calls) == survive:
            raise _Killed(dst)
        calls.append(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(_Killed):
        gen_feat(str(run_dir), str(d / "feats.ark"), GenFeatOptions(output_feat_file=prefix, genfeat_stride=5, quiet=True))
    monkeypatch.undo()
    assert state(prefix) in (old, new, None), f"mixed after renaming {calls}"
