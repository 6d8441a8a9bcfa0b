//! `bciops serve`: the model behind HTTP. One verified model directory (or a registry alias,
//! followed as it moves) answers the original's `/classify`, the
//! Open Inference Protocol (KServe V2), binary bodies, health probes, `/metrics` and
//! `/openapi.json`.
//!
//! Prediction is CPU-bound and runs on tokio's blocking pool, never on the reactor; at most
//! `max_concurrency` predictions run or wait at once (more are answered 503), each limited in
//! time and body size, and a body must arrive in time to take a slot at all. SIGHUP reloads
//! the model, SIGTERM (or Ctrl-C) stops accepting connections and answers the requests
//! received, within a deadline (see [`server`]).

mod answer;
mod body;
pub mod classify;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod reload;
pub mod router;
mod server;
pub mod state;
pub mod tensor;
pub mod v2;
pub mod v2_binary;
mod wire;
pub mod work;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use metrics::Metrics;
use reload::{ModelSource, Reload, Slot};
pub use server::ConnLimits;
use state::{AppState, Limits, Shared};

/// Everything `serve` needs besides the model source.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen; port 0 lets the system choose (the bound address is printed).
    pub addr: SocketAddr,
    /// How often to ask the source for a new version; `None` only reloads on SIGHUP.
    pub poll_interval: Option<Duration>,
    pub limits: Limits,
    pub connections: ConnLimits,
    /// Test hook: a route that panics, to prove panics never reach a client.
    pub panic_route: bool,
    /// Test hook: a prediction route that holds its slot for as long as it is told.
    pub sleep_route: bool,
    /// When the process started, to report the time to ready.
    pub started: Instant,
}

/// Serves until SIGTERM/SIGINT. Fails when the address cannot be bound or the first model
/// cannot be loaded (the server then stops without having been ready).
pub fn run(config: ServeConfig, source: Arc<dyn ModelSource>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Predictions beyond the concurrency limit are refused, so the pool never needs more.
        .max_blocking_threads(config.limits.max_concurrency.max(1) + 4)
        .build()
        .map_err(|e| Error::io("start", "the async runtime", e))?;
    let outcome = runtime.block_on(serve(config, source));
    // Whatever the drain left (connections past `--drain-timeout`, a reload stuck on a
    // bucket) must not hold the exit: a dropped runtime would wait for blocking work.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

async fn serve(config: ServeConfig, source: Arc<dyn ModelSource>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::io("listen on", config.addr.to_string(), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("listen on", config.addr.to_string(), e))?;
    // One parseable line: tests and scripts read the port from it when given port 0.
    eprintln!("listening on http://{bound}");

    let slot = Arc::new(Slot::new());
    let metrics = Arc::new(Metrics::new());
    let state: Shared = Arc::new(AppState::new(
        slot.clone(),
        metrics.clone(),
        config.limits.clone(),
    ));
    let stop = Arc::new(Notify::new());
    let fatal: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));

    // The first model: loaded after binding, so /livez answers while it loads.
    {
        let (source, state, stop, fatal) =
            (source.clone(), state.clone(), stop.clone(), fatal.clone());
        let started = config.started;
        tokio::spawn(async move {
            let slot = state.slot.clone();
            let src = source.clone();
            let outcome = tokio::task::spawn_blocking(move || slot.reload(src.as_ref(), true))
                .await
                .unwrap_or_else(|_| Err(Error::Internal("loading the model panicked".into())));
            match outcome {
                Ok(_) => {
                    let m = state.slot.get().expect("just loaded");
                    state.metrics.set_model(&m.name, &m.version);
                    state.metrics.set_ready(true);
                    eprintln!(
                        "serving model `{}` version `{}` from {}: ready {:.1} ms after start",
                        m.name,
                        m.version,
                        source.describe(),
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                Err(e) => {
                    *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    stop.notify_one();
                }
            }
        });
    }

    if let Some(every) = config.poll_interval {
        tokio::spawn(poll(state.clone(), source.clone(), every));
    }
    tokio::spawn(on_sighup(state.clone(), source.clone())?);

    let app = router::router(state.clone(), config.panic_route, config.sleep_route);
    let shutdown = {
        let (state, stop) = (state.clone(), stop.clone());
        async move {
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return stop.notified().await,
            };
            tokio::select! {
                _ = term.recv() => eprintln!("SIGTERM: finishing the requests in flight"),
                _ = tokio::signal::ctrl_c() => eprintln!("interrupted: finishing the requests in flight"),
                _ = stop.notified() => {}
            }
            state.shutting_down.store(true, Ordering::Relaxed);
            state.metrics.set_ready(false);
        }
    };
    server::serve(listener, app, metrics, config.connections.clone(), shutdown).await;
    if let Some(e) = fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    eprintln!("stopped");
    Ok(())
}

/// One reload attempt off the reactor, with its outcome logged and counted.
async fn reload_now(state: &Shared, source: &Arc<dyn ModelSource>, force: bool) {
    let (slot, src) = (state.slot.clone(), source.clone());
    let outcome = tokio::task::spawn_blocking(move || slot.reload(src.as_ref(), force))
        .await
        .unwrap_or_else(|_| Err(Error::Internal("the reload panicked".into())));
    match outcome {
        Ok(Reload::Swapped { version }) => {
            let m = state.slot.get().expect("just swapped");
            state.metrics.set_model(&m.name, &m.version);
            state
                .metrics
                .set_ready(!state.shutting_down.load(Ordering::Relaxed));
            state.metrics.reloaded();
            eprintln!("reloaded: now serving `{}` version `{version}`", m.name);
        }
        Ok(Reload::Unchanged) => {}
        Err(e) => {
            let current = state.slot.get().map(|m| m.version.clone());
            eprintln!(
                "reload of {} failed, still serving version `{}`: {e}",
                source.describe(),
                current.as_deref().unwrap_or("none")
            );
            // Counted after the log line, so whoever sees the count finds the reason logged.
            state.metrics.reload_failed();
        }
    }
}

async fn poll(state: Shared, source: Arc<dyn ModelSource>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        // Until the first model is in, the initial load owns the slot.
        if state.slot.get().is_some() {
            reload_now(&state, &source, false).await;
        }
    }
}

fn on_sighup(
    state: Shared,
    source: Arc<dyn ModelSource>,
) -> Result<impl std::future::Future<Output = ()>> {
    let mut hup = signal(SignalKind::hangup()).map_err(|e| Error::io("listen for", "SIGHUP", e))?;
    Ok(async move {
        while hup.recv().await.is_some() {
            eprintln!("SIGHUP: reloading {}", source.describe());
            reload_now(&state, &source, true).await;
        }
    })
}
