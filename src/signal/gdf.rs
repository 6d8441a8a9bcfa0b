//! GDF, the General Data Format for biosignals: a reader for versions 1.x and 2.x up to 2.51 and
//! a GDF 2.10 writer (int16, 1-second records where the length allows, event table mode 3).
//!
//! Layouts follow the GDF specification (Schlögl, GDF v2.51) and were cross-checked against
//! MNE-Python's `_read_gdf_header` and biosig's `sopen`. A GDF file is
//!
//! ```text
//! fixed header (256 bytes) | channel headers (256 bytes × NS, field-major) | header 3 (2.x TLV)
//! | data records (each channel's samples in turn) | event table (optional)
//! ```
//!
//! Samples equal to a channel's digital minimum mark missing data and read back as NaN; voltage
//! channels are converted to microvolts.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::signal::epochs;
use crate::signal::recording::{Event, Recording};

const BLOCK: usize = 256;

/// GDF 2.x physical dimension code of volt; the low 5 bits hold the decimal prefix.
const UNIT_VOLT: u16 = 4256;
/// GDF 2.x physical dimension code of microvolt (`UNIT_VOLT` + prefix 19, 10⁻⁶).
pub const UNIT_MICROVOLT: u16 = 4275;

/// When the recording started, as the file stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum StartTime {
    /// GDF 2.x: days since 0000-01-00 as 32.32 fixed point (MATLAB's `datenum` × 2³²); 0 = unknown.
    Gdf2(u64),
    /// GDF 1.x: the 16-character text `YYYYMMDDhhmmsscc`.
    Gdf1(String),
}

/// One channel's header, for the channels that were decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct GdfChannel {
    pub label: String,
    pub transducer: String,
    /// GDF 2.x physical dimension code (4275 = µV); 0 in GDF 1.x or when unspecified.
    pub unit_code: u16,
    /// The textual unit (GDF 1.x, and the obsolete 2.x field); often empty in 2.x.
    pub unit_text: String,
    /// Factor from the physical unit to microvolts; `None` for a non-voltage or unknown unit,
    /// whose samples are then left in their physical unit.
    pub to_microvolts: Option<f64>,
    pub physical_min: f64,
    pub physical_max: f64,
    pub digital_min: f64,
    pub digital_max: f64,
    /// Prefilter settings in Hz (GDF 2.x; NaN when unknown or in 1.x).
    pub lowpass: f32,
    pub highpass: f32,
    pub notch: f32,
    pub samples_per_record: u32,
    /// GDF data type code (3 = int16, 16 = float32, …).
    pub data_type: u32,
}

/// A parsed GDF file.
#[derive(Debug, Clone)]
pub struct GdfFile {
    /// The version text after `GDF `, e.g. `2.10`.
    pub version: String,
    pub patient: String,
    pub recording_id: String,
    pub start_time: StartTime,
    pub n_records: u64,
    /// Seconds per data record.
    pub record_duration: f64,
    /// Headers of the decoded channels, in the order of `recording.labels`.
    pub channels: Vec<GdfChannel>,
    pub recording: Recording,
    /// Header 3 tag 1: free-text descriptions of user event codes 1, 2, … (empty strings left out).
    pub event_descriptions: BTreeMap<u16, String>,
    /// The event table's sampling rate as stored; `None` when the file has no event table.
    pub event_rate: Option<f64>,
    /// The gaps (samples at the channel's digital minimum, now NaN) of each row of
    /// `recording.data` that has any, as maximal runs: found while decoding, so that callers
    /// need not scan 100 MB of signal for NaN again.
    pub gaps: Vec<(usize, Vec<Range<usize>>)>,
}

/// Reads a GDF file with all its channels.
pub fn read(path: &Path) -> Result<GdfFile> {
    read_channels(path, |_| true)
}

/// Reads a GDF file, decoding only the channels whose label `keep` accepts.
pub fn read_channels(path: &Path, keep: impl FnMut(&str) -> bool) -> Result<GdfFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_channels(&bytes, &path.display().to_string(), keep)
}

/// Parses a whole GDF file held in memory; `name` identifies it in error messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<GdfFile> {
    parse_channels(bytes, name, |_| true)
}

/// Parses a GDF file held in memory, decoding only the channels whose label `keep` accepts.
///
/// Events attached to a channel that is not kept are dropped; the others have their channel
/// number renumbered to the kept channels (1-based, 0 = all channels).
pub fn parse_channels(bytes: &[u8], name: &str, keep: impl FnMut(&str) -> bool) -> Result<GdfFile> {
    parse_channels_into(bytes, name, keep, Vec::new())
}

/// The labels of the channels `keep` accepts and their common sampling rate, from the headers
/// alone: `bytes` may end after them (a prefix of the file is enough).
pub fn header_channels(
    bytes: &[u8],
    name: &str,
    keep: impl FnMut(&str) -> bool,
) -> Result<(Vec<String>, f64)> {
    let b = Bytes { b: bytes, name };
    let fixed = FixedHeader::parse(&b)?;
    let layouts = channel_layouts(&b, &fixed)?;
    let (selected, rate) = select_channels(&b, &layouts, &fixed, keep)?;
    let labels = selected
        .iter()
        .map(|&i| layouts[i].channel.label.clone())
        .collect();
    Ok((labels, rate))
}

