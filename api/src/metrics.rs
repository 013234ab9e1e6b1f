//! Prometheus text metrics: requests, latencies, claims by decision and
//! amounts paid. Kept in memory; a scrape reads a consistent copy.

use engine::domain::adjudication::ClaimStatus;
use engine::domain::money::Fen;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    claims_by_status: BTreeMap<String, u64>,
    authorizations_by_status: BTreeMap<String, u64>,
    paid_fen: i64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `route` is the matched route pattern (e.g. `/v1/claims/{id}`), never the
    /// raw path, so that ids do not explode the label set.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut inner = self.lock();
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let histogram = inner
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                histogram.buckets[i] += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// A claim decided (or decided again on appeal): its decision's status
    /// and the amount it makes payable.
    pub fn observe_claim(&self, status: ClaimStatus, payable: Fen) {
        let mut inner = self.lock();
        *inner
            .claims_by_status
            .entry(status.as_str().to_owned())
            .or_default() += 1;
        inner.paid_fen = inner.paid_fen.saturating_add(payable.0);
    }

    /// An authorisation request decided: `active` or `denied`.
    pub fn observe_authorization(&self, status: &str) {
        *self
            .lock()
            .authorizations_by_status
            .entry(status.to_owned())
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP puhui_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE puhui_http_requests_total counter");
        for ((method, route, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "puhui_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP puhui_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(out, "# TYPE puhui_http_request_duration_seconds histogram");
        for ((method, route), h) in &inner.latency {
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "puhui_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "puhui_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "puhui_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum_seconds
            );
            let _ = writeln!(
                out,
                "puhui_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP puhui_claims_decided_total Claim decisions (first decisions and appeals) made by this process, by status."
        );
        let _ = writeln!(out, "# TYPE puhui_claims_decided_total counter");
        for (status, count) in &inner.claims_by_status {
            let _ = writeln!(
                out,
                "puhui_claims_decided_total{{status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP puhui_authorizations_decided_total Authorisation requests decided by this process, by outcome."
        );
        let _ = writeln!(out, "# TYPE puhui_authorizations_decided_total counter");
        for (status, count) in &inner.authorizations_by_status {
            let _ = writeln!(
                out,
                "puhui_authorizations_decided_total{{status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP puhui_amount_paid_cny_total Benefit payable decided by this process, in CNY."
        );
        let _ = writeln!(out, "# TYPE puhui_amount_paid_cny_total counter");
        let _ = writeln!(
            out,
            "puhui_amount_paid_cny_total {}.{:02}",
            inner.paid_fen / 100,
            (inner.paid_fen % 100).abs()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.observe_request("GET", "/healthz", 200, Duration::from_millis(3));
        m.observe_claim(ClaimStatus::Paid, Fen(12_345));
        m.observe_authorization("denied");
        let text = m.render();
        assert!(text.contains(
            r#"puhui_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ));
        assert!(text.contains(r#"le="0.005"} 1"#));
        assert!(text.contains(r#"le="0.001"} 0"#));
        assert!(text.contains(r#"puhui_claims_decided_total{status="paid"} 1"#));
        assert!(text.contains("puhui_amount_paid_cny_total 123.45"));
        assert!(text.contains(r#"puhui_authorizations_decided_total{status="denied"} 1"#));
    }
}
