//! Where a run's time goes: fastdeploy's own work against the time it spends
//! waiting on outside systems (builder, registry, AWS, Slack, GitHub).
//!
//! Each outside wait is a `wait` span with a `system` field (see [`wait`]),
//! around the waiting call itself, never around a function that also works:
//! a command's run ([`crate::process::Runner::run`]), an AWS request on the
//! wire ([`AwsWait`], on every client made with [`aws_client!`]), an HTTP
//! call ([`waiting`]), a pause between polls or attempts ([`sleep`]).
//! When `FASTDEPLOY_TIMINGS_FILE` is set, [`layer`] records every wait span's
//! lifetime (creation to close, which for an instrumented future is the
//! whole wait, not only the polls), and [`finish`] writes a [`Report`]: the
//! wall time, the union of the waits, the difference (fastdeploy's
//! overhead, an estimate from wall time), the CPU time the operating system
//! counted for the process itself, and its peak resident set size. The
//! benchmarks read it (benches/e2e.rs); nothing else does.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::{Deserialize, Serialize};
use tracing::instrument::Instrumented;
use tracing::span::{Attributes, Id};
use tracing::{Instrument, Metadata, Subscriber};
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

/// `fut` (an HTTP call, say) awaited inside a `wait` span for `system`.
pub fn waiting<F: std::future::Future>(system: &'static str, fut: F) -> Instrumented<F> {
    fut.instrument(wait(system))
}

/// A pause between polls or attempts: waiting on `system`.
pub async fn sleep(system: &'static str, pause: Duration) {
    tokio::time::sleep(pause).instrument(wait(system)).await;
}

/// An AWS client of `$service` (`aws_sdk_ecs`, ...) from an `SdkConfig`,
/// whose requests are `wait("aws")` spans ([`AwsWait`]); an optional
/// closure adjusts the service's config builder first.
#[macro_export]
macro_rules! aws_client {
    ($service:ident, $sdk:expr) => {
        $crate::aws_client!($service, $sdk, |b| b)
    };
    ($service:ident, $sdk:expr, $adjust:expr) => {
        $service::Client::from_conf(
            ($adjust)($service::config::Builder::from($sdk))
                .interceptor($crate::timings::AwsWait)
                .build(),
        )
    };
}

/// Makes each attempt of an AWS request a `wait("aws")` span, from the
/// request going out to its answer read and parsed. Signing, serialising
/// and the SDK's pauses between retries stay outside it (they count as
/// fastdeploy's own time, so the estimate errs towards overstating it).
#[derive(Debug, Clone, Copy)]
pub struct AwsWait;

/// The span of the attempt on the wire, kept in the request's config bag.
#[derive(Debug)]
struct OnTheWire {
    _span: tracing::Span,
}

impl Storable for OnTheWire {
    type Storer = StoreReplace<Self>;
}