/// [`parse_channels`], decoding into `buffer`'s memory: a caller reading many recordings
/// hands back the last one's data (`Array2::into_raw_vec_and_offset`) and saves the page
/// faults of a fresh allocation of hundreds of megabytes per file.
pub fn parse_channels_into(
    bytes: &[u8],
    name: &str,
    keep: impl FnMut(&str) -> bool,
    buffer: Vec<f64>,
) -> Result<GdfFile> {
    let b = Bytes { b: bytes, name };
    let fixed = FixedHeader::parse(&b)?;
    let layouts = channel_layouts(&b, &fixed)?;
    let record_size = layouts.iter().try_fold(0usize, |acc, l| {
        l.ty.size()
            .checked_mul(l.spr as usize)
            .and_then(|n| acc.checked_add(n))
            .ok_or_else(|| b.err("the data record size overflows"))
    })?;
    let n_records = usize::try_from(fixed.n_records)
        .map_err(|_| b.err(format!("record count `{}` is too large", fixed.n_records)))?;
    let data_end = record_size
        .checked_mul(n_records)
        .and_then(|n| n.checked_add(fixed.header_len))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            b.err(format!(
                "`{n_records}` records of `{record_size}` bytes after the `{}`-byte header need more than the file's `{}` bytes",
                fixed.header_len,
                bytes.len()
            ))
        })?;

    let (selected, rate) = select_channels(&b, &layouts, &fixed, keep)?;
    for &i in &selected {
        check_scaling(&b, &layouts[i].channel)?;
    }

    let spr = layouts[selected[0]].spr as usize;
    // Cannot overflow: n_records × spr ≤ n_records × record_size, which was checked above.
    let n_samples = n_records * spr;
    // Every element is decoded below, so old contents may stay; only growth is zeroed.
    let mut data = buffer;
    data.resize(selected.len() * n_samples, 0.0);
    let mut gaps: Vec<Vec<Range<usize>>> = vec![Vec::new(); selected.len()];
    if n_samples > 0 {
        let mut rows: Vec<(&mut [f64], &ChannelLayout, Scaling)> = data
            .chunks_exact_mut(n_samples)
            .zip(&selected)
            .map(|(row, &i)| (row, &layouts[i], Scaling::of(&layouts[i].channel)))
            .collect();
        // Blocks of records small enough to stay in cache while every channel is decoded
        // from them: files with one-sample records interleave all channels sample by sample.
        let block = (256 * 1024 / record_size).max(1);
        for first_record in (0..n_records).step_by(block) {
            let records = Records {
                bytes,
                first: fixed.header_len + first_record * record_size,
                stride: record_size,
                spr,
            };
            let n = block.min(n_records - first_record);
            for ((row, layout, scaling), runs) in rows.iter_mut().zip(gaps.iter_mut()) {
                let first = first_record * spr;
                let out = &mut row[first..(first_record + n) * spr];
                if layout
                    .ty
                    .decode_channel(&records, layout.offset, scaling, out)
                {
                    // Rare: find the runs in this block, joining one that crosses blocks.
                    for run in epochs::nan_runs(out) {
                        let run = first + run.start..first + run.end;
                        match runs.last_mut() {
                            Some(last) if last.end == run.start => last.end = run.end,
                            _ => runs.push(run),
                        }
                    }
                }
            }
        }
    }
    let data = Array2::from_shape_vec((selected.len(), n_samples), data)
        .expect("one row of n_samples per selected channel");

    let event_descriptions = if fixed.gdf2 {
        header3_event_descriptions(&b, fixed.header_len, fixed.n_channels)?
    } else {
        BTreeMap::new()
    };
    let (events, event_rate) = read_events(&b, &fixed, data_end, rate, &selected)?;

    let channels: Vec<GdfChannel> = selected
        .iter()
        .map(|&i| layouts[i].channel.clone())
        .collect();
    Ok(GdfFile {
        version: fixed.version,
        patient: fixed.patient,
        recording_id: fixed.recording_id,
        start_time: fixed.start_time,
        n_records: fixed.n_records,
        record_duration: fixed.record_duration,
        recording: Recording {
            labels: channels.iter().map(|c| c.label.clone()).collect(),
            rate,
            data,
            events,
        },
        channels,
        event_descriptions,
        event_rate,
        gaps: gaps
            .into_iter()
            .enumerate()
            .filter(|(_, runs)| !runs.is_empty())
            .collect(),
    })
}

/// Bounds-checked little-endian access to the file, with errors naming it.
struct Bytes<'a> {
    b: &'a [u8],
    name: &'a str,
}

