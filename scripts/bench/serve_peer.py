"""The BentoML peer of `bciops serve`, as the original served it: a `/classify` endpoint taking
a JSON array of raw trials (N x 22 x 750) and answering the labels.

Two roles:
  serve_peer.py fit EPOCHS_DIR OUT.pkl   fit band-pass + MNE CSP + scikit-learn SVC (the same
                                         defaults bciops uses: 4 log-variance components, RBF
                                         SVC) on the epochs and pickle it
  bentoml serve serve_peer:svc           serve it (BCI_PIPELINE names the pickle)
"""
import os
import pickle
import sys

import numpy as np
from scipy.signal import butter, sosfiltfilt

RATE, BAND, ORDER = 250.0, (8.0, 30.0), 4


class BandPass:
    """Zero-phase Butterworth band-pass of each raw trial, as bciops applies at serving time."""

    def __init__(self):
        self.sos = butter(ORDER, BAND, btype="bandpass", fs=RATE, output="sos")

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return sosfiltfilt(self.sos, np.asarray(X, dtype=np.float64), axis=-1)


def fit(epochs, out):
    import mne
    from mne.decoding import CSP
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    mne.set_log_level("ERROR")
    X = np.load(os.path.join(epochs, "X.npy")).astype(np.float64)
    y = np.load(os.path.join(epochs, "y.npy"))
    # The epochs are already filtered: fit CSP + SVC on them, serve with the band-pass in front.
    head = make_pipeline(CSP(n_components=4, log=True), SVC())
    head.fit(X, y)
    import json

    classes = json.load(open(os.path.join(epochs, "meta.json")))["classes"]
    with open(out, "wb") as f:
        pickle.dump({"head": head, "classes": classes}, f)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "fit":
    fit(sys.argv[2], sys.argv[3])
else:
    import bentoml
    from bentoml.io import JSON, NumpyNdarray

    with open(os.environ["BCI_PIPELINE"], "rb") as f:
        _model = pickle.load(f)
    _bandpass = BandPass()

    svc = bentoml.legacy.Service("bci_classifier") if hasattr(bentoml, "legacy") else bentoml.Service("bci_classifier")

    @svc.api(input=NumpyNdarray(), output=JSON(), route="/classify")
    def classify(trials: np.ndarray) -> list:
        x = _bandpass.transform(trials)
        return [_model["classes"][int(i)] for i in _model["head"].predict(x)]
