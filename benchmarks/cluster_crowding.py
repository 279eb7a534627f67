"""Cluster selection when speakers crowd: the large path at a million vectors with the speaker density of ten million.

The synthetic speakers of ``cluster_bench.py`` have unit-norm means on a 15-sphere of a 16-dim subspace;
ten times the speakers bring neighbouring means 10**(1/15) = 1.17 times closer. Multiplying the
within-speaker noise by the same factor (0.6 -> 0.70) crowds a million vectors of ~10k speakers as
ten million of ~100k are crowded, at a tenth of the cost. One in-memory fit of the large path
(PCA 16, faiss IVF), noise sent to the nearest centroid as ``cluster.py`` does, then ARI.

    python benchmarks/cluster_crowding.py --noise 0.70 --min-cluster-size 10 --selection leaf

Prints one line: time, clusters, noise fraction, ARI with noise as a label and after the outlier step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="vectors (default 1e6)")
    parser.add_argument("--noise", type=float, default=0.6 * 10 ** (1 / 15),
                        help="within-speaker noise (default 0.6 x 10^(1/15) = 0.70: the density of 1e7)")
    parser.add_argument("--min-cluster-size", type=int, default=5)
    parser.add_argument("--min-samples", type=int, default=3)
    parser.add_argument("--selection", choices=("eom", "leaf"), default="eom")
    parser.add_argument("--seed", type=int, default=1, help="seed of the data (the fit uses 42, cluster.py's default)")
    args = parser.parse_args()

    import numpy as np
    from cluster_bench import _data
    from sklearn.metrics import adjusted_rand_score

    from unspeech.cluster import LargeHDBSCANClusterer
    from unspeech.cluster.outliers import resolve_outliers

    X, y = _data(int(args.n), args.seed, args.noise)
    start = time.perf_counter()
    model = LargeHDBSCANClusterer(min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
                                  cluster_selection_method=args.selection, n_components=16, core_dist_n_jobs=2,
                                  random_state=42).fit(X)
    labels = resolve_outliers(model.labels_, "nearest", X)
    print(f"n {len(X):,d} noise {args.noise:.4f} {args.selection} min cluster size {args.min_cluster_size} "
          f"min samples {args.min_samples}: {time.perf_counter() - start:.0f} s, {model.n_clusters_} clusters / "
          f"{int(y.max()) + 1} speakers, {np.mean(model.labels_ < 0):.3f} noise, ARI {adjusted_rand_score(y, model.labels_):.4f} "
          f"(noise as a label), {adjusted_rand_score(y, labels):.4f} (noise to the nearest centroid)", flush=True)


if __name__ == "__main__":
    main()
