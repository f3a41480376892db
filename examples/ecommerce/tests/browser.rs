//! The monitor's page in a real browser (headless Chromium over WebDriver)
//! while the ecommerce example runs with `--monitor`: the page loads, the
//! counts it shows, updated live, reach the run's settled numbers, and an
//! instance's page shows that order's path on the diagram.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs); without them the test
//! skips with a message, unless `CHOREO_REQUIRE_BROKERS=1`.
//! With `CHOREO_SCREENSHOTS=DIR` it also saves the two pages as PNG there
//! (the README's pictures are made so).

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ecommerce::run::place;
use ecommerce::{Catalogue, DataOptions};
use example_support::testing::ServiceProcess;
use example_support::HttpClient;
use fantoccini::{Client, ClientBuilder, Locator};

const ORDERS: usize = 600;

fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Chromium and its WebDriver, or why the test cannot run.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = tool("chromium").zip(tool("chromedriver"));
    if found.is_none() {
        example_support::testing::skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
        );
    }
    found
}

async fn until<T>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn count(c: &Client, state: &str) -> Option<u64> {
    text(c, &format!("#count-{state}"))
        .await?
        .replace(',', "")
        .parse()
        .ok()
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("CHOREO_SCREENSHOTS") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_page_follows_a_run_live_and_shows_an_instance_path() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let monitor = format!("127.0.0.1:{}", free_port());
    let driver_port = free_port();
    let driver = ServiceProcess::spawn(
        "chromedriver",
        &chromedriver,
        &[&format!("--port={driver_port}")],
    )
    .unwrap();
    // The example serves its ingress and the monitor; the orders come
    // once the page is open, so that what it shows is live.
    let shop = ServiceProcess::spawn(
        "ecommerce",
        Path::new(env!("CARGO_BIN_EXE_ecommerce")),
        &["--monitor", &monitor, "--serve"],
    )
    .unwrap();
    let ingress = until("the example serves", Duration::from_secs(60), async || {
        let out = shop.stdout_so_far();
        let at = out.find("HTTP ingress on ")? + "HTTP ingress on ".len();
        let url = out[at..].split(':').take(3).collect::<Vec<_>>().join(":");
        out.contains("monitor on").then_some(url)
    })
    .await;

    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--hide-scrollbars"],
        }),
    );
    let url = format!("http://127.0.0.1:{driver_port}");
    let c = until(
        "chromedriver answers",
        Duration::from_secs(30),
        async || {
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
                .ok()
        },
    )
    .await;

    // The page loads, with the diagram and the live feed.
    c.goto(&format!("http://{monitor}/")).await.unwrap();
    let title = c.title().await.unwrap();
    assert!(title.contains("Ecommerce"), "{title}");
    assert!(c
        .find(Locator::Css("#diagram svg #e_OrderPlaced"))
        .await
        .is_ok());
    until("the feed is live", Duration::from_secs(20), async || {
        (text(&c, "#connection").await? == "live").then_some(())
    })
    .await;
    assert_eq!(count(&c, "succeeded").await, Some(0));

    // The run: the example's own orders (its default data), through its
    // ingress, then how each ended by the ingress's own account.
    let client = HttpClient::new(ingress);
    let catalogue = Catalogue::generate(DataOptions::default());
    let keys = place(&client, &catalogue.orders(ORDERS), 8).await.unwrap();
    let (mut completed, mut failed) = (0u64, 0u64);
    for key in &keys {
        let state = until("the order settles", Duration::from_secs(120), async || {
            let state: serde_json::Value = client.get(&format!("/orders/{key}")).await.ok()?;
            (state["settled"] == true).then_some(state)
        })
        .await;
        match state["outcome"]["kind"].as_str() {
            Some("success") => completed += 1,
            _ => failed += 1,
        }
    }
    // The counts on the page, updated live, reach the run's numbers.
    let shown = until(
        "the page shows every order settled",
        Duration::from_secs(30),
        async || {
            let s = count(&c, "succeeded").await?;
            let f = count(&c, "failed").await?;
            (s + f == ORDERS as u64).then_some((s, f))
        },
    )
    .await;
    assert_eq!(shown, (completed, failed));
    assert!(completed > 0 && failed > 0, "{completed} / {failed}");
    for state in ["stuck", "violated", "dead_lettered", "running"] {
        assert_eq!(count(&c, state).await, Some(0), "{state}");
    }
    // The event badges on the diagram count what the run did.
    let placed = c
        .find(Locator::Css("g.count-badge[data-node='c_PlaceOrder'] text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(placed.replace(',', ""), ORDERS.to_string());
    screenshot(&c, "monitor.png").await;

    // An instance's page shows its path: a completed order went through
    // payment and shipping, not through a decline.
    let list: serde_json::Value = reqwest::get(format!(
        "http://{monitor}/api/instances?state=succeeded&limit=1"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = list[0]["key"].as_str().unwrap().to_owned();
    c.goto(&format!("http://{monitor}/instances/{key}"))
        .await
        .unwrap();
    until(
        "the instance is shown",
        Duration::from_secs(20),
        async || (text(&c, "#instance-state").await? == "succeeded").then_some(()),
    )
    .await;
    let on_path = c
        .execute(
            "return Array.from(document.querySelectorAll('#diagram svg g.on-path')).map(g => g.id)",
            vec![],
        )
        .await
        .unwrap();
    let on_path: Vec<String> = serde_json::from_value(on_path).unwrap();
    for node in [
        "c_PlaceOrder",
        "e_OrderPlaced",
        "e_StockReserved",
        "e_PaymentApproved",
        "e_ParcelPrepared",
        "e_ShipmentScheduled",
        "e_OrderCompleted",
    ] {
        assert!(
            on_path.iter().any(|n| n == node),
            "{node} not in {on_path:?}"
        );
    }
    // Notifications emits nothing: it is on the path by what triggers it.
    let notifications = "r8";
    assert!(
        on_path.iter().any(|n| n == notifications),
        "{notifications} not in {on_path:?}"
    );
    for node in ["e_PaymentDeclined", "e_OrderFailed", "e_OutOfStock", "r2"] {
        assert!(!on_path.iter().any(|n| n == node), "{node} in {on_path:?}");
    }
    let edges = c
        .find_all(Locator::Css("#diagram svg path.on-path"))
        .await
        .unwrap();
    assert!(edges.len() >= 6, "{} edges on the path", edges.len());
    let steps = c
        .find_all(Locator::Css("#sequence .msg"))
        .await
        .unwrap()
        .len();
    assert_eq!(steps, 7, "one step per event of the order");
    until("the feed is live", Duration::from_secs(20), async || {
        (text(&c, "#connection").await? == "live").then_some(())
    })
    .await;
    screenshot(&c, "monitor-instance.png").await;

    c.close().await.unwrap();
    let finished = shop.stop(Duration::from_secs(20)).unwrap();
    assert!(finished.success, "{}", finished.stderr);
    let _ = driver.kill();
}
