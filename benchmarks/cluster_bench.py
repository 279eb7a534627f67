"""Clustering benchmark: the million-utterance path against hdbscan's default (slow) path.

Measures, in one run (every measurement in a fresh child process, so that its peak RSS, summed
over the process and its worker processes, is its own):

1. **quality at 50k**: exact HDBSCAN with the library defaults on the full 100 dims (hdbscan
   picks Prim's algorithm above 60 dims) against the large path on the same ``--n-quality``
   vectors: time and ARI of both (target: ARI within 0.02), and the recall of the large path's
   approximate neighbour search;
2. **slow-path scaling**: the default path once more on a quarter of that set, to fit the
   exponent ``t ~ n^a`` and extrapolate it to ``--n`` (running it on a million vectors would
   take days); the printed ratio is extrapolated slow time / measured large-path time;
3. **end to end at scale**: ``cluster.py`` on an ark of ``--n`` synthetic 100-dim utterance
   vectors (default 1,000,000; ``--pca-dims auto`` switches to the large-input path: PCA to 16
   dims, inverted-file kNN graph, mutual-reachability spanning tree, hdbscan's selection):
   wall time, clustering time, peak RSS, ARI against the synthetic speakers
   (targets: <= 600 s, <= 8 GB, on 2 cores).

The synthetic speakers follow the PLDA picture (speaker means in a rank-16 subspace, isotropic
within-speaker noise; ``unspeech.cluster.synthetic``), 20-180 utterances per speaker.

    python benchmarks/cluster_bench.py                  # the recorded run (~30 min on 2 busy cores)
    python benchmarks/cluster_bench.py --quick          # a 1-minute sanity run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ measuring


class PeakRSS:
    """Sample the summed RSS of a process and all its descendants every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.cpu = 0.0
        self.cpu_start = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        total, cpu = 0, 0.0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:  # the process has ended
            return
        for p in procs:
            try:
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)
        if self.cpu_start is None:
            self.cpu_start = cpu  # CPU already spent before the measured block
        self.cpu = max(self.cpu, cpu - self.cpu_start)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _data(n: int, seed: int, noise: float):
    from unspeech.cluster.synthetic import make_speaker_vectors

    # speakers of 20-180 utterances (mean 100); enough of them for n vectors, the last one cut short
    X, y = make_speaker_vectors(max(n // 90, 2), (20, 180), 100, noise=noise, random_state=seed)
    return X[:n], y[:n]


def child(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    X, y = _data(args.child_n, args.seed, args.noise)
    if args.child == "slow":
        import hdbscan

        model = hdbscan.HDBSCAN(min_cluster_size=args.min_cluster_size, min_samples=args.min_samples)
    else:
        from unspeech.cluster import LargeHDBSCANClusterer

        model = LargeHDBSCANClusterer(
            min_cluster_size=args.min_cluster_size, min_samples=args.min_samples, n_components=args.pca_dims,
            core_dist_n_jobs=args.jobs, random_state=args.seed,
        )
    with PeakRSS(os.getpid()) as mem:
        start, cpu_start = time.perf_counter(), time.process_time()
        model.fit(X)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    labels = np.asarray(model.labels_)
    extra = {}
    if args.child == "large":
        extra = _neighbour_recall(X, args)
    print(json.dumps({**extra,
        "path": args.child, "n": len(y), "seconds": seconds, "cpu_seconds": cpu, "peak_rss_gb": mem.peak / 1e9,
        "ari": adjusted_rand_score(y, labels), "noise_share": float((labels < 0).mean()),
        "clusters": int(labels.max() + 1), "speakers": int(y.max() + 1),
    }))


def _neighbour_recall(X, args: argparse.Namespace, n_queries: int = 2000) -> dict:
    """Recall of the inverted-file neighbour search against exact KD-tree queries on 2000 points."""
    import numpy as np
    from sklearn.neighbors import KDTree

    from unspeech.cluster.large import nearest_neighbors, reduce_dimensions

    Z, _ = reduce_dimensions(X, args.pca_dims, random_state=args.seed)
    k = 11  # the clusterer's n_neighbors=10 plus the point itself
    dist, ind = nearest_neighbors(Z, k, random_state=args.seed, n_jobs=args.jobs)
    rows = np.random.default_rng(0).choice(len(Z), size=min(n_queries, len(Z)), replace=False)
    exact_d, exact_i = KDTree(Z).query(Z[rows], k=k)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact_i, ind[rows])]))
    core = args.min_samples
    same_core = float(np.mean(np.isclose(dist[rows, core], exact_d[:, core], rtol=1e-9, atol=1e-12)))
    return {"knn_recall": recall, "core_distance_exact_share": same_core}


def run_child(kind: str, n: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--child-n", str(n), "--seed", str(args.seed),
           "--noise", str(args.noise), "--min-cluster-size", str(args.min_cluster_size),
           "--min-samples", str(args.min_samples), "--pca-dims", str(args.pca_dims), "--jobs", str(args.jobs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} n={n} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {kind:5s} n={n:>8,d}: {result['seconds']:8.1f} s wall, {result['cpu_seconds']:8.1f} s CPU, "
          f"peak RSS {result['peak_rss_gb']:.2f} GB, ARI {result['ari']:.4f}, noise {100 * result['noise_share']:.1f}%, "
          f"{result['clusters']} clusters / {result['speakers']} speakers", flush=True)
    if "knn_recall" in result:
        print(f"        neighbour search recall@11 {100 * result['knn_recall']:.2f}%, exact core distance for "
              f"{100 * result['core_distance_exact_share']:.2f}% of points (2000 sampled)", flush=True)
    return result


