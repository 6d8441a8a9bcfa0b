//! The object_store side: one runtime for the process, a client per bucket from the
//! environment, errors that name bucket and key (secrets scrubbed), and streamed transfers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::publish::FileEntry;
use super::uri::{Remote, Scheme};
use crate::error::{Error, Result};

/// Runs a future on the module's private runtime. One runtime serves the whole process: an
/// object-store client keeps connections and timers bound to the runtime that first used it.
/// Async callers (a server) must call this module from `spawn_blocking`.
pub(super) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    static RUNTIME: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bciops-storage")
            .enable_all()
            .build()
    });
    match runtime {
        Ok(rt) => Ok(rt.block_on(future)),
        Err(e) => Err(Error::io(
            "start the storage runtime for",
            "object storage",
            std::io::Error::new(e.kind(), e.to_string()),
        )),
    }
}

/// The values of secret environment variables, which must never appear in a message.
fn secrets() -> Vec<String> {
    [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "GOOGLE_BEARER_TOKEN",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .filter(|v| v.len() >= 4)
    .collect()
}

/// One line, with every secret value replaced.
fn scrub(message: &str) -> String {
    scrub_with(message, &secrets())
}

fn scrub_with(message: &str, secrets: &[String]) -> String {
    let mut out = message.replace(['\n', '\r'], " ");
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// Maps an object-store failure on `remote` to the library's error, naming bucket and key.
pub(super) fn store_error(action: &'static str, remote: &Remote, e: object_store::Error) -> Error {
    let text = e.to_string();
    let (kind, cause) = if text.contains("NoSuchBucket") {
        (
            std::io::ErrorKind::NotFound,
            format!("bucket `{}` does not exist", remote.bucket),
        )
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        (
            std::io::ErrorKind::NotFound,
            format!("no object `{}` in bucket `{}`", remote.key, remote.bucket),
        )
    } else {
        (
            std::io::ErrorKind::Other,
            format!(
                "bucket `{}`, key `{}`: {}",
                remote.bucket,
                remote.key,
                scrub(&text)
            ),
        )
    };
    Error::io(action, remote.to_string(), std::io::Error::new(kind, cause))
}

/// A client for the bucket of `remote`, configured from the environment.
pub(super) fn store(remote: &Remote) -> Result<Arc<dyn ObjectStore>> {
    // A store that does not answer should fail within seconds, not retry for minutes.
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..object_store::RetryConfig::default()
    };
    let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> = match remote.scheme
    {
        Scheme::S3 => object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        Scheme::Gcs => object_store::gcp::GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&remote.bucket)
            .with_retry(retry)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
    };
    built.map_err(|e| {
        Error::Invalid(format!(
            "cannot use bucket `{}` ({}://): {}; check the credential environment variables",
            remote.bucket,
            remote.scheme.prefix(),
            scrub(&e.to_string())
        ))
    })
}

/// Streams one object into `dest`, returning its size and sha256.
pub(super) async fn download(
    store: &dyn ObjectStore,
    remote: &Remote,
    dest: &Path,
) -> Result<FileEntry> {
    let result = store
        .get(&remote.object())
        .await
        .map_err(|e| store_error("read", remote, e))?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| Error::io("create directory", parent, e))?;
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| Error::io("write", dest, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| store_error("read", remote, e))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io("write", dest, e))?;
    }
    file.flush()
        .await
        .map_err(|e| Error::io("write", dest, e))?;
    Ok(FileEntry {
        size,
        sha256: format!("{:x}", hasher.finalize()),
    })
}

/// Streams a local file into one object (multipart for large files), returning its entry.
pub(super) async fn upload(
    store: Arc<dyn ObjectStore>,
    src: &Path,
    remote: &Remote,
) -> Result<FileEntry> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(src)
        .await
        .map_err(|e| Error::io("read", src, e))?;
    let mut writer = object_store::buffered::BufWriter::new(store, remote.object());
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("read", src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        if let Err(e) = writer.write_all(&buf[..n]).await {
            let _ = writer.abort().await;
            return Err(io_store_error("write", remote, e));
        }
    }
    writer
        .shutdown()
        .await
        .map_err(|e| io_store_error("write", remote, e))?;
    Ok(FileEntry {
        size,
        sha256: format!("{:x}", hasher.finalize()),
    })
}

/// The buffered writer reports store errors as I/O errors; keep the bucket and key.
fn io_store_error(action: &'static str, remote: &Remote, e: std::io::Error) -> Error {
    let text = e.to_string();
    let cause = if text.contains("NoSuchBucket") {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("bucket `{}` does not exist", remote.bucket),
        )
    } else {
        std::io::Error::new(
            e.kind(),
            format!(
                "bucket `{}`, key `{}`: {}",
                remote.bucket,
                remote.key,
                scrub(&text)
            ),
        )
    };
    Error::io(action, remote.to_string(), cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed() {
        let secrets = vec!["tok-very-secret-123".to_owned()];
        assert_eq!(
            scrub_with("bad tok-very-secret-123\nx", &secrets),
            "bad *** x"
        );
    }
}