impl Bytes<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::malformed(self.name, message)
    }

    fn array<const N: usize>(&self, offset: usize, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        let slice = self.slice(offset, N, what)?;
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn slice(&self, offset: usize, len: usize, what: &str) -> Result<&[u8]> {
        offset
            .checked_add(len)
            .and_then(|end| self.b.get(offset..end))
            .ok_or_else(|| {
                self.err(format!(
                    "file of `{}` bytes ends inside the {what} at byte `{offset}`",
                    self.b.len()
                ))
            })
    }

    fn u8(&self, offset: usize, what: &str) -> Result<u8> {
        Ok(self.array::<1>(offset, what)?[0])
    }
    fn u16(&self, offset: usize, what: &str) -> Result<u16> {
        self.array(offset, what).map(u16::from_le_bytes)
    }
    fn u24(&self, offset: usize, what: &str) -> Result<u32> {
        let [a, b, c] = self.array(offset, what)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }
    fn u32(&self, offset: usize, what: &str) -> Result<u32> {
        self.array(offset, what).map(u32::from_le_bytes)
    }
    fn i64(&self, offset: usize, what: &str) -> Result<i64> {
        self.array(offset, what).map(i64::from_le_bytes)
    }
    fn u64(&self, offset: usize, what: &str) -> Result<u64> {
        self.array(offset, what).map(u64::from_le_bytes)
    }
    fn f32(&self, offset: usize, what: &str) -> Result<f32> {
        self.array(offset, what).map(f32::from_le_bytes)
    }
    fn f64(&self, offset: usize, what: &str) -> Result<f64> {
        self.array(offset, what).map(f64::from_le_bytes)
    }
    fn text(&self, offset: usize, len: usize, what: &str) -> Result<String> {
        self.slice(offset, len, what).map(decode_text)
    }
}

/// Header text up to the first NUL, trimmed; UTF-8 when valid, Latin-1 otherwise (`µ` = 0xB5).
fn decode_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&c| char::from(c)).collect(),
    };
    text.trim().to_string()
}

struct FixedHeader {
    version: String,
    /// Version × 100, e.g. 210 for 2.10, so that comparisons are exact.
    version_code: u32,
    gdf2: bool,
    patient: String,
    recording_id: String,
    start_time: StartTime,
    header_len: usize,
    n_records: u64,
    record_duration: f64,
    n_channels: usize,
}

impl FixedHeader {
    fn parse(b: &Bytes) -> Result<Self> {
        let magic = b.slice(0, 8, "fixed header")?;
        if &magic[..4] != b"GDF " {
            return Err(b.err(format!(
                "not a GDF file (magic `{}`)",
                String::from_utf8_lossy(&magic[..4]).escape_debug()
            )));
        }
        let version = decode_text(&magic[4..]);
        let version_code = version
            .parse::<f64>()
            .ok()
            .map(|v| (v * 100.0).round())
            .filter(|v| (100.0..=251.0).contains(v))
            .ok_or_else(|| {
                b.err(format!(
                    "unsupported GDF version `{version}` (1.x to 2.51 are read)"
                ))
            })? as u32;
        b.slice(0, BLOCK, "fixed header")?;
        // biosig and MNE read 1.90 onwards with the 2.x layout.
        let gdf2 = version_code >= 190;

        let (patient, recording_id, start_time, header_len, n_channels) = if gdf2 {
            let blocks = b.u16(184, "header length")?;
            (
                b.text(8, 66, "patient id")?,
                b.text(88, 64, "recording id")?,
                StartTime::Gdf2(b.u64(168, "start time")?),
                usize::from(blocks) * BLOCK,
                usize::from(b.u16(252, "channel count")?),
            )
        } else {
            let len = b.i64(184, "header length")?;
            let ns = b.u32(252, "channel count")?;
            (
                b.text(8, 80, "patient id")?,
                b.text(88, 80, "recording id")?,
                StartTime::Gdf1(b.text(168, 16, "start time")?),
                usize::try_from(len)
                    .map_err(|_| b.err(format!("header length `{len}` is out of range")))?,
                usize::try_from(ns)
                    .map_err(|_| b.err(format!("channel count `{ns}` is too large")))?,
            )
        };
        if n_channels == 0 {
            return Err(b.err("the file declares zero channels"));
        }
        let needed = n_channels
            .checked_add(1)
            .and_then(|n| n.checked_mul(BLOCK))
            .ok_or_else(|| b.err(format!("channel count `{n_channels}` is too large")))?;
        if header_len < needed {
            return Err(b.err(format!(
                "header length `{header_len}` is shorter than the `{needed}` bytes that `{n_channels}` channel headers need"
            )));
        }
        if header_len > b.b.len() {
            return Err(b.err(format!(
                "file of `{}` bytes ends inside the `{header_len}`-byte header",
                b.b.len()
            )));
        }

        let n_records = b.i64(236, "record count")?;
        let n_records = u64::try_from(n_records).map_err(|_| {
            b.err(format!(
                "record count `{n_records}` is negative (unknown length)"
            ))
        })?;
        let record_duration = if gdf2 && version_code >= 221 {
            b.f64(244, "record duration")?
        } else {
            let num = b.u32(244, "record duration")?;
            let den = b.u32(248, "record duration")?;
            if num == 0 || den == 0 {
                return Err(b.err(format!("record duration `{num}/{den}` s is not positive")));
            }
            f64::from(num) / f64::from(den)
        };
        if !(record_duration.is_finite() && record_duration > 0.0) {
            return Err(b.err(format!(
                "record duration `{record_duration}` s is not positive"
            )));
        }
        Ok(FixedHeader {
            version,
            version_code,
            gdf2,
            patient,
            recording_id,
            start_time,
            header_len,
            n_records,
            record_duration,
            n_channels,
        })
    }
}

