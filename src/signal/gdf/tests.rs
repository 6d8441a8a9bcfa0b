use std::path::PathBuf;
use std::sync::OnceLock;

use ndarray::{Array2, Axis};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use proptest::prelude::*;

use super::*;

// ----- fixtures ------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    crate::testutil::shared_fixtures()
}

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join("gdf").join(name)
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn truth_data() -> &'static Array2<f64> {
    static DATA: OnceLock<Array2<f64>> = OnceLock::new();
    DATA.get_or_init(|| {
        let file = std::fs::File::open(fixture("session_data_uV.npy")).unwrap();
        Array2::<f64>::read_npy(file).unwrap()
    })
}

fn truth_events() -> Vec<Event> {
    std::fs::read_to_string(fixture("session_events.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect();
            Event {
                position: f[0],
                code: f[1] as u16,
                channel: f[2] as u16,
                duration: f[3] as u32,
            }
        })
        .collect()
}

const LABELS_2A: [&str; 25] = crate::signal::montage::BCI_IV_2A_LABELS;

fn ranges_2a() -> Vec<(f64, f64)> {
    (0..25)
        .map(|c| {
            if c < 22 {
                (-100.0, 100.0)
            } else {
                (-1000.0, 1000.0)
            }
        })
        .collect()
}

/// Largest |a − b| over entries where both are finite; panics if NaN positions differ.
fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).fold(0.0, |m, (x, y)| {
        assert_eq!(x.is_nan(), y.is_nan(), "NaN positions differ: {x} vs {y}");
        if x.is_nan() {
            m
        } else {
            m.max((x - y).abs())
        }
    })
}

/// Checks labels, rate, scaling, events, and data within `steps` digital steps of the truth.
fn check_against_truth(file: &GdfFile, steps: f64) {
    let rec = &file.recording;
    let labels: Vec<&str> = rec.labels.iter().map(String::as_str).collect();
    assert_eq!(labels, LABELS_2A);
    assert_eq!(rec.rate, 250.0);
    assert_eq!(rec.data.dim(), (25, 21000));
    for (c, ch) in file.channels.iter().enumerate() {
        // ±100 µV for EEG, ±1000 µV for EOG, as in the 2a files.
        let range = if c < 22 { 100.0 } else { 1000.0 };
        assert_eq!((ch.physical_min, ch.physical_max), (-range, range));
        assert_eq!((ch.digital_min, ch.digital_max), (-32768.0, 32767.0));
        assert_eq!(ch.unit_code, UNIT_MICROVOLT);
        assert_eq!(ch.to_microvolts, Some(1.0));
        // One digital step: (physmax - physmin) / (digmax - digmin).
        let step = 2.0 * range / 65535.0 * steps;
        let diff = max_abs_diff(
            &rec.data.select(Axis(0), &[c]),
            &truth_data().select(Axis(0), &[c]),
        );
        assert!(
            diff <= step,
            "{}: max |read - truth| = {diff} µV > {steps} step(s) = {step}",
            ch.label
        );
    }
    assert_eq!(rec.events, truth_events());
}

#[test]
fn reads_libgdf_gdf210_fixture_like_the_ground_truth() {
    // libGDF GDF 2.10, fixture session_gdf210_libgdf.gdf vs session_data_uV.npy; ≤ 1 digital step.
    let file = read(&fixture("session_gdf210_libgdf.gdf")).unwrap();
    assert_eq!(file.version, "2.10");
    assert_eq!(file.n_records, 84);
    assert_eq!(file.record_duration, 1.0);
    assert_eq!(file.channels[0].samples_per_record, 250);
    assert_eq!(file.channels[0].lowpass, 100.0);
    assert_eq!(file.patient, "A99 synthetic");
    assert_eq!(file.recording_id, "synthetic BCI IV 2a-like session");
    assert_eq!(file.event_rate, Some(250.0));
    check_against_truth(&file, 1.0);
}

#[test]
fn reads_biosig_gdf251_fixture_like_the_ground_truth() {
    // biosig save2gdf GDF 2.51: float64 record duration, header 3, event mode 7; ≤ 1 step.
    let file = read(&fixture("session_gdf251_biosig.gdf")).unwrap();
    assert_eq!(file.version, "2.51");
    assert_eq!(file.n_records, 21000);
    assert!((file.record_duration - 0.004).abs() < 1e-15);
    assert!(file.event_descriptions.is_empty());
    // biosig re-quantised libGDF's int16 values by truncation toward zero, after float
    // round-off: its values differ from libGDF's by ±1 count, so from the truth by up to
    // 1.9998 steps (measured with numpy on the raw int16s). Against libGDF's file it agrees
    // to one step, which is what a correct reader can promise.
    check_against_truth(&file, 2.0);
    let libgdf = read(&fixture("session_gdf210_libgdf.gdf")).unwrap();
    for (c, ch) in file.channels.iter().enumerate() {
        let step = (ch.physical_max - ch.physical_min) / 65535.0;
        let diff = max_abs_diff(
            &file.recording.data.select(Axis(0), &[c]),
            &libgdf.recording.data.select(Axis(0), &[c]),
        );
        assert!(diff <= step * (1.0 + 1e-9), "{}: {diff} > {step}", ch.label);
    }
}

