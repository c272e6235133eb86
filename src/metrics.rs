//! Prometheus metrics: HTTP traffic by route pattern, the pool, the schema.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::db::Pool;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    pool_max_size: IntGauge,
    pool_size: IntGauge,
    pool_in_use: IntGauge,
    pool_waiting: IntGauge,
    schema_version: IntGauge,
    schema_drift: IntGauge,
    migrations_out_of_order: IntGauge,
    db_queries: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("conduit".into()), None)
            .expect("a constant, valid metric prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric definition");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric definition");
        let gauge =
            |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric definition");
        let metrics = Self {
            pool_max_size: gauge("db_pool_max_size", "Maximum connections in the pool"),
            pool_size: gauge("db_pool_size", "Open connections in the pool"),
            pool_in_use: gauge("db_pool_in_use", "Pooled connections checked out"),
            pool_waiting: gauge("db_pool_waiting", "Requests waiting for a connection"),
            schema_version: gauge(
                "schema_version",
                "Newest applied migration version (0: none)",
            ),
            schema_drift: gauge(
                "schema_drift",
                "Differences between the live schema and the one the applied migrations make (-1: not checked)",
            ),
            migrations_out_of_order: gauge(
                "migrations_out_of_order",
                "Pending migrations whose version sorts below the newest applied one",
            ),
            db_queries: IntCounter::new(
                "db_queries_total",
                "SQL statements run by pooled connections",
            )
            .expect("valid metric definition"),
            registry,
            http_requests,
            http_latency,
        };
        for collector in [
            Box::new(metrics.http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.http_latency.clone()),
            Box::new(metrics.pool_max_size.clone()),
            Box::new(metrics.pool_size.clone()),
            Box::new(metrics.pool_in_use.clone()),
            Box::new(metrics.pool_waiting.clone()),
            Box::new(metrics.schema_version.clone()),
            Box::new(metrics.schema_drift.clone()),
            Box::new(metrics.migrations_out_of_order.clone()),
            Box::new(metrics.db_queries.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("each metric is registered once");
        }
        metrics.schema_drift.set(-1);
        metrics
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, status.to_string().as_str()])
            .inc();
        self.http_latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The counter the pool's connections add their statements to.
    pub fn db_queries(&self) -> IntCounter {
        self.db_queries.clone()
    }

    /// Records the newest applied version ("002" becomes 2).
    pub fn set_schema_version(&self, version: Option<&str>) {
        let numeric = version.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        self.schema_version.set(numeric);
    }

    /// Records how many objects differ from the expected schema.
    pub fn set_schema_drift(&self, differences: usize) {
        self.schema_drift.set(differences as i64);
    }

    /// Records how many pending migrations sort below the newest applied.
    pub fn set_migrations_out_of_order(&self, count: usize) {
        self.migrations_out_of_order.set(count as i64);
    }

    /// The text exposition, with the pool read at scrape time.
    pub fn render(&self, pool: &Pool) -> String {
        let status = pool.status();
        self.pool_max_size.set(status.max_size as i64);
        self.pool_size.set(status.size as i64);
        self.pool_in_use
            .set(status.size.saturating_sub(status.available) as i64);
        self.pool_waiting.set(status.waiting as i64);
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
