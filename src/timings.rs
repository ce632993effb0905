//! Where a run's time goes: fastdeploy's own work against the time it spends
//! waiting on outside systems (builder, registry, AWS, Slack, GitHub).
//!
//! Each outside wait is a `wait` span with a `system` field (see [`wait`]).
//! When `FASTDEPLOY_TIMINGS_FILE` is set, [`layer`] records every wait span's
//! lifetime (creation to close, which for an instrumented future is the
//! whole wait, not only the polls), and [`finish`] writes a [`Report`]: the
//! wall time, the union of the waits, the difference (fastdeploy's
//! overhead) and the process's peak resident set size. The benchmarks read
//! it (benches/e2e.rs); nothing else does.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use crate::env_vars;

/// The name of the spans around outside waits.
pub const WAIT_SPAN: &str = "wait";

/// A span around a wait on an outside system: `builder`, `registry`, `aws`
/// or `notify` (Slack and GitHub). Instrument the waiting future with it.
pub fn wait(system: &'static str) -> tracing::Span {
    tracing::info_span!("wait", system)
}

fn is_wait(m: &Metadata<'_>) -> bool {
    m.is_span() && m.name() == WAIT_SPAN
}

/// What [`finish`] writes to `FASTDEPLOY_TIMINGS_FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// From tracing's initialisation to [`finish`].
    pub wall_seconds: f64,
    /// The union of all wait spans (overlapping waits count once).
    pub wait_seconds: f64,
    /// `wall_seconds - wait_seconds`: fastdeploy's own time.
    pub overhead_seconds: f64,
    /// The union of each system's wait spans.
    pub waits_by_system: BTreeMap<String, f64>,
    /// Peak resident set size of this process alone (`VmHWM`; children such
    /// as buildah not included). `None` where /proc is missing.
    pub peak_rss_bytes: Option<u64>,
}

/// The recorded waits: finished intervals and those still open.
#[derive(Debug)]
struct Waits {
    started: Instant,
    open: HashMap<u64, (String, Instant)>,
    closed: Vec<(String, Instant, Instant)>,
}

#[derive(Debug, Clone)]
struct Recorder(Arc<Mutex<Waits>>);

