//! The generated modules of the examples and the keyword spec, used as a
//! user would: typed handlers, fixtures, serde names, the whole
//! choreography on the memory broker.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_runtime::service::{HandlerError, ServiceOptions, Stores};
use choreo_runtime::types::{Decimal, Timestamp, Uuid};
use choreo_runtime::Message;
use choreo_tests::generated::ecommerce::{self, *};
use choreo_tests::generated::self_;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn address() -> Address {
    Address {
        street: "1 Rue".into(),
        city: "Lyon".into(),
        zip: "69001".into(),
    }
}

fn placed(quantity: u32, amount: i64) -> OrderPlaced {
    OrderPlaced {
        user_id: 1,
        product_id: 7,
        quantity,
        amount: Decimal::new(amount, 2),
        ship_to: address(),
    }
}

/// Stock of one product; reservations by order, so that a declined payment
/// gives back exactly what its order took.
#[derive(Clone)]
struct Stock {
    available: Arc<AtomicU32>,
    reserved: Arc<std::sync::Mutex<std::collections::HashMap<Key, u32>>>,
}

impl Stock {
    fn new(available: u32) -> Self {
        Stock {
            available: Arc::new(AtomicU32::new(available)),
            reserved: Arc::default(),
        }
    }
}

impl Inventory for Stock {
    async fn on_order_placed(
        &self,
        ctx: Context,
        event: OrderPlaced,
    ) -> Result<inventory::OnOrderPlacedOutcome, HandlerError> {
        let left = self.available.load(Ordering::SeqCst);
        if event.quantity <= left {
            self.available.fetch_sub(event.quantity, Ordering::SeqCst);
            self.reserved
                .lock()
                .unwrap()
                .insert(*ctx.key(), event.quantity);
            Ok(inventory::OnOrderPlacedOutcome::StockReserved(
                StockReserved {
                    reservation_id: Uuid::new_v4(),
                    product_id: event.product_id,
                    quantity: event.quantity,
                },
            ))
        } else {
            Ok(inventory::OnOrderPlacedOutcome::OutOfStock(OutOfStock {
                product_id: event.product_id,
                requested: event.quantity,
                available: left,
            }))
        }
    }

    async fn on_payment_declined(
        &self,
        ctx: Context,
        _event: PaymentDeclined,
    ) -> Result<StockReleased, HandlerError> {
        if let Some(quantity) = self.reserved.lock().unwrap().remove(ctx.key()) {
            self.available.fetch_add(quantity, Ordering::SeqCst);
        }
        Ok(StockReleased {
            reservation_id: Uuid::nil(),
        })
    }
}

struct Credit {
    limit: Decimal,
}

