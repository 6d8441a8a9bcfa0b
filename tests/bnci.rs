//! `preprocess` reads the BNCI Horizon `.mat` files and cuts the same epochs as from the GDF
//! recording they hold. Fixtures: tests/data/bnci/gdf (bciops synth, 100 Hz, small) and
//! tests/data/bnci/mat (converted by scripts/fixtures/make_bnci_fixtures.py with MNE and
//! scipy.io.savemat).

mod common;

use std::path::Path;

use common::bciops;
use ndarray::{Array1, Array3};

fn data(name: &str) -> String {
    format!("{}/tests/data/bnci/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn mat_and_gdf_give_the_same_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    for keep in [false, true] {
        let (g, m) = (
            tmp.path().join(format!("g{keep}")),
            tmp.path().join(format!("m{keep}")),
        );
        let gdf_dir = data("gdf");
        let mut args = vec!["preprocess", "-q", "-i", &gdf_dir];
        let out = g.to_str().unwrap().to_owned();
        args.extend(["-o", &out]);
        if keep {
            args.push("--keep-rejected");
        }
        bciops(&args).success();
        let mat_dir = data("mat");
        let out_m = m.to_str().unwrap().to_owned();
        let mut args = vec!["preprocess", "-q", "-i", &mat_dir, "-o", &out_m];
        if keep {
            args.push("--keep-rejected");
        }
        bciops(&args).success();

        let xg: Array3<f32> = ndarray_npy::read_npy(g.join("X.npy")).unwrap();
        let xm: Array3<f32> = ndarray_npy::read_npy(m.join("X.npy")).unwrap();
        assert_eq!(xg.dim(), xm.dim());
        assert_eq!(xg.dim().0, if keep { 3 } else { 1 });
        // Same samples in µV (MNE's scaling of the int16 GDF values, written as doubles), the
        // same filter: equal to float32 rounding; measured 0.
        let diff = (&xg - &xm).iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(diff <= 1e-4, "X differs by {diff} µV");
        let yg: Array1<i64> = ndarray_npy::read_npy(g.join("y.npy")).unwrap();
        let ym: Array1<i64> = ndarray_npy::read_npy(m.join("y.npy")).unwrap();
        assert_eq!(yg, ym);
        // Same provenance: subject, session, run, trial index, cue code (783 in session E).
        assert_eq!(
            std::fs::read_to_string(g.join("trials.csv")).unwrap(),
            std::fs::read_to_string(m.join("trials.csv")).unwrap()
        );
        let (mg, mm) = (json(&g.join("meta.json")), json(&m.join("meta.json")));
        // The same trials were dropped for the same reasons (the 1023 artifact, the gap).
        assert_eq!(mg["dropped"], mm["dropped"]);
        assert_eq!(mg["filter"], mm["filter"]);
        assert!(mm["sources"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("A01E.mat"));
    }
}

#[test]
fn a_label_file_is_not_taken_for_a_bnci_recording() {
    // In the GDF folder, A01E.mat is the true-label file of A01E.gdf: two recordings are read.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("e");
    let done = bciops([
        "preprocess",
        "-i",
        &data("gdf"),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ])
    .success();
    let summary: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(
        json(&out.join("meta.json"))["sources"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(summary["trials"].as_u64().unwrap() >= 1);
    // Given alone, it is refused with a hint.
    bciops([
        "preprocess",
        "-i",
        &data("gdf/A01E.mat"),
        "-o",
        out.to_str().unwrap(),
    ])
    .fails(2, "holds only true labels (`classlabel`)");
    bciops([
        "preprocess",
        "-i",
        &data("malformed/trial_beyond_run.mat"),
        "-o",
        out.to_str().unwrap(),
    ])
    .fails(2, "run 1 `trial` 1 is `11`");
}
