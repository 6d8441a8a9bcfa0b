//! Electrode names and scalp positions: the BCI Competition IV 2a montage and the 10-10 system.
//!
//! Positions come from an idealised spherical head: the nasion–inion arc spans 180°, so 10 % of
//! it is 18°, and the electrodes of the outer ring (Fpz, F7, T7, P7, Oz, …) lie 72° from Cz.
//! Two representations are offered:
//!
//! - [`position`]: the azimuthal-equidistant projection used by topographic maps, x to the
//!   right ear, y to the nose, scaled so that the outer ring (Fpz–T7–Oz–T8, where a topomap
//!   draws the head outline) is the unit circle. Cz is `[0, 0]`, C3 `[-0.5, 0]`, Fz `[0, 0.5]`.
//! - [`position_3d`]: the same point on the unit sphere, z up through Cz.
//!
//! Names off the midline and the central line are placed on the straight segment from the
//! midline point of their row to its point on the outer ring (e.g. F3 halfway from Fz to F7),
//! which is close to measured caps and exact on the midline and the central line.
//!
//! ```
//! use bciops::signal::montage;
//! assert_eq!(montage::standard_name("EEG-0"), Some("FC3"));
//! assert_eq!(montage::position("EEG-C3"), montage::position("c3"));
//! assert!(!montage::is_eeg("EOG-left"));
//! ```

use std::f64::consts::PI;

/// Channel labels of the BCI Competition IV 2a GDF files, in file order.
pub const BCI_IV_2A_LABELS: [&str; 25] = [
    "EEG-Fz",
    "EEG-0",
    "EEG-1",
    "EEG-2",
    "EEG-3",
    "EEG-4",
    "EEG-5",
    "EEG-C3",
    "EEG-6",
    "EEG-Cz",
    "EEG-7",
    "EEG-C4",
    "EEG-8",
    "EEG-9",
    "EEG-10",
    "EEG-11",
    "EEG-12",
    "EEG-13",
    "EEG-14",
    "EEG-Pz",
    "EEG-15",
    "EEG-16",
    "EOG-left",
    "EOG-central",
    "EOG-right",
];

/// 10-20 names of the 22 EEG channels of [`BCI_IV_2A_LABELS`], in the same order.
pub const BCI_IV_2A_NAMES: [&str; 22] = [
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3",
    "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
];

/// Physical range assumed for EEG channels, ± this many µV (the 2a amplifiers' 100 µV
/// sensitivity; a GDF writer storing int16 uses it as physical min/max).
pub const EEG_RANGE_UV: f64 = 100.0;

/// Physical range assumed for EOG, EMG and ECG channels, ± this many µV (1 mV sensitivity in
/// the 2a recordings; blinks reach a few hundred µV).
pub const EXG_RANGE_UV: f64 = 1000.0;

/// Angle from Cz of the outer ring (Fpz, T7, Oz, T8): four 10 % steps of 18°.
const OUTER_RING_RAD: f64 = 0.4 * PI;

/// Canonical 10-10 names (plus the 10-20 outer names T9/T10, Nz, Iz) that [`position`] knows.
const NAMES_10_10: [&str; 87] = [
    "Nz", "Fp1", "Fpz", "Fp2", "AF9", "AF7", "AF5", "AF3", "AF1", "AFz", "AF2", "AF4", "AF6",
    "AF8", "AF10", "F9", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "F10", "FT9", "FT7",
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "FT10", "T9", "T7", "C5", "C3", "C1",
    "Cz", "C2", "C4", "C6", "T8", "T10", "TP9", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4",
    "CP6", "TP8", "TP10", "P9", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "P10", "PO9",
    "PO7", "PO5", "PO3", "PO1", "POz", "PO2", "PO4", "PO6", "PO8", "PO10", "O1", "Oz", "O2", "I1",
    "Iz", "I2",
];

/// Old 10-20 names still found in files, and the 10-10 names that replaced them.
const OLD_NAMES: [(&str, &str); 4] = [("T3", "T7"), ("T4", "T8"), ("T5", "P7"), ("T6", "P8")];

