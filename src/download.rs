//! Downloading the real BCI Competition IV 2a files (an edge: network I/O, blocking HTTP).
//!
//! Each file is fetched into `NAME.part` and renamed when complete and verified, so a reader
//! never takes a partial file. An interrupted transfer leaves its `.part`; the next run asks
//! the server for the rest (`Range: bytes=N-`) and appends, or starts over when the server
//! does not do ranges. Sizes and sha256 digests are checked when the manifest knows them.
//! Zip archives (the competition's GDF set) are unpacked after download.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

use crate::error::{Error, Result};

/// Where the files are published (overridable: `--gdf-url`, `--labels-url`, `--mat-url`).
pub const GDF_BASE_URL: &str = "https://www.bbci.de/competition/download/competition_iv/";
pub const LABELS_BASE_URL: &str = "https://www.bbci.de/competition/iv/results/ds2a/";
pub const MAT_BASE_URL: &str = "http://bnci-horizon-2020.eu/database/data-sets/001-2014/";

/// The GDF set and the true labels are zip archives; BNCI publishes one `.mat` per session.
pub const GDF_ARCHIVE: &str = "BCICIV_2a_gdf.zip";
pub const LABELS_ARCHIVE: &str = "true_labels.zip";

/// One file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// URL to fetch.
    pub url: String,
    /// Where to put it.
    pub dest: PathBuf,
    /// Expected size and sha256, when known.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    /// Unpack the members whose names end with one of these (e.g. `.gdf`) beside `dest`.
    pub unpack: Vec<String>,
}

/// Expected sizes and digests by file name: `{"A01T.mat": {"size": 1, "sha256": "…"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Manifest(pub BTreeMap<String, Expected>);

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expected {
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::malformed(
                path,
                format!(
                    "not a manifest (`{{\"NAME\": {{\"size\": N, \"sha256\": \"HEX\"}}}}`): {e}"
                ),
            )
        })
    }
}

/// What to download.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dest: PathBuf,
    pub gdf: bool,
    pub mat: bool,
    pub subjects: Vec<u8>,
    pub gdf_url: String,
    pub labels_url: String,
    pub mat_url: String,
}

fn join_url(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// The files of a plan: `DEST/gdf/` (GDF recordings and their true-label `.mat` files, which
/// share their names with the BNCI files) and `DEST/bnci/`.
pub fn items(plan: &Plan, manifest: &Manifest) -> Vec<Item> {
    let mut out = Vec::new();
    let expected = |name: &str| manifest.0.get(name).cloned().unwrap_or_default();
    let mut push = |url: String, dest: PathBuf, unpack: Vec<String>| {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let e = expected(&name);
        out.push(Item {
            url,
            dest,
            size: e.size,
            sha256: e.sha256,
            unpack,
        });
    };
    if plan.gdf {
        let dir = plan.dest.join("gdf");
        push(
            join_url(&plan.gdf_url, GDF_ARCHIVE),
            dir.join(GDF_ARCHIVE),
            vec![".gdf".into()],
        );
        push(
            join_url(&plan.labels_url, LABELS_ARCHIVE),
            dir.join(LABELS_ARCHIVE),
            vec![".mat".into()],
        );
    }
    if plan.mat {
        let dir = plan.dest.join("bnci");
        for s in &plan.subjects {
            for session in ['T', 'E'] {
                let name = format!("A{s:02}{session}.mat");
                push(join_url(&plan.mat_url, &name), dir.join(&name), Vec::new());
            }
        }
    }
    out
}

/// Progress of one transfer: (bytes so far, total if known).
pub type OnProgress<'a> = dyn FnMut(&Item, u64, Option<u64>) + 'a;

/// What happened to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already there (and verified when the manifest knows it).
    Present,
    /// Fetched; `resumed_from` bytes came from an earlier interrupted run.
    Downloaded { bytes: u64, resumed_from: u64 },
}

/// A blocking client with sane time limits.
pub fn client() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .user_agent(concat!("bciops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot build the HTTP client: {e}")))
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
        })
        .unwrap_or_else(|| url.to_owned())
}

