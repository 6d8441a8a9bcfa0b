//! A continuous multichannel recording held in memory, whatever file it came from.

use ndarray::Array2;

/// One entry of a recording's event table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// 0-based sample index (GDF stores it 1-based on disk).
    pub position: u64,
    /// Event type code, e.g. 768 trial start, 769 left-hand cue, 1023 rejected trial.
    pub code: u16,
    /// 0 when the event concerns every channel.
    pub channel: u16,
    /// Duration in samples (0 when unknown).
    pub duration: u32,
}

/// A recording: channel labels, one sampling rate, data in microvolts, and events.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Channel labels as written in the file (e.g. `EEG-C3`, `EOG-left`).
    pub labels: Vec<String>,
    /// Sampling rate in Hz, the same for every channel.
    pub rate: f64,
    /// channels × samples, microvolts; NaN marks a gap (missing data).
    pub data: Array2<f64>,
    /// Events in file order.
    pub events: Vec<Event>,
}

impl Recording {
    pub fn n_channels(&self) -> usize {
        self.data.nrows()
    }

    pub fn n_samples(&self) -> usize {
        self.data.ncols()
    }
}
