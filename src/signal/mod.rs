//! Signals: recording formats, filters, epoching and synthetic data. Plain synchronous code.

pub mod bnci;
pub mod epochs;
pub mod filter;
pub mod gdf;
pub mod labels;
pub mod mat;
pub mod montage;
pub mod recording;
pub mod spectrum;
pub mod synth;

pub use recording::{Event, Recording};

use std::ops::Range;

/// `ranges` without the empty ones, sorted, with overlapping or touching ones merged: the
/// union as disjoint runs (gap runs of several channels, filter spans of several windows).
pub fn merge_ranges(ranges: impl IntoIterator<Item = Range<usize>>) -> Vec<Range<usize>> {
    let mut all: Vec<Range<usize>> = ranges.into_iter().filter(|r| !r.is_empty()).collect();
    all.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(all.len());
    for r in all {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}
