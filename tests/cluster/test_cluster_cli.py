"""cluster.py / `unspeech cluster`: round trips, grids, plots, samedifferent, failure exits."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unspeech import cli, datadir, kaldi_io
from unspeech.cluster import make_speaker_vectors
from unspeech.cluster.vectors import write_vectors_npz

ROOT = Path(__file__).resolve().parents[2]


def _entry():
    spec = importlib.util.spec_from_file_location("cluster_entry", ROOT / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """8 speakers x 12 utterances as a frame-level ark (5 frames around each vector) + gold utt2spk."""
    d = tmp_path_factory.mktemp("corpus")
    X, y = make_speaker_vectors(8, 12, 40, speaker_rank=8, noise=0.3, random_state=11)
    rng = np.random.default_rng(0)
    ids = [f"spk{lab}-utt{i:03d}" for i, lab in enumerate(y)]
    mats = [(u, x[None, :] + 0.01 * rng.standard_normal((5, 40))) for u, x in zip(ids, X)]
    (d / "dev").mkdir()
    kaldi_io.write_mats(d / "dev" / "feats.ark", mats)
    datadir.write_utt2spk(d / "dev" / "utt2spk", {u: u.split("-")[0] for u in ids})
    return d, ids


def _files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_round_trip_utt2spk_with_set_placeholder(corpus, tmp_path, capsys):
    d, ids = corpus
    out = tmp_path / "clustered_utt2spk"
    rc = _entry().main([
        "-i", str(d / "%set" / "feats.ark"), "--set", "dev", "--utt2spk", str(d / "%set" / "utt2spk"),
        "--output_utt2spk", str(out), "--output_spk2utt", str(tmp_path / "spk2utt"), "--mode", "cluster_speaker", "-q",
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    ari = float(printed.split("ARI: ")[1].split()[0])
    assert ari >= 0.95
    hyp = datadir.read_utt2spk(out)
    assert sorted(hyp) == sorted(ids)
    assert all(s.startswith("spk") for s in hyp.values())
    # the written clusters are the gold speakers up to renaming
    pairs = {(u.split("-")[0], s) for u, s in hyp.items()}
    assert len(pairs) == len(set(hyp.values())) >= 8
    assert datadir.utt2spk_to_spk2utt(hyp) == datadir.read_spk2utt(tmp_path / "spk2utt")


def test_original_command_line_and_half_index(tmp_path, capsys):
    """The seed's command: --half_index N keeps dims N: (here the speaker half; the first half is noise)."""
    X, y = make_speaker_vectors(6, 10, 20, speaker_rank=6, noise=0.2, random_state=2)
    noise = np.random.default_rng(1).standard_normal((len(y), 100))
    ids = [f"s{lab}-{i:03d}" for i, lab in enumerate(y)]
    ark = tmp_path / "feats.ark"
    kaldi_io.write_mats(ark, zip(ids, np.hstack([noise, X])))
    gold = tmp_path / "utt2spk"
    datadir.write_utt2spk(gold, {u: u.split("-")[0] for u in ids})
    entry = _entry()
    rc = entry.main(["--input-ark", str(ark), "--half_index", "100", "--output_utt2spk", str(tmp_path / "clustered_utt2spk"),
                     "--utt2spk", "none", "--mode", "cluster_speaker", "-q"])
    assert rc == 0 and (tmp_path / "clustered_utt2spk").is_file()
    assert "ARI" not in capsys.readouterr().out  # --utt2spk none: no scoring
    entry.main(["-i", str(ark), "--half_index", "100", "--utt2spk", str(gold), "-q"])
    with_half = float(capsys.readouterr().out.split("ARI: ")[1].split()[0])
    entry.main(["-i", str(ark), "--dims", ":100", "--utt2spk", str(gold), "-q"])
    first_half = float(capsys.readouterr().out.split("ARI: ")[1].split()[0])
    assert with_half >= 0.95 and first_half < 0.5


def test_grid_writes_one_row_per_point(corpus, tmp_path):
    d, _ = corpus
    csv_path = tmp_path / "grid.csv"
    rc = cli.main(["cluster", "-i", str(d / "dev" / "feats.ark"), "--utt2spk", str(d / "dev" / "utt2spk"),
                   "--hdbscan_min_cluster_sizes", "3,5", "--hdbscan_min_samples_str", "2,4", "--results-csv", str(csv_path),
                   "--output_utt2spk", str(tmp_path / "best_%minclustersize_%minsample"), "-q"])
    assert rc == 0
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("algorithm,min_cluster_size,min_samples")
    assert [tuple(l.split(",")[1:3]) for l in lines[1:]] == [("3", "2"), ("3", "4"), ("5", "2"), ("5", "4")]
    assert len([p for p in _files(tmp_path) if p.startswith("best_")]) == 1