/// The sample encodings GDF defines for data records (bit-packed types are not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl SampleType {
    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::I8,
            2 => Self::U8,
            3 => Self::I16,
            4 => Self::U16,
            5 => Self::I32,
            6 => Self::U32,
            7 => Self::I64,
            8 => Self::U64,
            16 => Self::F32,
            17 => Self::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }

    /// Decodes the samples at `offset` in each record of `records` into `out` (as many records
    /// as `out` holds `spr`-sample chunks); true if any was a gap.
    fn decode_channel(
        self,
        records: &Records,
        offset: usize,
        scaling: &Scaling,
        out: &mut [f64],
    ) -> bool {
        // One monomorphised loop per type: this is the hot path of reading a recording.
        match self {
            Self::I8 => records.decode(out, offset, scaling, |b: [u8; 1]| f64::from(b[0] as i8)),
            Self::U8 => records.decode(out, offset, scaling, |b: [u8; 1]| f64::from(b[0])),
            Self::I16 => records.decode(out, offset, scaling, |b| f64::from(i16::from_le_bytes(b))),
            Self::U16 => records.decode(out, offset, scaling, |b| f64::from(u16::from_le_bytes(b))),
            Self::I32 => records.decode(out, offset, scaling, |b| f64::from(i32::from_le_bytes(b))),
            Self::U32 => records.decode(out, offset, scaling, |b| f64::from(u32::from_le_bytes(b))),
            // 64-bit integers beyond 2⁵³ lose precision; no amplifier gets near that.
            Self::I64 => records.decode(out, offset, scaling, |b| i64::from_le_bytes(b) as f64),
            Self::U64 => records.decode(out, offset, scaling, |b| u64::from_le_bytes(b) as f64),
            Self::F32 => records.decode(out, offset, scaling, |b| f64::from(f32::from_le_bytes(b))),
            Self::F64 => records.decode(out, offset, scaling, f64::from_le_bytes),
        }
    }
}

/// A run of data records.
struct Records<'a> {
    bytes: &'a [u8],
    /// Byte offset of the first record.
    first: usize,
    /// Bytes per record.
    stride: usize,
    spr: usize,
}

impl Records<'_> {
    /// The caller has checked that every record lies within `bytes`. True if any sample was
    /// at the digital minimum (a gap).
    fn decode<const N: usize>(
        &self,
        out: &mut [f64],
        offset: usize,
        scaling: &Scaling,
        value: impl Fn([u8; N]) -> f64,
    ) -> bool {
        let mut gap = false;
        for (r, out) in out.chunks_exact_mut(self.spr).enumerate() {
            let start = self.first + r * self.stride + offset;
            let samples = &self.bytes[start..start + self.spr * N];
            for (o, sample) in out.iter_mut().zip(samples.chunks_exact(N)) {
                if let Some(sample) = sample.first_chunk::<N>() {
                    let raw = value(*sample);
                    gap |= raw == scaling.digital_min;
                    *o = scaling.apply(raw);
                }
            }
        }
        gap
    }
}

/// Digital → physical (→ µV) map of one channel; the digital minimum marks a gap.
struct Scaling {
    digital_min: f64,
    physical_min: f64,
    gain: f64,
    to_microvolts: f64,
}

impl Scaling {
    fn of(ch: &GdfChannel) -> Self {
        Scaling {
            digital_min: ch.digital_min,
            physical_min: ch.physical_min,
            gain: (ch.physical_max - ch.physical_min) / (ch.digital_max - ch.digital_min),
            to_microvolts: ch.to_microvolts.unwrap_or(1.0),
        }
    }

    fn apply(&self, raw: f64) -> f64 {
        if raw == self.digital_min {
            f64::NAN
        } else {
            // Physical value first, then the unit: the offset cancels before any scaling.
            ((raw - self.digital_min) * self.gain + self.physical_min) * self.to_microvolts
        }
    }
}

struct ChannelLayout {
    channel: GdfChannel,
    ty: SampleType,
    spr: u32,
    /// Byte offset of this channel's samples within a data record.
    offset: usize,
}