fn failure(action: &'static str, what: &str, message: String) -> Error {
    Error::io(action, what, std::io::Error::other(message))
}

/// A request that did not get an answer: offline, DNS, refused, timed out.
fn unreachable(url: &str, e: &reqwest::Error) -> Error {
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    if e.is_connect() || e.is_timeout() {
        failure("reach", &host_of(url), format!("{cause} (offline?)"))
    } else {
        failure("download", url, cause)
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Checks a complete file against what the manifest knows.
fn verify(item: &Item, path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if let Some(size) = item.size {
        if len != size {
            return Err(failure(
                "verify",
                &item.url,
                format!("{len} bytes but the manifest says {size}; the download was removed"),
            ));
        }
    }
    if let Some(want) = &item.sha256 {
        let got = sha256_file(path)?;
        if !got.eq_ignore_ascii_case(want) {
            return Err(failure(
                "verify",
                &item.url,
                format!("sha256 {got} but the manifest says {want}; the download was removed"),
            ));
        }
    }
    Ok(())
}

/// Fetches one item (resuming a `.part`), verifies it and unpacks it.
pub fn fetch(
    client: &reqwest::blocking::Client,
    item: &Item,
    on_progress: &mut OnProgress<'_>,
) -> Result<Outcome> {
    if let Some(parent) = item.dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    if item.dest.is_file() {
        verify(item, &item.dest)?;
        unpack(item)?;
        return Ok(Outcome::Present);
    }
    let part = part_path(&item.dest);
    let have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let mut request = client.get(&item.url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().map_err(|e| unreachable(&item.url, &e))?;
    let status = response.status();
    let (mut file, start) = if status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0 {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .map_err(|e| Error::io("write", &part, e))?;
        (file, have)
    } else if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // The part already holds the whole file.
        return finish(item, &part, have, have, on_progress);
    } else if status.is_success() {
        let file = std::fs::File::create(&part).map_err(|e| Error::io("write", &part, e))?;
        (file, 0)
    } else {
        return Err(failure(
            "download",
            &item.url,
            format!("the server answered HTTP {status}"),
        ));
    };
    let total = response.content_length().map(|n| n + start).or(item.size);
    let mut done = start;
    let mut buf = vec![0u8; 1 << 16];
    on_progress(item, done, total);
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = file.flush();
                return Err(failure(
                    "download",
                    &item.url,
                    format!(
                        "interrupted after {done} bytes ({e}); `{}` is kept: run again to resume",
                        part.display()
                    ),
                ));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| Error::io("write", &part, e))?;
        done += n as u64;
        on_progress(item, done, total);
    }
    file.sync_all().map_err(|e| Error::io("write", &part, e))?;
    drop(file);
    if let Some(total) = total.filter(|_| response.content_length().is_some()) {
        if done < total {
            return Err(failure(
                "download",
                &item.url,
                format!(
                    "the connection closed after {done} of {total} bytes; `{}` is kept: run again to resume",
                    part.display()
                ),
            ));
        }
    }
    finish(item, &part, done, start, on_progress)
}

fn finish(
    item: &Item,
    part: &Path,
    bytes: u64,
    resumed_from: u64,
    on_progress: &mut OnProgress<'_>,
) -> Result<Outcome> {
    on_progress(item, bytes, Some(bytes));
    if let Err(e) = verify(item, part) {
        // A wrong file cannot be resumed into a right one.
        let _ = std::fs::remove_file(part);
        return Err(e);
    }
    std::fs::rename(part, &item.dest).map_err(|e| Error::io("rename into place", &item.dest, e))?;
    unpack(item)?;
    Ok(Outcome::Downloaded {
        bytes,
        resumed_from,
    })
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Unpacks the wanted members of a zip archive beside it (members already there are kept).
fn unpack(item: &Item) -> Result<()> {
    if item.unpack.is_empty() {
        return Ok(());
    }
    let file = std::fs::File::open(&item.dest).map_err(|e| Error::io("read", &item.dest, e))?;
    let dir = item.dest.parent().unwrap_or(Path::new("."));
    let want = |n: &str| {
        let lower = n.to_ascii_lowercase();
        item.unpack.iter().any(|ext| lower.ends_with(ext.as_str()))
    };
    // Each member streams from the archive on disk into its file: neither the archive (~440 MB
    // for the GDF set) nor a member is ever whole in memory.
    for_each_zip_member(
        std::io::BufReader::new(file),
        &item.dest.display().to_string(),
        want,
        |name, member| {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(());
            }
            crate::fsutil::write_atomic_with(&path, |out, tmp| member.copy_to(out, tmp))
        },
    )
}

