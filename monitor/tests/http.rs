//! The monitor over HTTP, served on a free port and called as a script or
//! a browser would: the JSON API's shapes and errors, the metrics, the
//! live feed and the page.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_monitor::http::{serve, Site};
use choreo_monitor::{Flow, Monitor, MonitorOptions, WatchOptions};
use choreo_runtime::broker::{SharedBroker, StartPosition};
use choreo_runtime::service::Topics;
use choreo_runtime::MemoryBroker;
use serde_json::Value;

mod common;

use common::{spec, Publisher};

struct Served {
    base: String,
    shop: Publisher,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn served() -> Served {
    let spec = spec();
    let flow = Flow::new(&spec);
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let options = MonitorOptions {
        topics: Topics::new(""),
        start: StartPosition::Earliest,
        watch: WatchOptions {
            stuck_after: Duration::from_millis(300),
            ..WatchOptions::default()
        },
    };
    let monitor = Arc::new(
        Monitor::start(flow.clone(), broker.clone(), options)
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(Site::new(monitor, &spec), listener, async {
        let _ = stopped.await;
    }));
    Served {
        base,
        shop: Publisher {
            broker,
            flow,
            topics: Topics::new(""),
        },
        stop,
        server,
    }
}

impl Served {
    async fn order(&self, key: &str, done: bool) {
        self.shop.order(key, done).await;
    }

    async fn get(&self, path: &str) -> (u16, String, String) {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, kind, r.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let (status, kind, body) = self.get(path).await;
        assert!(kind.starts_with("application/json"), "{path}: {kind}");
        (status, serde_json::from_str(&body).unwrap())
    }

    /// The summary once `until` holds of it.
    async fn summary_when(&self, until: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (_, s) = self.json("/api/summary").await;
            if until(&s) {
                return s;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{s:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("the server stops, live feeds and all")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn the_api_answers_scripts_with_fixed_shapes() {
    let s = served().await;
    s.order("a", true).await;
    s.order("b", false).await;
    // `b` waits for Orders on OrderPlaced, and is stuck after 300 ms.
    let summary = s
        .summary_when(|v| v["instances"]["succeeded"] == 1 && v["instances"]["stuck"] == 1)
        .await;
    let states: Vec<&str> = summary["instances"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for state in [
        "running",
        "succeeded",
        "failed",
        "stuck",
        "violated",
        "dead_lettered",
        "partial",
    ] {
        assert!(states.contains(&state), "{state}: {summary:#}");
    }
    assert_eq!(summary["events"]["PlaceOrder"], 2);
    assert_eq!(summary["events"]["Completed"], 1);
    let on_placed = summary["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"] == "OrderPlaced")
        .unwrap();
    assert_eq!(on_placed["participant"], "Orders");
    assert_eq!(on_placed["handled"], 1);
    assert_eq!(on_placed["waiting"], 1);
    assert_eq!(on_placed["dead_lettered"], 0);
    assert_eq!(on_placed["stuck"], 1);
    assert!(on_placed["p50_ms"].is_number() && on_placed["p99_ms"].is_number());

    let (status, stuck) = s.json("/api/instances?state=stuck&limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(stuck.as_array().unwrap().len(), 1, "{stuck:#}");
    assert_eq!(stuck[0]["key"], "b");
    assert_eq!(stuck[0]["state"], "stuck");
    assert!(stuck[0]["reason"].as_str().unwrap().contains("no progress"));
    assert_eq!(stuck[0]["waiting"][0], "Orders on OrderPlaced");
    let (_, all) = s.json("/api/instances").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, one) = s.json("/api/instances?limit=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);

    let (status, a) = s.json("/api/instances/a").await;
    assert_eq!(status, 200);
    assert_eq!(a["state"], "succeeded");
    let events = a["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{a:#}");
    let completed = events.iter().find(|e| e["name"] == "Completed").unwrap();
    assert_eq!(completed["participant"], "Orders");
    assert!(completed["at_ms"].is_i64() && completed["latency_ms"].is_i64());
    assert!(a["waiting"].as_array().unwrap().is_empty());
    assert!(a["violations"].as_array().unwrap().is_empty());
    let (_, b) = s.json("/api/instances/b").await;
    assert_eq!(b["waiting"][0]["participant"], "Orders");
    assert_eq!(b["waiting"][0]["events"][0], "OrderPlaced");
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_json_error() {
    let s = served().await;
    for (path, status, says) in [
        ("/api/instances?state=lost", 400, "no state `lost`"),
        ("/api/instances?limit=many", 400, "`limit`"),
        ("/api/instances?limit=0", 400, "`limit`"),
        ("/api/instances?sort=key", 400, "`sort`"),
        ("/api/instances/nobody", 404, "no instance `nobody`"),
        ("/api/nothing", 404, "no such page"),
    ] {
        let (got, body) = s.json(path).await;
        assert_eq!(got, status, "{path}: {body:#}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{path}: {error}");
    }
    s.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_of_the_same_counts() {
    let s = served().await;
    s.order("a", true).await;
    s.summary_when(|v| v["instances"]["succeeded"] == 1).await;
    let (status, kind, text) = s.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    for line in [
        "# TYPE choreo_monitor_instances gauge",
        "choreo_monitor_instances{state=\"succeeded\"} 1",
        "choreo_monitor_instances{state=\"stuck\"} 0",
        "choreo_monitor_events_total{event=\"PlaceOrder\"} 1",
        "choreo_monitor_reaction_handled_total{participant=\"Orders\",trigger=\"OrderPlaced\"} 1",
        "choreo_monitor_reaction_waiting{participant=\"Orders\",trigger=\"OrderPlaced\"} 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_live_feed_sends_snapshots_and_ends_when_the_server_stops() {
    let s = served().await;
    s.order("a", true).await;
    let mut r = reqwest::get(format!("{}/api/live", s.base)).await.unwrap();
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.starts_with("event: snapshot\n"), "{seen}");
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let snapshot: Value = serde_json::from_str(data).unwrap();
    for field in ["summary", "lag", "stuck", "violated", "dead_lettered"] {
        assert!(!snapshot[field].is_null(), "{field}: {snapshot:#}");
    }
    // The feed stays open; stopping the server ends it (`stop` would time
    // out otherwise).
    s.stop().await;
}

#[tokio::test]
async fn the_page_holds_the_diagram_and_needs_nothing_from_elsewhere() {
    let s = served().await;
    let (status, kind, page) = s.get("/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.contains("<title>Shop · choreo-monitor</title>"));
    assert!(
        page.contains("id=\"e_OrderPlaced\""),
        "the diagram is inline"
    );
    assert!(page.contains("data-from="), "edges name their ends");
    let (_, _, instance) = s.get("/instances/some-key").await;
    assert_eq!(instance, page, "an instance's page is the same app");
    for asset in ["/assets/app.js", "/assets/style.css"] {
        let (status, _, body) = s.get(asset).await;
        assert_eq!(status, 200, "{asset}");
        assert!(!body.is_empty());
    }
    // Offline deployments: no asset from anywhere else (the SVG namespace
    // is a name, not a fetch).
    for text in [&page, &s.get("/assets/app.js").await.2] {
        let external = text
            .match_indices("http")
            .map(|(i, _)| &text[i..text.len().min(i + 40)])
            .filter(|t| t.starts_with("http://") || t.starts_with("https://"))
            .filter(|t| !t.starts_with("http://www.w3.org/2000/svg"))
            .collect::<Vec<_>>();
        assert!(external.is_empty(), "{external:?}");
    }
    s.stop().await;
}
