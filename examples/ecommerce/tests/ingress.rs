//! The hardened ingress of a running shop, over HTTP: `--token` lets only
//! its bearer in, and a POST retried with the same `Idempotency-Key`
//! places one order, in process on the memory broker and on NATS.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use ecommerce::{DataOptions, Role, System};
use example_support::deployment::Token;
use example_support::testing::{broker_available, delete_nats_stream, unique_prefix, NATS_URL};
use example_support::Deployment;
use reqwest::StatusCode;
use std::time::Duration;

const TOKEN: &str = "shop-token-5f0c";

fn order(quantity: u32) -> serde_json::Value {
    serde_json::json!({
        "user_id": 3, "product_id": 7, "quantity": quantity,
        "ship_to": { "street": "1 Main Street", "city": "Lyon", "zip": "69001" }
    })
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let mut request = http.post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn a_retried_post_places_one_order(broker: &str) {
    let prefix = unique_prefix();
    let d = Deployment {
        broker: broker.into(),
        prefix: prefix.clone(),
        token: Some(Token::new(TOKEN).unwrap()),
        ..Deployment::default()
    };
    let system = System::start(&d, DataOptions::default(), Role::Everything)
        .await
        .unwrap();
    let orders = format!("{}/orders", system.base_url().unwrap());
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {TOKEN}");

    // Without the token, or with another: 401, and nothing is placed.
    for headers in [&[][..], &[("authorization", "Bearer not-the-token")][..]] {
        let (status, body) = post(&http, &orders, headers, &order(1)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(!body.to_string().contains(TOKEN), "{body}");
    }

    // The same POST three times, as a client whose answers were lost.
    let headers = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "checkout-7f3a9c"),
    ];
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, body) = post(&http, &orders, &headers, &order(1)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let key = answers[0]["key"].as_str().unwrap().to_string();

    // The same key for another order: 422.
    let (status, body) = post(&http, &orders, &headers, &order(2)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let tracker = system.tracker().unwrap().clone();
    tracker
        .wait_settled(&key, Duration::from_secs(30))
        .await
        .unwrap();
    // Long enough for a second order to have gone as far, had there been one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tracker.instances().len(), 1);
    let orders_report = system.shop.orders.report();
    assert_eq!(orders_report.placed, 1, "{orders_report:?}");
    assert_eq!(orders_report.completed, 1, "{orders_report:?}");
    assert_eq!(system.shop.notifications.report().placed, 1);
    let payment = system.shop.payment.report().await.unwrap();
    assert_eq!(payment.orders.len(), 1, "{payment:?}");

    // The state route takes the token too.
    let state = http
        .get(format!("{orders}/{key}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), StatusCode::OK);
    let state: serde_json::Value = state.json().await.unwrap();
    assert_eq!(state["settled"], true, "{state}");
    system.stop().await.unwrap();
    if broker.starts_with("nats") {
        delete_nats_stream(broker, &prefix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_a_retried_post_places_one_order_and_the_token_is_required() {
    a_retried_post_places_one_order("memory://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_a_retried_post_places_one_order_and_the_token_is_required() {
    if !broker_available(NATS_URL) {
        return;
    }
    a_retried_post_places_one_order(NATS_URL).await;
}
