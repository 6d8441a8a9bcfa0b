//! The accept loop and the connections: HTTP/1.1 by hyper, with the bounds `axum::serve`
//! does not give. A request head must arrive within `--header-timeout` (which also closes a
//! kept-alive connection idle that long), at most `--max-connections` are open (more wait in
//! the kernel's backlog), and draining on SIGTERM ends by `--drain-timeout` whatever the
//! clients do.
//!
//! Draining: the listener stops (after taking in the connections the kernel had already
//! completed, whose clients may have sent a request), every answer from then on says
//! `Connection: close` (see `router::observe`), and connections idle at that moment are kept
//! for [`DRAIN_GRACE`], so that a request already on its way down one is answered rather
//! than lost. Then each connection is shut down the way hyper does it gracefully: an idle one
//! at once, one with a request in flight after its answer; one with only part of a request
//! head is dropped at once (nothing was handed to the router). Whatever is still open at
//! the deadline is dropped.
//!
//! HTTP/1.1 only: these bounds and the JSON protocol errors of [`super::wire`] are HTTP/1
//! mechanisms, and every client of this server (curl, wrk, Prometheus, the V2 clients)
//! speaks it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::wire::{Activity, Wire};

/// How connections are bounded.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub drain_timeout: Duration,
    pub max_connections: usize,
}

/// How long connections idle at SIGTERM stay open for a request already on its way: a
/// client that has sent one while the signal arrived gets its answer (with `Connection:
/// close`). A client idle this long and sending just at the end can still see the
/// connection closed, as with any HTTP/1.1 server closing an idle connection.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    metrics: Arc<Metrics>,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let common = Arc::new(Common {
        builder,
        app,
        metrics,
    });
    // Each connection task holds a sender: all of them have ended when `recv` yields `None`.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let (drain, draining) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = |stream, slot| {
        tokio::spawn(connection(
            stream,
            slot,
            common.clone(),
            alive.clone(),
            draining.clone(),
        ));
    };

    tokio::pin!(shutdown);
    loop {
        // At the limit, new connections wait in the backlog until one closes (the header,
        // body and idle deadlines see that one does).
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.ok(),
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => open(stream, slot),
                Err(e) => accept_failed(e).await,
            },
            () = &mut shutdown => break,
        }
    }

    // Connections the kernel completed before the listener closes: their clients may have
    // sent a request already, and closing the listener would reset them unanswered.
    let mut taken = 0;
    while taken < limits.max_connections {
        use futures::FutureExt;
        let Some(Ok((stream, _))) = listener.accept().now_or_never() else {
            break;
        };
        open(stream, None);
        taken += 1;
    }
    drop(listener);
    drop(alive);

    let deadline = Instant::now() + limits.drain_timeout;
    let closed = async { while all_closed.recv().await.is_some() {} };
    tokio::pin!(closed);
    tokio::select! {
        () = &mut closed => return,
        () = tokio::time::sleep_until(deadline.min(Instant::now() + DRAIN_GRACE)) => {}
    }
    let _ = drain.send(true);
    tokio::select! {
        () = &mut closed => {}
        () = tokio::time::sleep_until(deadline) => {
            eprintln!(
                "drain: the drain timeout of `{}` ms passed, dropping the connections still open",
                limits.drain_timeout.as_millis()
            );
        }
    }
}

struct Common {
    builder: http1::Builder,
    app: Router,
    metrics: Arc<Metrics>,
}

/// Counts a connection open for as long as it lives.
struct Open(Arc<Metrics>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connection(-1);
    }
}

async fn connection(
    stream: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
    common: Arc<Common>,
    _alive: mpsc::Sender<()>,
    mut draining: watch::Receiver<bool>,
) {
    common.metrics.connection(1);
    let _open = Open(common.metrics.clone());
    let activity = Arc::new(Activity::default());
    let app = TowerToHyperService::new(common.app.clone());
    let service = {
        let activity = activity.clone();
        service_fn(move |req: hyper::Request<Incoming>| {
            activity.request_started();
            app.call(req)
        })
    };
    let io = TokioIo::new(Wire::new(stream, activity.clone()));
    let conn = common.builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        // Errors here are the client's (a reset, a malformed request already answered, a
        // header deadline): nothing to report.
        _ = conn.as_mut() => return,
        _ = draining.wait_for(|d| *d) => {}
    }
    if activity.head_incomplete() {
        return;
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Out of file descriptors (or another failure of the listener itself): say so and wait a
/// little rather than spin; a connection aborted before it was accepted is nobody's concern.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    eprintln!("cannot accept a connection, retrying in 100 ms: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
