//! W&B's record log, the `.wandb` file: LevelDB's log format (32 KiB blocks of framed
//! records, a record that does not fit split into FIRST/MIDDLE/LAST pieces, a block tail too
//! short for a frame header zero-padded) behind a 7-byte file header, with W&B's own checksum:
//! zlib's CRC-32 of the piece's type byte followed by its data, unmasked (LevelDB itself uses
//! a masked CRC-32C). As `wandb/sdk/internal/datastore.py` (W&B 0.29) writes and scans it.

/// Block size; frames never cross a block boundary.
pub const BLOCK: usize = 32 * 1024;
/// checksum u32 LE, length u16 LE, type u8.
const FRAME_HEADER: usize = 7;
/// `:W&B`, magic 0xBEE1 (LE), version 0.
const FILE_HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xE1, 0xBE, 0];

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// A record log built in memory (a run's log is small), then written in one go.
pub struct RecordLog {
    bytes: Vec<u8>,
}

impl Default for RecordLog {
    fn default() -> Self {
        RecordLog::new()
    }
}

impl RecordLog {
    pub fn new() -> RecordLog {
        RecordLog {
            bytes: FILE_HEADER.to_vec(),
        }
    }

    /// Appends one record (a serialized protobuf message), split across blocks as needed.
    pub fn append(&mut self, data: &[u8]) {
        let mut left = BLOCK - self.bytes.len() % BLOCK;
        if left < FRAME_HEADER {
            self.bytes.resize(self.bytes.len() + left, 0);
            left = BLOCK;
        }
        if data.len() + FRAME_HEADER <= left {
            self.frame(FULL, data);
            return;
        }
        let (first, mut rest) = data.split_at(left - FRAME_HEADER);
        self.frame(FIRST, first);
        while rest.len() > BLOCK - FRAME_HEADER {
            let (middle, tail) = rest.split_at(BLOCK - FRAME_HEADER);
            self.frame(MIDDLE, middle);
            rest = tail;
        }
        self.frame(LAST, rest);
    }

    fn frame(&mut self, kind: u8, data: &[u8]) {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[kind]);
        crc.update(data);
        // A piece is at most a block long, so its length fits the u16 field.
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        self.bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.push(kind);
        self.bytes.extend_from_slice(data);
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a log back the way datastore.py's `scan_data` does, checking every frame.
    fn scan(bytes: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(&bytes[..7], &FILE_HEADER);
        let (mut at, mut out, mut partial) = (7, Vec::new(), Vec::new());
        while at < bytes.len() {
            let left = BLOCK - at % BLOCK;
            if left < FRAME_HEADER {
                assert!(bytes[at..at + left].iter().all(|b| *b == 0));
                at += left;
                continue;
            }
            let crc = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u16::from_le_bytes(bytes[at + 4..at + 6].try_into().unwrap()) as usize;
            let kind = bytes[at + 6];
            let data = &bytes[at + 7..at + 7 + len];
            let mut h = crc32fast::Hasher::new();
            h.update(&[kind]);
            h.update(data);
            assert_eq!(crc, h.finalize());
            assert!(at % BLOCK + 7 + len <= BLOCK, "a frame crosses a block");
            partial.extend_from_slice(data);
            if kind == FULL || kind == LAST {
                out.push(std::mem::take(&mut partial));
            }
            at += 7 + len;
        }
        out
    }

    #[test]
    fn records_of_every_size_round_trip_across_blocks() {
        let mut log = RecordLog::new();
        // Sizes that end a block exactly, leave less than a frame header, and span blocks.
        let sizes = [
            0,
            10,
            BLOCK - 7 - 7 - 17 - 7,
            3,
            2 * BLOCK + 5,
            BLOCK - 7,
            100,
        ];
        let records: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (0..*n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        for r in &records {
            log.append(r);
        }
        assert_eq!(scan(&log.into_bytes()), records);
    }
}