/// Reads every channel header (each field is stored for all channels before the next field).
fn channel_layouts(b: &Bytes, fixed: &FixedHeader) -> Result<Vec<ChannelLayout>> {
    let ns = fixed.n_channels;
    // Field offsets within one 256-byte channel header; the file stores field `f` of channel
    // `i` at 256 + ns × offset(f) + i × size(f). Both versions share most offsets.
    let at = |field_offset: usize, size: usize, i: usize| BLOCK + ns * field_offset + i * size;
    let mut layouts = Vec::with_capacity(ns);
    let mut offset = 0usize;
    for i in 0..ns {
        let label = b.text(at(0, 16, i), 16, "channel labels")?;
        let transducer = b.text(at(16, 80, i), 80, "transducer types")?;
        let physical_min = b.f64(at(104, 8, i), "physical minima")?;
        let physical_max = b.f64(at(112, 8, i), "physical maxima")?;
        let spr = b.u32(at(216, 4, i), "samples per record")?;
        let type_code = b.u32(at(220, 4, i), "data types")?;
        let channel = if fixed.gdf2 {
            let unit_text = b.text(at(96, 6, i), 6, "physical dimensions")?;
            let unit_code = b.u16(at(102, 2, i), "physical dimension codes")?;
            let to_microvolts = if unit_code == 0 {
                microvolts_from_text(&unit_text)
            } else {
                microvolts_from_code(unit_code).map_err(|prefix| {
                    b.err(format!(
                        "channel `{label}` has physical dimension code `{unit_code}` with unknown decimal prefix `{prefix}`"
                    ))
                })?
            };
            GdfChannel {
                transducer,
                unit_code,
                to_microvolts,
                unit_text,
                physical_min,
                physical_max,
                digital_min: b.f64(at(120, 8, i), "digital minima")?,
                digital_max: b.f64(at(128, 8, i), "digital maxima")?,
                lowpass: b.f32(at(204, 4, i), "lowpass settings")?,
                highpass: b.f32(at(208, 4, i), "highpass settings")?,
                notch: b.f32(at(212, 4, i), "notch settings")?,
                samples_per_record: spr,
                data_type: type_code,
                label,
            }
        } else {
            let unit_text = b.text(at(96, 8, i), 8, "physical dimensions")?;
            GdfChannel {
                transducer,
                unit_code: 0,
                to_microvolts: microvolts_from_text(&unit_text),
                unit_text,
                physical_min,
                physical_max,
                digital_min: b.i64(at(120, 8, i), "digital minima")? as f64,
                digital_max: b.i64(at(128, 8, i), "digital maxima")? as f64,
                lowpass: f32::NAN,
                highpass: f32::NAN,
                notch: f32::NAN,
                samples_per_record: spr,
                data_type: type_code,
                label,
            }
        };
        let ty = SampleType::from_code(type_code).ok_or_else(|| {
            b.err(format!(
                "channel `{}` has unknown data type `{type_code}`",
                channel.label
            ))
        })?;
        layouts.push(ChannelLayout {
            channel,
            ty,
            spr,
            offset,
        });
        offset = ty
            .size()
            .checked_mul(spr as usize)
            .and_then(|n| offset.checked_add(n))
            .ok_or_else(|| b.err("the data record size overflows"))?;
    }
    Ok(layouts)
}

/// Microvolt factor of a GDF 2.x physical dimension code: `Ok(None)` for non-voltage units,
/// `Err(prefix)` for a voltage with an undefined decimal prefix.
fn microvolts_from_code(code: u16) -> std::result::Result<Option<f64>, u16> {
    if code & !0x1F != UNIT_VOLT {
        return Ok(None);
    }
    let prefix = code & 0x1F;
    // Decimal prefix table of the GDF specification (biosig's DecimalFactors.txt).
    let exponent: i32 = match prefix {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=10 => 3 * (i32::from(prefix) - 2),
        16 => -1,
        17 => -2,
        18..=25 => -3 * (i32::from(prefix) - 17),
        _ => return Err(prefix),
    };
    Ok(Some(10f64.powi(exponent + 6)))
}

fn microvolts_from_text(unit: &str) -> Option<f64> {
    match unit {
        "V" => Some(1e6),
        "mV" => Some(1e3),
        "uV" | "µV" | "μV" => Some(1.0),
        "nV" => Some(1e-3),
        _ => None,
    }
}

fn check_scaling(b: &Bytes, ch: &GdfChannel) -> Result<()> {
    let values = [
        ch.physical_min,
        ch.physical_max,
        ch.digital_min,
        ch.digital_max,
    ];
    if values.iter().any(|v| !v.is_finite()) || ch.digital_min == ch.digital_max {
        return Err(b.err(format!(
            "channel `{}` has unusable scaling: physical `{}`..`{}`, digital `{}`..`{}`",
            ch.label, ch.physical_min, ch.physical_max, ch.digital_min, ch.digital_max
        )));
    }
    Ok(())
}

/// The one sampling rate of the selected channels (samples per record / record duration).
fn common_rate(
    b: &Bytes,
    layouts: &[ChannelLayout],
    selected: &[usize],
    duration: f64,
) -> Result<f64> {
    let rate_of = |i: usize| snap(f64::from(layouts[i].spr) / duration);
    let first = &layouts[selected[0]];
    if let Some(&other) = selected.iter().find(|&&i| layouts[i].spr != first.spr) {
        return Err(Error::Data(format!(
            "`{}`: channel `{}` samples at `{}` Hz but channel `{}` at `{}` Hz; select channels that share one rate",
            b.name,
            layouts[other].channel.label,
            rate_of(other),
            first.channel.label,
            rate_of(selected[0])
        )));
    }
    if first.spr == 0 {
        return Err(b.err(format!(
            "channel `{}` has zero samples per record",
            first.channel.label
        )));
    }
    Ok(rate_of(selected[0]))
}

