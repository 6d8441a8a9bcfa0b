use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

/// Files written by scipy.io.savemat (scipy 1.17) with scripts/fixtures/make_mat_fixtures.py.
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mat")
        .join(name)
}

const LABELS: [f64; 12] = [1., 2., 3., 4., 4., 3., 2., 1., 1., 3., 2., 4.];

#[test]
fn reads_scipy_classlabel_files_of_both_types_compressed_or_not() {
    for file in [
        "classlabel_uint8.mat",
        "classlabel_uint8_compressed.mat",
        "classlabel_double.mat",
        "classlabel_double_compressed.mat",
    ] {
        let (dims, values) = read_numeric(&data(file), "classlabel").unwrap();
        assert_eq!(dims, vec![12, 1], "{file}");
        assert_eq!(values, LABELS, "{file}");
        let class = read_variable(&data(file), "classlabel").unwrap();
        let expected = if file.contains("uint8") {
            NumericClass::UInt8
        } else {
            NumericClass::Double
        };
        assert_eq!(class.as_numeric().unwrap().class, expected, "{file}");
    }
}

#[test]
fn reads_every_numeric_class_char_arrays_and_shapes() {
    let file = read(&data("numeric_classes.mat")).unwrap();
    assert!(
        file.description.starts_with("MATLAB 5.0 MAT-file"),
        "{}",
        file.description
    );
    let numeric = |name: &str| file.get(name).unwrap().as_numeric().unwrap().clone();
    let cases: [(&str, NumericClass, Vec<f64>); 9] = [
        ("i8", NumericClass::Int8, vec![-128.0, 0.0, 127.0]),
        ("u8", NumericClass::UInt8, vec![0.0, 255.0]),
        ("i16", NumericClass::Int16, vec![-32768.0, 32767.0]),
        ("u16", NumericClass::UInt16, vec![65535.0]),
        (
            "i32",
            NumericClass::Int32,
            vec![-2147483648.0, 2147483647.0],
        ),
        ("u32", NumericClass::UInt32, vec![4294967295.0]),
        (
            "i64",
            NumericClass::Int64,
            vec![-(2f64.powi(53)), 2f64.powi(53)],
        ),
        ("u64", NumericClass::UInt64, vec![2f64.powi(53)]),
        ("single", NumericClass::Single, vec![0.5, -1.25]),
    ];
    for (name, class, values) in cases {
        let a = numeric(name);
        assert_eq!((a.class, a.real.clone()), (class, values), "{name}");
        assert_eq!(a.dims, vec![1, a.real.len()], "{name}");
    }
    let m = numeric("m23");
    assert_eq!(m.dims, vec![2, 3]);
    assert_eq!(m.real, vec![1., 4., 2., 5., 3., 6.]); // column-major
    let cube = numeric("cube");
    assert_eq!(cube.dims, vec![2, 3, 4]);
    // numpy arange(24).reshape(2,3,4) in column-major order: element (i,j,k) = 12i + 4j + k.
    assert_eq!(cube.real[1], 12.0);
    assert_eq!(cube.real[2], 4.0);
    assert_eq!(cube.real[6], 1.0);
    let c = numeric("cplx");
    assert_eq!(c.real, vec![1.0, -3.5]);
    assert_eq!(c.imag, Some(vec![2.0, -0.5]));
    assert_eq!(numeric("flag").real, vec![1.0, 0.0, 1.0]);
    let empty = numeric("empty");
    assert_eq!((empty.dims, empty.real.len()), (vec![0, 0], 0));
    assert_eq!(file.get("word").unwrap().as_string().unwrap(), "hello");
    match file.get("two_rows").unwrap() {
        MatValue::Char(c) => assert_eq!(c.rows(), vec!["ab", "cd"]),
        other => panic!("two_rows: {other:?}"),
    }
    let err = parse_numeric(
        &std::fs::read(data("numeric_classes.mat")).unwrap(),
        "n.mat",
        "cplx",
    );
    assert!(err.unwrap_err().to_string().contains("complex"));
    let err = read_numeric(&data("numeric_classes.mat"), "word").unwrap_err();
    assert!(err.to_string().contains("`word` is a char array"), "{err}");
    let err = read_numeric(&data("numeric_classes.mat"), "absent").unwrap_err();
    assert!(err.to_string().contains("no variable `absent`"), "{err}");
}

