//! Conditional writes on a bucket (create-only and compare-and-swap), which the registry
//! needs to number versions safely without a lock.

use object_store::ObjectStoreExt;

use super::client::{block_on, store, store_error};
use super::uri::Remote;
use crate::error::{Error, Result};

/// What an object held when it was read, for a conditional replace ([`replace_if`]).
#[derive(Debug, Clone)]
pub struct Revision(object_store::UpdateVersion);

/// A small object's bytes and revision; None when there is no such object.
pub fn read_revision(remote: &Remote) -> Result<Option<(Vec<u8>, Revision)>> {
    let s = store(remote)?;
    let got = block_on(async {
        match s.get(&remote.object()).await {
            Ok(got) => {
                let revision = object_store::UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                got.bytes()
                    .await
                    .map(|b| Some((b.to_vec(), Revision(revision))))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    })?;
    got.map_err(|e| store_error("read", remote, e))
}

/// Creates an object only if none exists under its key (a conditional put: `If-None-Match: *`
/// on S3, `ifGenerationMatch=0` on GCS), so two writers can never both create it. False when
/// the object already exists.
pub fn create_new(remote: &Remote, bytes: &[u8]) -> Result<bool> {
    let s = store(remote)?;
    let opts = object_store::PutOptions {
        mode: object_store::PutMode::Create,
        ..Default::default()
    };
    match block_on(s.put_opts(&remote.object(), bytes.to_vec().into(), opts))? {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(conditional_error(remote, e)),
    }
}

/// Replaces an object only if it is still at `revision` (`If-Match` with its ETag on S3, its
/// generation on GCS). False when another writer changed it since it was read.
pub fn replace_if(remote: &Remote, bytes: &[u8], revision: &Revision) -> Result<bool> {
    let s = store(remote)?;
    let opts = object_store::PutOptions {
        mode: object_store::PutMode::Update(revision.0.clone()),
        ..Default::default()
    };
    match block_on(s.put_opts(&remote.object(), bytes.to_vec().into(), opts))? {
        Ok(_) => Ok(true),
        Err(object_store::Error::Precondition { .. }) => Ok(false),
        Err(e) => Err(conditional_error(remote, e)),
    }
}

/// A store without conditional writes cannot host what needs them; say so plainly.
fn conditional_error(remote: &Remote, e: object_store::Error) -> Error {
    if matches!(e, object_store::Error::NotImplemented { .. }) {
        return Error::Invalid(format!(
            "bucket `{}` ({}://): the store does not support conditional writes, which the \
             registry needs to number versions safely",
            remote.bucket,
            remote.scheme.prefix()
        ));
    }
    store_error("write", remote, e)
}