def end_to_end(args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Write an ark of ``--n`` vectors + gold utt2spk, then time ``cluster.py`` on it once per seed."""
    import csv

    import numpy as np

    from unspeech import datadir, kaldi_io

    X, y = _data(args.n, args.seed, args.noise)
    ids = [f"spk{lab:05d}-utt{i:07d}" for i, lab in enumerate(y)]
    ark, gold = workdir / "vectors.ark", workdir / "utt2spk"
    start = time.perf_counter()
    kaldi_io.write_mats(ark, zip(ids, X))
    datadir.write_utt2spk(gold, {u: u.split("-")[0] for u in ids})
    print(f"  wrote {len(ids):,d} vectors ({ark.stat().st_size / 1e9:.2f} GB ark) in {time.perf_counter() - start:.0f} s",
          flush=True)
    del X
    speakers = int(np.unique(y).size)
    results = []
    for seed in args.e2e_seeds:
        cmd = [sys.executable, str(ROOT / "cluster.py"), "-i", str(ark), "--utt2spk", str(gold),
               "--output_utt2spk", str(workdir / "clustered_utt2spk"), "--results-csv", str(workdir / "result.csv"),
               "--hdbscan_min_cluster_sizes", str(args.min_cluster_size), "--hdbscan_min_samples_str", str(args.min_samples),
               "--jobs", str(args.jobs), "--random_seed", str(seed), "-q"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        with PeakRSS(proc.pid, interval=0.5) as mem:
            out, err = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"cluster.py failed:\n{err}")
        with open(workdir / "result.csv", newline="") as fh:
            row = next(csv.DictReader(fh))
        result = {"n": len(ids), "seed": seed, "wall_seconds": wall, "cluster_seconds": float(row["seconds"]),
                  "cpu_seconds": mem.cpu, "peak_rss_gb": mem.peak / 1e9, "ari": float(row["ari"]),
                  "clusters": int(row["n_clusters"]), "noise": int(row["n_noise"]), "speakers": speakers,
                  "algorithm": row["algorithm"]}
        print(f"  cluster.py n={len(ids):,d} --random_seed {seed}: {wall:.1f} s wall (clustering "
              f"{result['cluster_seconds']:.1f} s), {mem.cpu:.1f} s CPU, peak RSS {result['peak_rss_gb']:.2f} GB, "
              f"ARI {result['ari']:.4f}, {result['clusters']} clusters / {speakers} speakers ({row['algorithm']})",
              flush=True)
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="vectors in the end-to-end run")
    parser.add_argument("--n-quality", type=int, default=50_000, help="vectors in the quality comparison")
    parser.add_argument("--noise", type=float, default=0.6, help="within-speaker noise of the synthetic set")
    parser.add_argument("--min-cluster-size", type=int, default=5)
    parser.add_argument("--min-samples", type=int, default=3)
    parser.add_argument("--pca-dims", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data and of the child runs")
    parser.add_argument("--e2e-seeds", type=lambda t: [int(v) for v in t.split(",")], default=[42, 0],
                        help="--random_seed values of the end-to-end cluster.py runs (default 42,0: the CLI default and one more)")
    parser.add_argument("--workdir", default=None, help="where the big ark goes (default: a temp folder)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity check")
    parser.add_argument("--child", choices=("slow", "large"), help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.quick:
        args.n, args.n_quality = 20_000, 8_000

    load0 = os.getloadavg()
    print(f"cluster_bench: {os.cpu_count()} CPUs, load average {load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f}", flush=True)
    results: dict = {"args": {k: v for k, v in vars(args).items() if not k.startswith("child")}, "load_start": load0}

    print(f"1. quality at {args.n_quality:,d} vectors (default path = exact HDBSCAN on 100 dims):", flush=True)
    slow = run_child("slow", args.n_quality, args)
    fast = run_child("large", args.n_quality, args)
    results["quality"] = {"slow": slow, "large": fast, "ari_difference": fast["ari"] - slow["ari"],
                          "speedup": slow["seconds"] / fast["seconds"]}
    print(f"  ARI large - exact = {fast['ari'] - slow['ari']:+.4f}; same-size speed ratio {slow['seconds'] / fast['seconds']:.1f}x",
          flush=True)

    quarter = args.n_quality // 4
    print(f"2. default-path scaling ({quarter:,d} vs {args.n_quality:,d} vectors):", flush=True)
    small = run_child("slow", quarter, args)
    exponent = math.log(slow["seconds"] / small["seconds"]) / math.log(args.n_quality / quarter)
    extrapolated = slow["seconds"] * (args.n / args.n_quality) ** exponent
    results["scaling"] = {"small": small, "exponent": exponent, "extrapolated_seconds": extrapolated}
    print(f"  t ~ n^{exponent:.2f}: default path at {args.n:,d} vectors ~ {extrapolated:,.0f} s "
          f"({extrapolated / 86400:.1f} days), extrapolated", flush=True)

    if not args.skip_end_to_end:
        print(f"3. end to end: cluster.py on {args.n:,d} x 100 vectors, --jobs {args.jobs}:", flush=True)
        if args.workdir:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            e2e = end_to_end(args, Path(tmp))
        results["end_to_end"] = e2e
        slowest = max(r["cluster_seconds"] for r in e2e)
        print(f"  ratio: extrapolated default-path time / slowest measured clustering time = "
              f"{extrapolated / slowest:,.0f}x (extrapolated, see step 2)", flush=True)
        results["ratio_extrapolated"] = extrapolated / slowest
    load1 = os.getloadavg()
    results["load_end"] = load1
    print(f"load average at the end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