#[test]
fn reads_a_bnci_like_cell_of_structs() {
    let data_var = read_variable(&data("bnci_like.mat"), "data").unwrap();
    let uncompressed = read_variable(&data("bnci_like_uncompressed.mat"), "data").unwrap();
    assert_eq!(data_var, uncompressed);
    let MatValue::Cell(runs) = &data_var else {
        panic!("data is not a cell: {data_var:?}")
    };
    assert_eq!(runs.dims, vec![1, 2]);
    for (r, run) in runs.items.iter().enumerate() {
        let MatValue::Struct(s) = run else {
            panic!("run {r} is not a struct")
        };
        assert_eq!(
            s.fields,
            [
                "X",
                "trial",
                "y",
                "fs",
                "classes",
                "artifacts",
                "gender",
                "age"
            ]
        );
        let x = run.field("X", 0).unwrap().as_numeric().unwrap();
        assert_eq!(x.dims, vec![20, 3]);
        // numpy arange(60).reshape(20, 3) + 100 r, column-major: (i, j) = 3i + j + 100 r.
        assert_eq!(x.real[0], 100.0 * r as f64);
        assert_eq!(x.real[1], 3.0 + 100.0 * r as f64);
        assert_eq!(x.real[20], 1.0 + 100.0 * r as f64);
        assert_eq!(
            run.field("trial", 0).unwrap().as_numeric().unwrap().real,
            vec![1.0, 11.0]
        );
        assert_eq!(
            run.field("y", 0).unwrap().as_numeric().unwrap().real,
            vec![1.0 + r as f64, 4.0 - r as f64]
        );
        assert_eq!(run.field("fs", 0).unwrap().as_scalar(), Some(250.0));
        assert_eq!(
            run.field("age", 0).unwrap().as_scalar(),
            Some(23.0 + r as f64)
        );
        assert_eq!(run.field("gender", 0).unwrap().as_string().unwrap(), "f");
        let MatValue::Cell(classes) = run.field("classes", 0).unwrap() else {
            panic!("classes is not a cell")
        };
        let names: Vec<String> = classes
            .items
            .iter()
            .map(|c| c.as_string().unwrap())
            .collect();
        assert_eq!(names, ["left hand", "right hand", "feet", "tongue"]);
    }
}

#[test]
fn write_classlabel_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("A01E.mat");
    let labels = [1u8, 4, 2, 3, 255];
    write_classlabel(&path, &labels).unwrap();
    let value = read_variable(&path, "classlabel").unwrap();
    let a = value.as_numeric().unwrap();
    assert_eq!(a.class, NumericClass::Double);
    assert_eq!(a.dims, vec![5, 1]);
    assert_eq!(a.real, vec![1.0, 4.0, 2.0, 3.0, 255.0]);
    write_classlabel(&path, &[]).unwrap();
    assert_eq!(
        read_numeric(&path, "classlabel").unwrap(),
        (vec![0, 1], vec![])
    );
}

use crate::testutil::python_or_skip;