/// The channels `keep` accepts (at least one) and their common sampling rate.
fn select_channels(
    b: &Bytes,
    layouts: &[ChannelLayout],
    fixed: &FixedHeader,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<(Vec<usize>, f64)> {
    let selected: Vec<usize> = (0..layouts.len())
        .filter(|&i| keep(&layouts[i].channel.label))
        .collect();
    if selected.is_empty() {
        return Err(Error::Invalid(format!(
            "no channel of `{}` was selected",
            b.name
        )));
    }
    let rate = common_rate(b, layouts, &selected, fixed.record_duration)?;
    Ok((selected, rate))
}

/// Rounds a rate to the nearest integer when it is one up to floating-point noise
/// (a float64 record duration of 0.004 s means 250 Hz).
fn snap(rate: f64) -> f64 {
    let rounded = rate.round();
    if (rate - rounded).abs() <= 1e-9 * rate.abs() {
        rounded
    } else {
        rate
    }
}

/// Header 3: tag (u8) + length (u24) + value blocks between the channel headers and the end of
/// the header; tag 0 ends the list. Tag 1 holds NUL-separated descriptions of event codes 1, 2, …
fn header3_event_descriptions(
    b: &Bytes,
    header_len: usize,
    n_channels: usize,
) -> Result<BTreeMap<u16, String>> {
    let mut descriptions = BTreeMap::new();
    // Both were checked against the file length when the fixed header was parsed.
    let mut pos = (n_channels + 1) * BLOCK;
    while pos + 4 <= header_len {
        let tag = b.u8(pos, "header 3")?;
        if tag == 0 {
            break;
        }
        let len = b.u24(pos + 1, "header 3")? as usize;
        let end = pos + 4 + len;
        if end > header_len {
            return Err(b.err(format!(
                "header 3 tag `{tag}` of `{len}` bytes at byte `{pos}` runs past the header end `{header_len}`"
            )));
        }
        if tag == 1 {
            let value = &b.b[pos + 4..end];
            for (k, text) in value.split(|&c| c == 0).enumerate() {
                let Ok(code) = u16::try_from(k + 1) else {
                    break;
                };
                let text = decode_text(text);
                if !text.is_empty() {
                    descriptions.insert(code, text);
                }
            }
        }
        pos = end;
    }
    Ok(descriptions)
}

/// The event table after the data records, in mode 1 (position, type), 3 (+ channel,
/// duration) or 7 (mode 3 + 8-byte timestamps). Positions are 1-based on disk.
fn read_events(
    b: &Bytes,
    fixed: &FixedHeader,
    start: usize,
    rate: f64,
    selected: &[usize],
) -> Result<(Vec<Event>, Option<f64>)> {
    if start == b.b.len() {
        return Ok((Vec::new(), None));
    }
    let what = "event table header";
    let mode = b.u8(start, what)?;
    // The count and rate fields swapped sizes in version 1.94.
    let (count, event_rate) = if fixed.version_code < 194 {
        (
            b.u32(start + 4, what)? as usize,
            f64::from(b.u24(start + 1, what)?),
        )
    } else {
        (
            b.u24(start + 1, what)? as usize,
            f64::from(b.f32(start + 4, what)?),
        )
    };
    let entry_size = match mode {
        1 => 6,
        3 => 12,
        7 => 20,
        _ => {
            return Err(b.err(format!(
                "unknown event table mode `{mode}` at byte `{start}`"
            )))
        }
    };
    let table = start + 8;
    let available = b.b.len() - table.min(b.b.len());
    if count.checked_mul(entry_size).is_none_or(|n| n > available) {
        return Err(b.err(format!(
            "event table of `{count}` events in mode `{mode}` needs `{}` bytes but `{available}` remain",
            count.saturating_mul(entry_size)
        )));
    }
    // Event positions count in the event table's rate; convert when it differs from the
    // signal's (0 or non-finite means "same as the signal" in practice).
    let factor = if event_rate.is_finite() && event_rate > 0.0 && event_rate != rate {
        rate / event_rate
    } else {
        1.0
    };
    let rescale = |v: u64| -> u64 {
        if factor == 1.0 {
            v
        } else {
            (v as f64 * factor).round() as u64
        }
    };
    // Map file channel numbers (1-based) to the kept channels' numbers.
    let mut renumber = vec![None; fixed.n_channels + 1];
    renumber[0] = Some(0u16);
    for (k, &i) in selected.iter().enumerate() {
        renumber[i + 1] = u16::try_from(k + 1).ok();
    }

    let typ_at = table + 4 * count;
    let chn_at = typ_at + 2 * count;
    let dur_at = chn_at + 2 * count;
    let mut events = Vec::with_capacity(count);
    for k in 0..count {
        let position = b.u32(table + 4 * k, "event positions")?;
        if position == 0 {
            return Err(b.err(format!(
                "event `{k}` has position `0` (positions are 1-based)"
            )));
        }
        let code = b.u16(typ_at + 2 * k, "event types")?;
        let (channel, duration) = if mode == 1 {
            (0, 0)
        } else {
            let ch = b.u16(chn_at + 2 * k, "event channels")?;
            (ch, b.u32(dur_at + 4 * k, "event durations")?)
        };
        let Some(&slot) = renumber.get(usize::from(channel)) else {
            return Err(b.err(format!(
                "event `{k}` refers to channel `{channel}` but the file has `{}` channels",
                fixed.n_channels
            )));
        };
        let Some(channel) = slot else { continue };
        events.push(Event {
            position: rescale(u64::from(position) - 1),
            code,
            channel,
            duration: u32::try_from(rescale(u64::from(duration))).unwrap_or(u32::MAX),
        });
    }
    Ok((events, Some(event_rate)))
}

// ---------------------------------------------------------------------------------------------
// Writer

/// How the writer maps each channel's microvolts onto the int16 range.
#[derive(Debug, Clone, PartialEq)]
pub enum PhysicalRange {
    /// ±(largest finite |value|) per channel (±1 µV for an all-zero or all-NaN channel): no
    /// clipping, finest quantisation.
    Auto,
    /// One range in µV for every channel, e.g. `(-100.0, 100.0)` as in the BCI IV 2a files.
    Fixed(f64, f64),
    /// One range in µV per channel, in channel order.
    PerChannel(Vec<(f64, f64)>),
}

/// Header fields the writer takes from the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct GdfWriteOptions {
    /// Patient identification (66 bytes at most), e.g. `A01`.
    pub patient: String,
    /// Recording identification (64 bytes at most).
    pub recording_id: String,
    /// Start time in GDF 2.x form (see [`StartTime::Gdf2`]); 0 = unknown.
    pub start_time: u64,
    pub physical_range: PhysicalRange,
}

