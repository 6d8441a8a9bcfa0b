//! Hostile inputs (issue 16, item 6): a header that claims more than the bytes present is
//! refused before anything is allocated from it. Through the real binary: exit 2 with one
//! line naming the file, or HTTP 400 with the server still serving. In process: the largest
//! single allocation each reader makes on such input, measured by the allocator below.
#![allow(unsafe_code)] // the allocation-measuring global allocator, and nothing else

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::bciops;
use common::serve::Server;
use serde_json::json;

/// The system allocator, noting the largest request each thread makes. No crate measures
/// per thread, and tests run on parallel threads: a global peak would mix them up.
struct Measuring;

thread_local! {
    // `const` and `Cell<usize>`: no lazy initialisation and no destructor, so using it
    // inside the allocator cannot allocate or recurse.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded unchanged to `System`; `note` only reads a size.
unsafe impl GlobalAlloc for Measuring {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Measuring = Measuring;

/// `f`'s result and the largest single allocation it made on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// No reader may allocate more than this from a few hundred bytes of hostile input (the
/// dataset reader's 1 MiB read buffer is the largest legitimate one).
const BOUND: usize = 4 << 20;

/// `.npy` bytes: a format 1.0 header holding `dict`, padded to 64 bytes as NumPy pads it,
/// then `data`.
fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
    let len = (10 + dict.len() + 1).next_multiple_of(64) - 10;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + len - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn claim(shape: &str) -> Vec<u8> {
    npy(
        &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
        &[0; 64],
    )
}

/// The probe of the issue: 192 bytes whose header claims 6.6 PB of float32.
fn probe() -> Vec<u8> {
    let bytes = claim("(100000000000, 22, 750)");
    assert_eq!(bytes.len(), 192);
    bytes
}

/// What the refusal of the probe says, after the file name or the body's description.
const PROBE_MESSAGE: &str = "shape `(100000000000, 22, 750)` of `<f4` needs \
    `6600000000000000` bytes of data but `64` follow the header";

/// A small dataset, a model trained on it, and the dataset with the probe as its `X.npy`,
/// built once for the tests of this file.
struct Fixture {
    _tmp: tempfile::TempDir,
    epochs: PathBuf,
    hostile: PathBuf,
    model: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (epochs, model) = common::small_model(tmp.path());
        let hostile = tmp.path().join("hostile");
        std::fs::create_dir(&hostile).unwrap();
        for entry in std::fs::read_dir(&epochs).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), hostile.join(entry.file_name())).unwrap();
        }
        std::fs::write(hostile.join("X.npy"), probe()).unwrap();
        Fixture {
            _tmp: tmp,
            epochs,
            hostile,
            model,
        }
    })
}

/// Asserts exit 2 and a one-line error naming `file` and the probe's claim.
fn refused(done: common::Done, file: &Path) {
    let needle = format!(
        "`{}`: not a float32 3-D array: {PROBE_MESSAGE}",
        file.display()
    );
    assert_eq!(done.code, 2, "stderr:\n{}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line:\n{}", done.stderr);
    assert!(
        lines[0].contains(&needle),
        "`{needle}` not in `{}`",
        lines[0]
    );
}

#[test]
fn train_predict_and_tune_refuse_an_x_npy_that_claims_petabytes() {
    let f = fixture();
    let x = f.hostile.join("X.npy");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let data = f.hostile.to_str().unwrap();
    refused(
        bciops(["train", "--data", data, "--out", out.to_str().unwrap()]).run(),
        &x,
    );
    refused(
        bciops([
            "predict",
            "--model",
            f.model.to_str().unwrap(),
            "--data",
            data,
        ])
        .run(),
        &x,
    );
    let sweep = dir.path().join("sweep.yaml");
    std::fs::write(
        &sweep,
        "method: grid\nmetric: {name: accuracy, goal: maximize}\nparameters:\n  C: {values: [1.0]}\n",
    )
    .unwrap();
    let tuned = dir.path().join("tuned");
    let tune = [
        "tune",
        "--data",
        data,
        "--sweep",
        sweep.to_str().unwrap(),
        "--out",
        tuned.to_str().unwrap(),
    ];
    refused(bciops(tune).run(), &x);
}

