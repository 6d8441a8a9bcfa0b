"""The Python peers of `bciops train --pipeline FAMILY --eval cv:K`, on the same epochs and exactly
the same folds (read from bciops' cv_predictions.csv of that family's run):

  ts+lr      pyRiemann Covariances("oas") -> TangentSpace(metric="riemann") -> LogisticRegression()
  mdm        pyRiemann Covariances("oas") -> MDM(metric="riemann")
  csp+lda    MNE CSP(4, log) -> LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
  csp+svm    MNE CSP(4, log) -> SVC()
  fbcsp+svm  per band of 4-40 Hz in 4 Hz steps: scipy butter(4, band) sosfiltfilt of every trial ->
             MNE CSP(4, log); SelectKBest(mutual_info_classif, k=10) -> SVC(kernel="linear")

Each matches bciops' defaults for the family (src/model/family/); the filtering of the bank is
inside the pipeline, as bciops filters the training trials in fit and the test trials in
predict. Only the cross-validation loop is timed (imports and loading are not), as
`evaluation_seconds` times bciops' loop.

Usage: families_peer.py DATASET_DIR CV_PREDICTIONS_CSV FAMILY
Prints one JSON line: accuracy (mean over folds), agreement with bciops' predictions, seconds.
"""
import csv
import json
import sys
import time

import mne
import numpy as np
from mne.decoding import CSP
from pyriemann.classification import MDM
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from scipy.signal import butter, sosfiltfilt
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.feature_selection import SelectKBest, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

mne.set_log_level("ERROR")

# bciops' defaults (src/model/family/fbcsp.rs): bands, Butterworth order, k best; MNE CSP's 4
# components per band.
BANK_EDGES = list(range(4, 41, 4))
BANK_ORDER = 4
K_BEST = 10
N_COMPONENTS = 4


def band(lo, hi, rate):
    sos = butter(BANK_ORDER, [lo, hi], btype="bandpass", fs=rate, output="sos")
    # Along time, so every trial (and channel) is filtered alone, zero-phase, scipy's padding.
    filt = FunctionTransformer(lambda X: sosfiltfilt(sos, X, axis=-1))
    return (f"{lo}-{hi}", make_pipeline(filt, CSP(n_components=N_COMPONENTS, log=True)))


def mi(X, y):
    # scikit-learn adds seeded noise to break ties; bciops has none (src/model/mutual_info.rs).
    return mutual_info_classif(X, y, n_neighbors=3, random_state=0)


def model(family, rate):
    if family == "ts+lr":
        return make_pipeline(Covariances("oas"), TangentSpace(metric="riemann"), LogisticRegression())
    if family == "mdm":
        return make_pipeline(Covariances("oas"), MDM(metric="riemann"))
    if family == "csp+lda":
        return make_pipeline(
            CSP(n_components=N_COMPONENTS, log=True),
            LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        )
    if family == "csp+svm":
        return make_pipeline(CSP(n_components=N_COMPONENTS, log=True), SVC())
    if family == "fbcsp+svm":
        bank = FeatureUnion([band(lo, hi, rate) for lo, hi in zip(BANK_EDGES, BANK_EDGES[1:])])
        return make_pipeline(bank, SelectKBest(mi, k=K_BEST), SVC(kernel="linear"))
    raise SystemExit(f"unknown family {family}")


data, preds_csv, family = sys.argv[1], sys.argv[2], sys.argv[3]
X = np.load(data + "/X.npy").astype(np.float64)
y = np.load(data + "/y.npy")
rate = float(json.load(open(data + "/meta.json"))["rate"])
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
    m = model(family, rate)
    m.fit(X[train], y[train])
    ours[test] = m.predict(X[test])
    accs.append(float(np.mean(ours[test] == y[test])))
seconds = time.perf_counter() - start
tested = fold >= 0
print(json.dumps({
    "accuracy": float(np.mean(accs)),
    "agreement": float(np.mean(ours[tested] == theirs[tested])),
    "seconds": seconds,
    "folds": len(accs),
}))
