//! `bciops synth` and `bciops preprocess` driven through the real binary.

mod common;

use std::path::Path;

use common::{bciops, fixtures, python, run_python};
use ndarray::{Array1, Array3};

fn synth_small(dir: &Path, subjects: &str) {
    bciops([
        "synth",
        "--out",
        dir.to_str().unwrap(),
        "--subjects",
        subjects,
        "--trials-per-class",
        "12",
        "--runs",
        "2",
        "--seed",
        "7",
    ])
    .success();
}

#[test]
fn synth_writes_the_2a_layout_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    synth_small(&a, "1,2");
    synth_small(&b, "2");
    let mut names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["A01E.gdf", "A01E.mat", "A01T.gdf", "A02E.gdf", "A02E.mat", "A02T.gdf"]
    );
    // A subject's data depends only on the seed and the subject, not on who else was asked for.
    for name in ["A02T.gdf", "A02E.gdf", "A02E.mat"] {
        assert_eq!(
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
            "{name}"
        );
    }
    assert_ne!(
        std::fs::read(a.join("A01T.gdf")).unwrap(),
        std::fs::read(a.join("A02T.gdf")).unwrap()
    );
}

#[test]
fn preprocess_synth_end_to_end_and_numpy_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    let out = tmp.path().join("epochs");
    synth_small(&raw, "1");
    let done = bciops([
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ])
    .success();
    let summary: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert!(
        done.stderr.contains("subject"),
        "summary table on stderr:\n{}",
        done.stderr
    );

    let x: Array3<f32> = ndarray_npy::read_npy(out.join("X.npy")).unwrap();
    let y: Array1<i64> = ndarray_npy::read_npy(out.join("y.npy")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(x.dim().1, 22, "the 22 EEG channels, EOG dropped");
    assert_eq!(x.dim().2, 750, "0-3 s at 250 Hz");
    assert_eq!(meta["channels"].as_array().unwrap().len(), 22);
    assert_eq!(meta["rate"], 250.0);
    assert_eq!(meta["classes"], serde_json::json!(["left", "right"]));
    assert_eq!(meta["sources"].as_array().unwrap().len(), 2);
    assert_eq!(summary["trials"].as_u64().unwrap() as usize, x.dim().0);
    // 12 trials per class per session, two sessions, minus the rejected ones.
    let dropped = summary["dropped"]["rejected"].as_u64().unwrap() as usize
        + summary["dropped"]["gaps"].as_u64().unwrap() as usize;
    assert!(dropped <= 4);
    let left = y.iter().filter(|&&c| c == 0).count();
    let right = y.iter().filter(|&&c| c == 1).count();
    assert_eq!(left + right, x.dim().0);
    assert_eq!(left + right + dropped_in_classes(&summary), 48);
    assert!(x.iter().all(|v| v.is_finite()));
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), x.dim().0 + 1);
    assert!(csv.lines().nth(1).unwrap().starts_with("0,1,"));

    if let Some(py) = python() {
        let printed = run_python(
            &py,
            "import numpy as np, sys, json, csv\n\
             d = sys.argv[1]\n\
             X = np.load(d + '/X.npy'); y = np.load(d + '/y.npy')\n\
             rows = list(csv.DictReader(open(d + '/trials.csv')))\n\
             print(X.dtype, X.shape, y.dtype, len(rows), float(np.abs(X).max()) > 0)",
            &[&out],
        );
        assert_eq!(
            printed.trim(),
            format!("float32 ({}, 22, 750) int64 {} True", x.dim().0, x.dim().0)
        );
    }
}

/// Trials of kept classes that were dropped (rejected or with gaps) are the difference.
fn dropped_in_classes(summary: &serde_json::Value) -> usize {
    summary["dropped"]["rejected"].as_u64().unwrap() as usize
        + summary["dropped"]["gaps"].as_u64().unwrap() as usize
}