impl Default for GdfWriteOptions {
    fn default() -> Self {
        Self {
            patient: "X".to_string(),
            recording_id: String::new(),
            start_time: 0,
            physical_range: PhysicalRange::Auto,
        }
    }
}

const DIGITAL_MIN: f64 = -32768.0;
const DIGITAL_MAX: f64 = 32767.0;

/// Writes `rec` as GDF 2.10: int16 samples in µV (unit code 4275), digital range
/// -32768..32767, NaN written as the digital minimum (a gap) and finite values rounded and
/// clipped to -32767..32767 so that they never read back as gaps; event table mode 3.
///
/// Records last 1 s when the sample count allows; otherwise the record holds the largest
/// number of samples that divides both the sample count and the per-second rate, so no record
/// needs padding. The file is written to a temporary name and renamed.
pub fn write(path: &Path, rec: &Recording, opts: &GdfWriteOptions) -> Result<()> {
    let bytes = encode(rec, opts)?;
    write_atomic(path, &bytes)
}

/// The bytes of the GDF 2.10 file that [`write`] writes.
pub fn encode(rec: &Recording, opts: &GdfWriteOptions) -> Result<Vec<u8>> {
    let ns = rec.n_channels();
    assert_eq!(
        rec.labels.len(),
        ns,
        "recording labels and data rows differ"
    );
    if ns == 0 {
        return Err(Error::Invalid(
            "cannot write a GDF file without channels".into(),
        ));
    }
    let blocks = u16::try_from(ns + 1)
        .map_err(|_| Error::Invalid(format!("`{ns}` channels are too many for GDF")))?;
    let n_samples = rec.n_samples();
    let (spr, duration_num, duration_den) = record_layout(rec.rate, n_samples)?;
    let n_records = n_samples / spr;
    let ranges = physical_ranges(rec, &opts.physical_range)?;
    if rec.events.len() > 0xFF_FFFF {
        return Err(Error::Invalid(format!(
            "`{}` events exceed the GDF event table's 16777215",
            rec.events.len()
        )));
    }

    let header_len = usize::from(blocks) * BLOCK;
    let mut out = Vec::with_capacity(header_len + 2 * ns * n_samples + 8 + 12 * rec.events.len());
    out.extend_from_slice(b"GDF 2.10");
    put_text(&mut out, &opts.patient, 66, b' ', "patient id")?;
    out.extend_from_slice(&[0; 10]); // reserved
    out.extend_from_slice(&[0; 4]); // smoking/alcohol, weight, height, gender: unknown
    put_text(&mut out, &opts.recording_id, 64, b' ', "recording id")?;
    out.extend_from_slice(&[0; 16]); // recording location: unknown
    out.extend_from_slice(&opts.start_time.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // birthday: unknown
    out.extend_from_slice(&blocks.to_le_bytes());
    out.extend_from_slice(&[0; 6]); // patient classification
    out.extend_from_slice(b"bciops\0\0"); // equipment provider
    out.extend_from_slice(&[0; 6]); // reserved
    out.extend_from_slice(&[0; 6]); // head size: unknown
    out.extend_from_slice(&[0; 24]); // reference and ground electrode positions: unknown
    out.extend_from_slice(&(n_records as i64).to_le_bytes());
    out.extend_from_slice(&duration_num.to_le_bytes());
    out.extend_from_slice(&duration_den.to_le_bytes());
    out.extend_from_slice(&(ns as u16).to_le_bytes());
    out.extend_from_slice(&[0; 2]);
    debug_assert_eq!(out.len(), BLOCK);

    // Channel headers, field by field.
    for label in &rec.labels {
        put_text(&mut out, label, 16, b' ', "channel label")?;
    }
    out.resize(out.len() + 80 * ns, b' '); // transducer
    out.resize(out.len() + 6 * ns, 0); // obsolete textual unit
    for _ in 0..ns {
        out.extend_from_slice(&UNIT_MICROVOLT.to_le_bytes());
    }
    for &(lo, _) in &ranges {
        out.extend_from_slice(&lo.to_le_bytes());
    }
    for &(_, hi) in &ranges {
        out.extend_from_slice(&hi.to_le_bytes());
    }
    for _ in 0..ns {
        out.extend_from_slice(&DIGITAL_MIN.to_le_bytes());
    }
    for _ in 0..ns {
        out.extend_from_slice(&DIGITAL_MAX.to_le_bytes());
    }
    out.resize(out.len() + 68 * ns, 0); // reserved
    for _ in 0..3 * ns {
        out.extend_from_slice(&f32::NAN.to_le_bytes()); // lowpass, highpass, notch: unknown
    }
    for _ in 0..ns {
        out.extend_from_slice(&(spr as u32).to_le_bytes());
    }
    for _ in 0..ns {
        out.extend_from_slice(&3u32.to_le_bytes()); // int16
    }
    out.resize(out.len() + 12 * ns, 0); // electrode positions
    for _ in 0..ns {
        out.push(255); // impedance unknown (versions before 2.19)
        out.extend_from_slice(&[0; 19]);
    }
    debug_assert_eq!(out.len(), header_len);

    // Quantise channel by channel (rows are contiguous in memory), then interleave records.
    let mut digital = Vec::with_capacity(ns * n_samples);
    for (row, &(lo, hi)) in rec.data.rows().into_iter().zip(&ranges) {
        let gain = (DIGITAL_MAX - DIGITAL_MIN) / (hi - lo);
        digital.extend(row.iter().map(|&x| {
            let d = if x.is_nan() {
                DIGITAL_MIN
            } else {
                ((x - lo) * gain + DIGITAL_MIN)
                    .round()
                    .clamp(DIGITAL_MIN + 1.0, DIGITAL_MAX)
            };
            d as i16
        }));
    }
    let data_start = out.len();
    out.resize(data_start + 2 * ns * n_samples, 0);
    let chunks = out[data_start..].chunks_exact_mut(2 * spr);
    for (k, chunk) in chunks.enumerate() {
        // Chunk k is record k / ns, channel k % ns.
        let start = (k % ns) * n_samples + (k / ns) * spr;
        for (dst, d) in chunk.chunks_exact_mut(2).zip(&digital[start..start + spr]) {
            dst.copy_from_slice(&d.to_le_bytes());
        }
    }

    let n_events = rec.events.len() as u32;
    out.push(3);
    out.extend_from_slice(&n_events.to_le_bytes()[..3]);
    out.extend_from_slice(&(rec.rate as f32).to_le_bytes());
    for (k, e) in rec.events.iter().enumerate() {
        let position = u32::try_from(e.position + 1).map_err(|_| {
            Error::Invalid(format!(
                "event `{k}` position `{}` does not fit a GDF event table",
                e.position
            ))
        })?;
        out.extend_from_slice(&position.to_le_bytes());
    }
    for e in &rec.events {
        out.extend_from_slice(&e.code.to_le_bytes());
    }
    for e in &rec.events {
        out.extend_from_slice(&e.channel.to_le_bytes());
    }
    for e in &rec.events {
        out.extend_from_slice(&e.duration.to_le_bytes());
    }
    Ok(out)
}

fn put_text(out: &mut Vec<u8>, text: &str, len: usize, pad: u8, what: &str) -> Result<()> {
    if text.len() > len || text.contains('\0') {
        return Err(Error::Invalid(format!(
            "{what} `{}` does not fit GDF's {len} bytes without NUL",
            text.escape_debug()
        )));
    }
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + len - text.len(), pad);
    Ok(())
}

