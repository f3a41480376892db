//! The ecommerce example driven end to end: orders placed over HTTP on
//! the memory broker (with and without every event delivered twice) and on
//! NATS with one process per participant, each run checked against the
//! data; the ingress's answers to bad requests; each participant's
//! decisions per order, whatever reaches it twice.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_runtime::types::{Decimal, Uuid};
use ecommerce::ecommerce::{
    inventory, payment, Address, OrderPlaced, OutOfStock, PaymentApproved, PaymentDeclined,
    StockReleased, StockReserved,
};
use ecommerce::participants::{
    InventoryReport, PaymentDecision, PaymentReport, StockDecision, Stockroom,
};
use ecommerce::{
    verify, verify_shop, Catalogue, DataOptions, FinalState, Finals, OrderRecord, Role, System,
    PARTICIPANTS,
};
use example_support::testing::{
    broker_available, delete_nats_stream, delete_redis_keys, spawn_until_ready, unique_prefix,
    ServiceProcess, NATS_URL, REDIS_URL,
};
use example_support::{Deployment, HttpClient};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn deployment(broker: &str, duplicates: bool) -> Deployment {
    Deployment {
        broker: broker.into(),
        service: None,
        prefix: unique_prefix(),
        duplicates,
        listen: "127.0.0.1:0".parse().unwrap(),
        store: None,
    }
}

/// Checks what a verification cannot say alone: the run has all three
/// endings, and the reports add up customer by customer and product by
/// product (computed here again from the data, independently of
/// `verify`).
fn assert_adds_up(
    catalogue: &Catalogue,
    records: &[OrderRecord],
    inventory: &InventoryReport,
    payment: &PaymentReport,
) {
    let completed: Vec<&OrderRecord> = records.iter().filter(|r| r.completed()).collect();
    let failed = records.iter().filter(|r| r.failed()).count();
    assert_eq!(
        completed.len() + failed,
        records.len(),
        "every order settles"
    );
    assert!(completed.len() > records.len() / 2, "most orders complete");

    // Credit: each customer charged exactly their completed orders.
    for c in &catalogue.customers {
        let spent: Decimal = completed
            .iter()
            .filter(|r| r.order.user_id == c.id)
            .map(|r| r.amount)
            .sum();
        assert!(spent <= c.credit, "customer {} charged beyond credit", c.id);
        assert_eq!(payment.credit[&c.id], c.credit - spent, "customer {}", c.id);
    }
    let charges = payment
        .orders
        .values()
        .filter(|d| matches!(d, PaymentDecision::Charged { .. }))
        .count();
    assert_eq!(charges, completed.len(), "one charge per completed order");
    let mut declined = 0;
    for d in payment.orders.values() {
        if let PaymentDecision::Declined {
            amount,
            available_credit,
            ..
        } = d
        {
            declined += 1;
            assert!(
                amount > available_credit,
                "declined {amount} with {available_credit}"
            );
        }
    }
    assert!(declined > 0, "some orders go beyond a customer's credit");

    // Stock: opening stock less completed orders, product by product.
    for p in &catalogue.products {
        let sold: u32 = completed
            .iter()
            .filter(|r| r.order.product_id == p.id)
            .map(|r| r.order.quantity)
            .sum();
        assert_eq!(inventory.stock[&p.id], p.stock - sold, "product {}", p.id);
    }
    let mut released = 0;
    let mut short = 0;
    for (key, d) in &inventory.orders {
        match d {
            StockDecision::Reserved { released: true, .. } => {
                released += 1;
                assert!(matches!(
                    payment.orders[key],
                    PaymentDecision::Declined { .. }
                ));
            }
            StockDecision::Reserved { .. } => {}
            StockDecision::OutOfStock {
                requested,
                available,
                ..
            } => {
                short += 1;
                assert!(requested > available);
            }
        }
    }
    assert_eq!(
        released, declined,
        "every declined order's stock given back"
    );
    assert!(short > 0, "some orders find their product sold out");
    assert_eq!(declined + short, failed);
}

/// Data in the proportions of the default run (1,000 orders, 100
/// customers, 50 products), for `orders` orders.
fn data_for(orders: u64) -> DataOptions {
    DataOptions {
        seed: 8,
        users: orders / 10,
        products: orders / 20,
    }
}

