"""Training: learning on a synthetic corpus, determinism, exact resume, interrupt, run dir, CLI."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from context_synth import speaker_corpus  # noqa: E402
from unspeech import kaldi_io  # noqa: E402
from unspeech.context.config import ContextConfig  # noqa: E402
from unspeech.context.sampling import split_utterances  # noqa: E402
from unspeech.context.rundir import checkpoint_state, embed_windows, find_checkpoint, load_run  # noqa: E402
from unspeech.context.train import train  # noqa: E402
from unspeech.errors import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = ContextConfig(filelist="synthetic.ark", feat_size=20, window_length=10, window_neg_length=10,
                     embedding_transformation="BaselineDnn", num_dnn_layers=1, fc_size=32, embedding_size=8,
                     batch_size=8, learn_rate=1e-3, l2_reg=1e-4, dropout_keep_prob=0.8, validation_fraction=0.2,
                     validation_batches=2, steps_per_checkpoint=10, steps_per_summary=5, max_steps=20, seed=3)


@pytest.fixture(scope="module")
def corpus():
    return speaker_corpus(n_utts=40, n_speakers=8, dim=20, seed=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, corpus):
    """An uninterrupted run of TINY (20 steps) to compare other runs with."""
    return train(dataclasses.replace(TINY, train_dir=str(tmp_path_factory.mktemp("reference"))), store=corpus[0])


def _weights(run_dir, checkpoint=None):
    _, model = load_run(run_dir, checkpoint)
    return [v.numpy() for v in model.weights]


@pytest.mark.slow
@pytest.mark.parametrize("use_dot_combine", [True, False])
def test_learns_context_far_above_majority(tmp_path, corpus, use_dot_combine):
    store, _ = corpus
    config = dataclasses.replace(TINY, train_dir=str(tmp_path), fc_size=64, embedding_size=16, batch_size=16,
                                 max_steps=300, steps_per_checkpoint=100, validation_batches=8, dropout_keep_prob=0.9,
                                 use_dot_combine=use_dot_combine)
    result = train(config, store=store)
    first, last = result.history[0], result.history[-1]
    # measured (held-out utterances, majority baseline 0.50): dot product 0.86 at step 100,
    # 0.93 at step 300; learned combination 0.95 at step 100 and 300
    assert last["majority"] == 0.5
    assert last["val_accuracy"] >= 0.85
    assert last["val_loss"] < 0.4 < np.log(2)  # chance level is ln 2
    assert last["loss"] < first["loss"]
    log = (result.run_dir / "train.log").read_text()
    assert "step 300 |" in log and "majority 0.500" in log and "examples: ctx:" in log


def test_same_seed_same_weights_and_resume_is_exact(tmp_path, corpus, reference):
    store, _ = corpus
    config = dataclasses.replace(TINY, train_dir=str(tmp_path / "a"))
    a = reference
    b = train(dataclasses.replace(config, train_dir=str(tmp_path / "b")), store=store)
    half = train(dataclasses.replace(config, train_dir=str(tmp_path / "c"), max_steps=10), store=store)
    assert half.step == 10 and not half.resumed
    resumed = train(dataclasses.replace(config, train_dir=str(half.run_dir)), given={"max_steps": 20}, store=store)
    assert resumed.resumed and resumed.step == 20 and resumed.run_dir == half.run_dir
    wa = _weights(a.run_dir)
    for other in (b, resumed):
        for x, y in zip(wa, _weights(other.run_dir)):
            np.testing.assert_array_equal(x, y)
    assert a.history[-1]["loss"] == resumed.history[-1]["loss"]
    # the run dir describes itself
    saved = ContextConfig.from_json(b.run_dir / "config.json")
    assert dataclasses.replace(saved, train_dir=str(tmp_path / "a")) == config
    assert b.run_dir.parent == tmp_path / "b" / "runs" and b.run_dir.name.endswith(config.run_name())
    events = [e for f in (a.run_dir / "tensorboard").iterdir() for e in tf.compat.v1.train.summary_iterator(str(f))]
    tags = {(v.tag, v.metadata.plugin_data.plugin_name) for e in events for v in e.summary.value}
    assert {("train/loss", "scalars"), ("train/accuracy", "scalars"), ("val/loss", "scalars"), ("val/accuracy", "scalars")} <= tags
    assert [Path(p).name for p in checkpoint_state(a.run_dir)] == ["ckpt-10", "ckpt-20"]


def test_l2_changes_the_loss(tmp_path, corpus):
    store, _ = corpus
    with_l2 = train(dataclasses.replace(TINY, train_dir=str(tmp_path / "l2"), max_steps=10, l2_reg=0.01), store=store)
    without = train(dataclasses.replace(TINY, train_dir=str(tmp_path / "none"), max_steps=10, l2_reg=0.0), store=store)
    rec_l2, rec_0 = with_l2.history[-1], without.history[-1]
    assert rec_l2["loss"] - rec_l2["xent"] > 0.01  # the penalty is part of the optimised loss
    assert rec_0["loss"] == pytest.approx(rec_0["xent"])
    assert rec_l2["loss"] != pytest.approx(rec_0["loss"])


def test_sigterm_saves_a_checkpoint_and_resume_is_exact(tmp_path, corpus, reference):
    store, _ = corpus

    def hook(kind, record, completed, total):
        if completed == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # like `kill PID`: stop after this step

    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(TINY, train_dir=str(tmp_path / "killed")), store=store, hook=hook)
    (run_dir,) = (tmp_path / "killed" / "runs").iterdir()
    assert Path(find_checkpoint(run_dir)).name == "ckpt-7"
    assert "interrupted at step 7; checkpoint saved" in (run_dir / "train.log").read_text()
    done = train(dataclasses.replace(TINY, train_dir=str(run_dir)), store=store)
    assert done.step == 20 and done.stop_reason == "max_steps"
    for x, y in zip(_weights(reference.run_dir), _weights(run_dir)):
        np.testing.assert_array_equal(x, y)
    again = train(dataclasses.replace(TINY, train_dir=str(run_dir)), store=store)
    assert again.step == 20 and again.history == []  # max_steps already reached


def test_plateau_stops_early(tmp_path, corpus):
    store, _ = corpus
    config = dataclasses.replace(TINY, train_dir=str(tmp_path), learn_rate=1e-9, early_stopping_patience=1,
                                 steps_per_checkpoint=5, max_steps=200)
    result = train(config, store=store)
    assert result.stop_reason == "plateau" and result.step < 200


def test_resume_refuses_a_different_model(tmp_path, corpus):
    store, _ = corpus
    first = train(dataclasses.replace(TINY, train_dir=str(tmp_path), max_steps=5, steps_per_checkpoint=5), store=store)
    with pytest.raises(ConfigError, match="existing run whose model differs.*fc_size: saved 32, given 64"):
        train(dataclasses.replace(TINY, train_dir=str(first.run_dir), fc_size=64), given={"fc_size": 64}, store=store)


def test_load_run_and_embed_windows(tmp_path, corpus):
    store, _ = corpus
    result = train(dataclasses.replace(TINY, train_dir=str(tmp_path), max_steps=10, steps_per_checkpoint=5), store=store)
    config, model = load_run(result.run_dir)
    train_idx, _ = split_utterances(store, config)
    train_frames = np.concatenate([store[i] for i in train_idx])
    np.testing.assert_allclose(model.input_mean.numpy(), train_frames.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(1 / model.input_inv_std.numpy(), train_frames.std(axis=0), rtol=1e-4)
    windows = np.stack([store[0][i:i + 10] for i in range(0, 50, 10)])
    emb = embed_windows(model, windows, batch_size=2)
    assert emb.shape == (5, 8) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, model.embed_targets(windows).numpy(), rtol=1e-5, atol=1e-6)
    assert embed_windows(model, windows, tower="context").shape == (5, 8)
    older = _weights(result.run_dir, 5)
    assert any(not np.array_equal(x, y) for x, y in zip(older, _weights(result.run_dir)))
    with pytest.raises(ConfigError, match=r"target windows must have shape \(N, 10, 20\)"):
        embed_windows(model, windows[:, :5])
    with pytest.raises(ConfigError, match="no checkpoint .*ckpt-99 \\(available in .*: ckpt-5, ckpt-10\\)"):
        load_run(result.run_dir, 99)
    with pytest.raises(ConfigError, match="is not a run dir"):
        load_run(tmp_path)


def test_cli_trains_from_an_ark_and_reports_errors(tmp_path, corpus, capsys):
    sys.path.insert(0, str(REPO))
    import unsup_model_neg

    store, _ = corpus
    ark = tmp_path / "feats.ark"
    kaldi_io.write_mats(ark, ((u, store[i]) for i, u in enumerate(store.utt_ids[:12])))
    argv = ["--filelist", str(ark), "--num_filters", "20", "--window_length", "8", "--window_neg_length", "8",
            "--embedding_transform", "BaselineDnn", "--num_dnn_layers", "1", "--fc_size", "16", "--embedding_size", "4",
            "--batch_size", "4", "--max_steps", "6", "--steps_per_checkpoint", "3", "--validation_fraction", "0.25",
            "--validation_batches", "1", "--train_dir", str(tmp_path / "models"), "--tied_embeddings_transforms", "True",
            "--quiet"]
    assert unsup_model_neg.main(argv) == 0
    (run_dir,) = (tmp_path / "models" / "runs").iterdir()
    assert "featinput_feats.ark_dot_combine_tied_embs" in run_dir.name
    assert json.loads((run_dir / "config.json").read_text())["filelist"] == str(ark)
    assert unsup_model_neg.main(argv[:2] + ["--num_filters", "13", "--train_dir", str(tmp_path / "m2"), "--quiet"]) == 1
    assert "`feat_size` (--num_filters) is 13 but" in capsys.readouterr().err
    assert not list((tmp_path / "m2").rglob("config.json"))  # no run dir left by the failed attempt
    assert unsup_model_neg.main(["--filelist", str(tmp_path / "missing.ark"), "--train_dir", str(tmp_path / "m3"), "--quiet"]) == 1
    assert "missing.ark" in capsys.readouterr().err


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        import sys, dataclasses
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from context_synth import speaker_corpus
        from unspeech.context.config import ContextConfig
        from unspeech.context.train import train
        store, _ = speaker_corpus(n_utts=16, n_speakers=4, dim=20)
        config = ContextConfig(**{TINY.to_dict()!r})
        config = dataclasses.replace(config, train_dir={str(tmp_path)!r}, logical_cpu_devices=2, distribute="mirrored",
                                     max_steps=10, steps_per_checkpoint=5)
        result = train(config, store=store)
        print("RESULT", result.step, result.history[-1]["loss"], result.history[-1]["val_accuracy"])
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    step, loss, _ = proc.stdout.split("RESULT")[1].split()
    assert int(step) == 10 and np.isfinite(float(loss))
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "2 replica(s)" in (run_dir / "train.log").read_text()


def test_same_speaker_negatives_from_a_spk2utt_file(tmp_path, corpus):
    from unspeech.datadir import write_spk2utt

    store, spk2utt = corpus
    write_spk2utt(tmp_path / "spk2utt", spk2utt)
    config = dataclasses.replace(TINY, train_dir=str(tmp_path), spk2utt=str(tmp_path / "spk2utt"), max_steps=5,
                                 steps_per_checkpoint=5, validation_fraction=0.25)
    result = train(config, store=store)
    assert "_nsampling_same_spk_" in result.run_dir.name
    log = (result.run_dir / "train.log").read_text()
    assert "6 speakers, 0 skipped" in log and "2 speakers, 0 skipped" in log  # 8 speakers, a quarter held out


def test_mixed_precision_needs_a_gpu(tmp_path, corpus):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="`mixed_precision` needs a GPU and none is visible"):
        train(dataclasses.replace(TINY, train_dir=str(tmp_path), mixed_precision=True), store=corpus[0])
    assert not (tmp_path / "runs").exists()  # a failed new run leaves no run dir behind (issue 14)


def test_unspeech_train_command_failure_exit(tmp_path, capsys):
    from unspeech.cli import main

    assert main(["train", "--filelist", str(tmp_path / "nope.ark"), "--train_dir", str(tmp_path), "--quiet"]) == 1
    assert "unspeech train: error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"lr_schedule": "constant"}, {0: 1e-3, 50: 1e-3, 100: 1e-3}),
        ({"lr_schedule": "cosine", "max_steps": 100}, {0: 1e-3, 50: 5e-4, 100: 0.0}),
        ({"lr_schedule": "cosine", "max_steps": 110, "lr_warmup_steps": 10}, {0: 0.0, 5: 5e-4, 10: 1e-3, 110: 0.0}),
        ({"lr_schedule": "exponential", "lr_decay_steps": 50, "lr_decay_rate": 0.5}, {0: 1e-3, 50: 5e-4, 100: 2.5e-4}),
    ],
)
def test_learning_rate_schedules(changes, expected):
    from unspeech.context.train import make_optimizer

    config = dataclasses.replace(TINY, **changes).validate()
    optimizer = make_optimizer(config)
    assert optimizer.global_clipnorm == config.gradient_clipping
    for step, lr in expected.items():
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(lr, abs=1e-9)


def test_learn_rate_given_on_resume_applies_and_is_logged(tmp_path, corpus):
    """The checkpoint restores the optimizer's learning-rate variable; a --learn_rate given on
    resume must still win (issue 14), and the session logs what it overrides."""
    store, _ = corpus
    first = train(dataclasses.replace(TINY, train_dir=str(tmp_path), max_steps=5, steps_per_checkpoint=5), store=store)
    assert first.history[-1]["learning_rate"] == pytest.approx(1e-3)
    resumed = train(dataclasses.replace(TINY, train_dir=str(first.run_dir), learn_rate=0.25),
                    given={"learn_rate": 0.25, "max_steps": 10}, store=store)
    assert resumed.resumed and resumed.history[-1]["learning_rate"] == pytest.approx(0.25)
    assert "this session overrides learn_rate: 0.25 (config.json has 0.001)" in (first.run_dir / "train.log").read_text()


def test_second_session_on_a_run_dir_is_refused(tmp_path, corpus, capsys):
    """Two sessions resuming one run dir would interleave checkpoints and lose steps: the second
    one gets one error naming the run dir and the holder's pid, and the lock goes with the first."""
    from unspeech.context.rundir import lock_run_dir

    store, _ = corpus
    run_dir = tmp_path / "run"  # the lock is taken before anything is loaded: config.json is enough
    run_dir.mkdir()
    dataclasses.replace(TINY, train_dir=str(run_dir)).to_json(run_dir / "config.json")
    resume = dataclasses.replace(TINY, train_dir=str(run_dir), max_steps=10)
    with lock_run_dir(run_dir):  # a session holding it (flock: a second open file conflicts)
        with pytest.raises(ConfigError, match=rf"{run_dir} is being trained by another session \(pid {os.getpid()} on "):
            train(resume, given={"max_steps": 10}, store=store)
    with lock_run_dir(run_dir):  # released when the holder left
        pass
    # another process holding it: the CLI prints one line and exits 1
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from unspeech.context.rundir import lock_run_dir
        with lock_run_dir({str(run_dir)!r}):
            print("locked", flush=True); time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        ark = tmp_path / "feats.ark"
        kaldi_io.write_mats(ark, [("u1", store[0])])
        capsys.readouterr()
        from unspeech.cli import main

        assert main(["train", "--filelist", str(ark), "--train_dir", str(run_dir), "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"{run_dir} is being trained by another session (pid {holder.pid} on " in err
    finally:
        holder.kill()
        holder.wait()


def test_config_that_does_not_fit_the_checkpoint_is_one_error(tmp_path, corpus):
    """An edited config.json (or a checkpoint copied from another run): one line naming both files,
    not a TensorFlow traceback, for loading (export, diarize) and for resuming."""
    from unspeech.context.rundir import init_run

    run_dir = tmp_path / "run"
    init_run(dataclasses.replace(TINY, train_dir=str(run_dir)), run_dir, seed=1)
    saved = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**saved, "fc_size": 64}))
    message = r"run/config\.json does not describe the model saved in .*ckpt-1 \(.*shape.*\); was config\.json edited"
    with pytest.raises(ConfigError, match=message):
        load_run(run_dir)
    with pytest.raises(ConfigError, match=message):
        train(dataclasses.replace(TINY, train_dir=str(run_dir), fc_size=64), store=corpus[0])
