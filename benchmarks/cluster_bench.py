"""Clustering benchmark: the large-input path's neighbour searches side by side, and end to end.

Measures, in one run (every measurement in a fresh child process, so that its peak RSS, summed
over the process and its worker processes, is its own):

1. **quality at 50k** (``--n-quality``; ``--skip-quality`` skips 1-2): exact HDBSCAN with the
   library defaults on the full 100 dims against the large path (target: ARI within 0.02);
2. **slow-path scaling**: the default path on a quarter of that set, to extrapolate ``t ~ n^a``;
3. **per size in ``--sizes``** (default ``1e6``; the issue-16 run is ``--sizes 1e6,1e7``):

   a. the large path's fit on in-memory vectors once per neighbour search in ``--searches``
      (``ivf``: faiss IVF-flat, the default; ``hnsw``: faiss HNSW; ``handwritten``: the
      inverted-file search the project wrote before faiss, kept in this file as the baseline):
      search time, fit time, peak RSS, ARI, recall@11 against exact faiss search on 2000 points.
      ``--search-max-n`` skips the slow searches above a size (``hnsw`` and ``handwritten``
      above 1e6 by default);
   b. ``cluster.py`` end to end on an ark of that many synthetic 100-dim vectors (read through
      the memmap feature store): wall time, clustering time, peak RSS, ARI.

The synthetic speakers follow the PLDA picture (speaker means in a rank-16 subspace, isotropic
within-speaker noise; ``unspeech.cluster.synthetic``), 20-180 utterances per speaker.

    python benchmarks/cluster_bench.py --sizes 1e6,1e7     # the issue-16 run
    python benchmarks/cluster_bench.py --quick             # a 1-minute sanity run
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ the baseline search

def _two_nearest(rows: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Indices of the two nearest centres of every row, nearest first: ``(m, 2)`` int64."""
    d2 = (centers**2).sum(axis=1)[None, :] - 2.0 * rows @ centers.T
    top = np.argpartition(d2, 1, axis=1)[:, :2]
    swap = np.take_along_axis(d2, top[:, :1], axis=1)[:, 0] > np.take_along_axis(d2, top[:, 1:], axis=1)[:, 0]
    top[swap] = top[swap][:, ::-1]
    return top.astype(np.int64)


