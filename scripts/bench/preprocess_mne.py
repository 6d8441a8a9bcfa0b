"""The Python peer of `bciops preprocess`: MNE-Python reads each GDF, scipy band-passes the
continuous EEG with sosfiltfilt, and trials are cut 0-3 s after every left/right cue, exactly
what bciops does with its defaults
(rejected trials, 1023, dropped). Usage: preprocess_mne.py RAW_DIR OUT_DIR"""
import glob
import os
import sys

import mne
import numpy as np
import scipy.io
from scipy.signal import butter, sosfiltfilt

mne.set_log_level("ERROR")
raw_dir, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
sos = butter(4, [8, 30], btype="bandpass", fs=250, output="sos")
X, y = [], []
for path in sorted(glob.glob(os.path.join(raw_dir, "*.gdf"))):
    raw = mne.io.read_raw_gdf(path, preload=True)
    eeg = [c for c in raw.ch_names if not c.startswith("EOG")]
    data = raw.get_data(picks=eeg) * 1e6  # volts -> microvolts
    data = np.nan_to_num(data)
    filt = sosfiltfilt(sos, data, axis=-1)
    events, ids = mne.events_from_annotations(raw)
    code = {v: int(k) for k, v in ids.items()}
    labels = None
    mat = path[:-4] + ".mat"
    if os.path.exists(mat):
        labels = scipy.io.loadmat(mat)["classlabel"].ravel().astype(int)
    k = 0
    start, rejected = None, set()
    for pos, _, i in events:
        c = code[i]
        if c == 768:
            start = pos
        if c == 1023:
            rejected.add(pos)
        if c == 783:
            c = 768 + labels[k]
            k += 1
        if c in (769, 770) and start not in rejected:
            X.append(filt[:, pos : pos + 750].astype(np.float32))
            y.append(c - 769)
np.save(os.path.join(out_dir, "X.npy"), np.stack(X))
np.save(os.path.join(out_dir, "y.npy"), np.array(y, dtype=np.int64))
print(f"{len(X)} trials", file=sys.stderr)