impl Payment for Credit {
    async fn on_order_placed_and_stock_reserved(
        &self,
        _ctx: Context,
        order_placed: OrderPlaced,
        _stock_reserved: StockReserved,
    ) -> Result<payment::OnOrderPlacedAndStockReservedOutcome, HandlerError> {
        Ok(if order_placed.amount <= self.limit {
            payment::OnOrderPlacedAndStockReservedOutcome::PaymentApproved(PaymentApproved {
                transaction_id: Uuid::new_v4(),
                amount: order_placed.amount,
            })
        } else {
            payment::OnOrderPlacedAndStockReservedOutcome::PaymentDeclined(PaymentDeclined {
                amount: order_placed.amount,
                available_credit: self.limit,
                reason: "insufficient credit".into(),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_fixture_shows_what_each_delivery_emits() {
    let mut inventory = inventory::fixture(Stock::new(5)).await.unwrap();
    let order = Uuid::new_v4();
    let emitted = inventory.deliver(&order, placed(3, 1000)).await.unwrap();
    let reserved: StockReserved = emitted.one().unwrap();
    assert_eq!(reserved.quantity, 3);

    let emitted = inventory
        .deliver(&Uuid::new_v4(), placed(3, 1000))
        .await
        .unwrap();
    emitted.expect_types(&[OutOfStock::TYPE]).unwrap();
    assert_eq!(emitted.one::<OutOfStock>().unwrap().available, 2);
    inventory.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_handler_gets_every_joined_event_once_both_arrived() {
    let mut payment = payment::fixture(Credit {
        limit: Decimal::new(5000, 2),
    })
    .await
    .unwrap();
    let order = Uuid::new_v4();
    let waiting = payment.deliver(&order, placed(1, 1000)).await.unwrap();
    assert!(
        waiting.is_empty(),
        "the join waits for StockReserved: {:?}",
        waiting.types()
    );
    let reserved = StockReserved {
        reservation_id: Uuid::new_v4(),
        product_id: 7,
        quantity: 1,
    };
    let fired = payment.deliver(&order, reserved).await.unwrap();
    assert_eq!(
        fired.one::<PaymentApproved>().unwrap().amount,
        Decimal::new(1000, 2)
    );

    let other = Uuid::new_v4();
    payment.deliver(&other, placed(1, 9000)).await.unwrap();
    let declined = payment
        .deliver(
            &other,
            StockReserved {
                reservation_id: Uuid::new_v4(),
                product_id: 7,
                quantity: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        declined.one::<PaymentDeclined>().unwrap().reason,
        "insufficient credit"
    );
    payment.shutdown().await;
}

#[test]
fn wire_types_name_the_choreography_and_its_major_version() {
    assert_eq!(PlaceOrder::TYPE, "Ecommerce.v1.PlaceOrder");
    assert_eq!(ecommerce::VERSION, "1.0.0");
    assert_eq!(ecommerce::CHOREOGRAPHY, "Ecommerce");
    assert_eq!(
        ecommerce::payment::EMITS,
        [PaymentApproved::TYPE, PaymentDeclined::TYPE]
    );
}

#[test]
fn keywords_and_prelude_names_keep_their_spec_names_on_the_wire() {
    let value = self_::Box {
        r#fn: "f".into(),
        r#async: 1,
        crate_: 2.5,
        super_: true,
        r#type: self_::Vec {
            items: vec![],
            by_name: Default::default(),
        },
        self_: "me".into(),
    };
    let json = serde_json::to_value(&value).unwrap();
    for key in ["fn", "async", "crate", "super", "type", "self"] {
        assert!(json.get(key).is_some(), "`{key}` missing from {json}");
    }
    let back: self_::Box = serde_json::from_value(json).unwrap();
    assert_eq!(back, value);
    assert_eq!(serde_json::to_value(self_::Result::Self_).unwrap(), "Self");
    assert_eq!(
        serde_json::to_value(self_::Result::r#match).unwrap(),
        "match"
    );
    assert_eq!(<self_::r#match as Message>::TYPE, "Self.match");
}

// The whole ecommerce choreography on one memory broker, through
// `start_all`, the typed `Commands` and the tracker on `topology()`.
struct Orders;
impl ecommerce::Orders for Orders {
    async fn on_place_order(
        &self,
        _ctx: Context,
        c: PlaceOrder,
    ) -> Result<OrderPlaced, HandlerError> {
        Ok(OrderPlaced {
            user_id: c.user_id,
            product_id: c.product_id,
            quantity: c.quantity,
            amount: Decimal::new(1000 * i64::from(c.quantity), 2),
            ship_to: c.ship_to,
        })
    }
    async fn on_shipment_scheduled(
        &self,
        _ctx: Context,
        _e: ShipmentScheduled,
    ) -> Result<OrderCompleted, HandlerError> {
        Ok(OrderCompleted {})
    }
    async fn on_out_of_stock_or_stock_released(
        &self,
        _ctx: Context,
        event: orders::OnOutOfStockOrStockReleasedTrigger,
    ) -> Result<OrderFailed, HandlerError> {
        let reason = match event {
            orders::OnOutOfStockOrStockReleasedTrigger::OutOfStock(_) => "out of stock",
            orders::OnOutOfStockOrStockReleasedTrigger::StockReleased(_) => "payment declined",
        };
        Ok(OrderFailed {
            reason: reason.into(),
        })
    }
}
struct Seller;
impl ecommerce::Seller for Seller {
    async fn on_payment_approved(
        &self,
        _ctx: Context,
        _e: PaymentApproved,
    ) -> Result<ParcelPrepared, HandlerError> {
        Ok(ParcelPrepared {
            parcel_id: Uuid::new_v4(),
        })
    }
}
struct Logistics;
impl ecommerce::Logistics for Logistics {
    async fn on_order_placed_and_parcel_prepared(
        &self,
        _ctx: Context,
        _o: OrderPlaced,
        _p: ParcelPrepared,
    ) -> Result<ShipmentScheduled, HandlerError> {
        Ok(ShipmentScheduled {
            carrier: Carrier::Drone,
            tracking_id: "T1".into(),
            eta: Timestamp::now(),
        })
    }
}
#[derive(Clone, Default)]
struct Notifications(Arc<AtomicU32>);
impl ecommerce::Notifications for Notifications {
    async fn on_order_placed_or_order_completed_or_order_failed(
        &self,
        _ctx: Context,
        _e: notifications::OnOrderPlacedOrOrderCompletedOrOrderFailedTrigger,
    ) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_choreography_settles_each_order_with_the_outcome_its_data_calls_for() {
    let broker = choreo_runtime::connect("memory://").await.unwrap();
    let tracker = choreo_runtime::progress::InstanceTracker::start(
        ecommerce::topology(),
        broker.clone(),
        Default::default(),
    )
    .await
    .unwrap();
    let notes = Notifications::default();
    let stock = Stock::new(10);
    let services = ecommerce::start_all(
        broker.clone(),
        Stores::memory(),
        ServiceOptions::default(),
        Orders,
        stock.clone(),
        Credit {
            limit: Decimal::new(2500, 2),
        },
        Seller,
        Logistics,
        notes.clone(),
    )
    .await
    .unwrap();
    let commands = ecommerce::Commands::new(broker.clone());
    // 2 units (20.00, within credit), 3 units (30.00, over the limit: the
    // reservation is given back), then 12 units (more than the 8 left).
    let mut orders = Vec::new();
    for quantity in [2, 3, 12] {
        let key = Uuid::new_v4();
        commands
            .place_order(
                &key,
                PlaceOrder {
                    user_id: 1,
                    product_id: 7,
                    quantity,
                    ship_to: address(),
                },
            )
            .await
            .unwrap();
        orders.push(key);
        // One at a time, so the stock each sees is known.
        tracker
            .wait_settled(&key.to_string(), Duration::from_secs(10))
            .await
            .unwrap();
    }
    let outcomes: Vec<String> = orders
        .iter()
        .map(|k| {
            tracker
                .instance(&k.to_string())
                .unwrap()
                .outcome
                .unwrap()
                .event_type
                .to_string()
        })
        .collect();
    assert_eq!(
        outcomes,
        [OrderCompleted::TYPE, OrderFailed::TYPE, OrderFailed::TYPE],
        "completed, declined (stock released), out of stock"
    );
    for s in services {
        s.shutdown().await.unwrap();
    }
    tracker.shutdown().await;
    // Placed ×3 and each outcome ×3 were told to the customer.
    assert_eq!(notes.0.load(Ordering::SeqCst), 6);
    // Only the completed order keeps its stock.
    assert_eq!(stock.available.load(Ordering::SeqCst), 8);
}

mod http {
    use super::*;
    use choreo_runtime::http::axum::body::Body;
    use choreo_runtime::http::axum::http::{Request, StatusCode};
    use choreo_runtime::progress::InstanceTracker;
    use tower::ServiceExt;

    async fn call(
        router: &choreo_runtime::http::axum::Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        call_with(router, method, uri, &[], body).await
    }

    async fn call_with(
        router: &choreo_runtime::http::axum::Router,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = choreo_runtime::http::axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_generated_ingress_sends_valid_commands_and_rejects_bad_bodies_before_the_broker() {
        let broker = choreo_runtime::connect("memory://").await.unwrap();
        let tracker = Arc::new(
            InstanceTracker::start(ecommerce::topology(), broker.clone(), Default::default())
                .await
                .unwrap(),
        );
        let router =
            ecommerce::http::router(ecommerce::Commands::new(broker.clone()), tracker.clone());

        // Nothing consumes the commands here; count what reaches the broker.
        let mut options =
            choreo_runtime::SubscribeOptions::new("probe", vec![PlaceOrder::TYPE.to_string()]);
        options.start = choreo_runtime::StartPosition::Earliest;
        let mut probe = broker.subscribe(options).await.unwrap();

        for bad in ["", "{", "{\"user_id\": 1}", "{\"user_id\": \"x\", \"product_id\": 1, \"quantity\": 1, \"ship_to\": {\"street\": \"\", \"city\": \"\", \"zip\": \"\"}}"] {
            let (status, body) = call(&router, "POST", "/orders", bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body["error"].as_str().unwrap().contains("PlaceOrder"), "{body}");
        }
        let good = r#"{"user_id": 1, "product_id": 7, "quantity": 2, "ship_to": {"street": "1 Rue", "city": "Lyon", "zip": "69001"}}"#;
        let (status, body) = call(&router, "POST", "/orders", good).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let key = body["key"].as_str().unwrap().to_string();
        assert_eq!(body["state"], format!("/orders/{key}"));

        // Exactly one command reached the broker: the valid one.
        let batch = tokio::time::timeout(Duration::from_secs(5), probe.next_batch(16))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].envelope().correlation_id(), key);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), probe.next_batch(16))
                .await
                .is_err()
        );

        // Its state, as the tracker sees it; an unknown or malformed key.
        let mut seen = serde_json::Value::Null;
        for _ in 0..200 {
            let (status, body) = call(&router, "GET", &format!("/orders/{key}"), "").await;
            if status == StatusCode::OK {
                seen = body;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen["events"][0]["type"], PlaceOrder::TYPE, "{seen}");
        let (status, _) = call(&router, "GET", &format!("/orders/{}", Uuid::new_v4()), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_routes_parse_the_key_from_the_path() {
        use choreo_tests::generated::drone_delivery;
        let broker = choreo_runtime::connect("memory://").await.unwrap();
        let tracker = Arc::new(
            InstanceTracker::start(
                drone_delivery::topology(),
                broker.clone(),
                Default::default(),
            )
            .await
            .unwrap(),
        );
        let router = drone_delivery::http::router(drone_delivery::Commands::new(broker), tracker);
        let (status, body) = call(&router, "DELETE", "/deliveries/not-a-uuid", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("delivery_id"),
            "{body}"
        );
        let key = Uuid::new_v4();
        // An empty body is `{}`: CancelDelivery's only field is optional.
        let (status, body) = call(&router, "DELETE", &format!("/deliveries/{key}"), "").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["key"], key.to_string());
        let (status, _) = call(&router, "PUT", &format!("/deliveries/{key}"), "{}").await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "RescheduleDelivery needs its fields"
        );
    }

    async fn ecommerce_ingress(
        options: choreo_runtime::http::IngressOptions,
    ) -> (
        choreo_runtime::http::axum::Router,
        Box<dyn choreo_runtime::Subscription>,
    ) {
        let broker = choreo_runtime::connect("memory://").await.unwrap();
        let tracker = Arc::new(
            InstanceTracker::start(ecommerce::topology(), broker.clone(), Default::default())
                .await
                .unwrap(),
        );
        let router = ecommerce::http::router_with(
            ecommerce::Commands::new(broker.clone()),
            tracker,
            options,
        );
        let mut subscribe =
            choreo_runtime::SubscribeOptions::new("probe", vec![PlaceOrder::TYPE.to_string()]);
        subscribe.start = choreo_runtime::StartPosition::Earliest;
        (router, broker.subscribe(subscribe).await.unwrap())
    }

    const ORDER: &str = r#"{"user_id": 1, "product_id": 7, "quantity": 2, "ship_to": {"street": "1 Rue", "city": "Lyon", "zip": "69001"}}"#;

    /// The commands that reached the broker within a moment.
    async fn sent(probe: &mut Box<dyn choreo_runtime::Subscription>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(Ok(Some(batch))) =
            tokio::time::timeout(Duration::from_millis(300), probe.next_batch(16)).await
        {
            for d in &batch {
                let e = d.envelope();
                out.push((e.correlation_id().to_string(), e.id().to_string()));
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_with_the_same_idempotency_key_is_the_same_command_and_another_body_is_422() {
        let (router, mut probe) = ecommerce_ingress(Default::default()).await;
        let key = [("Idempotency-Key", "order-2026-0001")];
        let (status, first) = call_with(&router, "POST", "/orders", &key, ORDER).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{first}");
        let (status, again) = call_with(&router, "POST", "/orders", &key, ORDER).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        // The same answer: the same instance key and event id.
        assert_eq!(first, again);
        let instance = first["key"].as_str().unwrap();
        assert_eq!(instance.parse::<Uuid>().unwrap().get_version_num(), 8);

        // The same key with another body: refused, nothing sent.
        let other = ORDER.replace("\"quantity\": 2", "\"quantity\": 3");
        let (status, body) = call_with(&router, "POST", "/orders", &key, &other).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("order-2026-0001"),
            "{body}"
        );
        // Without a key, two posts are two orders.
        let (_, plain1) = call(&router, "POST", "/orders", ORDER).await;
        let (_, plain2) = call(&router, "POST", "/orders", ORDER).await;
        assert_ne!(plain1["key"], plain2["key"]);

        // The retry was sent again under the same id (the broker and the
        // services' inboxes take it once); the refused body not at all.
        let sent = sent(&mut probe).await;
        let same = (
            instance.to_string(),
            first["event_id"].as_str().unwrap().to_string(),
        );
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert_eq!(sent[0], same);
        assert_eq!(sent[1], same);
        assert_ne!(sent[2].1, sent[3].1);

        // A key that cannot be one.
        let long = "k".repeat(256);
        let (status, body) = call_with(
            &router,
            "POST",
            "/orders",
            &[("Idempotency-Key", &long)],
            ORDER,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_is_413_with_the_limit_and_nothing_is_sent() {
        let options = choreo_runtime::http::IngressOptions {
            body_limit: 256,
            ..Default::default()
        };
        let (router, mut probe) = ecommerce_ingress(options).await;
        let padded = format!("{}{}", ORDER, " ".repeat(300));
        let (status, body) = call(&router, "POST", "/orders", &padded).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(
            body["error"],
            "the request body is larger than the limit of 256 bytes"
        );
        let (status, body) = call(&router, "POST", "/orders", ORDER).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(sent(&mut probe).await.len(), 1);
        // The default limit is the documented one.
        assert_eq!(
            choreo_runtime::http::IngressOptions::default().body_limit,
            64 * 1024
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bearer_layer_lets_only_the_token_through() {
        let (router, mut probe) = ecommerce_ingress(Default::default()).await;
        let router = router.layer(choreo_runtime::http::bearer("s3cret-token"));
        for headers in [
            &[][..],
            &[("Authorization", "Bearer wrong-token")][..],
            &[("Authorization", "Bearer s3cret-tokeN")][..],
            &[("Authorization", "Bearer ")][..],
            &[("Authorization", "s3cret-token")][..],
            &[("Authorization", "Basic s3cret-token")][..],
        ] {
            let (status, body) = call_with(&router, "POST", "/orders", headers, ORDER).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
            assert!(!body.to_string().contains("s3cret"), "{body}");
            let (status, _) = call_with(
                &router,
                "GET",
                &format!("/orders/{}", Uuid::new_v4()),
                headers,
                "",
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert!(sent(&mut probe).await.is_empty());
        let good = [("Authorization", "Bearer s3cret-token")];
        let (status, body) = call_with(&router, "POST", "/orders", &good, ORDER).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(sent(&mut probe).await.len(), 1);
        // An empty token lets nothing through.
        let (router, _probe) = ecommerce_ingress(Default::default()).await;
        let router = router.layer(choreo_runtime::http::bearer(""));
        let (status, _) = call_with(
            &router,
            "POST",
            "/orders",
            &[("Authorization", "Bearer ")],
            ORDER,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_that_is_not_a_uuid_is_the_clients_in_the_path_or_the_key_header() {
        use choreo_tests::generated::tickets;
        let broker = choreo_runtime::connect("memory://").await.unwrap();
        let tracker = Arc::new(
            InstanceTracker::start(tickets::topology(), broker.clone(), Default::default())
                .await
                .unwrap(),
        );
        let router = tickets::http::router(tickets::Commands::new(broker), tracker);
        let open = r#"{"title": "printer"}"#;
        // No key: 400, naming the key and the header.
        let (status, body) = call(&router, "POST", "/tickets", open).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("`ticket`") && error.contains("choreo-key"),
            "{error}"
        );
        // A key that is not a `u64`: 400.
        let (status, body) =
            call_with(&router, "POST", "/tickets", &[("Choreo-Key", "-1")], open).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // In the header.
        let (status, body) =
            call_with(&router, "POST", "/tickets", &[("Choreo-Key", "4242")], open).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["key"], "4242");
        assert_eq!(body["state"], "/tickets/4242");
        // In the path.
        let (status, body) = call(&router, "PUT", "/tickets/4242", "").await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["key"], "4242");
        // With an Idempotency-Key, the key is still the client's, and the
        // event id is derived from both.
        let idem = [("Choreo-Key", "7"), ("Idempotency-Key", "open-7")];
        let (_, first) = call_with(&router, "POST", "/tickets", &idem, open).await;
        let (_, again) = call_with(&router, "POST", "/tickets", &idem, open).await;
        assert_eq!(first["key"], "7");
        assert_eq!(first, again);
        let moved = [("Choreo-Key", "8"), ("Idempotency-Key", "open-7")];
        let (status, _) = call_with(&router, "POST", "/tickets", &moved, open).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

/// `start_all` without stores gives every participant its broker's own:
/// memory on the memory broker, durable Key-Value buckets on NATS, so
/// that nobody has to remember to ask for durability.
#[tokio::test]
async fn start_all_without_stores_uses_the_brokers_own() {
    use example_support::testing::{broker_available, delete_nats_stream, unique_prefix};
    async fn start(broker: choreo_runtime::SharedBroker, prefix: &str) -> Vec<String> {
        let options = ServiceOptions {
            topics: choreo_runtime::service::Topics::new(prefix),
            ..ServiceOptions::default()
        };
        let services = ecommerce::start_all(
            broker,
            None,
            options,
            Orders,
            Stock::new(1),
            Credit {
                limit: Decimal::new(100, 0),
            },
            Seller,
            Logistics,
            Notifications::default(),
        )
        .await
        .unwrap();
        let mut described = Vec::new();
        for s in services {
            described.push(s.stores().to_owned());
            s.shutdown().await.unwrap();
        }
        described
    }
    let memory = start(choreo_runtime::connect("memory://").await.unwrap(), "").await;
    assert_eq!(memory, vec!["memory"; 6]);

    let url = example_support::testing::NATS_URL;
    if !broker_available(url) {
        return;
    }
    let prefix = unique_prefix();
    let nats = start(choreo_runtime::connect(url).await.unwrap(), &prefix).await;
    delete_nats_stream(url, &prefix).await;
    assert_eq!(nats.len(), 6);
    for d in &nats {
        assert!(
            d.starts_with("NATS Key-Value at nats://127.0.0.1:4222"),
            "{d}"
        );
    }
}