def handwritten_ivf_search(
    Z: np.ndarray,
    k: int,
    *,
    partition_size: int = 250,
    n_probe: int = 24,
    random_state: int | None = None,
    n_jobs: int | None = 1,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The hand-written inverted-file search the large path used before faiss (kept here, and only
    here, as the benchmark's baseline): the ``k`` nearest neighbours of every row of ``Z``.

    Exact brute force (BLAS) while there are at most ``n_probe`` cells; beyond that an
    inverted-file search: k-means splits the points into cells of about ``partition_size``.
    The points of a cell are compared with every point of ``n_probe`` cells: the cell itself, the
    cells that are most often the *second*-nearest centre of its points (where the neighbours of
    its boundary points lie), then the cells with the nearest centres, until at least ``4 * k``
    candidates are found. A neighbour in a cell that was not searched is missed. Recall@11 on
    synthetic 16-dim speaker vectors: 98.8% at a million points with the defaults (97.5% with
    ``n_probe=12``, which cost 0.13 ARI there); ``benchmarks/cluster_bench.py`` reports it.

    Returns
    -------
    dist : ndarray of shape (n, k), float64, each row ascending
    ind : ndarray of shape (n, k), int64
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.neighbors import NearestNeighbors

    Z = np.asarray(Z, dtype=np.float64)
    n = len(Z)
    k = min(k, n)
    n_cells = max(1, n // partition_size)
    if n_cells <= n_probe:
        cell = np.zeros(n, dtype=np.int64)
        probes = [np.array([0])]
        n_cells = 1
    else:
        rng = np.random.default_rng(random_state)
        # cells only need to be compact, not optimal: a few passes over 20 points per cell
        sample = Z if n <= 20 * n_cells else Z[rng.choice(n, size=20 * n_cells, replace=False)]
        seed = None if random_state is None else int(random_state)
        centers = MiniBatchKMeans(
            n_clusters=n_cells, batch_size=4096, n_init=1, max_iter=3, random_state=seed
        ).fit(sample).cluster_centers_
        # every point's two nearest centres: the first is its cell, the second tells which
        # neighbouring cells its own cell must be searched with
        two = np.concatenate([_two_nearest(Z[s:s + 16384], centers) for s in range(0, n, 16384)])
        cell = two[:, 0]
        by_centre = NearestNeighbors(n_neighbors=min(n_cells, n_probe)).fit(centers).kneighbors(
            centers, return_distance=False)
        # how often each (cell, second-nearest cell) pair occurs, grouped by cell
        pair, count = np.unique(cell * n_cells + two[:, 1], return_counts=True)
        pair_cell = pair // n_cells
        starts = np.searchsorted(pair_cell, np.arange(n_cells + 1))
        probes = []
        for c in range(n_cells):
            others, counts = pair[starts[c]:starts[c + 1]] % n_cells, count[starts[c]:starts[c + 1]]
            busy = others[np.argsort(-counts, kind="stable")][: 2 * n_probe]
            probes.append(np.concatenate([[c], busy, by_centre[c]]))
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(n_cells + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(n_cells)]
    sq = np.einsum("ij,ij->i", Z, Z)
    dist = np.empty((n, k))
    ind = np.empty((n, k), dtype=np.int64)

    def search_cell(c: int) -> None:
        queries = members[c]
        if queries.size == 0:
            return
        picked, count, seen = [], 0, set()
        for other in probes[c].tolist():
            if other in seen:
                continue
            seen.add(other)
            picked.append(members[other])
            count += members[other].size
            if len(picked) >= n_probe and count >= 4 * k:
                break
        cand = np.concatenate(picked)
        kk = min(k, cand.size)
        zc, sqc = Z[cand], sq[cand]
        for s in range(0, queries.size, chunk):
            q = queries[s:s + chunk]
            d2 = sq[q][:, None] - 2.0 * (Z[q] @ zc.T) + sqc[None, :]
            # the cell's own points open the candidate list: put each query at exactly 0 from itself
            d2[np.arange(q.size), s + np.arange(q.size)] = 0.0
            if kk < cand.size:
                top = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
            else:
                top = np.broadcast_to(np.arange(cand.size), (q.size, cand.size)).copy()
            top_d = np.take_along_axis(d2, top, axis=1)
            rank = np.argsort(top_d, axis=1, kind="stable")
            dist[q, :kk] = np.sqrt(np.maximum(np.take_along_axis(top_d, rank, axis=1), 0.0))
            ind[q, :kk] = cand[np.take_along_axis(top, rank, axis=1)]
            if kk < k:  # fewer candidates than neighbours asked for: pad with "none"
                dist[q, kk:] = np.inf
                ind[q, kk:] = q[:, None]

    from unspeech.cluster.neighbors import _threads

    jobs = _threads(n_jobs)
    if jobs > 1:
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        # one BLAS thread per worker thread: the cells are the parallel work
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(jobs) as pool:
            list(pool.map(search_cell, range(n_cells)))
    else:
        for c in range(n_cells):
            search_cell(c)
    return dist, ind



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
    extra = {}
    with PeakRSS(os.getpid()) as mem:
        start, cpu_start = time.perf_counter(), time.process_time()
        if args.child == "slow":
            import hdbscan

            model = hdbscan.HDBSCAN(min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
                                    cluster_selection_method=args.selection)
            model.fit(X)
        else:
            from unspeech.cluster import LargeHDBSCANClusterer
            from unspeech.cluster.large import reduce_dimensions

            # PCA and the search run once, the search timed on its own; the fit then takes the
            # projected points (reduce="none") and the search's graph
            k = 11  # n_neighbors=10 plus the point itself
            Z, _ = reduce_dimensions(X, args.pca_dims, random_state=args.seed)
            del X
            t0 = time.perf_counter()
            graph = _search(args.search, Z, k, args)
            extra["search_seconds"] = time.perf_counter() - t0
            extra.update(_neighbour_recall(Z, graph, k, args))
            model = LargeHDBSCANClusterer(
                min_cluster_size=args.min_cluster_size, min_samples=args.min_samples, reduce="none",
                cluster_selection_method=args.selection,
                core_dist_n_jobs=args.jobs, random_state=args.seed, neighbor_search=lambda points, kk: graph,
            )
            model.fit(Z)
            extra["recall_seconds"] = extra.pop("_recall_seconds")
        seconds = time.perf_counter() - start - extra.get("recall_seconds", 0.0)
        cpu = time.process_time() - cpu_start
    labels = np.asarray(model.labels_)
    print(json.dumps({**extra,
        "path": args.child, "search": args.search if args.child == "large" else "exact", "n": len(y),
        "seconds": seconds, "cpu_seconds": cpu, "peak_rss_gb": mem.peak / 1e9,
        "ari": adjusted_rand_score(y, labels), "noise_share": float((labels < 0).mean()),
        "clusters": int(labels.max() + 1), "speakers": int(y.max() + 1),
    }))


def _search(name: str, Z, k: int, args: argparse.Namespace):
    if name == "handwritten":
        return handwritten_ivf_search(Z, k, random_state=args.seed, n_jobs=args.jobs)
    from unspeech.cluster.neighbors import knn_graph

    return knn_graph(Z, k, search=name, nprobe=8, random_state=args.seed, n_jobs=args.jobs)


def _neighbour_recall(Z, graph, k: int, args: argparse.Namespace, n_queries: int = 2000) -> dict:
    """Recall@k of a neighbour graph against exact (faiss brute-force) search on 2000 points."""
    import faiss
    import numpy as np

    t0 = time.perf_counter()
    dist, ind = graph
    rows = np.random.default_rng(0).choice(len(Z), size=min(n_queries, len(Z)), replace=False)
    exact = faiss.IndexFlatL2(Z.shape[1])
    exact.add(np.ascontiguousarray(Z, dtype=np.float32))
    exact_d2, exact_i = exact.search(np.ascontiguousarray(Z[rows], dtype=np.float32), k)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact_i, ind[rows])]))
    core = args.min_samples
    same_core = float(np.mean(np.isclose(dist[rows, core], np.sqrt(np.maximum(exact_d2[:, core], 0)), rtol=1e-4, atol=1e-5)))
    return {"knn_recall": recall, "core_distance_exact_share": same_core, "_recall_seconds": time.perf_counter() - t0}


