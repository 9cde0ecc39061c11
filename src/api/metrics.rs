//! `/metrics`: the node's state and the API's own request statistics in the Prometheus text
//! format 0.0.4.
//!
//! Request statistics are labelled by route template (`/api/v1/indicators/{id}`), never by raw
//! path, so their number is bounded by the route table and the status codes the API answers.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::time::Duration;

use crate::model::{EntryKind, NodeName};
use crate::node::Status;

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the request latency histogram, in seconds, with their label text.
const BUCKETS: [(f64, &str); 8] = [
    (0.001, "0.001"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.5, "0.5"),
    (1.0, "1"),
    (5.0, "5"),
];

/// Request counts and latencies per route, since start.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    routes: BTreeMap<&'static str, RouteStats>,
}

#[derive(Debug, Default)]
struct RouteStats {
    /// Cumulative: `buckets[i]` counts requests that took at most `BUCKETS[i]`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
    /// Status code → requests.
    statuses: BTreeMap<u16, u64>,
}

impl RequestMetrics {
    /// Records one answered request. `route` is a route template or `unmatched`.
    pub fn record(&mut self, route: &'static str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let r = self.routes.entry(route).or_default();
        for (n, (le, _)) in r.buckets.iter_mut().zip(BUCKETS) {
            if secs <= le {
                *n += 1;
            }
        }
        r.count += 1;
        r.sum_seconds += secs;
        *r.statuses.entry(status).or_insert(0) += 1;
    }
}

/// Renders every metric. `counts` is `Store::counts`; `cert_not_after_s` is when this node's TLS
/// certificate expires. Every family is documented in `deploy/README.md` (a test checks).
pub fn render(
    status: &Status,
    counts: &BTreeMap<(NodeName, EntryKind), u64>,
    requests: &RequestMetrics,
    cert_not_after_s: Option<i64>,
) -> String {
    let mut out = Out(String::new());
    out.family("ctix_build_info", "gauge", "Always 1; the version label is the running ctix version");
    out.sample("ctix_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    out.family("ctix_ready", "gauge", "1 when the node accepts appends (its own log head is confirmed)");
    out.sample("ctix_ready", &[], u8::from(status.ready));

    out.family("ctix_entries", "gauge", "Log entries held, by origin and kind");
    for ((origin, kind), n) in counts {
        out.sample("ctix_entries", &[("origin", origin.as_str()), ("kind", kind.as_str())], n);
    }
    out.family("ctix_head_seq", "gauge", "Sequence number of the newest entry held of each origin's log");
    for (origin, tip) in &status.heads {
        out.sample("ctix_head_seq", &[("origin", origin.as_str())], tip.seq);
    }
    out.family("ctix_peer_connected", "gauge", "1 when the peer is connected over QUIC");
    for p in &status.peers {
        out.sample("ctix_peer_connected", &[("peer", p.name.as_str())], u8::from(p.connected));
    }
    out.family(
        "ctix_peer_last_seen_timestamp_seconds",
        "gauge",
        "When the last message from the peer arrived (seconds since the epoch); absent if none since start",
    );
    for p in &status.peers {
        if let Some(ms) = p.last_seen_ms {
            out.sample("ctix_peer_last_seen_timestamp_seconds", &[("peer", p.name.as_str())], seconds(ms));
        }
    }
    out.family("ctix_peer_lag_entries", "gauge", "Entries held here that the peer has not announced holding");
    for p in &status.peers {
        if let Some(lag) = p.lag_entries {
            out.sample("ctix_peer_lag_entries", &[("peer", p.name.as_str())], lag);
        }
    }
    out.family(
        "ctix_peer_rejected_total",
        "counter",
        "Entries from the peer that failed verification since start (it relayed a forged or tampered entry)",
    );
    for p in &status.peers {
        out.sample("ctix_peer_rejected_total", &[("peer", p.name.as_str())], p.rejected);
    }
    out.family("ctix_quarantined_origins", "gauge", "Origins quarantined for a fork in their log");
    out.sample("ctix_quarantined_origins", &[], status.quarantined.len());
    out.family("ctix_origin_quarantined", "gauge", "1 for each origin quarantined for a fork in its log");
    for origin in &status.quarantined {
        out.sample("ctix_origin_quarantined", &[("origin", origin.as_str())], 1);
    }
    out.family(
        "ctix_tls_cert_expiry_timestamp_seconds",
        "gauge",
        "When this node's TLS certificate expires (seconds since the epoch)",
    );
    if let Some(s) = cert_not_after_s {
        out.sample("ctix_tls_cert_expiry_timestamp_seconds", &[], s);
    }

    let c = &status.counters;
    let counters: [(&str, &str, u64); 6] = [
        ("ctix_appended_total", "Own entries appended since start", c.appended),
        ("ctix_stored_from_peers_total", "Entries of other origins stored since start", c.stored_from_peers),
        ("ctix_rejected_total", "Entries from peers rejected since start (bad signature, body or chain)", c.rejected),
        ("ctix_duplicates_total", "Entries from peers already held, since start", c.duplicates),
        ("ctix_gaps_total", "Entries from peers not stored for missing predecessors, since start", c.gaps),
        ("ctix_forks_detected_total", "Forks (two entries signed for one position) detected since start", c.forks),
    ];
    for (name, help, v) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], v);
    }

    let hist = "ctix_api_request_duration_seconds";
    out.family(hist, "histogram", "Time to answer API requests, by route template");
    for (route, r) in &requests.routes {
        for (n, (_, le)) in r.buckets.iter().zip(BUCKETS) {
            out.sample(&format!("{hist}_bucket"), &[("route", route), ("le", le)], n);
        }
        out.sample(&format!("{hist}_bucket"), &[("route", route), ("le", "+Inf")], r.count);
        out.sample(&format!("{hist}_sum"), &[("route", route)], r.sum_seconds);
        out.sample(&format!("{hist}_count"), &[("route", route)], r.count);
    }
    out.family("ctix_api_requests_total", "counter", "API requests answered, by route template and status code");
    for (route, r) in &requests.routes {
        for (code, n) in &r.statuses {
            out.sample("ctix_api_requests_total", &[("route", route), ("status", &code.to_string())], n);
        }
    }
    out.0
}

