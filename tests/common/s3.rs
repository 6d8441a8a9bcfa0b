//! The S3-compatible server the object-storage tests run against (moto, started by
//! scripts/services/10-moto.sh), shared by tests/storage.rs and tests/serve.rs.

use std::path::Path;
use std::process::Command;

use super::{bciops, Run};

/// A secret no message may show.
pub const SECRET: &str = "bciops-test-secret-Zq81xv";

/// Where moto listens and a Python with boto3, or None (skip) outside CI.
pub fn s3() -> Option<(String, String)> {
    match (
        std::env::var("BCIOPS_S3_ENDPOINT"),
        std::env::var("BCIOPS_S3_PYTHON"),
    ) {
        (Ok(endpoint), Ok(python)) => Some((endpoint, python)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_S3_ENDPOINT is not set under CI: run the tests through scripts/test.sh")
        }
        _ => {
            eprintln!(
                "skipping: BCIOPS_S3_ENDPOINT is not set (scripts/services/10-moto.sh sets it)"
            );
            None
        }
    }
}

/// The environment that points bciops at moto with dummy credentials.
pub fn s3_env(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
}

/// bciops pointed at moto with dummy credentials.
pub fn s3_bciops<I, S>(endpoint: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    s3_env(endpoint)
        .into_iter()
        .fold(bciops(args), |run, (k, v)| run.env(k, v))
}

/// Runs boto3 against moto (an independent S3 client): `code` sees `s3` and `sys.argv`.
pub fn boto(endpoint: &str, python: &str, code: &str, args: &[&str]) -> String {
    let program = format!(
        "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='{endpoint}', \
         aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n{code}"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "boto3 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn create_bucket(endpoint: &str, python: &str, bucket: &str) {
    boto(
        endpoint,
        python,
        "s3.create_bucket(Bucket=sys.argv[1])",
        &[bucket],
    );
}

/// Downloads every object under `prefix/` into `dest` with boto3.
pub fn download(endpoint: &str, python: &str, bucket: &str, prefix: &str, dest: &Path) {
    boto(
        endpoint,
        python,
        "import os\n\
         b, p, d = sys.argv[1:4]\n\
         for o in s3.list_objects_v2(Bucket=b, Prefix=p + '/')['Contents']:\n\
         \x20   rel = o['Key'][len(p) + 1:]\n\
         \x20   os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)\n\
         \x20   s3.download_file(b, o['Key'], os.path.join(d, rel))\n",
        &[bucket, prefix, dest.to_str().unwrap()],
    );
}