/// Whether a channel carries EEG: labels typed `EEG…`, or bare 10-10 names. EOG, EMG, ECG,
/// status/trigger channels and unknown labels are not EEG.
pub fn is_eeg(label: &str) -> bool {
    let upper = label.trim().to_ascii_uppercase();
    if upper.starts_with("EEG") {
        return true;
    }
    lookup_10_10(label.trim()).is_some()
}

/// Physical range `(min, max)` in µV assumed for a channel: ±[`EEG_RANGE_UV`] for EEG (and
/// anything unknown), ±[`EXG_RANGE_UV`] for EOG, EMG and ECG channels.
pub fn physical_range(label: &str) -> (f64, f64) {
    let upper = label.trim().to_ascii_uppercase();
    let exg = ["EOG", "EMG", "ECG", "EKG"]
        .iter()
        .any(|p| upper.starts_with(p));
    if exg {
        (-EXG_RANGE_UV, EXG_RANGE_UV)
    } else {
        (-EEG_RANGE_UV, EEG_RANGE_UV)
    }
}

/// The 10-10 name of an EEG label or name: `EEG-0` → `FC3` (the 2a numbering), `EEG-C3` or
/// `c3` → `C3`, `T3` → `T7`. `None` for non-EEG labels and unknown names.
pub fn standard_name(label_or_name: &str) -> Option<&'static str> {
    let s = label_or_name.trim();
    let upper = s.to_ascii_uppercase();
    if ["EOG", "EMG", "ECG", "EKG"]
        .iter()
        .any(|p| upper.starts_with(p))
    {
        return None;
    }
    let rest = if upper.starts_with("EEG") {
        s[3..].trim_start_matches([' ', '-', ':', '_'])
    } else {
        s
    };
    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        // The 2a files number the non-10-20 electrodes EEG-0 … EEG-16 in file order.
        let n: usize = rest.parse().ok()?;
        let mut numbered = BCI_IV_2A_LABELS[..22]
            .iter()
            .zip(BCI_IV_2A_NAMES)
            .filter(|(label, _)| label[4..].bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, name)| name);
        return numbered.nth(n);
    }
    lookup_10_10(rest)
}

/// Topographic-map position of an EEG label or name (see the module docs for the frame).
pub fn position(label_or_name: &str) -> Option<[f64; 2]> {
    standard_name(label_or_name).map(projected)
}

/// Position on the unit sphere (x right, y nose, z up through Cz) of an EEG label or name.
pub fn position_3d(label_or_name: &str) -> Option<[f64; 3]> {
    position(label_or_name).map(unproject)
}

/// The point of the unit sphere whose azimuthal-equidistant projection (in the frame of
/// [`position`]) is `p`; radii above 1 lie below the outer ring (mastoids, eyes).
pub fn unproject(p: [f64; 2]) -> [f64; 3] {
    let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
    let theta = r * OUTER_RING_RAD;
    if r == 0.0 {
        return [0.0, 0.0, 1.0];
    }
    let s = theta.sin() / r;
    [p[0] * s, p[1] * s, theta.cos()]
}