/// The most a deflate stream expands: 258 bytes from a 2-bit code, about 1032 to 1. A member
/// claiming more than this times its compressed size is lying; it is refused before
/// anything is read for it.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The members of a zip archive in memory (stored or deflated) whose names `want` accepts, as
/// (file name without folders, bytes). Enough for the competition's archives; encryption and
/// other methods are refused by name.
pub fn zip_members(
    bytes: &[u8],
    name: &str,
    want: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for_each_zip_member(
        std::io::Cursor::new(bytes),
        name,
        want,
        |file_name, member| {
            let mut data = Vec::new();
            member.copy_to(&mut data, Path::new(file_name))?;
            out.push((file_name.to_owned(), data));
            Ok(())
        },
    )?;
    Ok(out)
}

/// One wanted member of an archive, its stated sizes checked; [`Member::copy_to`] unpacks it.
pub struct Member<'a> {
    /// The member's bytes, inflated when it is deflated (read from exactly its compressed span).
    reader: Box<dyn Read + 'a>,
    name: String,
    size: u64,
    crc: u32,
    bad: &'a dyn Fn(&str) -> Error,
}

impl Member<'_> {
    /// Streams the member into `out` (named `out_path` in errors). At most its stated size and
    /// one byte are inflated, so a member that lies about its size cannot run on; the size
    /// and CRC are checked at the end, and `out` must be discarded when this fails.
    pub fn copy_to(&mut self, out: &mut dyn Write, out_path: &Path) -> Result<()> {
        let mut limited = (&mut self.reader).take(self.size + 1);
        let mut check = flate2::Crc::new();
        let mut got = 0u64;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match limited.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((self.bad)(&format!("`{}`: {e}", self.name))),
            };
            check.update(&buf[..n]);
            got += n as u64;
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("write", out_path, e))?;
        }
        if got != self.size || check.sum() != self.crc {
            return Err((self.bad)(&format!(
                "`{}` fails its size or CRC check",
                self.name
            )));
        }
        Ok(())
    }
}

/// The wanted members of a zip archive, handed to `visit` one at a time to unpack, read by
/// the `zip` crate's central-directory and local-header parser from a seekable source (the
/// archive's file on disk).
///
/// Every size the archive states is checked against the bytes present before anything is
/// read for a member: its data must lie inside the archive and overlap no other unpacked
/// member's (overlapping entries are how a small archive unpacks to terabytes), and its
/// uncompressed size must be one its compressed bytes can give.
pub fn for_each_zip_member<R: Read + std::io::Seek>(
    mut reader: R,
    name: &str,
    want: impl Fn(&str) -> bool,
    mut visit: impl FnMut(&str, &mut Member<'_>) -> Result<()>,
) -> Result<()> {
    let bad = |m: &str| Error::malformed(name, format!("not a zip archive bciops reads: {m}"));
    let archive_len = reader
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| Error::io("read", name, e))?;
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| bad(&e.to_string()))?;
    // Start → end of each unpacked member's local header and data.
    let mut spans = BTreeMap::<u64, u64>::new();
    for index in 0..archive.len() {
        let member = archive.name_for_index(index).unwrap_or_default().to_owned();
        let file_name = member.rsplit('/').next().unwrap_or_default().to_owned();
        if file_name.is_empty() || !want(&file_name) {
            continue;
        }
        // The raw entry: its local header is parsed, nothing is inflated yet.
        let file = archive
            .by_index_raw(index)
            .map_err(|e| bad(&format!("`{member}` has no local header ({e})")))?;
        if file.encrypted() {
            return Err(bad(&format!("`{member}` is encrypted")));
        }
        let (compressed, size, crc) = (file.compressed_size(), file.size(), file.crc32());
        let local = file.header_start();
        let data_at = file
            .data_start()
            .ok_or_else(|| bad(&format!("`{member}` has no local header")))?;
        let end = data_at
            .checked_add(compressed)
            .filter(|&end| end <= archive_len)
            .ok_or_else(|| bad(&format!("`{member}` is truncated")))?;
        if spans
            .range(..end)
            .next_back()
            .is_some_and(|(_, &other_end)| other_end > local)
        {
            return Err(bad(&format!("`{member}` overlaps another member's data")));
        }
        spans.insert(local, end);
        let method = file.compression();
        let possible = if method == zip::CompressionMethod::Stored {
            size == compressed
        } else {
            size <= compressed.saturating_mul(MAX_DEFLATE_RATIO)
        };
        if !possible {
            return Err(bad(&format!(
                "`{member}` claims `{size}` bytes from `{compressed}` compressed ones"
            )));
        }
        let reader: Box<dyn Read + '_> = match method {
            zip::CompressionMethod::Stored => Box::new(file),
            zip::CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(file)),
            m => return Err(bad(&format!("`{member}` uses compression method {m}"))),
        };
        let mut unpacking = Member {
            reader,
            name: member,
            size,
            crc,
            bad: &bad,
        };
        visit(&file_name, &mut unpacking)?;
    }
    Ok(())
}