impl Intercept for AwsWait {
    fn name(&self) -> &'static str {
        "fastdeploy::timings::AwsWait"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(OnTheWire { _span: wait("aws") });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        _: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<OnTheWire>();
        Ok(())
    }

    /// Also after a failed send (no answer to read).
    fn read_after_attempt(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().unset::<OnTheWire>();
        Ok(())
    }
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
    /// CPU time the kernel counted for this process at [`finish`], in user
    /// and in kernel mode: every thread's, children such as buildah not
    /// included (what `getrusage(RUSAGE_SELF)` reports), from the `utime`
    /// and `stime` fields of /proc/self/stat, in clock ticks (10 ms on
    /// Linux). `None` where /proc is missing.
    #[serde(default)]
    pub cpu_user_seconds: Option<f64>,
    #[serde(default)]
    pub cpu_system_seconds: Option<f64>,
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
        Recorder(Arc::new(Mutex::new(Waits {
            started: Instant::now(),
            open: HashMap::new(),
            closed: Vec::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The report as of now; waits still open count up to now.
    fn report(&self, peak_rss_bytes: Option<u64>, cpu: Option<Cpu>) -> Report {
        let now = Instant::now();
        let w = self.lock();
        let seconds = |t: Instant| t.saturating_duration_since(w.started).as_secs_f64();
        let intervals: Vec<(&str, f64, f64)> = w
            .closed
            .iter()
            .map(|(s, a, b)| (s.as_str(), seconds(*a), seconds(*b)))
            .chain(
                w.open
                    .values()
                    .map(|(s, a)| (s.as_str(), seconds(*a), seconds(now))),
            )
            .collect();
        let wall_seconds = seconds(now);
        let wait_seconds = union_seconds(intervals.iter().map(|(_, a, b)| (*a, *b)).collect());
        let mut waits_by_system = BTreeMap::new();
        for system in intervals
            .iter()
            .map(|(s, _, _)| *s)
            .collect::<std::collections::BTreeSet<_>>()
        {
            let own = intervals
                .iter()
                .filter(|(s, _, _)| *s == system)
                .map(|(_, a, b)| (*a, *b))
                .collect();
            waits_by_system.insert(system.to_string(), union_seconds(own));
        }
        Report {
            wall_seconds,
            wait_seconds,
            overhead_seconds: (wall_seconds - wait_seconds).max(0.0),
            waits_by_system,
            peak_rss_bytes,
            cpu_user_seconds: cpu.map(|c| c.user_seconds),
            cpu_system_seconds: cpu.map(|c| c.system_seconds),
        }
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
        self.0
            .lock()
            .open
            .insert(id.into_u64(), (system, Instant::now()));
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
    let recorder = ACTIVE
        .get_or_init(|| (PathBuf::from(path), Recorder::new()))
        .1
        .clone();
    Some(WaitLayer(recorder).with_filter(filter_fn(is_wait)))
}

/// Wraps the log's filter so `wait` spans never show in log lines (they are
/// bookkeeping, not context a reader needs).
pub fn hide_wait_spans<S>(filter: impl Filter<S>) -> impl Filter<S> {
    filter.and(filter_fn(|m| !is_wait(m)))
}

/// Writes the report when recording; a failure to write is a warning only.
pub fn finish() {
    let Some((path, recorder)) = ACTIVE.get() else {
        return;
    };
    let report = recorder.report(peak_rss_bytes(), cpu_time());
    let written = serde_json::to_vec_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|json| std::fs::write(path, json));
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
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// A process's own CPU time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpu {
    pub user_seconds: f64,
    pub system_seconds: f64,
}

/// This process's own CPU time so far, from /proc/self/stat.
pub fn cpu_time() -> Option<Cpu> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu(&stat, clock_ticks_per_second())
}

/// `utime` and `stime` (fields 14 and 15 of /proc/<pid>/stat) in seconds.
/// The command name (field 2) may hold spaces and parentheses: fields are
/// counted after its closing parenthesis, the last one on the line.
fn parse_cpu(stat: &str, ticks_per_second: u64) -> Option<Cpu> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let tick = ticks_per_second.max(1) as f64;
    Some(Cpu {
        user_seconds: user as f64 / tick,
        system_seconds: system as f64 / tick,
    })
}

/// The kernel's `USER_HZ`, which /proc/<pid>/stat counts in: `AT_CLKTCK`
/// in this process's auxiliary vector (what `sysconf(_SC_CLK_TCK)` reads),
/// else 100, its value on every Linux architecture fastdeploy runs on.
fn clock_ticks_per_second() -> u64 {
    std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| auxv_value(&auxv, AT_CLKTCK))
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

const AT_CLKTCK: u64 = 17;

/// The value of `key` in an auxiliary vector (native-endian word pairs).
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    let word = std::mem::size_of::<usize>();
    let read = |b: &[u8]| -> u64 {
        let mut buf = [0u8; 8];
        if cfg!(target_endian = "little") {
            buf[..word].copy_from_slice(b);
            u64::from_le_bytes(buf)
        } else {
            buf[8 - word..].copy_from_slice(b);
            u64::from_be_bytes(buf)
        }
    };
    auxv.chunks_exact(2 * word)
        .map(|pair| (read(&pair[..word]), read(&pair[word..])))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
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
        assert_eq!(
            union_seconds(vec![(5.0, 6.0), (0.0, 10.0), (2.0, 3.0)]),
            10.0,
            "nested and unsorted"
        );
        assert_eq!(
            union_seconds(vec![(1.0, 1.0), (3.0, 2.0)]),
            0.0,
            "empty and reversed intervals add nothing"
        );
    }

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status =
            "Name:\tfastdeploy\nVmPeak:\t  99999 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(12345 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(
            peak_rss_bytes().is_some_and(|b| b > 0),
            "this test process has a peak RSS"
        );
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        // A name with spaces and parentheses, as a process may give itself.
        let stat = "4242 (fast (deploy) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 37 7 9 20 0 8 0 100 0 0";
        assert_eq!(
            parse_cpu(stat, 100),
            Some(Cpu {
                user_seconds: 2.5,
                system_seconds: 0.37
            })
        );
        assert_eq!(
            parse_cpu(stat, 1000),
            Some(Cpu {
                user_seconds: 0.25,
                system_seconds: 0.037
            })
        );
        assert_eq!(parse_cpu("4242 (x) S 1 2", 100), None, "too few fields");
        assert_eq!(parse_cpu("no name here", 100), None);
    }

    #[test]
    fn clock_ticks_come_from_the_auxiliary_vector() {
        let word = std::mem::size_of::<usize>();
        let mut auxv = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 250), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes()[..word]);
            auxv.extend_from_slice(&v.to_ne_bytes()[..word]);
        }
        assert_eq!(auxv_value(&auxv, AT_CLKTCK), Some(250));
        assert_eq!(auxv_value(&auxv, 99), None);
        // This machine's, as sysconf(_SC_CLK_TCK) reports it to getconf.
        let getconf = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output();
        if let Some(out) = getconf.ok().filter(|o| o.status.success()) {
            assert_eq!(
                clock_ticks_per_second().to_string(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
    }

    /// The reading follows the process's own work: burning CPU in this
    /// process moves it by at least that much (to within one tick).
    #[test]
    fn cpu_time_counts_this_process_work() {
        let before = cpu_time().expect("/proc/self/stat is readable");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = cpu_time().unwrap();
        let burnt = (after.user_seconds + after.system_seconds)
            - (before.user_seconds + before.system_seconds);
        assert!(burnt > 0.0, "{before:?} then {after:?} after {x}");
    }

    /// Spans are recorded for their whole lifetime, including the time an
    /// instrumented future sits idle between polls; other spans are ignored.
    #[tokio::test(flavor = "current_thread")]
    async fn wait_spans_are_recorded_by_system_from_creation_to_close() {
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry()
            .with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let sleep = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
        // Two AWS waits, a builder wait, a span that is not a wait, and a
        // registry wait still open when the report is taken.
        tokio::join!(
            sleep(10).instrument(wait("aws")),
            sleep(5).instrument(wait("aws"))
        );
        sleep(5).instrument(wait("builder")).await;
        sleep(5).instrument(tracing::info_span!("other")).await;
        let open = wait("registry");
        sleep(5).await;

        let report = recorder.report(None, None);
        let w = recorder.lock();
        assert_eq!(
            w.closed.len(),
            3,
            "two aws waits and one builder wait: {:?}",
            w.closed
        );
        assert_eq!(w.open.len(), 1, "the registry span is still open");
        drop(w);
        assert_eq!(
            report.waits_by_system.keys().collect::<Vec<_>>(),
            ["aws", "builder", "registry"]
        );
        assert!(report.wait_seconds <= report.wall_seconds);
        assert!(
            (report.overhead_seconds - (report.wall_seconds - report.wait_seconds)).abs() < 1e-9
        );
        drop(open);
        assert_eq!(
            recorder.lock().closed.len(),
            4,
            "closing the span records it"
        );
    }

    /// An AWS request is a wait from going out to its answer, once per
    /// attempt, and a client made without the macro records nothing.
    #[tokio::test(flavor = "current_thread")]
    async fn aws_requests_are_waits_while_on_the_wire() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // An endpoint that answers every request 150 ms after reading it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut seen = Vec::new();
                    while let Ok(n) = conn.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen).to_string();
                        let Some(head_end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if seen.len() < head_end + 4 + length {
                            continue;
                        }
                        seen.clear();
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}";
                        conn.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .load()
            .await;
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry()
            .with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        let _guard = tracing::subscriber::set_default(subscriber);

        let ecs = crate::aws_client!(aws_sdk_ecs, &sdk);
        ecs.describe_services()
            .cluster("c")
            .services("web")
            .send()
            .await
            .unwrap();
        let r = recorder.report(None, None);
        assert_eq!(
            recorder.lock().closed.len(),
            1,
            "one attempt, one wait, closed: {:?}",
            recorder.lock().closed
        );
        assert!(recorder.lock().open.is_empty());
        assert!(r.waits_by_system["aws"] >= 0.15, "{r:?}");

        aws_sdk_ecs::Client::new(&sdk)
            .describe_services()
            .cluster("c")
            .services("web")
            .send()
            .await
            .unwrap();
        assert_eq!(
            recorder.lock().closed.len(),
            1,
            "a client made without the macro records nothing"
        );
    }

    /// Real time, so the recorded lengths can be checked against the sleeps.
    #[tokio::test(flavor = "current_thread")]
    async fn wait_time_matches_the_time_spent_waiting() {
        let recorder = Recorder::new();
        let subscriber = tracing_subscriber::registry()
            .with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        let _guard = tracing::subscriber::set_default(subscriber);
        let sleep = |ms| tokio::time::sleep(std::time::Duration::from_millis(ms));
        let a = sleep(200).instrument(wait("aws"));
        let b = sleep(100).instrument(wait("aws"));
        tokio::join!(a, b);
        sleep(100).await; // not a wait: overhead
        sleep(100).instrument(wait("builder")).await;
        let r = recorder.report(None, None);
        let aws = r.waits_by_system["aws"];
        assert!(
            (0.2..0.3).contains(&aws),
            "aws waits overlap, so ~0.2 s: {r:?}"
        );
        assert!((0.1..0.2).contains(&r.waits_by_system["builder"]), "{r:?}");
        assert!((0.3..0.4).contains(&r.wait_seconds), "{r:?}");
        assert!(
            (0.1..0.2).contains(&r.overhead_seconds),
            "the unwrapped sleep is overhead: {r:?}"
        );
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
        let subscriber = tracing_subscriber::registry()
            .with(log)
            .with(WaitLayer(recorder.clone()).with_filter(filter_fn(is_wait)));
        tracing::subscriber::with_default(subscriber, || {
            let _inside = wait("aws").entered();
            let _other = tracing::info_span!("deploy", service = "shop").entered();
            tracing::info!("polling the service");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("deploy{service=\"shop\"}: ") && out.contains("polling the service"),
            "{out}"
        );
        assert!(!out.contains("wait"), "{out}");
        assert_eq!(
            recorder.lock().closed.len(),
            1,
            "the wait span was still recorded"
        );
    }

    #[test]
    fn the_report_round_trips_as_json() {
        let r = Report {
            wall_seconds: 2.0,
            wait_seconds: 1.5,
            overhead_seconds: 0.5,
            waits_by_system: BTreeMap::from([("aws".to_string(), 1.5)]),
            peak_rss_bytes: Some(1024),
            cpu_user_seconds: Some(0.25),
            cpu_system_seconds: Some(0.05),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"overhead_seconds\":0.5"), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    }
}