async fn in_process(duplicates: bool) {
    let d = deployment("memory://", duplicates);
    let data = data_for(400);
    let system = System::start(&d, data, Role::Everything).await.unwrap();
    let (summary, records) = system
        .drive(400, 32, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(summary.complete(), "{summary}");
    assert_eq!(summary.dead_letters, 0, "{summary}");
    assert!(summary
        .to_string()
        .lines()
        .last()
        .unwrap()
        .starts_with("settled 400/400: OrderCompleted "));
    let shop = system.shop.clone();
    let stats = system.stop().await.unwrap();
    let duplicates_seen: u64 = stats.iter().map(|s| s.duplicates).sum();
    if duplicates {
        assert!(duplicates_seen > 0, "the broker delivered duplicates");
    }
    let verdict = verify_shop(&shop, &records);
    assert!(verdict.ok(), "{:#?}", verdict.problems);
    let (inventory, payment) = (shop.inventory.report(), shop.payment.report());
    let notifications = shop.notifications.report();
    assert_eq!(
        summary.count("OrderFailed"),
        verdict.declined + verdict.out_of_stock
    );
    assert_adds_up(&shop.catalogue, &records, &inventory, &payment);
    assert_eq!(notifications.placed, 400);

    // The checks would see a double charge, or stock given back twice.
    let charged = records.iter().find(|r| r.completed()).unwrap();
    let mut twice = payment.clone();
    *twice.credit.get_mut(&charged.order.user_id).unwrap() -= charged.amount;
    let mut restocked = inventory.clone();
    *restocked.stock.get_mut(&charged.order.product_id).unwrap() += charged.order.quantity;
    for (inventory, payment) in [(&inventory, &twice), (&restocked, &payment)] {
        let finals = Finals {
            inventory: Some(inventory),
            payment: Some(payment),
            ..Finals::default()
        };
        assert!(!verify(&shop.catalogue, &records, &finals).ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_every_order_settles_and_the_data_adds_up() {
    in_process(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_event_delivered_twice_nothing_is_charged_or_reserved_twice() {
    in_process(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_400_and_reach_no_one_and_get_shows_the_state() {
    let d = deployment("memory://", false);
    let system = System::start(&d, DataOptions::default(), Role::Everything)
        .await
        .unwrap();
    let client = HttpClient::new(system.base_url().unwrap());
    let good = serde_json::json!({
        "user_id": 3, "product_id": 7, "quantity": 1,
        "ship_to": { "street": "1 Main Street", "city": "Lyon", "zip": "69001" }
    });
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("ship_to");
    let mut bad_type = good.clone();
    bad_type["quantity"] = serde_json::json!("two");
    let mut unknown_product = good.clone();
    unknown_product["product_id"] = serde_json::json!(999);
    let mut unknown_user = good.clone();
    unknown_user["user_id"] = serde_json::json!(0);
    let mut nothing = good.clone();
    nothing["quantity"] = serde_json::json!(0);
    let cases: [(String, &str); 7] = [
        ("{not json".into(), "not a valid PlaceOrder"),
        ("[]".into(), "not a valid PlaceOrder"),
        (missing.to_string(), "missing field `ship_to`"),
        (bad_type.to_string(), "invalid type"),
        (unknown_product.to_string(), "there is no product 999"),
        (unknown_user.to_string(), "there is no customer 0"),
        (nothing.to_string(), "quantity must be at least 1"),
    ];
    for (body, reason) in cases {
        let (status, text) = client
            .raw(reqwest::Method::POST, "/orders", body.clone())
            .await
            .unwrap();
        assert_eq!(status, 400, "{body} -> {text}");
        let error: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(reason),
            "{body} -> {text}"
        );
    }
    // Nothing reached the broker: after a moment, no instance is known and
    // no participant did anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tracker = system.tracker().unwrap().clone();
    assert!(tracker.instances().is_empty());
    assert_eq!(system.shop.orders.report().placed, 0);
    assert_eq!(system.shop.notifications.report().placed, 0);

    let (status, _) = client
        .raw(
            reqwest::Method::GET,
            &format!("/orders/{}", Uuid::new_v4()),
            "",
        )
        .await
        .unwrap();
    assert_eq!(status, 404);

    let accepted = client.post("/orders", &good).await.unwrap();
    assert_eq!(accepted.state, format!("/orders/{}", accepted.key));
    tracker
        .wait_settled(&accepted.key, Duration::from_secs(30))
        .await
        .unwrap();
    let state: serde_json::Value = client.get(&accepted.state).await.unwrap();
    assert_eq!(state["key"], accepted.key.as_str());
    assert_eq!(state["settled"], true);
    assert_eq!(state["outcome"]["event"], "Ecommerce.v1.OrderCompleted");
    assert_eq!(state["outcome"]["kind"], "success");
    let types: Vec<&str> = state["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "PlaceOrder",
        "OrderPlaced",
        "StockReserved",
        "PaymentApproved",
        "ShipmentScheduled",
    ] {
        assert!(
            types.contains(&format!("Ecommerce.v1.{t}").as_str()),
            "{types:?}"
        );
    }
    assert_eq!(system.shop.orders.report().placed, 1);
    system.stop().await.unwrap();
}

fn placed(catalogue: &Catalogue, user_id: u64, product_id: u64, quantity: u32) -> OrderPlaced {
    OrderPlaced {
        user_id,
        product_id,
        quantity,
        amount: catalogue.price(product_id, quantity).unwrap(),
        ship_to: Address {
            street: "1 Main Street".into(),
            city: "Lyon".into(),
            zip: "69001".into(),
        },
    }
}

/// Each delivery through a fixture is a new event id, so the runtime's
/// deduplication does not help: the participant itself must answer an
/// order it has decided already with the same decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaching_a_participant_twice_is_decided_once() {
    let catalogue = Catalogue::generate(DataOptions::default());
    let opening = catalogue.product(7).unwrap().stock;

    let stockroom = Stockroom::new(&catalogue);
    let mut inv = inventory::fixture(stockroom.clone()).await.unwrap();
    let order = Uuid::new_v4();
    let first: StockReserved = inv
        .deliver(&order, placed(&catalogue, 1, 7, 2))
        .await
        .unwrap()
        .one()
        .unwrap();
    let again: StockReserved = inv
        .deliver(&order, placed(&catalogue, 1, 7, 2))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(stockroom.report().stock[&7], opening - 2);
    let declined = PaymentDeclined {
        amount: Decimal::ONE,
        available_credit: Decimal::ZERO,
        reason: "test".into(),
    };
    for _ in 0..2 {
        let released: StockReleased = inv
            .deliver(&order, declined.clone())
            .await
            .unwrap()
            .one()
            .unwrap();
        assert_eq!(released.reservation_id, first.reservation_id);
        assert_eq!(stockroom.report().stock[&7], opening, "given back once");
    }
    // More than there is: out of stock, nothing taken.
    let big = Uuid::new_v4();
    let short: OutOfStock = inv
        .deliver(&big, placed(&catalogue, 1, 7, opening + 1))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!((short.requested, short.available), (opening + 1, opening));
    inv.shutdown().await;

    let ledger = ecommerce::participants::Ledger::new(&catalogue);
    let credit = catalogue.customer(1).unwrap().credit;
    let mut pay = payment::fixture(ledger.clone()).await.unwrap();
    let order = Uuid::new_v4();
    let event = placed(&catalogue, 1, 7, 1);
    pay.deliver(&order, event.clone()).await.unwrap();
    let approved: PaymentApproved = pay
        .deliver(&order, first.clone())
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(approved.amount, event.amount);
    // The join of an instance fires once, however often its events come.
    pay.deliver(&order, event.clone()).await.unwrap();
    assert!(pay.deliver(&order, first.clone()).await.unwrap().is_empty());
    assert_eq!(
        ledger.report().credit[&1],
        credit - event.amount,
        "charged once"
    );
    // And the ledger itself answers an order it decided with the decision.
    let again = ledger.charge(order, 1, event.amount);
    assert!(
        matches!(again, PaymentDecision::Charged { transaction_id, .. } if transaction_id == approved.transaction_id)
    );
    assert_eq!(
        ledger.report().credit[&1],
        credit - event.amount,
        "charged once"
    );
    // An order beyond what is left is declined, reporting what is left.
    let big = Uuid::new_v4();
    let mut beyond = event.clone();
    beyond.amount = credit;
    pay.deliver(&big, beyond).await.unwrap();
    let declined: PaymentDeclined = pay.deliver(&big, first).await.unwrap().one().unwrap();
    assert_eq!(declined.available_credit, credit - event.amount);
    assert_eq!(ledger.report().credit[&1], credit - event.amount);
    pay.shutdown().await;
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecommerce"))
}

#[test]
fn one_process_per_participant_on_nats() {
    if !broker_available(NATS_URL) {
        return;
    }
    let prefix = unique_prefix();
    let _clean = Cleanup(NATS_URL.to_string(), prefix.clone());
    let data = data_for(300);
    let shared = shared_args(NATS_URL, &prefix, data);
    let common: Vec<&str> = shared.iter().map(String::as_str).collect();
    // Each says when its consumer group is there.
    let services = spawn_until_ready(
        bin(),
        &PARTICIPANTS,
        &common,
        "running on",
        Duration::from_secs(60),
    )
    .unwrap();
    let report = std::env::temp_dir().join(format!("{}report.json", prefix));
    let report_arg = report.display().to_string();
    let mut args = common.to_vec();
    args.extend([
        "--service",
        "ingress",
        "--orders",
        "300",
        "--report",
        &report_arg,
    ]);
    let driver = ServiceProcess::spawn("ingress", bin(), &args)
        .unwrap()
        .wait(Duration::from_secs(240))
        .unwrap();
    assert!(driver.success, "{}\n{}", driver.stdout, driver.stderr);
    let last = driver.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("settled 300/300: OrderCompleted "),
        "{last}"
    );

    let mut finals = BTreeMap::new();
    for s in services {
        let name = s.name().to_string();
        let done = s.stop(Duration::from_secs(30)).unwrap();
        assert!(done.success, "{name}: {}", done.stderr);
        let line = done.stdout.lines().last().unwrap();
        let state: FinalState = serde_json::from_str(line).unwrap();
        finals.insert(name, state);
    }
    let records: Vec<OrderRecord> =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    assert_eq!(records.len(), 300);
    let completed = records.iter().filter(|r| r.completed()).count();
    assert!(
        last.contains(&format!("OrderCompleted {completed}")),
        "{last}"
    );

    let catalogue = Catalogue::generate(data);
    let (
        Some(FinalState::Inventory(inventory)),
        Some(FinalState::Payment(payment)),
        Some(FinalState::Orders(orders)),
        Some(FinalState::Notifications(notifications)),
        Some(FinalState::Seller(seller)),
        Some(FinalState::Logistics(logistics)),
    ) = (
        finals.get("Inventory"),
        finals.get("Payment"),
        finals.get("Orders"),
        finals.get("Notifications"),
        finals.get("Seller"),
        finals.get("Logistics"),
    )
    else {
        panic!("a service printed no final state: {finals:?}");
    };
    let verdict = verify(
        &catalogue,
        &records,
        &Finals {
            inventory: Some(inventory),
            payment: Some(payment),
            orders: Some(orders),
            notifications: Some(notifications),
        },
    );
    assert!(verdict.ok(), "{:#?}", verdict.problems);
    assert_adds_up(&catalogue, &records, inventory, payment);
    assert_eq!(seller.parcels, completed);
    assert_eq!(logistics.carriers.values().sum::<usize>(), completed);
}

/// The two participants with joins, Payment and Logistics, killed with
/// SIGKILL twice each while orders flow (so that they hold waiting join
/// slots and unacknowledged deliveries) and started again: with the
/// stores on the broker's own server, the default, every order settles.
/// With memory stores a killed join participant forgot the half of a join
/// it had acknowledged, and those orders never settled.
fn join_participants_killed_mid_run_lose_no_order(broker: &str) {
    let prefix = unique_prefix();
    let _clean = Cleanup(broker.to_string(), prefix.clone());
    let orders = 1500;
    let shared = shared_args(broker, &prefix, data_for(orders as u64));
    let common: Vec<&str> = shared.iter().map(String::as_str).collect();
    let mut services = spawn_until_ready(
        bin(),
        &PARTICIPANTS,
        &common,
        "running on",
        Duration::from_secs(60),
    )
    .unwrap();
    for s in &services {
        assert!(
            s.stdout_so_far().contains("stores: NATS Key-Value")
                || s.stdout_so_far().contains("stores: Redis"),
            "{}: {}",
            s.name(),
            s.stdout_so_far()
        );
    }
    let orders_arg = orders.to_string();
    let mut args = common.to_vec();
    // Fewer orders in flight than the default, so that the run lasts
    // through the kills.
    args.extend([
        "--service",
        "ingress",
        "--orders",
        &orders_arg,
        "--concurrency",
        "8",
        // Gives up before the test does, to print what did not settle.
        "--timeout",
        "240",
    ]);
    let driver = ServiceProcess::spawn("ingress", bin(), &args).unwrap();
    let joins = ["Payment", "Logistics"];
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        for name in joins {
            let at = services.iter().position(|s| s.name() == name).unwrap();
            let killed = services.swap_remove(at).kill().unwrap();
            assert!(!killed.success, "{name} was killed, not stopped");
        }
        std::thread::sleep(Duration::from_millis(300));
        services.extend(
            spawn_until_ready(
                bin(),
                &joins,
                &common,
                "running on",
                Duration::from_secs(60),
            )
            .unwrap_or_else(|e| panic!("restart {round}: {e}")),
        );
    }
    let done = driver.wait(Duration::from_secs(280)).unwrap();
    assert!(done.success, "{}\n{}", done.stdout, done.stderr);
    let last = done.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("settled {orders}/{orders}: ")),
        "{last}\n{}",
        done.stderr
    );
    for s in services {
        let name = s.name().to_string();
        let stopped = s.stop(Duration::from_secs(30)).unwrap();
        assert!(stopped.success, "{name}: {}", stopped.stderr);
    }
}

#[test]
fn join_participants_killed_mid_run_lose_no_order_on_nats() {
    if broker_available(NATS_URL) {
        join_participants_killed_mid_run_lose_no_order(NATS_URL);
    }
}

#[test]
#[ignore = "flaky: passes alone, but beside the other tests some orders do not settle \
            within 240 s on Redis (the Redis adapter under redelivery load, not yet understood)"]
fn join_participants_killed_mid_run_lose_no_order_on_redis() {
    if broker_available(REDIS_URL) {
        join_participants_killed_mid_run_lose_no_order(REDIS_URL);
    }
}

/// What every process of a multi-process run is given: the broker, the
/// run's prefix and the data.
fn shared_args(broker: &str, prefix: &str, data: DataOptions) -> Vec<String> {
    [
        "--broker",
        broker,
        "--prefix",
        prefix,
        "--users",
        &data.users.to_string(),
        "--products",
        &data.products.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Deletes what a test left on its broker (streams, stores) when it ends,
/// passed or failed.
struct Cleanup(String, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Runtime::new() {
            if self.0.starts_with("nats") {
                rt.block_on(delete_nats_stream(&self.0, &self.1));
            } else {
                rt.block_on(delete_redis_keys(&self.0, &self.1));
            }
        }
    }
}

#[test]
fn an_unreachable_broker_or_an_unknown_service_is_one_line_and_exit_2() {
    let out = std::process::Command::new(bin())
        .args(["--broker", "nats://127.0.0.1:1", "--service", "payment"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nats://127.0.0.1:1"), "{err}");

    let out = std::process::Command::new(bin())
        .args(["--broker", NATS_URL, "--service", "paymnt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no service `paymnt`"), "{err}");
    assert!(err.contains("Payment") && err.contains("ingress"), "{err}");

    let out = std::process::Command::new(bin())
        .args(["--orders", "many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'many'"));
}

/// The README's main command, smaller: the checks hold, the last line is
/// the summary, and the exit status says so.
#[test]
fn the_binary_checks_the_run_and_ends_with_the_summary() {
    for extra in [&[][..], &["--duplicates"][..]] {
        let mut args = vec!["--orders", "200", "--users", "20", "--products", "10"];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(bin())
            .args(&args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("settled 200/200: OrderCompleted "),
            "{stdout}"
        );
        assert!(lines.iter().any(|l| l.starts_with("credit: ")), "{stdout}");
        assert!(lines.iter().any(|l| l.starts_with("stock: ")), "{stdout}");
        assert!(!stdout.contains("PROBLEM"), "{stdout}");
    }
}
