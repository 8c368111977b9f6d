"""Median fit time of implicit's ALS and item-kNN on a dumped split (same settings as the baseline)."""
import os, sys, time, statistics, warnings
for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "1")
import numpy as np, scipy.sparse as sp
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

d, reps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
tr = np.loadtxt(os.path.join(d, "train.csv"), delimiter=",", skiprows=1, dtype=np.int64)
te = np.loadtxt(os.path.join(d, "test.csv"), delimiter=",", skiprows=1, dtype=np.int64)
nu = int(max(tr[:, 0].max(), te[:, 0].max())) + 1
ni = int(max(tr[:, 1].max(), te[:, 1].max())) + 1
m = sp.csr_matrix((np.ones(len(tr), np.float32), (tr[:, 0], tr[:, 1])), shape=(nu, ni))
m.sum_duplicates(); m.data[:] = 1.0
models = {
    "als": lambda: AlternatingLeastSquares(factors=64, iterations=15, regularization=0.01, alpha=10.0, random_state=42, num_threads=2),
    "itemknn_cosine K=50": lambda: CosineRecommender(K=50, num_threads=2),
    "itemknn_cosine K=200": lambda: CosineRecommender(K=200, num_threads=2),
    "itemknn_bm25 K=50": lambda: BM25Recommender(K=50, K1=1.2, B=0.75, num_threads=2),
    "itemknn_bm25 K=200": lambda: BM25Recommender(K=200, K1=1.2, B=0.75, num_threads=2),
}
for name, make in models.items():
    ts = []
    for _ in range(reps):
        model = make()
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(m, show_progress=False)
        ts.append(time.perf_counter() - t)
    print(f"{name}\t{statistics.median(ts):.3f}\t{' '.join(f'{x:.3f}' for x in ts)}", flush=True)