/// A stored (uncompressed) zip archive; for tests and fixtures.
pub fn write_stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.sum().to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&[0u8; 6]); // comment length, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_round_trip_and_refusals() {
        let zip = write_stored_zip(&[("dir/A01T.gdf", b"abc"), ("readme.txt", b"x")]);
        let got = zip_members(&zip, "z", |n| n.ends_with(".gdf")).unwrap();
        assert_eq!(got, vec![("A01T.gdf".to_owned(), b"abc".to_vec())]);
        for cut in 0..zip.len() {
            let _ = zip_members(&zip[..cut], "z", |_| true);
        }
        let mut bad = zip.clone();
        bad[30 + 12] ^= 1; // a byte of A01T.gdf's data
        let e = zip_members(&bad, "z", |_| true).unwrap_err().to_string();
        assert!(e.contains("CRC"), "{e}");
    }

    /// The members `scripts/fixtures/make_zip_fixture.py` writes with Python's `zipfile`.
    fn fixture_members() -> (Vec<u8>, Vec<u8>) {
        let mut x: u64 = 1;
        let mut gdf: Vec<u8> = (0..20_000)
            .map(|_| {
                x = (x * 1_103_515_245 + 12_345) % (1 << 31);
                ((x >> 16) & 0xff) as u8
            })
            .collect();
        gdf.extend((0..40_000u64).map(|i| ((i * 7 + i / 251) % 256) as u8));
        let readme = b"synthetic member for the deflate test\n".repeat(20);
        (gdf, readme)
    }

    #[test]
    fn deflated_members_of_an_independent_writer_unpack() {
        // tests/data/zip/deflated.zip: CPython 3.11 zipfile, ZIP_DEFLATED level 9, the way the
        // competition's archive stores its members (a folder, deflate).
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/zip/deflated.zip");
        let zip = std::fs::read(path).unwrap();
        let (gdf, readme) = fixture_members();
        let got = zip_members(&zip, "deflated.zip", |_| true).unwrap();
        assert_eq!(
            got,
            vec![
                ("A01T.gdf".to_owned(), gdf),
                ("readme.txt".to_owned(), readme)
            ]
        );
        // A flipped bit in the compressed stream is caught (bad deflate data or CRC), and no
        // truncation panics.
        let mut bad = zip.clone();
        bad[30 + "BCICIV_2a_gdf/A01T.gdf".len() + 5000] ^= 0x10;
        let e = zip_members(&bad, "deflated.zip", |n| n.ends_with(".gdf"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("deflated.zip") && e.contains("A01T.gdf"), "{e}");
        for cut in (0..zip.len()).step_by(97) {
            assert!(zip_members(&zip[..cut], "deflated.zip", |_| true).is_err());
        }
    }

    /// A stored archive of two members and where its central directory and EOCD start.
    fn two_members() -> (Vec<u8>, usize, usize) {
        let zip = write_stored_zip(&[("a/A01T.gdf", b"abcdefgh"), ("A02T.gdf", b"xyz")]);
        let eocd = zip.len() - 22;
        let cd = u32::from_le_bytes(zip[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
        (zip, cd, eocd)
    }

    #[test]
    fn sizes_the_archive_cannot_hold_are_refused_before_unpacking() {
        let (zip, cd, _) = two_members();
        let patched = |at: usize, value: &[u8]| {
            let mut b = zip.clone();
            b[at..at + value.len()].copy_from_slice(value);
            b
        };
        // A deflated member claiming 4 GiB from 8 compressed bytes: refused, never allocated.
        let mut bomb = patched(cd + 10, &8u16.to_le_bytes());
        bomb[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = zip_members(&bomb, "z", |_| true).unwrap_err().to_string();
        assert!(
            e.contains("claims `4294967295` bytes from `8` compressed"),
            "{e}"
        );
        // A stored member whose sizes disagree.
        let e = zip_members(&patched(cd + 24, &9u32.to_le_bytes()), "z", |_| true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("claims `9` bytes from `8`"), "{e}");
        // The second entry pointing at the first one's data: the overlapping-entries bomb.
        let second = cd + 46 + "a/A01T.gdf".len();
        let mut overlap = patched(second + 42, &0u32.to_le_bytes());
        overlap[second + 20..second + 28].copy_from_slice(&[8, 0, 0, 0, 8, 0, 0, 0]);
        let e = zip_members(&overlap, "z", |_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`A02T.gdf` overlaps another member's data"),
            "{e}"
        );
        // Only unpacked members count as overlapping: without the first, the second is
        // unpacked from the first's bytes and fails its CRC instead.
        let got = zip_members(&overlap, "z", |n| n == "A02T.gdf");
        assert!(got.is_err_and(|e| e.to_string().contains("CRC")));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, ..Default::default() })]

        /// Entry counts, offsets and sizes set to huge, zero and overflowing values, and
        /// random corruption: an error or members of exactly the bytes the archive holds.
        #[test]
        fn hostile_sizes_are_errors_not_allocations(
            fields in proptest::collection::vec(
                (proptest::sample::select(vec![
                    // (offset from the EOCD or the first central entry, width)
                    (true, 10, 2), (true, 12, 4), (true, 16, 4),
                    (false, 10, 2), (false, 20, 4), (false, 24, 4), (false, 28, 2),
                    (false, 30, 2), (false, 32, 2), (false, 42, 4),
                ]), crate::testutil::hostile_size()),
                1..4,
            ),
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
        ) {
            let (mut zip, cd, eocd) = two_members();
            for ((in_eocd, offset, width), value) in fields {
                let at = if in_eocd { eocd } else { cd } + offset;
                zip[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            for (at, value) in edits {
                let len = zip.len();
                zip[at % len] = value;
            }
            let got = crate::testutil::quick("zip_members", || zip_members(&zip, "z", |_| true));
            if let Ok(members) = got {
                let total: usize = members.iter().map(|(_, d)| d.len()).sum();
                proptest::prop_assert!(total <= zip.len());
            }
        }
    }

    #[test]
    fn plan_lays_out_folders() {
        let plan = Plan {
            dest: "d".into(),
            gdf: true,
            mat: true,
            subjects: vec![1],
            gdf_url: "http://h/g/".into(),
            labels_url: "http://h/l".into(),
            mat_url: "http://h/m".into(),
        };
        let items = items(&plan, &Manifest::default());
        let urls: Vec<&str> = items.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://h/g/BCICIV_2a_gdf.zip",
                "http://h/l/true_labels.zip",
                "http://h/m/A01T.mat",
                "http://h/m/A01E.mat"
            ]
        );
        assert_eq!(items[2].dest, Path::new("d/bnci/A01T.mat"));
        assert_eq!(host_of("http://127.0.0.1:9/x"), "127.0.0.1:9");
    }
}
