"""Fit-time benchmark of scikit-learn SVC on CSP-sized feature matrices.

    /work/venv-dev/bin/python scripts/bench/svm_fit_sklearn.py OUT_DIR

Writes OUT_DIR/{x,y}_{4,40}.npy (230 trials, 4 classes, 4 or 40 features: the sizes CSP
gives for one BCI IV 2a subject) and prints sklearn's median fit time per configuration.
The Rust side reads the same files:
    BCIOPS_SVM_BENCH_DIR=OUT_DIR cargo test --release --lib model::svm::tests::bench -- \
        --ignored --nocapture
"""

import sys
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.svm import SVC

CONFIGS = [
    ("linear", dict(kernel="linear", C=1.0)),
    ("rbf", dict(kernel="rbf", C=1.0, gamma="scale")),
    ("rbf C=10", dict(kernel="rbf", C=10.0, gamma="scale")),
    ("poly", dict(kernel="poly", C=1.0, gamma="scale", degree=3, coef0=1.0)),
]


def data(n_features, rng):
    # Overlapping classes (a BCI session is ~60-70 % separable), standardised features.
    n, k = 230, 4
    y = np.arange(n) % k
    centers = rng.normal(0.0, 0.6, size=(k, n_features))
    x = centers[y] + rng.normal(size=(n, n_features))
    x = (x - x.mean(0)) / x.std(0)
    return x, y.astype(np.int64)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    print(f"scikit-learn {sklearn.__version__}")
    for n_features in (4, 40):
        x, y = data(n_features, rng)
        np.save(out / f"x_{n_features}.npy", x)
        np.save(out / f"y_{n_features}.npy", y)
        for name, params in CONFIGS:
            times = []
            for _ in range(21):
                t = time.perf_counter()
                clf = SVC(**params).fit(x, y)
                times.append(time.perf_counter() - t)
            acc = (clf.predict(x) == y).mean()
            print(f"230x{n_features} {name:9s} median {1e3 * np.median(times):7.2f} ms  "
                  f"n_support {clf.n_support_.sum():3d}  train acc {acc:.2f}")


if __name__ == "__main__":
    main()
