"""The Python peer of `bciops tune` on the original grid: scikit-learn `GridSearchCV` over a
pipeline of MNE `CSP` + `SVC`, as the original W&B sweep trained each combination, on the same
epochs and exactly the same folds (read from bciops' cv_predictions.csv for the same seed).

Usage: tune_gridsearch.py DATASET_DIR CV_PREDICTIONS_CSV N_JOBS OUT_JSON
Writes one JSON object to OUT_JSON (stdout is left to the libraries' chatter): best mean accuracy and its parameters, the number of combinations that
failed, seconds.
"""
import csv
import os
import json
import sys
import time
import warnings

import mne
import numpy as np
from mne.decoding import CSP
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

# Worker processes import MNE afresh: the environment variable reaches them, the call does not.
os.environ["MNE_LOGGING_LEVEL"] = "ERROR"
mne.set_log_level("ERROR")
warnings.filterwarnings("ignore")
data, preds_csv, n_jobs, out_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
X = np.load(data + "/X.npy").astype(np.float64)
y = np.load(data + "/y.npy")
fold = np.full(len(y), -1)
for r in csv.DictReader(open(preds_csv)):
    fold[int(r["index"])] = int(r["fold"])

grid = {
    "csp__n_components": [5, 10, 20, 40, 60],
    "csp__log": [True, False],
    "csp__norm_trace": [True, False],
    "svc__C": [0.8, 1.0, 1.2, 1.5],
    "svc__kernel": ["linear", "poly", "rbf", "sigmoid"],
    "svc__gamma": ["scale", "auto"],
}
pipe = Pipeline([("csp", CSP()), ("svc", SVC())])
search = GridSearchCV(
    pipe, grid, cv=PredefinedSplit(fold), scoring="accuracy", n_jobs=n_jobs, error_score=np.nan
)
start = time.perf_counter()
search.fit(X, y)
seconds = time.perf_counter() - start
scores = search.cv_results_["mean_test_score"]
open(out_json, "w").write(json.dumps({
    "best_accuracy": float(search.best_score_),
    "best_params": {k.split("__")[1]: v for k, v in search.best_params_.items()},
    "failed": int(np.isnan(scores).sum()),
    "combinations": int(len(scores)),
    "seconds": seconds,
}, default=str))