fn lookup_10_10(name: &str) -> Option<&'static str> {
    let name = OLD_NAMES
        .iter()
        .find(|(old, _)| old.eq_ignore_ascii_case(name))
        .map_or(name, |(_, new)| new);
    NAMES_10_10
        .iter()
        .copied()
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// Projected position of a canonical name from [`NAMES_10_10`].
fn projected(name: &'static str) -> [f64; 2] {
    let split = name
        .find(|c: char| c.is_ascii_digit() || c == 'z')
        .unwrap_or(name.len());
    let (prefix, column) = name.split_at(split);
    // Rows in 10 % steps from the central line, positive towards the nose.
    let row: f64 = match prefix {
        "N" => 5.0,
        "Fp" => 4.0,
        "AF" => 3.0,
        "F" => 2.0,
        "FC" | "FT" => 1.0,
        "C" | "T" => 0.0,
        "CP" | "TP" => -1.0,
        "P" => -2.0,
        "PO" => -3.0,
        "O" => -4.0,
        _ => -5.0, // "I"
    };
    if column == "z" {
        return [0.0, row / 4.0];
    }
    let digit: u32 = column.parse().unwrap_or(1);
    let left = digit % 2 == 1;
    // Steps from the midline: 1/2 → 1, 3/4 → 2, 5/6 → 3, 7/8 → 4 (outer ring), 9/10 → 5; the
    // Fp, O and I rows have only their outer-ring electrodes, numbered 1/2.
    let step = if matches!(prefix, "Fp" | "O" | "I") {
        4.0
    } else {
        f64::from(digit.div_ceil(2))
    };
    // Outer-ring point of the row: T7 at 180°, each row 18° further towards the nose or inion
    // (the I row lies below the O row, on a lower ring).
    let ring_row = row.clamp(-4.0, 4.0);
    let angle = if left {
        PI - ring_row * PI / 10.0
    } else {
        ring_row * PI / 10.0
    };
    let ring_radius = if prefix == "I" || prefix == "N" {
        1.25
    } else {
        1.0
    };
    let outer = [ring_radius * angle.cos(), ring_radius * angle.sin()];
    let mid = [0.0, row / 4.0];
    let f = step / 4.0;
    [
        mid[0] + f * (outer[0] - mid[0]),
        mid[1] + f * (outer[1] - mid[1]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 2], b: [f64; 2]) -> bool {
        (a[0] - b[0]).abs() < 1e-12 && (a[1] - b[1]).abs() < 1e-12
    }

    #[test]
    fn numbered_2a_labels_map_to_their_10_20_names() {
        let names: Vec<_> = BCI_IV_2A_LABELS[..22]
            .iter()
            .map(|l| standard_name(l).unwrap())
            .collect();
        assert_eq!(names, BCI_IV_2A_NAMES);
        assert_eq!(standard_name("EEG-16"), Some("POz"));
        assert_eq!(standard_name("EEG-17"), None);
        assert_eq!(standard_name("EOG-left"), None);
        assert_eq!(standard_name("eeg:cz"), Some("Cz"));
        assert_eq!(standard_name("T3"), Some("T7"));
    }

    #[test]
    fn positions_follow_the_idealised_sphere() {
        assert!(close(position("Cz").unwrap(), [0.0, 0.0]));
        assert!(close(position("EEG-C3").unwrap(), [-0.5, 0.0]));
        assert!(close(position("EEG-5").unwrap(), [-0.75, 0.0])); // C5
        assert!(close(position("EEG-Fz").unwrap(), [0.0, 0.5]));
        assert!(close(position("EEG-16").unwrap(), [0.0, -0.75])); // POz
        assert!(close(position("T8").unwrap(), [1.0, 0.0]));
        let fp1 = position("Fp1").unwrap();
        assert!((fp1[0].hypot(fp1[1]) - 1.0).abs() < 1e-12 && fp1[0] < 0.0 && fp1[1] > 0.9);
        // Left/right mirror images.
        let (fc3, fc4) = (position("FC3").unwrap(), position("FC4").unwrap());
        assert!(close(fc3, [-fc4[0], fc4[1]]));
        assert!(position("EOG-left").is_none());
        assert!(position("X1").is_none());
    }

    #[test]
    fn sphere_positions_are_unit_vectors_at_the_right_angle() {
        for name in BCI_IV_2A_NAMES {
            let p = position_3d(name).unwrap();
            let norm = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "{name}");
        }
        // C3 is 36° (two 10 % steps) from Cz.
        let c3 = position_3d("C3").unwrap();
        assert!((c3[2] - (0.2 * PI).cos()).abs() < 1e-12 && c3[0] < 0.0);
        let t7 = position_3d("T7").unwrap();
        assert!((t7[2] - (0.4 * PI).cos()).abs() < 1e-12);
    }

    #[test]
    fn channel_types_and_ranges() {
        assert!(BCI_IV_2A_LABELS[..22].iter().all(|l| is_eeg(l)));
        assert!(BCI_IV_2A_LABELS[22..].iter().all(|l| !is_eeg(l)));
        assert!(is_eeg("C3") && !is_eeg("ECG") && !is_eeg("STATUS") && !is_eeg("EMG-1"));
        assert_eq!(physical_range("EEG-Cz"), (-100.0, 100.0));
        assert_eq!(physical_range("EOG-left"), (-1000.0, 1000.0));
    }
}
