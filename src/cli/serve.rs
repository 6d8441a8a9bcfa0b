//! `bciops serve`: put a model behind HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::compare_register::RegistryArgs;
use super::Global;
use crate::error::Error;
use crate::serve::reload::{
    is_registry_reference, BucketDirSource, DirSource, ModelSource, RegistrySource,
};
use crate::serve::state::Limits;
use crate::serve::{self, ConnLimits, ServeConfig};
use crate::storage::Location;

/// Serve a model over HTTP: `POST /classify` (the original's JSON trials, or f32/.npy bodies),
/// the Open Inference Protocol (`/v2/...`), `/livez`, `/readyz`, `/metrics` (Prometheus) and
/// `/openapi.json`. The model's checksums are verified and a warm-up prediction made before
/// `/readyz` answers 200. SIGHUP reloads the model (the old one keeps serving if the new one
/// fails); SIGTERM finishes the requests in flight and exits 0. The bound address is printed
/// on stderr as `listening on http://ADDR`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A model directory (from `bciops train`; a path or a published directory on
    /// `s3://BUCKET/PREFIX` / `gs://BUCKET/PREFIX`, fetched at start and on each new version),
    /// or a registry reference: `models:/NAME@ALIAS` (the alias is followed as it moves) or
    /// `models:/NAME/VERSION`.
    #[arg(
        long,
        short,
        value_name = "DIR|URI|models:/NAME@ALIAS",
        env = "BCIOPS_MODEL"
    )]
    pub model: String,
    /// Address to listen on; port 0 picks a free port. Containers pass `0.0.0.0:3000`.
    #[arg(long, default_value = "127.0.0.1:3000", env = "BCIOPS_ADDR")]
    pub addr: SocketAddr,
    /// The model's name in `/v2/models/{name}` and metrics (default: the directory's name, or
    /// the registered model's name).
    #[arg(long)]
    pub name: Option<String>,
    /// How often to check the model for a new version (`30s`, `500ms`, `2m`; `0` = only on
    /// SIGHUP).
    #[arg(long, default_value = "30s", value_parser = duration, value_name = "DURATION")]
    pub poll_interval: Duration,
    /// Largest request body in bytes; larger ones are answered 413. The default holds about
    /// 50 JSON trials of 22 × 750 as Python's `json.dumps(X.tolist())` writes them.
    #[arg(long, default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Longest a prediction may take once its body is in; then 504.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Prediction requests handled at once; more are answered 503 with `Retry-After`. A
    /// request takes its slot only once its body has arrived.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_concurrency: usize,
    /// Longest a prediction request's body may take to arrive; then 408.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION")]
    pub body_timeout: Duration,
    /// Slowest a body may arrive, in bytes/s on average after its first second; slower is
    /// answered 408 (`0`: no minimum).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub min_body_rate: u64,
    /// Longest a client may take to send a request's headers, and to start its next request
    /// on a kept-alive connection; then the connection is closed.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub header_timeout: Duration,
    /// Client connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// On SIGTERM, longest to wait for the requests received to be answered; then the
    /// connections still open are dropped and the server exits.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub drain_timeout: Duration,
    /// For a `models:/` reference.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `30s`, `250ms`, `2m`, `1h`, or a bare number of seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like `30s` or `500ms`"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("`{s}` has an unknown unit (ms, s, m, h)")),
    };
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        return Err(format!("`{s}` is not a usable duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

pub fn run(args: ServeArgs, _global: Global) -> Result<()> {
    let started = Instant::now();
    if args.max_concurrency == 0 {
        return Err(
            Error::Invalid("`--max-concurrency 0` would refuse every request".into()).into(),
        );
    }
    for (flag, value) in [
        ("--timeout", args.timeout),
        ("--body-timeout", args.body_timeout),
        ("--header-timeout", args.header_timeout),
    ] {
        if value.is_zero() {
            return Err(Error::Invalid(format!("`{flag} 0` would time out every request")).into());
        }
    }
    if args.max_connections == 0 {
        return Err(
            Error::Invalid("`--max-connections 0` would accept no connection".into()).into(),
        );
    }
    let source: Arc<dyn ModelSource> = if is_registry_reference(&args.model) {
        let registry = args.registry.config()?;
        let source = RegistrySource::new(
            &args.model,
            registry,
            args.name.clone(),
            &std::env::temp_dir(),
        )?;
        // Fail before listening when the reference cannot be resolved (unknown model or
        // alias, unreachable registry): the server would never become ready.
        if let Err(e) = source.current_version() {
            // Say which registry was asked: the default one may not be the one meant.
            let e = match e {
                Error::Invalid(m) => Error::Invalid(format!("{}: {m}", source.describe())),
                other => other,
            };
            return Err(e.into());
        }
        Arc::new(source)
    } else {
        if let Some(flag) = [
            ("--registry-uri", &args.registry.registry_uri),
            ("--tracking-uri", &args.registry.tracking_uri),
        ]
        .iter()
        .find_map(|(flag, v)| v.is_some().then_some(flag))
        {
            return Err(Error::Invalid(format!(
                "`{flag}` applies only to a `models:/` reference, not to the directory `{}`",
                args.model
            ))
            .into());
        }
        if let Location::Remote(remote) = Location::parse(&args.model)? {
            let source = BucketDirSource::new(remote, args.name.clone())?;
            // Fail before listening when the bucket, the key or the marker is missing.
            source.current_version()?;
            return serve::run(config(&args, started), Arc::new(source)).map_err(Into::into);
        }
        let dir = PathBuf::from(&args.model);
        if !dir.is_dir() {
            return Err(Error::io(
                "open model directory",
                &dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
            .into());
        }
        Arc::new(DirSource::new(&dir, args.name.clone())?)
    };
    serve::run(config(&args, started), source)?;
    Ok(())
}

fn config(args: &ServeArgs, started: Instant) -> ServeConfig {
    ServeConfig {
        addr: args.addr,
        poll_interval: (!args.poll_interval.is_zero()).then_some(args.poll_interval),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            timeout: args.timeout,
            max_concurrency: args.max_concurrency,
            body_timeout: args.body_timeout,
            min_body_rate: args.min_body_rate,
        },
        connections: ConnLimits {
            header_timeout: args.header_timeout,
            drain_timeout: args.drain_timeout,
            max_connections: args.max_connections,
        },
        panic_route: std::env::var("BCIOPS_SERVE_PANIC_ROUTE").is_ok_and(|v| v == "1"),
        sleep_route: std::env::var("BCIOPS_SERVE_SLEEP_ROUTE").is_ok_and(|v| v == "1"),
        started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert!(duration("fast").is_err());
        assert!(duration("3d").is_err());
        assert!(duration("-1s").is_err());
    }
}
