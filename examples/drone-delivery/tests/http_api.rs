//! The generated HTTP ingress: what it accepts, what it refuses, and the
//! state of an instance.
#![allow(clippy::unwrap_used)]

mod common;

use choreo_runtime::broker::memory::MemoryBroker;
use choreo_runtime::http::axum::http::Method;
use drone_delivery::drone_delivery::{
    CancelDelivery, Location, PackageInfo, PackageSize, RescheduleDelivery, ScheduleDelivery,
};
use drone_delivery::system::Settings;
use example_support::HttpClient;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn request(weight_kg: f64) -> ScheduleDelivery {
    ScheduleDelivery {
        owner_id: "owner-1".into(),
        pickup: Location {
            latitude: 47.6,
            longitude: -122.3,
        },
        dropoff: Location {
            latitude: 47.7,
            longitude: -122.2,
        },
        deadline: "2030-01-01T00:00:00Z".parse().unwrap(),
        package: PackageInfo {
            size: PackageSize::Small,
            weight_kg,
            tag: None,
        },
    }
}

async fn state_when_settled(client: &HttpClient, key: &str) -> Value {
    for _ in 0..500 {
        let v: Value = client.get(&format!("/deliveries/{key}")).await.unwrap();
        if v["settled"] == true {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{key} did not settle");
}

/// Waits until the instance at `state` has an event of type `ty`.
async fn wait_for_event(client: &HttpClient, state: &str, ty: &str) {
    for _ in 0..500 {
        let v: Value = client.get(state).await.unwrap();
        let seen = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"].as_str().unwrap().ends_with(ty));
        if seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {ty} at {state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingress_sends_good_commands_refuses_bad_ones_and_shows_state() {
    let settings = Settings {
        drones: 3,
        flight_time: Duration::from_millis(1500),
        ..Settings::default()
    };
    let node = common::start_in_process(&settings, Arc::new(MemoryBroker::new())).await;
    let client = HttpClient::new(node.base_url().unwrap());

    // Bad bodies: 400 with the reason, nothing sent.
    for body in [
        "not json",
        r#"{"owner_id": "o"}"#,
        r#"{"owner_id": "o", "pickup": {"latitude": 1, "longitude": 2}, "dropoff": {"latitude": 1, "longitude": 2}, "deadline": "yesterday", "package": {"size": "Small", "weight_kg": 1}}"#,
        r#"{"owner_id": "o", "pickup": {"latitude": 1, "longitude": 2}, "dropoff": {"latitude": 1, "longitude": 2}, "deadline": "2030-01-01T00:00:00Z", "package": {"size": "Huge", "weight_kg": 1}}"#,
    ] {
        let (status, text) = client.raw(Method::POST, "/deliveries", body).await.unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("ScheduleDelivery"),
            "{text}"
        );
    }
    let key = "7d3c7f9e-4a2b-4c1d-9e8f-0a1b2c3d4e5f";
    for (method, path, body) in [
        (
            Method::PUT,
            "/deliveries/not-a-uuid".to_string(),
            r#"{"dropoff": {"latitude": 1, "longitude": 2}, "deadline": "2030-01-01T00:00:00Z"}"#,
        ),
        (Method::DELETE, "/deliveries/42".to_string(), "{}"),
        (
            Method::PUT,
            format!("/deliveries/{key}"),
            r#"{"dropoff": "there"}"#,
        ),
        (
            Method::DELETE,
            format!("/deliveries/{key}"),
            r#"{"reason": 7}"#,
        ),
    ] {
        let (status, text) = client.raw(method.clone(), &path, body).await.unwrap();
        assert_eq!(status, 400, "{method} {path}: {text}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.participants.ingestion.requests(), 0);
    assert!(node.tracker().unwrap().instances().is_empty());

    // An unknown instance: 404.
    let (status, _) = client
        .raw(Method::GET, &format!("/deliveries/{key}"), "")
        .await
        .unwrap();
    assert_eq!(status, 404);

    // A delivery that completes; a cancel after it is refused (a dead
    // letter), and the delivery stays completed.
    let accepted = client.post("/deliveries", &request(1.0)).await.unwrap();
    assert_eq!(accepted.state, format!("/deliveries/{}", accepted.key));
    let done = state_when_settled(&client, &accepted.key).await;
    assert_eq!(
        done["outcome"]["event"],
        "DroneDelivery.v1.DeliveryCompleted"
    );
    assert_eq!(done["outcome"]["kind"], "success");
    client
        .delete(&accepted.state, &CancelDelivery { reason: None })
        .await
        .unwrap();
    let mut after = done.clone();
    for _ in 0..500 {
        after = client.get(&accepted.state).await.unwrap();
        if after["settled"] == true && !after["dead_letters"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(after["outcome"], done["outcome"]);
    let reason = after["dead_letters"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("too late to cancel"), "{after}");

    // Too heavy: no package, DeliveryFailed.
    let heavy = client.post("/deliveries", &request(80.0)).await.unwrap();
    let failed = state_when_settled(&client, &heavy.key).await;
    assert_eq!(
        failed["outcome"]["event"],
        "DroneDelivery.v1.DeliveryFailed"
    );

    // Rescheduled in flight, then cancelled in flight: the drone turns
    // back and the package is returned and deleted.
    let flying = client.post("/deliveries", &request(1.0)).await.unwrap();
    wait_for_event(&client, &flying.state, "DeliveryScheduled").await;
    let new_course = RescheduleDelivery {
        dropoff: Location {
            latitude: 47.8,
            longitude: -122.1,
        },
        deadline: "2030-01-02T00:00:00Z".parse().unwrap(),
    };
    client.put(&flying.state, &new_course).await.unwrap();
    wait_for_event(&client, &flying.state, "DeliveryRescheduled").await;
    client
        .delete(
            &flying.state,
            &CancelDelivery {
                reason: Some("not home".into()),
            },
        )
        .await
        .unwrap();
    let returned = state_when_settled(&client, &flying.key).await;
    let types: Vec<&str> = returned["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect();
    for t in [
        "DeliveryScheduled",
        "DeliveryRescheduled",
        "DeliveryCancelled",
        "PackageReturned",
        "PackageDeleted",
    ] {
        assert!(types.contains(&t), "{t} missing: {types:?}");
    }
    assert!(!types.contains(&"DeliveryCompleted"), "{types:?}");
    let fleet = node.participants.scheduler.report();
    assert_eq!((fleet.assigned, fleet.stats.violations), (0, 0));
    let flights = node.participants.flights.stats();
    // The course change is seen unless the cancel overtook it.
    assert!(flights.course_changes <= 1, "{flights:?}");
    assert_eq!(flights.turned_back, 1, "{flights:?}");
    node.stop().await;
}

/// With a token the ingress answers `401` to a request without it or with
/// another, and the driver, which sends it, settles its run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_only_its_bearer_gets_in() {
    use choreo_runtime::service::{ServiceOptions, Stores, Topics};
    use drone_delivery::system::{Ingress, Node};
    let settings = Settings {
        drones: 3,
        flight_time: Duration::from_millis(40),
        ..Settings::default()
    };
    let token = "dd-token-4b1f";
    let node = Node::start_with_books(
        &settings,
        None,
        Arc::new(MemoryBroker::new()),
        Stores::memory(),
        ServiceOptions {
            topics: Topics::new(example_support::testing::unique_prefix()),
            ..ServiceOptions::default()
        },
        Ingress {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Some(token.into()),
        },
        None,
    )
    .await
    .unwrap();
    let base = node.base_url().unwrap();
    let body = serde_json::to_string(&request(1.0)).unwrap();
    for client in [
        HttpClient::new(&base),
        HttpClient::new(&base).with_token(Some("another")),
    ] {
        let (status, text) = client
            .raw(Method::POST, "/deliveries", body.clone())
            .await
            .unwrap();
        assert_eq!(status, 401, "{text}");
        assert!(!text.contains(token), "{text}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(node.tracker().unwrap().instances().is_empty());
    let client = HttpClient::new(&base).with_token(Some(token));
    let accepted = client.post("/deliveries", &request(1.0)).await.unwrap();
    let state = state_when_settled(&client, &accepted.key).await;
    assert_eq!(state["settled"], true);
    // The node's own driver sends the token.
    let report = node
        .drive(&common::drive_options(6, Duration::from_millis(40), 3))
        .await
        .unwrap();
    assert!(report.summary.complete(), "{report}");
    node.stop().await;
}
