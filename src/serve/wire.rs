//! [`Wire`]: the accepted TCP stream as hyper sees it. It gives hyper's own error answers a
//! JSON body, and tells the accept loop whether a request head is half-received.
//!
//! hyper answers a request it cannot parse (a malformed request line or header: 400, a
//! target too long: 414, headers too large or too many: 431) by itself, before any service
//! sees it, with an empty body, and offers no hook to change that answer. Two other ways
//! were weighed: parsing each request head here before hyper does (a second parse of every
//! head on the hot path, and this layer would have to follow bodies and keep-alive to find
//! the next head), or turning off hyper's limits (it would still answer 400 alone). Instead
//! this wrapper recognises that answer as it is written: a `4xx` status line whose head
//! declares `content-length: 0` and is written alone. No answer of the router looks like
//! that, since `observe` gives every 4xx a JSON body. It then writes the same head with the
//! JSON body `{"error": …}` that every other 4xx of this server carries. The check costs
//! one byte comparison per write of a non-4xx answer.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the accept loop needs to know about one connection when the server drains.
#[derive(Debug, Default)]
pub struct Activity {
    /// Bytes arrived since the last answer was written.
    read_since_answer: AtomicBool,
    /// A request head was complete and handed to the router, and not answered yet.
    in_request: AtomicBool,
}

impl Activity {
    /// A request head reached the router.
    pub fn request_started(&self) {
        self.in_request.store(true, Ordering::Relaxed);
    }

    /// Part of a request head has arrived and the rest has not: nothing was handed to the
    /// router, so dropping the connection loses no request that was fully sent.
    pub fn head_incomplete(&self) -> bool {
        self.read_since_answer.load(Ordering::Relaxed) && !self.in_request.load(Ordering::Relaxed)
    }
}

/// A stream whose hyper-made error answers get a JSON body (see the module docs).
pub struct Wire<S> {
    inner: S,
    activity: Arc<Activity>,
    /// A rewritten answer and how much of it has been written: hyper was told its own
    /// (shorter) answer was written in full, so this goes out before anything else.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> Wire<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Wire {
            inner,
            activity,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> Wire<S> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written >= bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes over `head` (hyper's whole write) if it is hyper's own error answer: the
    /// rewritten answer is queued and `head`'s length reported as written.
    fn take_over(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let rewritten = with_json_body(head)?;
        self.pending = Some((rewritten, 0));
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Still queued: the flush and shutdown that follow finish it.
            _ => Poll::Ready(Ok(head.len())),
        })
    }

    /// Called with every write: an answer is going out, unless it is an interim one
    /// (`100 Continue`, written before the body it asks for is read).
    fn answering(&self, bytes: &[u8]) {
        if bytes.len() > 9 && bytes[9] == b'1' && bytes.starts_with(b"HTTP/1.") {
            return;
        }
        self.activity
            .read_since_answer
            .store(false, Ordering::Relaxed);
        self.activity.in_request.store(false, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity
                .read_since_answer
                .store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        this.answering(buf);
        if let Some(r) = this.take_over(cx, buf) {
            return r;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.answering(first);
        }
        // hyper's own error answer is a head alone: one non-empty slice.
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(head), None) = (filled.next(), filled.next()) {
            if let Some(r) = this.take_over(cx, head) {
                return r;
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// `head` with a JSON body, if it is an HTTP/1.x 4xx answer head declaring an empty body
/// (what hyper writes for a request it cannot parse); `None` for anything else.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    // The one comparison every other answer pays: `HTTP/1.1 4`.
    if head.len() < 16 || head[9] != b'4' || !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let text = text.strip_suffix("\r\n\r\n")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let mut empty = false;
    let mut kept = String::with_capacity(head.len() + 64);
    kept.push_str(status_line);
    kept.push_str("\r\n");
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            empty = value.trim() == "0";
            continue;
        }
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("content-type")
        {
            return None;
        }
        kept.push_str(line);
        kept.push_str("\r\n");
    }
    if !empty {
        return None;
    }
    let message = match status {
        400 => "malformed request: the request line or a header is not valid HTTP/1.1",
        414 => "the request target (path and query) is too long",
        431 => "the request headers are too large or too many",
        _ => "the request could not be read as HTTP/1.1",
    };
    let body = serde_json::json!({ "error": message }).to_string();
    kept.push_str("content-type: application/json\r\n");
    kept.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    kept.push_str(&body);
    Some(kept.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_empty_error_answers_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sat, 06 Dec 2025 02:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("date: Sat"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("headers"), "{v}");
    }

    #[test]
    fn other_answers_are_left_alone() {
        for head in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 17\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"HTTP/1.1 4",
            b"{\"error\": \"HTTP/1.1 400\"}",
        ] {
            assert!(with_json_body(head).is_none(), "{}", String::from_utf8_lossy(head));
        }
    }
}