def run_child(kind: str, n: int, args: argparse.Namespace, search: str = "ivf") -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--child-n", str(n), "--seed", str(args.seed), "--search", search,
           "--noise", str(args.noise), "--min-cluster-size", str(args.min_cluster_size),
           "--min-samples", str(args.min_samples), "--selection", args.selection, "--pca-dims", str(args.pca_dims), "--jobs", str(args.jobs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} n={n} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    label = kind if kind == "slow" else search
    print(f"  {label:11s} n={n:>10,d}: {result['seconds']:8.1f} s wall, {result['cpu_seconds']:8.1f} s CPU, "
          f"peak RSS {result['peak_rss_gb']:.2f} GB, ARI {result['ari']:.4f}, noise {100 * result['noise_share']:.1f}%, "
          f"{result['clusters']} clusters / {result['speakers']} speakers", flush=True)
    if "knn_recall" in result:
        print(f"        neighbour search {result['search_seconds']:.1f} s, recall@11 {100 * result['knn_recall']:.2f}%, "
              f"exact core distance for {100 * result['core_distance_exact_share']:.2f}% of points (2000 sampled)", flush=True)
    return result


def end_to_end(args: argparse.Namespace, workdir: Path, n: int) -> list[dict]:
    """Write an ark of ``n`` vectors + gold utt2spk, then time ``cluster.py`` on it once per seed."""
    import csv

    from unspeech import datadir, kaldi_io

    X, y = _data(n, args.seed, args.noise)
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
               "--cluster-selection-method", args.selection,
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