#[test]
fn preprocess_matches_scipy_on_the_libgdf_fixture() {
    // The fixture session: 10 trials, 769/770 cues, trial 4 rejected (README of the fixtures).
    let gdf = fixtures().join("gdf/session_gdf210_libgdf.gdf");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("epochs");
    bciops([
        "preprocess",
        "--input",
        gdf.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--window",
        "0,1",
    ])
    .success();
    let x: Array3<f32> = ndarray_npy::read_npy(out.join("X.npy")).unwrap();
    let y: Array1<i64> = ndarray_npy::read_npy(out.join("y.npy")).unwrap();
    assert_eq!(x.dim(), (9, 22, 250));
    // Labels from the ground truth (1 = left, 2 = right), trial 4 (index 3) rejected.
    let labels: Array1<i64> =
        ndarray_npy::read_npy(fixtures().join("gdf/session_labels.npy")).unwrap();
    let expected: Vec<i64> = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| l - 1)
        .collect();
    assert_eq!(y.to_vec(), expected);

    // Trials cut from scipy's sosfiltfilt of the ground-truth signal at the ground-truth cue
    // positions. The file holds int16, so the data differ by up to half a digital step
    // (200 µV / 65535 ≈ 0.003 µV) before filtering; the filter's gain is at most 1, so 0.01 µV
    // bounds the difference after it (plus float32 rounding of ~1e-5 relative).
    if let Some(py) = python() {
        let dump = tmp.path().join("expected.npy");
        run_python(
            &py,
            "import numpy as np, sys\n\
             from scipy.signal import butter, sosfiltfilt\n\
             f = sys.argv[1]\n\
             data = np.load(f + '/gdf/session_data_uV.npy')[:22]\n\
             ev = np.loadtxt(f + '/gdf/session_events.txt', dtype=np.int64)\n\
             cues = [int(p) for p, t, c, d in ev if t in (769, 770)]\n\
             rej = {int(p) for p, t, c, d in ev if t == 1023}\n\
             starts = [int(p) for p, t, c, d in ev if t == 768]\n\
             keep = [c for c in cues if max(s for s in starts if s <= c) not in rej]\n\
             filt = sosfiltfilt(butter(4, [8, 30], btype='bandpass', fs=250, output='sos'), data, axis=-1)\n\
             np.save(sys.argv[2], np.stack([filt[:, c:c + 250] for c in keep]))",
            &[&fixtures(), &dump],
        );
        let want: Array3<f64> = ndarray_npy::read_npy(&dump).unwrap();
        assert_eq!(want.dim(), x.dim());
        let worst = x
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.01, "max |bciops - scipy| = {worst} µV");
    }
}

#[test]
fn filtering_only_around_kept_trials_equals_scipy_on_the_whole_recording() {
    // Four classes, left/right kept, 20 s eye-movement runs first: the spans `preprocess`
    // filters start and end inside the recording, which is what this test is about.
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    synth_small(&raw, "1");
    let out = tmp.path().join("epochs");
    let gdf = raw.join("A01T.gdf");
    let summary = bciops([
        "preprocess",
        "--input",
        gdf.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ])
    .success();
    let summary: serde_json::Value = serde_json::from_str(&summary.stdout).unwrap();
    // The Python side below does not bridge gaps, so the recording must have none.
    assert_eq!(summary["gap_samples"], 0, "{summary}");
    let x: Array3<f32> = ndarray_npy::read_npy(out.join("X.npy")).unwrap();
    let Some(py) = python() else { return };
    // MNE reads the same int16 samples; scipy filters each whole channel forward-backward;
    // trials are cut at the left/right cues whose trial was not rejected (1023).
    let dump = tmp.path().join("scipy.npy");
    run_python(
        &py,
        "import sys, numpy as np, mne\n\
         from scipy.signal import butter, sosfiltfilt\n\
         raw = mne.io.read_raw_gdf(sys.argv[1], preload=True, verbose='error')\n\
         eeg = [c for c in raw.ch_names if not c.startswith('EOG')]\n\
         data = raw.get_data(picks=eeg) * 1e6\n\
         filt = sosfiltfilt(butter(4, [8, 30], btype='bandpass', fs=250, output='sos'), data, axis=-1)\n\
         ev = [(int(round(o * 250)), d) for o, d in zip(raw.annotations.onset, raw.annotations.description)]\n\
         rejected = {p for p, d in ev if d == '1023'}\n\
         starts = sorted(p for p, d in ev if d == '768')\n\
         cues = [p for p, d in sorted(ev) if d in ('769', '770')\n\
                 and max(s for s in starts if s <= p) not in rejected]\n\
         np.save(sys.argv[2], np.stack([filt[:, c:c + 750] for c in cues]))",
        &[&gdf, &dump],
    );
    let want: Array3<f64> = ndarray_npy::read_npy(&dump).unwrap();
    assert_eq!(want.dim(), x.dim());
    for (t, (got, want)) in x.outer_iter().zip(want.outer_iter()).enumerate() {
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(want.iter())
            .fold(0.0_f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()));
        // float32 output: 6e-8 relative; the spans' own error is ~1e-15 (unit tests).
        assert!(worst <= 1e-6 * scale, "trial {t}: {worst} µV of {scale}");
    }
}