@pytest.mark.parametrize("algorithm, extra", [
    ("kmeans", ["-n", "8"]), ("agglomerative", ["-n", "8"]), ("spectral", ["--max-clusters", "12"]),
    ("dbscan", ["--dbscan-eps", "0.6", "--dbscan-min-samples", "3"]),
    ("hdbscan", ["--outliers", "singleton"]),  # the old default stays selectable (nearest is the default now)
])
def test_every_algorithm_from_the_command_line(corpus, tmp_path, capsys, algorithm, extra):
    d, _ = corpus
    rc = _entry().main(["-i", str(d / "dev" / "feats.ark"), "-a", algorithm, *extra, "--utt2spk", str(d / "dev" / "utt2spk"),
                        "--random_seed", "3", "-q"])
    assert rc == 0
    assert float(capsys.readouterr().out.split("ARI: ")[1].split()[0]) >= 0.9


def test_plot_membership_and_datadir(corpus, tmp_path):
    d, ids = corpus
    src = tmp_path / "src"
    src.mkdir()
    datadir.write_utt2spk(src / "utt2spk", {u: "unknown" for u in ids})
    datadir.write_text(src / "text", {u: "some words" for u in ids})
    rc = _entry().main(["-i", str(d / "dev" / "feats.ark"), "--utt2spk", str(d / "dev" / "utt2spk"),
                        "--plot", str(tmp_path / "map.png"), "--plot-method", "pca", "--membership", str(tmp_path / "soft.npz"),
                        "--output-datadir", str(tmp_path / "clustered"), "--source-datadir", str(src), "-q"])
    assert rc == 0
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(tmp_path / "soft.npz") as z:
        assert z["membership"].shape[0] == len(ids)
    datadir.validate_datadir(tmp_path / "clustered")
    assert len(datadir.read_text(tmp_path / "clustered" / "text")) == len(ids)