def _sizes(text: str) -> list[int]:
    return [int(float(v)) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=[1_000_000],
                        help="comma list of sizes for step 3 (1e6,1e7 accepted); default 1e6")
    parser.add_argument("--n", type=int, default=None, help="(old flag) one size: the same as --sizes N")
    parser.add_argument("--searches", default="ivf,hnsw,handwritten",
                        help="neighbour searches compared in step 3a (ivf, hnsw, exact, handwritten)")
    parser.add_argument("--search-max-n", default="hnsw=1e6,handwritten=1e6",
                        help="skip a search above this size (name=size comma list)")
    parser.add_argument("--n-quality", type=int, default=50_000, help="vectors in the quality comparison")
    parser.add_argument("--skip-quality", action="store_true", help="skip steps 1-2 (exact HDBSCAN at 50k)")
    parser.add_argument("--noise", type=float, default=0.6, help="within-speaker noise of the synthetic set")
    parser.add_argument("--min-cluster-size", type=int, default=5)
    parser.add_argument("--min-samples", type=int, default=3)
    parser.add_argument("--selection", choices=("eom", "leaf"), default="eom",
                        help="HDBSCAN cluster selection (cluster.py --cluster-selection-method); default eom, as cluster.py")
    parser.add_argument("--pca-dims", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic data and of the child runs")
    parser.add_argument("--e2e-seeds", type=lambda t: [int(v) for v in t.split(",")], default=[42],
                        help="--random_seed values of the end-to-end cluster.py runs (default 42, the CLI default)")
    parser.add_argument("--workdir", default=None, help="where the big ark goes (default: a temp folder)")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity check")
    parser.add_argument("--child", choices=("slow", "large"), help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--search", default="ivf", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.n is not None:
        args.sizes = [args.n]
    if args.quick:
        args.sizes, args.n_quality = [20_000], 8_000
    searches = [v.strip() for v in args.searches.split(",") if v.strip()]
    limits = {k: int(float(v)) for k, v in (item.split("=") for item in args.search_max_n.split(",") if item.strip())}

    load0 = os.getloadavg()
    print(f"cluster_bench: {os.cpu_count()} CPUs, load average {load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f}", flush=True)
    results: dict = {"args": {k: v for k, v in vars(args).items() if not k.startswith("child")}, "load_start": load0}

    if not args.skip_quality:
        print(f"1. quality at {args.n_quality:,d} vectors (default path = exact HDBSCAN on 100 dims):", flush=True)
        slow = run_child("slow", args.n_quality, args)
        fast = run_child("large", args.n_quality, args)
        results["quality"] = {"slow": slow, "large": fast, "ari_difference": fast["ari"] - slow["ari"],
                              "speedup": slow["seconds"] / fast["seconds"]}
        print(f"  ARI large - exact = {fast['ari'] - slow['ari']:+.4f}; same-size speed ratio "
              f"{slow['seconds'] / fast['seconds']:.1f}x", flush=True)
        quarter = args.n_quality // 4
        print(f"2. default-path scaling ({quarter:,d} vs {args.n_quality:,d} vectors):", flush=True)
        small = run_child("slow", quarter, args)
        exponent = math.log(slow["seconds"] / small["seconds"]) / math.log(args.n_quality / quarter)
        results["scaling"] = {"small": small, "exponent": exponent}
        for n in args.sizes:
            extrapolated = slow["seconds"] * (n / args.n_quality) ** exponent
            print(f"  t ~ n^{exponent:.2f}: default path at {n:,d} vectors ~ {extrapolated:,.0f} s "
                  f"({extrapolated / 86400:.1f} days), extrapolated", flush=True)

    results["sizes"] = {}
    for n in args.sizes:
        entry: dict = {"searches": {}}
        print(f"3. {n:,d} vectors:", flush=True)
        print(f"  a. the large path's fit per neighbour search (--jobs {args.jobs}), load average "
              f"{os.getloadavg()[0]:.1f}:", flush=True)
        for name in searches:
            if n > limits.get(name, n):
                print(f"  {name:11s} n={n:>10,d}: skipped (--search-max-n {name}={limits[name]:,d})", flush=True)
                continue
            entry["searches"][name] = run_child("large", n, args, name)
        if not args.skip_end_to_end:
            print(f"  b. end to end: cluster.py on {n:,d} x 100 vectors, --jobs {args.jobs}, load average "
                  f"{os.getloadavg()[0]:.1f}:", flush=True)
            if args.workdir:
                Path(args.workdir).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                entry["end_to_end"] = end_to_end(args, Path(tmp), n)
        entry["load_after"] = os.getloadavg()
        results["sizes"][str(n)] = entry
    load1 = os.getloadavg()
    results["load_end"] = load1
    print(f"load average at the end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}")
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
