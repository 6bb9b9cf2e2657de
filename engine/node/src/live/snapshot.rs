//! The REST depth-snapshot fetcher: one helper thread doing blocking GETs for the engine
//! thread's [`SnapshotScheduler`](tape_core::link::SnapshotScheduler), waking its mio poll after
//! each completed job.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::https::{HttpClient, HttpError, HttpResponse};

/// Jobs that may wait for the fetch thread; [`SnapshotFetcher::request`] fails beyond this.
pub const FETCH_QUEUE_LEN: usize = 64;
/// [`SnapshotFetcher`] settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetcherOptions {
    /// Bound on each TCP connect attempt.
    pub connect_timeout: Duration,
    /// Bound on a whole request, connecting included.
    pub request_timeout: Duration,
    /// Largest body accepted.
    pub max_body_bytes: usize,
}

/// A snapshot to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotJob {
    /// The REST source id, returned with the result.
    pub key: u32,
    /// The URL, e.g. from [`depth_url`](tape_core::link::depth_url).
    pub url: String,
}

/// A finished [`SnapshotJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDone {
    /// The job's key.
    pub key: u32,
    /// The job's URL.
    pub url: String,
    /// The response (any status) or why there is none.
    pub result: Result<HttpResponse, HttpError>,
    /// Wall time the fetch took.
    pub elapsed_ns: u64,
}

/// One helper thread running blocking GETs with a kept-alive [`HttpClient`].
///
/// Dropping it (or [`shutdown`](Self::shutdown)) discards queued jobs and joins the thread,
/// which takes at most the remainder of the request under way (`request_timeout`; name
/// resolution aside).
pub struct SnapshotFetcher {
    jobs: Option<Sender<SnapshotJob>>,
    done: Receiver<SnapshotDone>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotFetcher {
    /// Starts the thread. After each finished job it calls `waker.wake()`, so that an engine
    /// blocked in `mio::Poll::poll` looks at [`try_recv`](Self::try_recv).
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(
        tls: Arc<rustls::ClientConfig>,
        opts: FetcherOptions,
        waker: Option<Arc<mio::Waker>>,
    ) -> io::Result<SnapshotFetcher> {
        let (jobs, job_rx) = crossbeam_channel::bounded::<SnapshotJob>(FETCH_QUEUE_LEN);
        // Unbounded, so the thread never blocks on a slow engine; the scheduler's in-flight
        // cap bounds what can accumulate.
        let (done_tx, done) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tape-snapshot".to_owned())
            .spawn(move || {
                let mut client = HttpClient::new(tls, opts.connect_timeout, opts.request_timeout);
                for job in job_rx.iter() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let start = Instant::now();
                    let result = client.get(&job.url, opts.max_body_bytes);
                    let elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    let SnapshotJob { key, url } = job;
                    let done = SnapshotDone {
                        key,
                        url,
                        result,
                        elapsed_ns,
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                    if let Some(waker) = &waker {
                        // Best effort: a failed wake only delays the engine to its next poll.
                        let _ = waker.wake();
                    }
                }
            })?;
        Ok(SnapshotFetcher {
            jobs: Some(jobs),
            done,
            stop,
            thread: Some(thread),
        })
    }

    /// Queues `job` without blocking.
    ///
    /// # Errors
    /// `Full` when [`FETCH_QUEUE_LEN`] jobs wait, `Disconnected` after shutdown; both return
    /// the job.
    pub fn request(&self, job: SnapshotJob) -> Result<(), TrySendError<SnapshotJob>> {
        match &self.jobs {
            Some(jobs) => jobs.try_send(job),
            None => Err(TrySendError::Disconnected(job)),
        }
    }

    /// A finished job, if any.
    pub fn try_recv(&self) -> Option<SnapshotDone> {
        self.done.try_recv().ok()
    }

    /// Stops the thread and joins it; queued jobs are dropped. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // The thread has no panicking path; if it did panic there is nothing left to undo.
            let _ = thread.join();
        }
    }
}

impl Drop for SnapshotFetcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::testing::{read_request, tls_pair, Server};
    use tape_core::instrument::Market;
    use tape_core::link::depth_url;

    #[test]
    fn fetcher_over_https_wakes_the_poll_and_shuts_down() {
        let (server_tls, client_tls, _dir) = tls_pair();
        let server = Server::start(Some(server_tls), |_, s| {
            while let Some(req) = read_request(s) {
                assert!(req.starts_with("GET /fapi/v1/depth?symbol=BTCUSDT&limit=5 HTTP/1.1"));
                let body = br#"{"lastUpdateId":1,"bids":[],"asks":[]}"#;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                s.write_all(head.as_bytes()).unwrap();
                s.write_all(body).unwrap();
            }
        });
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(9)).unwrap());
        let opts = FetcherOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
        };
        let mut fetcher = SnapshotFetcher::spawn(client_tls, opts, Some(waker)).unwrap();
        let url = depth_url(Market::UsdM, &server.url("https", ""), "btcusdt", 5);
        for key in [3, 4] {
            fetcher
                .request(SnapshotJob {
                    key,
                    url: url.clone(),
                })
                .unwrap();
            let mut events = mio::Events::with_capacity(4);
            let deadline = Instant::now() + Duration::from_secs(10);
            let done = loop {
                if let Some(done) = fetcher.try_recv() {
                    break done;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "no result within 10 s");
                poll.poll(&mut events, Some(left)).unwrap();
                assert!(events.iter().any(|e| e.token() == mio::Token(9)));
            };
            assert_eq!((done.key, done.url.as_str()), (key, url.as_str()));
            let resp = done.result.unwrap();
            assert_eq!(resp.status, 200);
            assert!(resp.body.starts_with(br#"{"lastUpdateId":1"#));
        }
        fetcher.shutdown();
        let job = SnapshotJob { key: 1, url };
        assert!(matches!(
            fetcher.request(job),
            Err(TrySendError::Disconnected(_))
        ));
        assert_eq!(server.accepts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