#[test]
fn scipy_reads_what_write_classlabel_writes() {
    let Some(python) = python_or_skip("scipy_reads_what_write_classlabel_writes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("A01E.mat");
    write_classlabel(&path, &[1, 2, 3, 4, 2]).unwrap();
    let script = r#"
import json, sys
import scipy.io
c = scipy.io.loadmat(sys.argv[1])["classlabel"]
print(json.dumps({"shape": list(c.shape), "dtype": str(c.dtype), "values": c.ravel(order="F").tolist()}))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("run BCIOPS_PYTHON");
    assert!(
        out.status.success(),
        "scipy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"shape": [5, 1], "dtype": "float64", "values": [1.0, 2.0, 3.0, 4.0, 2.0]})
    );
}

/// The `classlabel` file of `write_classlabel`, but big-endian (`MI`), as a big-endian
/// machine's MATLAB writes it.
fn big_endian_classlabel(values: &[f64]) -> Vec<u8> {
    let mut out = b"MATLAB 5.0 MAT-file, big-endian test".to_vec();
    out.resize(116, b' ');
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(b"MI");
    let mut body = Vec::new();
    let tag = |b: &mut Vec<u8>, ty: u32, len: u32| {
        b.extend_from_slice(&ty.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
    };
    tag(&mut body, MI_UINT32, 8);
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    tag(&mut body, MI_INT32, 8);
    body.extend_from_slice(&(values.len() as i32).to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    // A small element: the 1-byte name `c` in the tag itself.
    body.extend_from_slice(&((1u32 << 16) | MI_INT8).to_be_bytes());
    body.extend_from_slice(b"c\0\0\0");
    // Values narrowed to int16, as MATLAB does when they fit.
    tag(&mut body, MI_INT16, 2 * values.len() as u32);
    for v in values {
        body.extend_from_slice(&(*v as i16).to_be_bytes());
    }
    body.resize(body.len().next_multiple_of(8), 0);
    tag(&mut out, MI_MATRIX, body.len() as u32);
    out.extend_from_slice(&body);
    out
}

#[test]
fn reads_big_endian_files_and_small_elements() {
    let bytes = big_endian_classlabel(&[1.0, -2.0, 300.0]);
    let (dims, values) = parse_numeric(&bytes, "be.mat", "c").unwrap();
    assert_eq!(dims, vec![3, 1]);
    assert_eq!(values, vec![1.0, -2.0, 300.0]);
}

#[test]
fn malformed_files_are_errors_naming_the_problem() {
    let good = std::fs::read(data("classlabel_double.mat")).unwrap();
    let compressed = std::fs::read(data("classlabel_double_compressed.mat")).unwrap();
    let patched = |bytes: &[u8], at: usize, value: &[u8]| {
        let mut b = bytes.to_vec();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "short",
            good[..100].to_vec(),
            "shorter than the 128-byte MAT header",
        ),
        (
            "endian",
            patched(&good, 126, b"XX"),
            "endianness indicator `XX`",
        ),
        (
            "v73",
            patched(&good, 124, &[0, 2]),
            "unsupported MAT-file version `0x0200`",
        ),
        (
            "truncated",
            good[..good.len() - 9].to_vec(),
            "runs past the end",
        ),
        // Matrix element at 128; its flags at 136, dimensions tag at 152, values at 160.
        (
            "flags",
            patched(&good, 136, &5u32.to_le_bytes()),
            "array flags have type `5`",
        ),
        (
            "dims",
            patched(&good, 160, &u32::MAX.to_le_bytes()),
            "negative array dimension `-1`",
        ),
        (
            "count",
            patched(&good, 160, &13u32.to_le_bytes()),
            "holds `96` bytes",
        ),
        (
            "zlib",
            patched(&compressed, 140, &[0xFF; 8]),
            "does not decompress",
        ),
    ];
    for (name, bytes, expected) in cases {
        match parse_numeric(&bytes, name, "classlabel") {
            Err(Error::Malformed { path, message }) => {
                assert_eq!(path, name);
                assert!(
                    message.contains(expected),
                    "{name}: `{message}` lacks `{expected}`"
                );
            }
            other => panic!("{name}: expected a malformed-file error, got {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_is_refused() {
    // A cell holding a cell holding … MAX_DEPTH + 2 levels deep.
    let mut inner: Vec<u8> = Vec::new();
    for level in 0..MAX_DEPTH + 2 {
        let mut body = Vec::new();
        let tag = |b: &mut Vec<u8>, ty: u32, len: usize| {
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&(len as u32).to_le_bytes());
        };
        let class = if level == 0 {
            u32::from(MX_DOUBLE)
        } else {
            u32::from(MX_CELL)
        };
        tag(&mut body, MI_UINT32, 8);
        body.extend_from_slice(&class.to_le_bytes());
        body.extend_from_slice(&[0; 4]);
        tag(&mut body, MI_INT32, 8);
        let n = if level == 0 { 0i32 } else { 1 };
        body.extend_from_slice(&n.to_le_bytes());
        body.extend_from_slice(&n.to_le_bytes());
        tag(&mut body, MI_INT8, 0);
        body.extend_from_slice(&inner);
        let mut element = Vec::new();
        tag(&mut element, MI_MATRIX, body.len());
        element.extend_from_slice(&body);
        inner = element;
    }
    let mut file = std::fs::read(data("classlabel_double.mat")).unwrap()[..128].to_vec();
    file.extend_from_slice(&inner);
    let err = parse(&file, "deep.mat").unwrap_err().to_string();
    assert!(err.contains("nest deeper"), "{err}");
}

fn seeds() -> Vec<Vec<u8>> {
    [
        "classlabel_uint8.mat",
        "classlabel_double_compressed.mat",
        "numeric_classes.mat",
        "bnci_like.mat",
        "bnci_like_uncompressed.mat",
    ]
    .iter()
    .map(|f| std::fs::read(data(f)).unwrap())
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2000), big in any::<bool>()) {
        let mut bytes = vec![b' '; 124];
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(if big { b"MI" } else { b"IM" });
        if big {
            bytes[124..126].copy_from_slice(&[0, 1]);
        }
        bytes.extend_from_slice(&tail);
        let _ = parse(&bytes, "random.mat");
        let _ = parse(&tail, "random.mat");
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = seeds().swap_remove(which);
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let _ = parse(&bytes, "mutated.mat");
        let _ = parse_variable(&bytes, "mutated.mat", "data");
    }
}

// ----- hostile sizes (issue 16) ---------------------------------------------------------------

/// A `classlabel` file of `n` doubles, its matrix element compressed when `compress`.
fn classlabel_file(n: usize, compress: bool) -> Vec<u8> {
    let values: Vec<f64> = (0..n).map(|i| (i % 4 + 1) as f64).collect();
    let plain = encode_double_column("classlabel", &values).unwrap();
    if !compress {
        return plain;
    }
    compressed_file(&plain[128..])
}

/// A file whose one element is `inner` zlib-compressed.
fn compressed_file(inner: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(inner).unwrap();
    let stream = z.finish().unwrap();
    let mut out = encode_double_column("x", &[]).unwrap()[..128].to_vec();
    out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
    out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    out.extend_from_slice(&stream);
    out
}

#[test]
fn a_compressed_element_inflates_only_what_its_tag_declares() {
    // A matrix tag declaring 4 GiB in front of a few bytes: refused before inflating.
    let mut inner = MI_MATRIX.to_le_bytes().to_vec();
    inner.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    inner.extend_from_slice(&[0; 64]);
    let e = parse(&compressed_file(&inner), "claim.mat")
        .unwrap_err()
        .to_string();
    assert!(e.contains("declares `4294967280` bytes, more than"), "{e}");
    // A bomb: a real 40-byte element followed by 64 MiB of zeros in the same stream. Only
    // the element is inflated (before: all of it, up to 1 GiB).
    let mut inner = classlabel_file(2, false)[128..].to_vec();
    inner.resize(inner.len() + (64 << 20), 0);
    let bomb = compressed_file(&inner);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let (dims, values) = crate::testutil::quick("bomb", || {
        parse_numeric(&bomb, "bomb.mat", "classlabel").unwrap()
    });
    assert_eq!((dims, values), (vec![2, 1], vec![1.0, 2.0]));
    // A stream that ends before the element does is an error naming both sizes.
    let whole = classlabel_file(3, false);
    let mut short = whole[128..].to_vec();
    short.truncate(short.len() - 8);
    let e = parse(&compressed_file(&short), "short.mat")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ends after `88` of the `96` bytes"), "{e}");
}

#[test]
fn char_rows_of_an_array_without_characters_are_none() {
    let c = CharArray {
        dims: vec![i32::MAX as usize, 0],
        chars: Vec::new(),
    };
    assert!(crate::testutil::quick("rows", || c.rows()).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Element lengths, dimensions and the compressed tag set to huge, zero and overflowing
    /// values, in plain and compressed files: an error or values the file really holds.
    #[test]
    fn hostile_sizes_are_errors_not_allocations(
        fields in proptest::collection::vec(
            // Offsets in the plain file: matrix length, flags length, dimensions length,
            // rows, columns, name length, values length.
            (prop::sample::select(vec![132usize, 140, 156, 160, 164, 172, 196]), crate::testutil::hostile_size()),
            1..4,
        ),
        n in 0usize..40,
        compress in any::<bool>(),
        compressed_len in proptest::option::of(crate::testutil::hostile_size()),
    ) {
        let mut plain = classlabel_file(n, false);
        for (at, value) in fields {
            plain[at..at + 4].copy_from_slice(&value.to_le_bytes()[..4]);
        }
        let mut bytes = if compress { compressed_file(&plain[128..]) } else { plain };
        if let (true, Some(len)) = (compress, compressed_len) {
            bytes[132..136].copy_from_slice(&len.to_le_bytes()[..4]);
        }
        let got = crate::testutil::quick("parse", || parse(&bytes, "hostile.mat"));
        if let Ok(file) = got {
            for (_, v) in &file.variables {
                if let MatValue::Numeric(a) = v {
                    prop_assert!(a.real.len() <= n.max(1) * 8);
                }
            }
        }
    }
}
