"""Fit-time benchmark of scikit-learn SVC on CSP-sized feature matrices.

    /work/venv-dev/bin/python scripts/bench/svm_fit_sklearn.py OUT_DIR [EPOCHS_DIR]

Writes OUT_DIR/{x,y}_{4,40}.npy (230 trials, 4 classes, 4 or 40 features: the sizes CSP
gives for one BCI IV 2a subject) and prints sklearn's fit times (min and median) per
configuration. With EPOCHS_DIR (an epochs dataset, e.g. target/bench-train/epochs of
scripts/bench/train.sh) the matrices are instead MNE CSP(4) log-variance features of all its
trials (x_4) and those plus 36 noisy standardised copies (x_40, a wide case).
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
    ("sigmoid", dict(kernel="sigmoid", C=1.0, gamma="scale")),
]


def data(n_features, rng):
    # Overlapping classes (a BCI session is ~60-70 % separable), standardised features.
    n, k = 230, 4
    y = np.arange(n) % k
    centers = rng.normal(0.0, 0.6, size=(k, n_features))
    x = centers[y] + rng.normal(size=(n, n_features))
    x = (x - x.mean(0)) / x.std(0)
    return x, y.astype(np.int64)


def csp_features(epochs_dir):
    import mne
    from mne.decoding import CSP

    mne.set_log_level("ERROR")
    x = np.load(Path(epochs_dir) / "X.npy").astype(np.float64)
    y = np.load(Path(epochs_dir) / "y.npy").astype(np.int64)
    f = CSP(n_components=4, log=True).fit_transform(x, y)
    rng = np.random.default_rng(5)
    w = np.column_stack([f] + [f[:, [k % 4]] + rng.normal(size=(len(y), 1)) for k in range(36)])
    w = (w - w.mean(0)) / w.std(0)
    return {4: (f, y), 40: (w, y)}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    real = csp_features(sys.argv[2]) if len(sys.argv) > 2 else None
    print(f"scikit-learn {sklearn.__version__}")
    for n_features in (4, 40):
        x, y = real[n_features] if real else data(n_features, rng)
        np.save(out / f"x_{n_features}.npy", x)
        np.save(out / f"y_{n_features}.npy", y)
        for name, params in CONFIGS:
            times = []
            for _ in range(11 if real else 21):
                t = time.perf_counter()
                clf = SVC(**params).fit(x, y)
                times.append(time.perf_counter() - t)
            acc = (clf.predict(x) == y).mean()
            print(f"{len(y)}x{n_features} {name:9s} fit min {1e3 * min(times):7.2f} ms median "
                  f"{1e3 * np.median(times):7.2f} ms  n_support {clf.n_support_.sum():3d}  "
                  f"n_iter {clf.n_iter_.tolist()}  train acc {acc:.2f}")


if __name__ == "__main__":
    main()