#[test]
fn channel_filter_decodes_only_the_kept_channels() {
    let all = read(&fixture("session_gdf210_libgdf.gdf")).unwrap();
    let eeg = read_channels(&fixture("session_gdf210_libgdf.gdf"), |l| {
        l.starts_with("EEG")
    })
    .unwrap();
    assert_eq!(eeg.recording.n_channels(), 22);
    assert_eq!(eeg.channels.len(), 22);
    assert_eq!(eeg.recording.labels[..], all.recording.labels[..22]);
    assert_eq!(
        eeg.recording.data,
        all.recording
            .data
            .select(Axis(0), &(0..22).collect::<Vec<_>>())
    );
    assert_eq!(eeg.recording.events, all.recording.events);
    let none = parse_channels(&fixture_bytes("session_gdf210_libgdf.gdf"), "f.gdf", |_| {
        false
    });
    assert!(matches!(none, Err(Error::Invalid(_))));
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // one gap run is the case under test
fn digital_minimum_reads_as_a_gap() {
    let mut bytes = fixture_bytes("session_gdf210_libgdf.gdf");
    assert!(parse(&bytes, "whole.gdf").unwrap().gaps.is_empty());
    // Record 0, channel 1 (EEG-0), sample 7: header 6656 + channel offset 250 × 2 + 7 × 2.
    let at = 6656 + 500 + 14;
    bytes[at..at + 2].copy_from_slice(&(-32768i16).to_le_bytes());
    let file = parse(&bytes, "gap.gdf").unwrap();
    assert!(file.recording.data[[1, 7]].is_nan());
    assert_eq!(file.recording.data.iter().filter(|v| v.is_nan()).count(), 1);
    assert_eq!(file.gaps, [(1, vec![7..8])]);
    // Decoding into a larger used buffer gives the same data (every element is written).
    let reused = parse_channels_into(&bytes, "gap.gdf", |_| true, vec![7.0; 10_000_000]).unwrap();
    assert_eq!(
        reused
            .recording
            .data
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        file.recording
            .data
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
    // Only the channel with the gap: still seen; without it: none.
    let only = |label: &str| {
        parse_channels(&bytes, "gap.gdf", |l| l == label)
            .unwrap()
            .gaps
    };
    assert_eq!(only(&file.recording.labels[1]), [(0, vec![7..8])]);
    assert!(only(&file.recording.labels[2]).is_empty());
    // A run across the reader's 20-record blocks (samples 4999 and 5000, records 19 and 20 of
    // 250 samples) comes out as one run.
    for (record, index) in [(19, 249), (20, 0)] {
        let at = 6656 + record * 12500 + 500 + index * 2;
        bytes[at..at + 2].copy_from_slice(&(-32768i16).to_le_bytes());
    }
    let file = parse(&bytes, "gaps.gdf").unwrap();
    assert_eq!(file.gaps, [(1, vec![7..8, 4999..5001])]);
    assert!(file.recording.data[[1, 5000]].is_nan() && !file.recording.data[[1, 5001]].is_nan());
}

#[test]
fn a_file_ending_after_the_data_has_no_events() {
    let bytes = fixture_bytes("session_gdf210_libgdf.gdf");
    let file = parse(&bytes[..6656 + 84 * 12500], "noevents.gdf").unwrap();
    assert!(file.recording.events.is_empty());
    assert_eq!(file.event_rate, None);
}

// ----- synthetic files of every layout -------------------------------------------------------

struct Chan {
    label: &'static str,
    ty: u32,
    spr: u32,
    phys: (f64, f64),
    dig: (f64, f64),
    unit_code: u16,
    unit_text: &'static str,
}

impl Chan {
    fn new(label: &'static str, ty: u32, spr: u32) -> Self {
        Chan {
            label,
            ty,
            spr,
            phys: (-100.0, 100.0),
            dig: (-32768.0, 32767.0),
            unit_code: UNIT_MICROVOLT,
            unit_text: "uV",
        }
    }
}

fn encode_sample(ty: u32, v: f64, out: &mut Vec<u8>) {
    match ty {
        1 => out.extend_from_slice(&(v as i8).to_le_bytes()),
        2 => out.extend_from_slice(&(v as u8).to_le_bytes()),
        3 => out.extend_from_slice(&(v as i16).to_le_bytes()),
        4 => out.extend_from_slice(&(v as u16).to_le_bytes()),
        5 => out.extend_from_slice(&(v as i32).to_le_bytes()),
        6 => out.extend_from_slice(&(v as u32).to_le_bytes()),
        7 => out.extend_from_slice(&(v as i64).to_le_bytes()),
        8 => out.extend_from_slice(&(v as u64).to_le_bytes()),
        16 => out.extend_from_slice(&(v as f32).to_le_bytes()),
        17 => out.extend_from_slice(&v.to_le_bytes()),
        // Unknown types in malformed-file tests: write something two bytes wide.
        _ => out.extend_from_slice(&(v as i16).to_le_bytes()),
    }
}

/// Event table of a synthetic file: mode, rate, entries (1-based position, type, channel, duration).
struct Events {
    mode: u8,
    rate: f64,
    entries: Vec<(u32, u16, u16, u32)>,
}

/// A GDF file of version `version` (1.x or 2.x layout) with 1-second records; `digital(c, i)`
/// gives channel c's i-th sample as a digital value.
fn build(
    version: &str,
    chans: &[Chan],
    n_records: usize,
    digital: impl Fn(usize, usize) -> f64,
    events: Option<Events>,
    header3: &[u8],
) -> Vec<u8> {
    let code = (version.parse::<f64>().unwrap() * 100.0).round() as u32;
    let gdf2 = code >= 190;
    let ns = chans.len();
    let h3_blocks = header3.len().div_ceil(256);
    let header_len = 256 * (ns + 1 + h3_blocks);
    let mut h = vec![0u8; 256];
    h[..8].copy_from_slice(format!("GDF {version}").as_bytes());
    h[8..11].copy_from_slice(b"P01");
    h[88..92].copy_from_slice(b"R-01");
    if gdf2 {
        h[184..186].copy_from_slice(&((header_len / 256) as u16).to_le_bytes());
        h[252..254].copy_from_slice(&(ns as u16).to_le_bytes());
    } else {
        h[168..184].copy_from_slice(b"2008010112000000");
        h[184..192].copy_from_slice(&(header_len as i64).to_le_bytes());
        h[252..256].copy_from_slice(&(ns as u32).to_le_bytes());
    }
    h[236..244].copy_from_slice(&(n_records as i64).to_le_bytes());
    if gdf2 && code >= 221 {
        h[244..252].copy_from_slice(&1.0f64.to_le_bytes());
    } else {
        h[244..248].copy_from_slice(&1u32.to_le_bytes());
        h[248..252].copy_from_slice(&1u32.to_le_bytes());
    }
    let text = |h: &mut Vec<u8>, s: &str, len: usize| {
        let mut f = s.as_bytes().to_vec();
        f.resize(len, 0);
        h.extend_from_slice(&f);
    };
    for c in chans {
        text(&mut h, c.label, 16);
    }
    for _ in chans {
        text(&mut h, "AgCl", 80);
    }
    if gdf2 {
        for c in chans {
            text(&mut h, c.unit_text, 6);
        }
        for c in chans {
            h.extend_from_slice(&c.unit_code.to_le_bytes());
        }
    } else {
        for c in chans {
            text(&mut h, c.unit_text, 8);
        }
    }
    for c in chans {
        h.extend_from_slice(&c.phys.0.to_le_bytes());
    }
    for c in chans {
        h.extend_from_slice(&c.phys.1.to_le_bytes());
    }
    for c in chans {
        if gdf2 {
            h.extend_from_slice(&c.dig.0.to_le_bytes());
        } else {
            h.extend_from_slice(&(c.dig.0 as i64).to_le_bytes());
        }
    }
    for c in chans {
        if gdf2 {
            h.extend_from_slice(&c.dig.1.to_le_bytes());
        } else {
            h.extend_from_slice(&(c.dig.1 as i64).to_le_bytes());
        }
    }
    if gdf2 {
        h.resize(h.len() + 68 * ns, 0);
        for _ in chans {
            h.extend_from_slice(&40f32.to_le_bytes());
        }
        for _ in chans {
            h.extend_from_slice(&0.5f32.to_le_bytes());
        }
        for _ in chans {
            h.extend_from_slice(&50f32.to_le_bytes());
        }
    } else {
        h.resize(h.len() + 80 * ns, b' ');
    }
    for c in chans {
        h.extend_from_slice(&c.spr.to_le_bytes());
    }
    for c in chans {
        h.extend_from_slice(&c.ty.to_le_bytes());
    }
    h.resize(h.len() + 32 * ns, 0);
    assert_eq!(h.len(), 256 * (ns + 1));
    h.extend_from_slice(header3);
    h.resize(header_len, 0);
    for r in 0..n_records {
        for (ci, c) in chans.iter().enumerate() {
            for s in 0..c.spr as usize {
                encode_sample(c.ty, digital(ci, r * c.spr as usize + s), &mut h);
            }
        }
    }
    if let Some(ev) = events {
        let n = ev.entries.len() as u32;
        h.push(ev.mode);
        if code < 194 {
            h.extend_from_slice(&(ev.rate as u32).to_le_bytes()[..3]);
            h.extend_from_slice(&n.to_le_bytes());
        } else {
            h.extend_from_slice(&n.to_le_bytes()[..3]);
            h.extend_from_slice(&(ev.rate as f32).to_le_bytes());
        }
        for e in &ev.entries {
            h.extend_from_slice(&e.0.to_le_bytes());
        }
        for e in &ev.entries {
            h.extend_from_slice(&e.1.to_le_bytes());
        }
        if ev.mode != 1 {
            for e in &ev.entries {
                h.extend_from_slice(&e.2.to_le_bytes());
            }
            for e in &ev.entries {
                h.extend_from_slice(&e.3.to_le_bytes());
            }
        }
        if ev.mode == 7 {
            for _ in &ev.entries {
                h.extend_from_slice(&0u64.to_le_bytes());
            }
        }
    }
    h
}

fn mode3(entries: Vec<(u32, u16, u16, u32)>) -> Option<Events> {
    Some(Events {
        mode: 3,
        rate: 4.0,
        entries,
    })
}

#[test]
fn decodes_every_data_type() {
    // (type code, digital min, digital max); physical range 0..1000 so that the expected
    // physical value is an exact linear map of the digital one.
    let types: [(u32, f64, f64); 10] = [
        (1, -128.0, 127.0),
        (2, 0.0, 255.0),
        (3, -32768.0, 32767.0),
        (4, 0.0, 65535.0),
        (5, -2147483648.0, 2147483647.0),
        (6, 0.0, 4294967295.0),
        (7, -1e12, 1e12),
        (8, 0.0, 1e12),
        (16, -1e6, 1e6),
        (17, -1e9, 1e9),
    ];
    for version in ["1.25", "2.10", "2.20", "2.51"] {
        for &(ty, dmin, dmax) in &types {
            let mut ch = Chan::new("C1", ty, 4);
            ch.dig = (dmin, dmax);
            ch.phys = (0.0, 1000.0);
            let digital = |_: usize, i: usize| match i {
                0 => dmin, // gap
                1 => dmax,
                i => (dmin + (dmax - dmin) * i as f64 / 16.0).round(),
            };
            let bytes = build(version, &[ch], 2, digital, None, &[]);
            let file = parse(&bytes, "types.gdf")
                .unwrap_or_else(|e| panic!("GDF {version} type {ty}: {e}"));
            let row = file.recording.data.row(0);
            assert_eq!(row.len(), 8);
            assert!(
                row[0].is_nan(),
                "GDF {version} type {ty}: digital minimum must be a gap"
            );
            for i in 1..8 {
                // Exact up to f64 rounding of the linear map (f32 for type 16 is exact here).
                let d = digital(0, i);
                let expected = (d - dmin) / (dmax - dmin) * 1000.0;
                assert!(
                    (row[i] - expected).abs() <= 1e-9 * 1000.0,
                    "GDF {version} type {ty} sample {i}: {} vs {expected}",
                    row[i]
                );
            }
            assert_eq!(file.channels[0].data_type, ty);
        }
    }
}

#[test]
fn reads_gdf1_layout_with_text_units_and_old_event_header() {
    let mut c1 = Chan::new("Fz", 5, 4);
    c1.unit_text = "mV";
    c1.dig = (-1000.0, 1000.0);
    c1.phys = (-1.0, 1.0);
    let mut c2 = Chan::new("Cz", 5, 4);
    c2.unit_text = "uV";
    c2.dig = (-1000.0, 1000.0);
    let events = Some(Events {
        mode: 3,
        rate: 4.0,
        entries: vec![(1, 768, 0, 0), (3, 769, 2, 2)],
    });
    let bytes = build(
        "1.25",
        &[c1, c2],
        3,
        |c, i| (c * 100 + i) as f64,
        events,
        &[],
    );
    let file = parse(&bytes, "old.gdf").unwrap();
    assert_eq!(file.version, "1.25");
    assert_eq!(file.patient, "P01");
    assert_eq!(file.recording_id, "R-01");
    assert_eq!(file.start_time, StartTime::Gdf1("2008010112000000".into()));
    assert_eq!(file.recording.rate, 4.0);
    assert_eq!(file.channels[0].to_microvolts, Some(1000.0));
    assert_eq!(file.channels[0].transducer, "AgCl");
    assert!(file.channels[0].lowpass.is_nan());
    // Fz: digital i ↦ i/1000 mV = i µV; Cz: digital 100 + i ↦ (100 + i)/10 µV.
    assert!((file.recording.data[[0, 5]] - 5.0).abs() < 1e-9);
    assert!((file.recording.data[[1, 5]] - 10.5).abs() < 1e-9);
    assert_eq!(
        file.recording.events,
        vec![
            Event {
                position: 0,
                code: 768,
                channel: 0,
                duration: 0
            },
            Event {
                position: 2,
                code: 769,
                channel: 2,
                duration: 2
            },
        ]
    );
    assert_eq!(file.event_rate, Some(4.0));
}

#[test]
fn physical_dimension_codes_convert_to_microvolts() {
    // (code, factor to µV); 512 is "dimensionless": left as is.
    for (code, factor) in [
        (4256u16, Some(1e6)),
        (4274, Some(1e3)),
        (4275, Some(1.0)),
        (4276, Some(1e-3)),
        (512, None),
    ] {
        let mut ch = Chan::new("C", 3, 2);
        ch.unit_code = code;
        ch.phys = (-32768.0, 32767.0);
        let bytes = build("2.10", &[ch], 1, |_, i| i as f64 + 1.0, None, &[]);
        let file = parse(&bytes, "units.gdf").unwrap();
        assert_eq!(file.channels[0].to_microvolts, factor, "code {code}");
        let expected = 2.0 * factor.unwrap_or(1.0);
        assert!((file.recording.data[[0, 1]] - expected).abs() <= 1e-12 * expected.abs());
    }
    let mut ch = Chan::new("C", 3, 2);
    ch.unit_code = 4256 + 12;
    let bytes = build("2.10", &[ch], 1, |_, _| 0.0, None, &[]);
    let err = parse(&bytes, "prefix.gdf").unwrap_err().to_string();
    assert!(err.contains("decimal prefix `12`"), "{err}");
}

#[test]
fn header3_tag1_gives_event_descriptions_and_other_tags_are_skipped() {
    let mut h3 = vec![3u8, 5, 0, 0];
    h3.extend_from_slice(b"X\0\0\0\0");
    let descriptions = b"left cue\0\0tongue\0";
    h3.push(1);
    h3.extend_from_slice(&(descriptions.len() as u32).to_le_bytes()[..3]);
    h3.extend_from_slice(descriptions);
    h3.push(0);
    let bytes = build("2.51", &[Chan::new("C", 3, 4)], 1, |_, _| 0.0, None, &h3);
    let file = parse(&bytes, "h3.gdf").unwrap();
    let expected: BTreeMap<u16, String> =
        [(1, "left cue".to_string()), (3, "tongue".to_string())].into();
    assert_eq!(file.event_descriptions, expected);

    let mut bad = vec![1u8, 0xFF, 0x01, 0];
    bad.extend_from_slice(b"x\0");
    let bytes = build("2.51", &[Chan::new("C", 3, 4)], 1, |_, _| 0.0, None, &bad);
    let err = parse(&bytes, "h3bad.gdf").unwrap_err().to_string();
    assert!(err.contains("runs past the header end"), "{err}");
}

#[test]
fn event_modes_1_and_7_and_a_different_event_rate() {
    let mode1 = Some(Events {
        mode: 1,
        rate: 4.0,
        entries: vec![(2, 768, 9, 9)],
    });
    let file = parse(
        &build("2.10", &[Chan::new("C", 3, 4)], 2, |_, _| 0.0, mode1, &[]),
        "m1.gdf",
    )
    .unwrap();
    assert_eq!(
        file.recording.events,
        vec![Event {
            position: 1,
            code: 768,
            channel: 0,
            duration: 0
        }]
    );

    let mode7 = Some(Events {
        mode: 7,
        rate: 4.0,
        entries: vec![(2, 768, 0, 3), (4, 769, 1, 1)],
    });
    let file = parse(
        &build("2.51", &[Chan::new("C", 3, 4)], 2, |_, _| 0.0, mode7, &[]),
        "m7.gdf",
    )
    .unwrap();
    assert_eq!(
        file.recording.events[1],
        Event {
            position: 3,
            code: 769,
            channel: 1,
            duration: 1
        }
    );

    // Events at 8 Hz on a 4 Hz signal: positions and durations halve.
    let fast = Some(Events {
        mode: 3,
        rate: 8.0,
        entries: vec![(5, 768, 0, 4)],
    });
    let file = parse(
        &build("2.10", &[Chan::new("C", 3, 4)], 2, |_, _| 0.0, fast, &[]),
        "rate.gdf",
    )
    .unwrap();
    assert_eq!(
        file.recording.events,
        vec![Event {
            position: 2,
            code: 768,
            channel: 0,
            duration: 2
        }]
    );
}

#[test]
fn mixed_rates_are_an_error_naming_the_channels_unless_filtered_out() {
    let chans = [Chan::new("EEG", 3, 4), Chan::new("Status", 3, 1)];
    let events = mode3(vec![(1, 768, 0, 0), (2, 1, 2, 0), (3, 2, 1, 0)]);
    let bytes = build("2.10", &chans, 2, |_, i| i as f64, events, &[]);
    let err = parse(&bytes, "mixed.gdf").unwrap_err();
    assert!(matches!(err, Error::Data(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("`Status`") && msg.contains("`EEG`") && msg.contains("mixed.gdf"),
        "{msg}"
    );
    // Keeping EEG only: the event on channel 2 (Status) is dropped, channel 1 stays 1.
    let file = parse_channels(&bytes, "mixed.gdf", |l| l == "EEG").unwrap();
    assert_eq!(file.recording.data.dim(), (1, 8));
    let expected = (3.0 + 32768.0) * 200.0 / 65535.0 - 100.0;
    assert!((file.recording.data[[0, 3]] - expected).abs() < 1e-12);
    assert_eq!(
        file.recording.events,
        vec![
            Event {
                position: 0,
                code: 768,
                channel: 0,
                duration: 0
            },
            Event {
                position: 2,
                code: 2,
                channel: 1,
                duration: 0
            },
        ]
    );
}

fn malformed_message(bytes: &[u8], name: &str) -> String {
    match parse(bytes, name) {
        Err(Error::Malformed { path, message }) => {
            assert_eq!(path, name);
            message
        }
        other => panic!("{name}: expected a malformed-file error, got {other:?}"),
    }
}

#[test]
fn malformed_files_are_errors_naming_the_problem() {
    let good = build(
        "2.10",
        &[Chan::new("C", 3, 4)],
        2,
        |_, i| i as f64,
        mode3(vec![(1, 768, 0, 0)]),
        &[],
    );
    assert!(parse(&good, "good.gdf").is_ok());
    let header_end = 512;
    let data_end = header_end + 2 * 8;
    let patched = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "ends inside the fixed header"),
        ("magic", patched(0, b"EDF "), "not a GDF file"),
        (
            "version",
            patched(4, b"3.00"),
            "unsupported GDF version `3.00`",
        ),
        (
            "short-header",
            good[..200].to_vec(),
            "ends inside the fixed header",
        ),
        (
            "zero-channels",
            patched(252, &0u16.to_le_bytes()),
            "zero channels",
        ),
        (
            "header-blocks",
            patched(184, &1u16.to_le_bytes()),
            "header length `256` is shorter",
        ),
        (
            "header-past-end",
            patched(184, &200u16.to_le_bytes()),
            "ends inside the `51200`-byte header",
        ),
        (
            "data-type",
            patched(256 + 220, &18u32.to_le_bytes()),
            "unknown data type `18`",
        ),
        (
            "duration",
            patched(244, &0u32.to_le_bytes()),
            "record duration `0/1`",
        ),
        (
            "negative-records",
            patched(236, &(-1i64).to_le_bytes()),
            "record count `-1` is negative",
        ),
        (
            "huge-records",
            patched(236, &i64::MAX.to_le_bytes()),
            "need more than the file's",
        ),
        (
            "huge-spr",
            patched(256 + 216, &u32::MAX.to_le_bytes()),
            "need more than the file's",
        ),
        (
            "truncated-data",
            good[..data_end - 3].to_vec(),
            "need more than the file's",
        ),
        (
            "truncated-events",
            good[..data_end + 5].to_vec(),
            "ends inside the event table header",
        ),
        (
            "events-past-end",
            patched(data_end + 1, &[0xFF, 0xFF, 0xFF]),
            "event table of `16777215` events",
        ),
        (
            "event-mode",
            patched(data_end, &[2]),
            "unknown event table mode `2`",
        ),
        (
            "event-position",
            patched(data_end + 8, &0u32.to_le_bytes()),
            "position `0`",
        ),
        (
            "event-channel",
            patched(data_end + 8 + 6, &9u16.to_le_bytes()),
            "channel `9`",
        ),
        (
            "scaling",
            patched(256 + 128, &(-32768f64).to_le_bytes()),
            "unusable scaling",
        ),
    ];
    for (name, bytes, expected) in cases {
        let message = malformed_message(&bytes, name);
        assert!(
            message.contains(expected),
            "{name}: `{message}` lacks `{expected}`"
        );
    }
    // A float64 record duration (2.21 on) must be positive too.
    let v251 = build("2.51", &[Chan::new("C", 3, 4)], 1, |_, _| 0.0, None, &[]);
    let mut neg = v251.clone();
    neg[244..252].copy_from_slice(&(-0.5f64).to_le_bytes());
    assert!(malformed_message(&neg, "neg").contains("record duration `-0.5`"));
    // GDF 1.x: a header byte count that does not fit, and a channel count that overflows.
    let v1 = build("1.25", &[Chan::new("C", 3, 4)], 1, |_, _| 0.0, None, &[]);
    let mut bad = v1.clone();
    bad[184..192].copy_from_slice(&(-5i64).to_le_bytes());
    assert!(malformed_message(&bad, "v1len").contains("header length `-5`"));
    let mut bad = v1.clone();
    bad[252..256].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(malformed_message(&bad, "v1ns").contains("shorter than"));
}

// ----- writer ---------------------------------------------------------------------------------

fn synthetic_recording(n_channels: usize, n_samples: usize, rate: f64) -> Recording {
    let data = Array2::from_shape_fn((n_channels, n_samples), |(c, i)| {
        if (c + i) % 97 == 5 {
            f64::NAN
        } else {
            40.0 * ((i as f64) * 0.05 * (c + 1) as f64).sin() + c as f64
        }
    });
    Recording {
        labels: (0..n_channels).map(|c| format!("EEG-{c}")).collect(),
        rate,
        data,
        events: vec![
            Event {
                position: 0,
                code: 32766,
                channel: 0,
                duration: 0,
            },
            Event {
                position: 3,
                code: 769,
                channel: 1,
                duration: 2,
            },
            Event {
                position: n_samples as u64 - 1,
                code: 1023,
                channel: 0,
                duration: 1,
            },
        ],
    }
}

fn round_trip(rec: &Recording, opts: &GdfWriteOptions) -> GdfFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.gdf");
    write(&path, rec, opts).unwrap();
    read(&path).unwrap()
}

#[test]
fn write_then_read_gives_the_data_back_within_one_step() {
    for (n_samples, rate) in [(1000, 250.0), (1001, 250.0), (999, 512.5), (10, 0.5)] {
        let rec = synthetic_recording(3, n_samples, rate);
        let opts = GdfWriteOptions {
            patient: "A01".into(),
            recording_id: "round trip".into(),
            start_time: 0x000B_4BD9_2CDE_3EF5,
            ..GdfWriteOptions::default()
        };
        let back = round_trip(&rec, &opts);
        assert_eq!(back.version, "2.10");
        assert_eq!(back.patient, "A01");
        assert_eq!(back.recording_id, "round trip");
        assert_eq!(back.start_time, StartTime::Gdf2(0x000B_4BD9_2CDE_3EF5));
        assert_eq!(back.recording.labels, rec.labels);
        assert_eq!(
            back.recording.rate, rate,
            "{n_samples} samples at {rate} Hz"
        );
        assert_eq!(back.recording.events, rec.events);
        for (c, ch) in back.channels.iter().enumerate() {
            // Auto range: ±max|x|, so one step is 2 max|x| / 65535.
            let step = (ch.physical_max - ch.physical_min) / 65535.0;
            let diff = max_abs_diff(
                &back.recording.data.select(Axis(0), &[c]),
                &rec.data.select(Axis(0), &[c]),
            );
            assert!(diff <= step, "channel {c}: {diff} > step {step}");
            assert_eq!(ch.data_type, 3);
            assert_eq!(ch.unit_code, UNIT_MICROVOLT);
        }
    }
}

#[test]
fn writing_the_ground_truth_reproduces_the_libgdf_layout() {
    // The 2a ranges (±100 µV EEG, ±1000 µV EOG): 84 one-second records of 250 int16 samples.
    let rec = Recording {
        labels: LABELS_2A.iter().map(|s| s.to_string()).collect(),
        rate: 250.0,
        data: truth_data().clone(),
        events: truth_events(),
    };
    let opts = GdfWriteOptions {
        physical_range: PhysicalRange::PerChannel(ranges_2a()),
        ..GdfWriteOptions::default()
    };
    let ours = encode(&rec, &opts).unwrap();
    let libgdf = fixture_bytes("session_gdf210_libgdf.gdf");
    assert_eq!(ours.len(), libgdf.len());
    let back = parse(&ours, "ours.gdf").unwrap();
    assert_eq!(back.n_records, 84);
    check_against_truth(&back, 1.0);
    // Same event table bytes as libGDF's (mode 3, 24 events, 250 Hz).
    let events_at = 6656 + 84 * 12500;
    assert_eq!(ours[events_at..], libgdf[events_at..]);
    // Quantisation agrees with libGDF's to within one count.
    let worst = ours[6656..events_at]
        .chunks_exact(2)
        .zip(libgdf[6656..events_at].chunks_exact(2))
        .map(|(a, b)| {
            (i16::from_le_bytes([a[0], a[1]]) as i32 - i16::from_le_bytes([b[0], b[1]]) as i32)
                .abs()
        })
        .max()
        .unwrap();
    assert!(worst <= 1, "digital values differ from libGDF's by {worst}");
}

#[test]
fn writer_clips_finite_values_so_they_never_become_gaps() {
    let mut rec = synthetic_recording(1, 4, 4.0);
    rec.data =
        Array2::from_shape_vec((1, 4), vec![-1e6, 1e6, f64::NAN, f64::NEG_INFINITY]).unwrap();
    rec.events.clear();
    let opts = GdfWriteOptions {
        physical_range: PhysicalRange::PerChannel(vec![(-10.0, 10.0)]),
        ..GdfWriteOptions::default()
    };
    let back = round_trip(&rec, &opts).recording.data;
    let step = 20.0 / 65535.0;
    assert!((back[[0, 0]] - (-10.0 + step)).abs() < 1e-9);
    assert!((back[[0, 1]] - 10.0).abs() < 1e-9);
    assert!(back[[0, 2]].is_nan());
    assert!((back[[0, 3]] - (-10.0 + step)).abs() < 1e-9);
}

#[test]
fn writer_rejects_what_gdf_cannot_hold() {
    let rec = synthetic_recording(2, 8, 4.0);
    let invalid = |rec: &Recording, opts: &GdfWriteOptions| match encode(rec, opts) {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let mut long = rec.clone();
    long.labels[0] = "a-label-longer-than-16".into();
    assert!(invalid(&long, &GdfWriteOptions::default()).contains("a-label-longer-than-16"));
    let mut bad_rate = rec.clone();
    bad_rate.rate = f64::NAN;
    assert!(invalid(&bad_rate, &GdfWriteOptions::default()).contains("`NaN` Hz"));
    bad_rate.rate = std::f64::consts::PI;
    assert!(invalid(&bad_rate, &GdfWriteOptions::default()).contains("exactly"));
    let ranges = GdfWriteOptions {
        physical_range: PhysicalRange::PerChannel(vec![(0.0, 1.0)]),
        ..GdfWriteOptions::default()
    };
    assert!(invalid(&rec, &ranges).contains("`1` physical ranges given for `2` channels"));
    let empty_range = GdfWriteOptions {
        physical_range: PhysicalRange::Fixed(5.0, 5.0),
        ..GdfWriteOptions::default()
    };
    assert!(invalid(&rec, &empty_range).contains("`5`..`5`"));
    let mut far = rec.clone();
    far.events[0].position = u64::from(u32::MAX);
    assert!(invalid(&far, &GdfWriteOptions::default()).contains("event `0`"));
}

use crate::testutil::python_or_skip;

#[test]
fn mne_reads_what_the_writer_writes() {
    let Some(python) = python_or_skip("mne_reads_what_the_writer_writes") else {
        return;
    };
    // The 2a layout (1-second records) with the 2a ranges.
    let rec = Recording {
        labels: LABELS_2A.iter().map(|s| s.to_string()).collect(),
        rate: 250.0,
        data: truth_data().clone(),
        events: truth_events(),
    };
    check_with_mne(&python, &rec, PhysicalRange::PerChannel(ranges_2a()));
    // An awkward one: 1001 samples at 512.5 Hz (one-sample records of 2/1025 s), NaN gaps.
    check_with_mne(
        &python,
        &synthetic_recording(3, 1001, 512.5),
        PhysicalRange::Auto,
    );
}

/// Writes `rec`, reads it with `mne.io.read_raw_gdf` and compares labels, rate, data (within
/// one step per channel, gaps excluded: MNE reads them as the physical minimum) and events.
fn check_with_mne(python: &Path, rec: &Recording, range: PhysicalRange) {
    let opts = GdfWriteOptions {
        physical_range: range,
        ..GdfWriteOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let gdf = dir.path().join("ours.gdf");
    let npy = dir.path().join("truth.npy");
    write(&gdf, rec, &opts).unwrap();
    rec.data
        .write_npy(std::fs::File::create(&npy).unwrap())
        .unwrap();
    let script = r#"
import json, sys
import numpy as np, mne
raw = mne.io.read_raw_gdf(sys.argv[1], preload=True, verbose="error")
data = raw.get_data() * 1e6
sf = raw.info["sfreq"]
print(json.dumps({
    "ch_names": raw.ch_names,
    "sfreq": sf,
    "shape": list(data.shape),
    "max_abs_diff": np.nanmax(np.abs(data - np.load(sys.argv[2])), axis=1).tolist(),
    "events": [[round(a["onset"] * sf), a["description"], round(a["duration"] * sf)]
               for a in raw.annotations],
}))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&gdf)
        .arg(&npy)
        .output()
        .expect("run BCIOPS_PYTHON");
    assert!(
        out.status.success(),
        "mne failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["ch_names"], serde_json::json!(rec.labels));
    assert_eq!(got["sfreq"], rec.rate);
    assert_eq!(
        got["shape"],
        serde_json::json!([rec.n_channels(), rec.n_samples()])
    );
    let written = parse(&std::fs::read(&gdf).unwrap(), "ours.gdf").unwrap();
    // Per channel: one int16 step of its range, plus float noise of MNE's scaling.
    let diffs: Vec<f64> = serde_json::from_value(got["max_abs_diff"].clone()).unwrap();
    for (diff, ch) in diffs.iter().zip(&written.channels) {
        let step = (ch.physical_max - ch.physical_min) / 65535.0;
        assert!(
            *diff <= step * (1.0 + 1e-9),
            "{}: MNE data differ by {diff} µV > {step}",
            ch.label
        );
    }
    // MNE reports each event as an annotation named after its code, durations at least 1
    // sample, sorted by onset (so compare as sorted lists).
    let mut expected: Vec<(u64, String, u64)> = rec
        .events
        .iter()
        .map(|e| (e.position, e.code.to_string(), u64::from(e.duration.max(1))))
        .collect();
    let mut events: Vec<(u64, String, u64)> =
        serde_json::from_value(got["events"].clone()).unwrap();
    expected.sort();
    events.sort();
    assert_eq!(events, expected);
    eprintln!(
        "mne: {} records of {} samples; max |mne - original| per channel = {diffs:?} µV",
        written.n_records, written.channels[0].samples_per_record
    );
}

// ----- robustness -----------------------------------------------------------------------------

/// The fixture cut down to its first `keep` records (plus its event table), so that
/// property tests run fast.
fn shrunk_fixture(name: &str, keep: usize) -> Vec<u8> {
    let b = fixture_bytes(name);
    let header_len = u16::from_le_bytes([b[184], b[185]]) as usize * 256;
    let n_records = i64::from_le_bytes(b[236..244].try_into().unwrap()) as usize;
    let file = parse(&b, name).unwrap();
    let record_size: usize = file
        .channels
        .iter()
        .map(|c| c.samples_per_record as usize * 2)
        .sum();
    let mut out = b[..header_len + keep * record_size].to_vec();
    out[236..244].copy_from_slice(&(keep as i64).to_le_bytes());
    out.extend_from_slice(&b[header_len + n_records * record_size..]);
    out
}

fn seeds() -> &'static [Vec<u8>; 2] {
    static SEEDS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    SEEDS.get_or_init(|| {
        [
            shrunk_fixture("session_gdf210_libgdf.gdf", 2),
            shrunk_fixture("session_gdf251_biosig.gdf", 500),
        ]
    })
}

#[test]
fn shrunk_fixtures_still_parse() {
    for seed in seeds() {
        let file = parse(seed, "seed").unwrap();
        assert_eq!(file.recording.events.len(), 24);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let _ = parse(&bytes, "random.gdf");
    }

    #[test]
    fn random_bytes_after_a_gdf_magic_never_panic(
        version in prop::sample::select(vec!["1.25", "1.93", "2.10", "2.20", "2.51"]),
        tail in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let mut bytes = format!("GDF {version}").into_bytes();
        bytes.extend_from_slice(&tail);
        let _ = parse(&bytes, "random.gdf");
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..2,
        edits in proptest::collection::vec((0usize..8192, any::<u8>(), any::<bool>()), 1..24),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = seeds()[which].clone();
        let len = bytes.len();
        for (at, value, near_end) in edits {
            // Mostly the headers, sometimes the event table at the end.
            let at = if near_end { len - 1 - at % 400 } else { at % len };
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(len + 1));
        }
        let _ = parse(&bytes, "mutated.gdf");
    }
}

// ----- hostile sizes (issue 16) ---------------------------------------------------------------

#[test]
fn the_hostile_size_tests_start_from_files_that_parse() {
    for version in ["1.25", "2.10", "2.51"] {
        let bytes = build(
            version,
            &[Chan::new("C3", 3, 4), Chan::new("C4", 16, 4)],
            2,
            |c, i| (c * 10 + i) as f64,
            mode3(vec![(1, 768, 0, 0), (3, 769, 1, 2)]),
            &[1, 4, 0, 0, b'a', b'b', 0, 0],
        );
        let file = parse(&bytes, version).unwrap();
        assert_eq!(file.recording.data.dim(), (2, 8), "{version}");
        assert_eq!(file.recording.events.len(), 2, "{version}");
        assert_eq!(bytes.len(), 256 * 4 + 48 + 8 + 2 * 12, "{version}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Header fields that size what follows (header length, record count and duration,
    /// channel count, samples per record, data type, event count and rate) set to huge, zero
    /// and overflowing values in synthetic files of each layout: an error, or a recording of
    /// no more samples than the file's bytes hold. Built here rather than from the shared
    /// fixtures, so this runs everywhere.
    #[test]
    fn hostile_header_sizes_are_errors_not_allocations(
        version in prop::sample::select(vec!["1.25", "2.10", "2.51"]),
        fields in proptest::collection::vec((0usize..11, crate::testutil::hostile_size()), 1..4),
    ) {
        let chans = [Chan::new("C3", 3, 4), Chan::new("C4", 16, 4)];
        let mut bytes = build(
            version,
            &chans,
            2,
            |c, i| (c * 10 + i) as f64,
            mode3(vec![(1, 768, 0, 0), (3, 769, 1, 2)]),
            &[1, 4, 0, 0, b'a', b'b', 0, 0],
        );
        let gdf2 = version != "1.25";
        let ns = chans.len();
        let data_end = 256 * (ns + 2) + 2 * (2 * 4 + 4 * 4);
        for (field, value) in fields {
            // (offset, width) of each field in this file.
            let (at, width) = match field {
                0 if gdf2 => (184, 2),
                0 => (184, 8),
                1 => (236, 8),
                2 if version == "2.51" => (244, 8),
                2 => (244, 4),
                3 => (248, 4),
                4 if gdf2 => (252, 2),
                4 => (252, 4),
                5 => (256 + ns * 216, 4),
                6 => (256 + ns * 216 + 4, 4),
                7 => (256 + ns * 220 + 4, 4),
                8 => (data_end + 1, 3),
                9 => (data_end + 4, 4),
                _ => (256 * (ns + 1) + 1, 3),
            };
            bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        }
        let got = crate::testutil::quick("gdf::parse", || parse(&bytes, "hostile.gdf"));
        if let Ok(file) = got {
            prop_assert!(file.recording.data.len() <= 8 * bytes.len());
            prop_assert!(file.recording.events.len() <= bytes.len() / 6);
        }
    }
}
