//! The container image (built by scripts/services/50-image.sh from the static binary): it runs
//! as a non-root user, trains on a mounted dataset, and serves a model until `/readyz` answers.
//! Run with podman the way this sandbox allows (`--runtime runc --network host`, lowered ulimits).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Image {
    podman: String,
    image: String,
}

/// `$BCIOPS_IMAGE` and `$BCIOPS_PODMAN`; unset: skip, except under CI.
fn image() -> Option<Image> {
    match (
        std::env::var("BCIOPS_IMAGE"),
        std::env::var("BCIOPS_PODMAN"),
    ) {
        (Ok(image), Ok(podman)) => Some(Image { podman, image }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("BCIOPS_IMAGE is not set under CI: run the tests through scripts/test.sh")
        }
        _ => {
            eprintln!("skipping the image test: BCIOPS_IMAGE is not set (scripts/services/50-image.sh sets it)");
            None
        }
    }
}

impl Image {
    fn podman(&self, args: &[&str]) -> Output {
        Command::new(&self.podman)
            .args(args)
            .output()
            .expect("run podman")
    }

    /// `podman run` with this sandbox's settings, then `args` (image arguments after the image).
    fn run(&self, options: &[&str], args: &[&str]) -> Output {
        let mut all = vec![
            "run",
            "--runtime",
            "runc",
            "--network",
            "host",
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
        ];
        all.extend(options);
        all.push(&self.image);
        all.extend(args);
        self.podman(&all)
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "podman failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of `GET path`, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn world_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

#[test]
fn image_runs_train_and_serve_as_non_root() {
    let Some(img) = image() else { return };
    let version = ok(&img.run(&["--rm"], &["--version"]));
    assert_eq!(
        version.trim(),
        format!("bciops {}", env!("CARGO_PKG_VERSION"))
    );
    // Numeric non-root user, as runAsNonRoot requires.
    let inspect = ok(&img.podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.User}}",
        &img.image,
    ]));
    assert_eq!(inspect.trim(), "65532:65532");

    // A small dataset made on the host, mounted read-only; the model is written to a mount.
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_epochs(dir.path());
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    world_writable(&out);
    let data_mount = format!("{}:/data:ro", data.display());
    let out_mount = format!("{}:/out", out.display());
    ok(&img.run(
        &["--rm", "-v", &data_mount, "-v", &out_mount],
        &[
            "train",
            "--data",
            "/data",
            "--out",
            "/out/model",
            "--eval",
            "cv:3",
        ],
    ));
    assert!(out.join("model/metrics.json").is_file());

    // serve from inside the container, read-only root filesystem as in configs/k8s/.
    let port = free_port();
    let name = format!("bciops-test-{port}");
    let model_mount = format!("{}:/model:ro", out.join("model").display());
    let addr = format!("127.0.0.1:{port}");
    ok(&img.run(
        &["-d", "--read-only", "--name", &name, "-v", &model_mount],
        &["serve", "--model", "/model", "--addr", &addr],
    ));
    let start = Instant::now();
    let mut status = None;
    while start.elapsed() < Duration::from_secs(30) {
        status = http_status(port, "/readyz");
        if status == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = img.podman(&["logs", &name]);
    let _ = img.podman(&["rm", "-f", &name]);
    assert_eq!(
        status,
        Some(200),
        "serve in the container did not become ready:\n{}",
        String::from_utf8_lossy(&logs.stderr)
    );
}