/// Samples per record and the record duration (numerator, denominator in seconds) for `rate`.
fn record_layout(rate: f64, n_samples: usize) -> Result<(usize, u32, u32)> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(Error::Invalid(format!(
            "sampling rate `{rate}` Hz cannot be written"
        )));
    }
    // The smallest whole number of seconds holding a whole number of samples.
    let (seconds, per_window) = (1u64..=1000)
        .find_map(|k| {
            let n = rate * k as f64;
            ((n - n.round()).abs() <= 1e-9 * n).then_some((k, n.round() as u64))
        })
        .filter(|&(_, n)| n > 0 && n <= u64::from(u32::MAX))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "sampling rate `{rate}` Hz is not a ratio GDF 2.10 can store exactly"
            ))
        })?;
    let spr = if n_samples == 0 {
        per_window
    } else {
        gcd(n_samples as u64, per_window)
    };
    // Record duration = seconds × spr / per_window, reduced.
    let num = seconds * spr;
    let g = gcd(num, per_window);
    let (num, den) = (num / g, per_window / g);
    let fits = |v: u64| u32::try_from(v).ok();
    match (fits(num), fits(den)) {
        (Some(num), Some(den)) => Ok((spr as usize, num, den)),
        _ => Err(Error::Invalid(format!(
            "sampling rate `{rate}` Hz gives a record duration GDF 2.10 cannot store"
        ))),
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn physical_ranges(rec: &Recording, range: &PhysicalRange) -> Result<Vec<(f64, f64)>> {
    let ranges: Vec<(f64, f64)> = match range {
        PhysicalRange::Auto => rec
            .data
            .rows()
            .into_iter()
            .map(|row| {
                let m = row
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold(0.0f64, |m, v| m.max(v.abs()));
                let m = if m > 0.0 { m } else { 1.0 };
                (-m, m)
            })
            .collect(),
        PhysicalRange::Fixed(lo, hi) => vec![(*lo, *hi); rec.n_channels()],
        PhysicalRange::PerChannel(v) => {
            if v.len() != rec.n_channels() {
                return Err(Error::Invalid(format!(
                    "`{}` physical ranges given for `{}` channels",
                    v.len(),
                    rec.n_channels()
                )));
            }
            v.clone()
        }
    };
    for (label, &(lo, hi)) in rec.labels.iter().zip(&ranges) {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::Invalid(format!(
                "physical range `{lo}`..`{hi}` µV of channel `{label}` is not an increasing finite interval"
            )));
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests;