#[test]
fn serve_answers_400_to_the_192_byte_probe_and_keeps_serving() {
    let f = fixture();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bciops"));
    cmd.args([
        "serve",
        "--model",
        f.model.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    let mut server = Server::spawn(cmd);
    for _ in 0..3 {
        let (code, body) = server.post("/classify", "application/x-npy", probe());
        assert_eq!(code, 400, "{body}");
        let message = body["error"].as_str().unwrap();
        assert_eq!(
            message,
            format!("the body is not a float32 or float64 .npy array: {PROBE_MESSAGE}")
        );
        assert_eq!(server.get("/livez").0, 200);
    }
    // The same claim as a V2 tensor's shape.
    let name = server.get_json("/readyz")["model"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, body) = server.post_json(
        &format!("/v2/models/{name}/infer"),
        &json!({"inputs": [{"name": "eeg", "shape": [100_000_000_000u64, 22, 750],
                            "datatype": "FP32", "data": [1.0, 2.0]}]}),
    );
    assert_eq!(code, 400, "{body}");
    // And a real trial is still answered.
    let x: ndarray::Array3<f32> = ndarray_npy::read_npy(f.epochs.join("X.npy")).unwrap();
    let mut one = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&x.slice(ndarray::s![..1, .., ..]).to_owned(), &mut one)
        .unwrap();
    let (code, body) = server.post("/classify", "application/x-npy", one);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(1));
    assert_eq!(server.stop(), 0, "{}", server.log());
}

#[test]
fn readers_allocate_by_the_bytes_present_not_by_what_headers_claim() {
    // The measurement itself works.
    let (_, largest) = largest_allocation(|| std::hint::black_box(vec![1u8; BOUND]));
    assert!(largest >= BOUND, "{largest}");

    // Claims small enough that the old code's allocation succeeded (untouched zeroed or
    // reserved pages) and so went unnoticed, next to the probe, which aborted it.
    for shape in ["(1000, 22, 750)", "(100000000000, 22, 750)"] {
        let body = claim(shape);
        let (got, largest) = largest_allocation(|| bciops::serve::tensor::from_npy(&body));
        assert!(got.is_err(), "{shape}");
        assert!(largest < BOUND, "from_npy of {shape}: {largest} bytes");
    }

    // The dataset reader, on the fixture's files with a 66 MB claim as X.npy.
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&f.hostile).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("X.npy"), claim("(1000, 22, 750)")).unwrap();
    let (got, largest) = largest_allocation(|| bciops::dataset::Dataset::load(dir.path()));
    let e = got.unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(largest < BOUND, "Dataset::load: {largest} bytes");

    // A zip member claiming 4 GiB from 8 deflated bytes.
    let mut zip = bciops::download::write_stored_zip(&[("A01T.gdf", b"abcdefgh")]);
    let cd = zip.len() - 22 - (46 + "A01T.gdf".len());
    zip[cd + 10..cd + 12].copy_from_slice(&8u16.to_le_bytes());
    zip[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let (got, largest) =
        largest_allocation(|| bciops::download::zip_members(&zip, "bomb.zip", |_| true));
    assert!(got.is_err());
    assert!(largest < BOUND, "zip_members: {largest} bytes");

    // A MAT-file whose compressed element holds an 8-byte element and then 64 MiB of zeros
    // (a zlib bomb of 64 KiB).
    let mut inner = 14u32.to_le_bytes().to_vec(); // miMATRIX, empty
    inner.extend_from_slice(&0u32.to_le_bytes());
    inner.resize(8 + (64 << 20), 0);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &inner).unwrap();
    let stream = z.finish().unwrap();
    let mut mat = b"MATLAB 5.0 MAT-file".to_vec();
    mat.resize(124, b' ');
    mat.extend_from_slice(&[0, 1, b'I', b'M']);
    mat.extend_from_slice(&15u32.to_le_bytes()); // miCOMPRESSED
    mat.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    mat.extend_from_slice(&stream);
    let (_, largest) = largest_allocation(|| bciops::signal::mat::parse(&mat, "bomb.mat"));
    assert!(largest < BOUND, "mat::parse: {largest} bytes");

    // A GDF file whose record count and event count claim far more than it holds.
    let mut gdf = vec![0u8; 512];
    gdf[..8].copy_from_slice(b"GDF 2.10");
    gdf[184..186].copy_from_slice(&2u16.to_le_bytes());
    gdf[236..244].copy_from_slice(&i64::MAX.to_le_bytes());
    gdf[244..252].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
    gdf[252..254].copy_from_slice(&1u16.to_le_bytes());
    gdf[256 + 216..256 + 220].copy_from_slice(&u32::MAX.to_le_bytes());
    gdf[256 + 220..256 + 224].copy_from_slice(&17u32.to_le_bytes());
    let (got, largest) = largest_allocation(|| bciops::signal::gdf::parse(&gdf, "claim.gdf"));
    assert!(got.is_err());
    assert!(largest < BOUND, "gdf::parse: {largest} bytes");
}