impl Recorder {
    fn new() -> Self {
        Recorder(Arc::new(Mutex::new(Waits { started: Instant::now(), open: HashMap::new(), closed: Vec::new() })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The report as of now; waits still open count up to now.
    fn report(&self, peak_rss_bytes: Option<u64>) -> Report {
        let now = Instant::now();
        let w = self.lock();
        let seconds = |t: Instant| t.saturating_duration_since(w.started).as_secs_f64();
        let intervals: Vec<(&str, f64, f64)> = w
            .closed
            .iter()
            .map(|(s, a, b)| (s.as_str(), seconds(*a), seconds(*b)))
            .chain(w.open.values().map(|(s, a)| (s.as_str(), seconds(*a), seconds(now))))
            .collect();
        let wall_seconds = seconds(now);
        let wait_seconds = union_seconds(intervals.iter().map(|(_, a, b)| (*a, *b)).collect());
        let mut waits_by_system = BTreeMap::new();
        for system in intervals.iter().map(|(s, _, _)| *s).collect::<std::collections::BTreeSet<_>>() {
            let own = intervals.iter().filter(|(s, _, _)| *s == system).map(|(_, a, b)| (*a, *b)).collect();
            waits_by_system.insert(system.to_string(), union_seconds(own));
        }
        Report { wall_seconds, wait_seconds, overhead_seconds: (wall_seconds - wait_seconds).max(0.0), waits_by_system, peak_rss_bytes }
    }
}

/// The total length of a set of intervals, overlaps counted once.
pub fn union_seconds(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in intervals.into_iter().filter(|(a, b)| b > a) {
        current = match current {
            Some((a, b)) if start <= b => Some((a, b.max(end))),
            Some((a, b)) => {
                total += b - a;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(a, b)| b - a)
}

/// Records the lifetime of every `wait` span.
struct WaitLayer(Recorder);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for WaitLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut system = SystemField(None);
        attrs.record(&mut system);
        let system = system.0.unwrap_or_else(|| "unknown".into());
        self.0.lock().open.insert(id.into_u64(), (system, Instant::now()));
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let mut w = self.0.lock();
        if let Some((system, start)) = w.open.remove(&id.into_u64()) {
            w.closed.push((system, start, Instant::now()));
        }
    }
}

struct SystemField(Option<String>);

impl tracing::field::Visit for SystemField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "system" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "system" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

static ACTIVE: OnceLock<(PathBuf, Recorder)> = OnceLock::new();

/// The recording layer when `FASTDEPLOY_TIMINGS_FILE` is set (else `None`,
/// which costs nothing). It sees only `wait` spans, whatever the log filter.
pub fn layer<S: Subscriber + for<'a> LookupSpan<'a>>() -> Option<impl Layer<S>> {
    let path = std::env::var_os(env_vars::FASTDEPLOY_TIMINGS_FILE).filter(|v| !v.is_empty())?;
    let recorder = ACTIVE.get_or_init(|| (PathBuf::from(path), Recorder::new())).1.clone();
    Some(WaitLayer(recorder).with_filter(filter_fn(is_wait)))
}

/// Wraps the log's filter so `wait` spans never show in log lines (they are
/// bookkeeping, not context a reader needs).
pub fn hide_wait_spans<S>(filter: impl Filter<S>) -> impl Filter<S> {
    filter.and(filter_fn(|m| !is_wait(m)))
}

/// Writes the report when recording; a failure to write is a warning only.
pub fn finish() {
    let Some((path, recorder)) = ACTIVE.get() else { return };
    let report = recorder.report(peak_rss_bytes());
    let written = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other).and_then(|json| std::fs::write(path, json));
    if let Err(e) = written {
        tracing::warn!("cannot write the timings to {}: {e}", path.display());
    }
}

/// `VmHWM` of this process, from /proc/self/status.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Instrument;
    use tracing_subscriber::prelude::*;

    #[test]
    fn union_counts_overlaps_once_and_keeps_gaps() {
        assert_eq!(union_seconds(vec![]), 0.0);
        assert_eq!(union_seconds(vec![(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]), 4.0);
        assert_eq!(union_seconds(vec![(5.0, 6.0), (0.0, 10.0), (2.0, 3.0)]), 10.0, "nested and unsorted");
        assert_eq!(union_seconds(vec![(1.0, 1.0), (3.0, 2.0)]), 0.0, "empty and reversed intervals add nothing");
    }

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tfastdeploy\nVmPeak:\t  99999 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(12345 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss_bytes().is_some_and(|b| b > 0), "this test process has a peak RSS");
    }

    /// Spans are recorded for their whole lifetime, including the time an
    /// instrumented future sits idle between polls; other spans are ignored.
    #[tokio::test(flavor = "current_thread")]
    async fn wait_spans_are_recorded_by_system_from_creation_to_close() {
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry().with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let sleep = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
        // Two AWS waits, a builder wait, a span that is not a wait, and a
        // registry wait still open when the report is taken.
        tokio::join!(sleep(10).instrument(wait("aws")), sleep(5).instrument(wait("aws")));
        sleep(5).instrument(wait("builder")).await;
        sleep(5).instrument(tracing::info_span!("other")).await;
        let open = wait("registry");
        sleep(5).await;

        let report = recorder.report(None);
        let w = recorder.lock();
        assert_eq!(w.closed.len(), 3, "two aws waits and one builder wait: {:?}", w.closed);
        assert_eq!(w.open.len(), 1, "the registry span is still open");
        drop(w);
        assert_eq!(report.waits_by_system.keys().collect::<Vec<_>>(), ["aws", "builder", "registry"]);
        assert!(report.wait_seconds <= report.wall_seconds);
        assert!((report.overhead_seconds - (report.wall_seconds - report.wait_seconds)).abs() < 1e-9);
        drop(open);
        assert_eq!(recorder.lock().closed.len(), 4, "closing the span records it");
    }

    /// Real time, so the recorded lengths can be checked against the sleeps.
    #[tokio::test(flavor = "current_thread")]
    async fn wait_time_matches_the_time_spent_waiting() {
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry().with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let sleep = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
        let a = sleep(200).instrument(wait("aws"));
        let b = sleep(100).instrument(wait("aws"));
        tokio::join!(a, b);
        sleep(100).await; // not a wait: overhead
        sleep(100).instrument(wait("builder")).await;
        let r = recorder.report(None);
        let aws = r.waits_by_system["aws"];
        assert!((0.2..0.3).contains(&aws), "aws waits overlap, so ~0.2 s: {r:?}");
        assert!((0.1..0.2).contains(&r.waits_by_system["builder"]), "{r:?}");
        assert!((0.3..0.4).contains(&r.wait_seconds), "{r:?}");
        assert!((0.1..0.2).contains(&r.overhead_seconds), "the unwrapped sleep is overhead: {r:?}");
    }

    /// Log lines keep their old shape: no `wait{system=..}:` prefix.
    #[test]
    fn wait_spans_never_show_in_log_lines() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let log = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_filter(hide_wait_spans(tracing_subscriber::EnvFilter::new("info")));
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry().with(log).with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        tracing::subscriber::with_default(subscriber, || {
            let _inside = wait("aws").entered();
            let _other = tracing::info_span!("deploy", service = "shop").entered();
            tracing::info!("polling the service");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("deploy{service=\"shop\"}: ") && out.contains("polling the service"), "{out}");
        assert!(!out.contains("wait"), "{out}");
        assert_eq!(recorder.lock().closed.len(), 1, "the wait span was still recorded");
    }

    #[test]
    fn the_report_round_trips_as_json() {
        let r = Report {
            wall_seconds: 2.0,
            wait_seconds: 1.5,
            overhead_seconds: 0.5,
            waits_by_system: BTreeMap::from([("aws".to_string(), 1.5)]),
            peak_rss_bytes: Some(1024),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"overhead_seconds\":0.5"), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