def test_samedifferent_eer_and_det_plot(corpus, tmp_path, capsys):
    d, _ = corpus
    rc = _entry().main(["-i", str(d / "dev" / "feats.ark"), "--mode", "samedifferent", "--utt2spk", str(d / "dev" / "utt2spk"),
                        "--metric", "cosine", "--plot", str(tmp_path / "det.pdf"), "--results-csv", str(tmp_path / "sd.csv"), "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert float(out.split("EER = ")[1].split("%")[0]) < 5.0
    assert (tmp_path / "det.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "sd.csv").read_text().startswith("input,metric,n_utts")


def _fails(args, capsys, match):
    rc = _entry().main([*args, "-q"])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("cluster.py: error: ") and match in err, err
    return err


def test_failure_exits_leave_nothing_behind(corpus, tmp_path, capsys):
    d, ids = corpus
    ark = str(d / "dev" / "feats.ark")
    out = tmp_path / "out"
    out.mkdir()
    target = ["--output_utt2spk", str(out / "utt2spk"), "--plot", str(out / "p.png"), "--results-csv", str(out / "r.csv")]
    # unreadable gold file (a binary file)
    (tmp_path / "gold.bin").write_bytes(b"\xff\xfe\x00\x81 garbage")
    _fails(["-i", ark, "--utt2spk", str(tmp_path / "gold.bin"), *target], capsys, "cannot read gold speakers")
    _fails(["-i", ark, "--utt2spk", str(tmp_path / "missing"), *target], capsys, "cannot read gold speakers")
    # unknown algorithm, bad grid, too few utterances
    _fails(["-i", ark, "-a", "birch", *target], capsys, "unknown clustering algorithm 'birch'")
    _fails(["-i", ark, "--hdbscan_min_cluster_sizes", "3,5", *target], capsys, "has no best setting")
    _fails(["-i", ark, "--hdbscan_min_cluster_sizes", "500", *target], capsys, "fewer utterances (96) than min_cluster_size=500")
    # NaN vectors are named
    write_vectors_npz(tmp_path / "nan.npz", ["fine", "broken-utt"], np.array([[1.0, 0.0], [np.nan, 1.0]]))
    _fails(["-i", str(tmp_path / "nan.npz"), *target], capsys, "NaN or Inf values in utterance 'broken-utt'")
    # dimension mismatch
    kaldi_io.write_mats(tmp_path / "mixed.ark", [("a", np.ones((3, 4))), ("b", np.ones((3, 6)))])
    _fails(["-i", str(tmp_path / "mixed.ark"), *target], capsys, "dimension mismatch")
    # a failure while writing (the source data dir knows none of the utterances) after utt2spk was staged
    src = tmp_path / "src"
    src.mkdir()
    datadir.write_utt2spk(src / "utt2spk", {"other": "x"})
    _fails(["-i", ark, *target, "--output-datadir", str(out / "dd"), "--source-datadir", str(src)], capsys,
           "none of the clustered utterances")
    assert _files(out) == []


@pytest.mark.slow
def test_no_tensorflow_on_the_clustering_path(corpus, tmp_path):
    d, _ = corpus
    code = (
        "import sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('c', {str(ROOT / 'cluster.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        f"rc = m.main(['-i', {str(d / 'dev' / 'feats.ark')!r}, '--output_utt2spk', {str(tmp_path / 'u')!r}, '-q'])\n"
        "heavy = sorted({n.split('.')[0] for n in sys.modules} & {'tensorflow', 'keras', 'torch'})\n"
        "print('HEAVY', heavy); sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert (tmp_path / "u").is_file()


@pytest.mark.slow
def test_uisrnn_modes_train_and_apply(tmp_path, capsys):
    """--mode uisrnn_train / uisrnn reach the UIS-RNN glue (TensorFlow loads only here)."""
    pytest.importorskip("unspeech.uisrnn.glue")
    rng = np.random.default_rng(0)
    centres = {"A": (3.0, 0.0), "B": (0.0, 3.0)}
    mats, turns = [], []
    for rec in ("r1", "r2"):
        rows = []
        for k, spk in enumerate("ABAB"):
            rows += [np.array(centres[spk]) + 0.1 * rng.standard_normal(2) for _ in range(5)]
            turns.append(datadir.Turn(rec, "1", k * 0.5, 0.5, spk))
        mats.append((rec, np.array(rows, np.float32)))
    kaldi_io.write_mats(tmp_path / "emb.ark", mats)
    datadir.write_rttm(tmp_path / "ref.rttm", turns)
    model = tmp_path / "uisrnn.npz"
    tiny = ["--observation_dim", "2", "--rnn_hidden_size", "4", "--train_iteration", "2", "--verbosity", "0",
            "--enable_cuda", "false"]
    entry = _entry()
    assert entry.main(["--mode", "uisrnn_train", "-i", str(tmp_path / "emb.ark"), "--rttm", str(tmp_path / "ref.rttm"),
                       "--model", str(model), *tiny, "-q"]) == 0
    assert model.is_file()
    assert entry.main(["--mode", "uisrnn", "-i", str(tmp_path / "emb.ark"), "--model", str(model),
                       "--output_rttm", str(tmp_path / "hyp.rttm"), "--beam_size", "2", "-q"]) == 0
    assert {t.file_id for t in datadir.read_rttm(tmp_path / "hyp.rttm")} == {"r1", "r2"}
    assert entry.main(["--mode", "uisrnn", "-i", str(tmp_path / "emb.ark"), "--model", str(model), "-q"]) == 1
    assert "give at least one" in capsys.readouterr().err


def test_bad_flag_values_fail_before_reading(tmp_path, capsys):
    missing = str(tmp_path / "does-not-exist.ark")  # never opened: the flags fail first
    _fails(["-i", missing, "--hdbscan_min_cluster_sizes", "3,five"], capsys, "'five' is not a valid int")
    _fails(["-i", missing, "--pca-dims", "many"], capsys, "--pca-dims must be auto, 0 or a number")
    _fails(["-i", missing, "-a", "agglomerative", "-n", "3", "--ahc-threshold", "0.5"], capsys, "not both")
    _fails(["-i", missing, "--plot", str(tmp_path / "x.nope")], capsys, "cannot write a 'nope' image")


def test_a_second_writer_of_the_same_outputs_is_refused(corpus, tmp_path, capsys):
    """While another run publishes utt2spk, a second run exits 1 naming it and leaves the old set."""
    from unspeech._fileutil import output_lock

    d, _ = corpus
    out = tmp_path / "exp"
    out.mkdir()
    (out / "utt2spk").write_text("old\n")
    args = ["-i", str(d / "dev" / "feats.ark"), "--output_utt2spk", str(out / "utt2spk"),
            "--output_spk2utt", str(out / "spk2utt"), "-q"]
    with output_lock(out / "utt2spk", "cluster run"):
        assert _entry().main(args) == 1
    err = capsys.readouterr().err
    assert "utt2spk is being written by another cluster run (pid" in err and len(err.strip().splitlines()) == 1
    assert _files(out) == ["utt2spk"] and (out / "utt2spk").read_text() == "old\n"
    assert _entry().main(args) == 0
    assert _files(out) == ["spk2utt", "utt2spk"]  # the set, and no lock files left behind