#[test]
fn both_gdf_writers_give_the_same_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for name in ["session_gdf210_libgdf.gdf", "session_gdf251_biosig.gdf"] {
        let out = tmp.path().join(name);
        let input = fixtures().join("gdf").join(name);
        bciops([
            "preprocess",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .success();
        outputs.push(ndarray_npy::read_npy::<_, Array3<f32>>(out.join("X.npy")).unwrap());
    }
    assert_eq!(outputs[0].dim(), outputs[1].dim());
    let worst = outputs[0]
        .iter()
        .zip(outputs[1].iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    // biosig re-quantised libGDF's samples (they differ by up to one int16 count, 0.003 µV, as
    // measured with NumPy on the raw values), and the filter's gain is at most 1.
    assert!(worst < 0.01, "{worst}");
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    let o = out.to_str().unwrap();
    bciops(["preprocess", "--input", "/nonexistent/x.gdf", "--out", o])
        .fails(2, "/nonexistent/x.gdf");

    let junk = tmp.path().join("junk.gdf");
    std::fs::write(&junk, b"not a gdf file at all").unwrap();
    let done =
        bciops(["preprocess", "--input", junk.to_str().unwrap(), "--out", o]).fails(2, "junk.gdf");
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(!out.exists(), "no partial dataset is left behind");

    let gdf = fixtures().join("gdf/session_gdf210_libgdf.gdf");
    let g = gdf.to_str().unwrap();
    bciops(["preprocess", "--input", g, "--out", o, "--band", "30,8"]).fails(2, "30");
    bciops(["preprocess", "--input", g, "--out", o, "--band", "8,200"]).fails(2, "200");
    bciops([
        "preprocess",
        "--input",
        g,
        "--out",
        o,
        "--classes",
        "left,elbow",
    ])
    .fails(2, "`elbow`");
    bciops([
        "preprocess",
        "--input",
        g,
        "--out",
        o,
        "--channels",
        "EEG-C3,EEG-X",
    ])
    .fails(2, "`EEG-X`");
    bciops(["preprocess", "--input", g, "--out", o, "--window", "3,0"]).fails(2, "window");
    bciops(["preprocess", "--input", g, "--out", o, "--event", "769"]).fails(2, "CODE=NAME");
    bciops(["synth", "--out", o, "--subjects", "0"]).fails(2, "`0`");
    bciops(["synth", "--out", o, "--trials-per-class", "0"]).fails(2, "0");
    assert!(!out.exists());
}

#[test]
fn evaluation_session_without_labels_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    synth_small(&raw, "1");
    std::fs::remove_file(raw.join("A01E.mat")).unwrap();
    let out = tmp.path().join("o");
    bciops([
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .fails(2, "no true labels");
    // A broken recording among good ones (read by the parallel workers) fails the whole run.
    std::fs::write(raw.join("A07T.gdf"), b"GDF 2.10 but nothing else").unwrap();
    bciops([
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sessions",
        "T",
    ])
    .fails(2, "A07T.gdf");
    assert!(!out.exists(), "no partial dataset is left behind");
    std::fs::remove_file(raw.join("A07T.gdf")).unwrap();
    // Taking the training session only works.
    bciops([
        "preprocess",
        "--input",
        raw.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sessions",
        "T",
    ])
    .success();
}

#[test]
fn help_documents_exit_codes() {
    let done = bciops(["--help"]).success();
    assert!(done.stdout.contains("Exit codes"));
    assert!(done.stdout.contains("2  bad input"));
    let done = bciops(["preprocess", "--help"]).success();
    assert!(done.stdout.contains("--band"));
    bciops(["preprocess", "--bogus"]).fails(2, "--bogus");
}
