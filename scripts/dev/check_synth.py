"""Check that synthetic 2a sessions behave like the real data under CSP + SVM.

Reads the .npy files written by the ignored Rust test `write_npy_for_python_check`
(`BCIOPS_SYNTH_NPY_DIR=DIR cargo test --release --lib signal::synth -- --ignored`):
`A0sX_data.npy` (25 x samples, float32 uV), `A0sX_events.npy` (events x [position, code,
channel, duration]) and `A0sX_labels.npy` (class 1..4 per trial, time order), then, per subject:

- band-pass 8-30 Hz (scipy butter 4, sosfiltfilt) on the continuous recording; NaN gaps are
  linearly interpolated first, as sosfiltfilt would spread them over the whole channel;
- epochs of the 22 EEG channels, 750 samples (0-3 s) from the cue; trials marked 1023 dropped;
- mne.decoding.CSP(n_components=4, log=True) + SVC(kernel='linear'):
  5-fold stratified CV on T and train-on-T/test-on-E, left vs right; the same for all four
  classes with CSP(n_components=8).

Prints a table of accuracies (about 2.5 min for 9 subjects on 2 cores).
Usage: python scripts/dev/check_synth.py DIR [SUBJECTS...]

Measured with seed 0 (scipy 1.17, MNE 1.13, scikit-learn; CV folds shuffled, random_state 0):

    subject  LR-cv(T)  LR-T->E  4c-cv(T)  4c-T->E
    A01         86.6     82.3     72.0     67.3
    A02         68.8     53.5     39.2     34.4
    A03         93.6     91.5     79.3     72.0
    A04         68.3     66.9     47.7     39.3
    A05         60.2     52.5     38.1     30.0
    A06         56.2     51.8     42.0     30.1
    A07         85.3     78.2     71.6     62.0
    A08         85.8     81.7     78.4     61.7
    A09         91.6     77.1     79.3     65.2
    mean        77.4     70.6     60.8     51.3
"""

import sys

import mne
import numpy as np
from mne.decoding import CSP
from scipy.signal import butter, sosfiltfilt
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

RATE = 250
CUE_CODES = {769, 770, 771, 772, 783}
SOS = butter(4, [8, 30], btype="bandpass", fs=RATE, output="sos")


def load(directory, subject, session):
    name = f"{directory}/A{subject:02d}{session}"
    data = np.load(f"{name}_data.npy").astype(np.float64)[:22]
    events = np.load(f"{name}_events.npy")
    labels = np.load(f"{name}_labels.npy")
    for row in data:
        bad = np.isnan(row)
        if bad.any():
            row[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), row[~bad])
    filtered = sosfiltfilt(SOS, data, axis=1)
    starts = events[events[:, 1] == 768, 0]
    rejected = set(events[events[:, 1] == 1023, 0])
    cues = events[np.isin(events[:, 1], list(CUE_CODES)), 0]
    assert len(cues) == len(starts) == len(labels)
    keep = np.array([s not in rejected for s in starts])
    x = np.stack([filtered[:, c : c + 3 * RATE] for c in cues])
    return x[keep], labels[keep]


def pipeline(n_components):
    return make_pipeline(CSP(n_components=n_components, log=True), SVC(kernel="linear"))


def scores(xt, yt, xe, ye, classes, n_components):
    t = np.isin(yt, classes)
    e = np.isin(ye, classes)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    within = cross_val_score(pipeline(n_components), xt[t], yt[t], cv=cv).mean()
    across = pipeline(n_components).fit(xt[t], yt[t]).score(xe[e], ye[e])
    return within, across


def main():
    mne.set_log_level("WARNING")
    directory = sys.argv[1]
    subjects = [int(s) for s in sys.argv[2:]] or list(range(1, 10))
    print("subject  LR-cv(T)  LR-T->E  4c-cv(T)  4c-T->E")
    rows = []
    for subject in subjects:
        xt, yt = load(directory, subject, "T")
        xe, ye = load(directory, subject, "E")
        lr = scores(xt, yt, xe, ye, [1, 2], 4)
        four = scores(xt, yt, xe, ye, [1, 2, 3, 4], 8)
        rows.append(lr + four)
        print(f"A{subject:02d}      " + "  ".join(f"{100 * v:7.1f}" for v in lr + four))
    print("mean     " + "  ".join(f"{100 * v:7.1f}" for v in np.mean(rows, axis=0)))


if __name__ == "__main__":
    main()
