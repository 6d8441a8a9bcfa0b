"""The Python peer of `bciops train --eval cv:K`: MNE `CSP` + scikit-learn `SVC` on the same
epochs and exactly the same folds (read from bciops' cv_predictions.csv).

Usage: train_peer.py DATASET_DIR CV_PREDICTIONS_CSV N_COMPONENTS
Prints one JSON line: accuracy (mean over folds), agreement with bciops' predictions, seconds.
"""
import csv
import json
import sys
import time

import mne
import numpy as np
from mne.decoding import CSP
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

mne.set_log_level("ERROR")
data, preds_csv, n_components = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.load(data + "/X.npy").astype(np.float64)
y = np.load(data + "/y.npy")
rows = list(csv.DictReader(open(preds_csv)))
fold = np.full(len(y), -1)
theirs = np.full(len(y), -1)
for r in rows:
    fold[int(r["index"])] = int(r["fold"])
    theirs[int(r["index"])] = int(r["predicted"])

ours = np.full(len(y), -1)
accs = []
start = time.perf_counter()
for f in sorted(set(fold[fold >= 0])):
    test = fold == f
    train = ~test
    model = make_pipeline(CSP(n_components=n_components, log=True), SVC())
    model.fit(X[train], y[train])
    ours[test] = model.predict(X[test])
    accs.append(float(np.mean(ours[test] == y[test])))
seconds = time.perf_counter() - start
tested = fold >= 0
print(json.dumps({
    "accuracy": float(np.mean(accs)),
    "agreement": float(np.mean(ours[tested] == theirs[tested])),
    "seconds": seconds,
    "folds": len(accs),
}))