/// Milliseconds as seconds with millisecond precision, e.g. `1795867200.123`.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Escapes a label value as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut m = RequestMetrics::default();
        m.record("/healthz", 200, Duration::from_micros(500));
        m.record("/healthz", 200, Duration::from_millis(20));
        m.record("/healthz", 404, Duration::from_secs(9));
        let r = &m.routes["/healthz"];
        assert_eq!(r.buckets, [1, 1, 1, 2, 2, 2, 2, 2]);
        assert_eq!((r.count, r.statuses[&200], r.statuses[&404]), (3, 2, 1));
    }

    fn sample_status() -> Status {
        let name = |s: &str| NodeName::new(s).unwrap();
        let peer = |n: &str, seen: Option<u64>| crate::node::PeerStatus {
            name: name(n),
            connected: seen.is_some(),
            last_seen_ms: seen,
            lag_entries: Some(3),
            rejected: 0,
        };
        Status {
            node: name("ee"),
            heads: BTreeMap::new(),
            peers: vec![peer("lv", Some(1_795_867_200_123)), peer("lt", None)],
            connected: [name("lv")].into(),
            quarantined: [name("xx")].into(),
            ready: true,
            counters: Default::default(),
        }
    }

    #[test]
    fn alerting_series_are_rendered() {
        let mut m = RequestMetrics::default();
        m.record("/healthz", 200, Duration::from_millis(1));
        let text = render(&sample_status(), &BTreeMap::new(), &m, Some(1_800_000_000));
        for line in [
            "ctix_ready 1",
            "ctix_peer_connected{peer=\"lt\"} 0",
            "ctix_peer_last_seen_timestamp_seconds{peer=\"lv\"} 1795867200.123",
            "ctix_peer_lag_entries{peer=\"lv\"} 3",
            "ctix_origin_quarantined{origin=\"xx\"} 1",
            "ctix_quarantined_origins 1",
            "ctix_tls_cert_expiry_timestamp_seconds 1800000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("ctix_peer_last_seen_timestamp_seconds{peer=\"lt\"}"), "{text}");
        let no_cert = render(&sample_status(), &BTreeMap::new(), &m, None);
        assert!(!no_cert.contains("\nctix_tls_cert_expiry_timestamp_seconds "), "{no_cert}");
    }

    /// `deploy/README.md` documents every metric family: name, type, labels and meaning.
    #[test]
    fn every_metric_is_documented() {
        let doc = include_str!("../../deploy/README.md");
        let mut m = RequestMetrics::default();
        m.record("/healthz", 200, Duration::from_millis(1));
        let text = render(&sample_status(), &BTreeMap::new(), &m, Some(1));
        let families: Vec<(&str, &str)> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split_once(' ')).collect();
        assert!(families.len() >= 18, "{families:?}");
        for (name, kind) in families {
            let row = doc.lines().find(|l| l.starts_with(&format!("| `{name}` |")));
            let row = row.unwrap_or_else(|| panic!("deploy/README.md has no metrics table row for `{name}`"));
            assert!(row.contains(&format!("| {kind} |")), "the row for {name} does not say {kind}: {row}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
