//! The ecommerce example driven end to end: orders placed over HTTP on
//! the memory broker (with and without every event delivered twice) and on
//! NATS with one process per participant, each run checked against the
//! data; participants killed mid-run on NATS and Redis, with their books
//! in PostgreSQL (`--db`), checked exactly; the ingress's answers to bad
//! requests; each participant's decisions per order, whatever reaches it
//! twice, in memory and in PostgreSQL.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_runtime::types::{Decimal, Uuid};
use ecommerce::ecommerce::{
    inventory, payment, Address, OrderPlaced, OutOfStock, PaymentApproved, PaymentDeclined,
    StockReleased, StockReserved,
};
use ecommerce::participants::{
    InventoryReport, Ledger, PaymentDecision, PaymentReport, StockDecision, Stockroom,
};
use ecommerce::{
    verify, verify_shop, Catalogue, DataOptions, FinalState, Finals, OrderRecord, Role, System,
    PARTICIPANTS,
};
use example_support::testing::{
    broker_available, delete_nats_stream, delete_redis_keys, drop_books, spawn_until_ready,
    unique_prefix, ServiceProcess, NATS_URL, POSTGRES_URL, REDIS_URL,
};
use example_support::{Books, Deployment, HttpClient};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn deployment(broker: &str, duplicates: bool) -> Deployment {
    Deployment {
        broker: broker.into(),
        prefix: unique_prefix(),
        duplicates,
        ..Deployment::default()
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
    let verdict = verify_shop(&shop, &records).await;
    assert!(verdict.ok(), "{:#?}", verdict.problems);
    let (inventory, payment) = (
        shop.inventory.report().await.unwrap(),
        shop.payment.report().await.unwrap(),
    );
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
    let (stockroom, ledger) = (Stockroom::new(&catalogue), Ledger::new(&catalogue));
    decided_once(&catalogue, stockroom, ledger).await;
}

/// The same with the books in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_db_an_order_reaching_a_participant_twice_is_decided_once() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let prefix = unique_prefix();
    let _clean = Cleanup::books(&prefix);
    let catalogue = Catalogue::generate(DataOptions::default());
    let books = Books::connect(POSTGRES_URL, &prefix).await.unwrap();
    let stockroom = Stockroom::open(&catalogue, &books).await.unwrap();
    let ledger = Ledger::open(&catalogue, &books).await.unwrap();
    decided_once(&catalogue, stockroom, ledger).await;
}

async fn decided_once(catalogue: &Catalogue, stockroom: Stockroom, ledger: Ledger) {
    let opening = catalogue.product(7).unwrap().stock;
    let mut inv = inventory::fixture(stockroom.clone()).await.unwrap();
    let order = Uuid::new_v4();
    let first: StockReserved = inv
        .deliver(&order, placed(catalogue, 1, 7, 2))
        .await
        .unwrap()
        .one()
        .unwrap();
    let again: StockReserved = inv
        .deliver(&order, placed(catalogue, 1, 7, 2))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(stockroom.report().await.unwrap().stock[&7], opening - 2);
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
        assert_eq!(
            stockroom.report().await.unwrap().stock[&7],
            opening,
            "given back once"
        );
    }
    // More than there is: out of stock, nothing taken.
    let big = Uuid::new_v4();
    let short: OutOfStock = inv
        .deliver(&big, placed(catalogue, 1, 7, opening + 1))
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!((short.requested, short.available), (opening + 1, opening));
    inv.shutdown().await;

    let credit = catalogue.customer(1).unwrap().credit;
    let mut pay = payment::fixture(ledger.clone()).await.unwrap();
    let order = Uuid::new_v4();
    let event = placed(catalogue, 1, 7, 1);
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
        ledger.report().await.unwrap().credit[&1],
        credit - event.amount,
        "charged once"
    );
    // And the ledger itself answers an order it decided with the decision.
    let again = ledger.charge(order, 1, event.amount).await.unwrap();
    assert!(
        matches!(again, PaymentDecision::Charged { transaction_id, .. } if transaction_id == approved.transaction_id)
    );
    assert_eq!(
        ledger.report().await.unwrap().credit[&1],
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
    assert_eq!(
        ledger.report().await.unwrap().credit[&1],
        credit - event.amount
    );
    pay.shutdown().await;
}

/// With `--db`, the stock and the credit are where a restarted process
/// left them, not the opening ones, and an order decided before the
/// restart gets its decision again, with its ids; deliveries of one order
/// at once decide it once, and orders at once for the last units of a
/// product never take more than there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_db_a_restart_goes_on_from_the_stored_stock_and_credit() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let prefix = unique_prefix();
    let _clean = Cleanup::books(&prefix);
    let catalogue = Catalogue::generate(DataOptions::default());
    let opening = catalogue.product(7).unwrap().stock;
    let credit = catalogue.customer(1).unwrap().credit;
    let amount = catalogue.price(7, 2).unwrap();
    let order = Uuid::new_v4();

    let (reserved, charged) = {
        let books = Books::connect(POSTGRES_URL, &prefix).await.unwrap();
        let stockroom = Stockroom::open(&catalogue, &books).await.unwrap();
        let ledger = Ledger::open(&catalogue, &books).await.unwrap();
        assert!(
            stockroom
                .books()
                .starts_with("PostgreSQL postgres://***@127.0.0.1:5432/test (tables choreotest"),
            "{}",
            stockroom.books()
        );
        // Eight deliveries of one order at once: one decision.
        let mut at_once = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (s, l) = (stockroom.clone(), ledger.clone());
            at_once.spawn(async move {
                (
                    s.reserve(order, 7, 2).await.unwrap(),
                    l.charge(order, 1, amount).await.unwrap(),
                )
            });
        }
        let decisions = at_once.join_all().await;
        assert!(
            decisions.iter().all(|d| *d == decisions[0]),
            "{decisions:?}"
        );
        assert_eq!(stockroom.report().await.unwrap().stock[&7], opening - 2);
        assert_eq!(ledger.report().await.unwrap().credit[&1], credit - amount);
        decisions[0].clone()
        // The books and their pool are dropped here, as in a crash.
    };
    assert!(matches!(reserved, StockDecision::Reserved { .. }));
    assert!(matches!(charged, PaymentDecision::Charged { .. }));

    let books = Books::connect(POSTGRES_URL, &prefix).await.unwrap();
    let stockroom = Stockroom::open(&catalogue, &books).await.unwrap();
    let ledger = Ledger::open(&catalogue, &books).await.unwrap();
    let report = stockroom.report().await.unwrap();
    assert_eq!(report.stock[&7], opening - 2, "the stock is not reset");
    assert_eq!(report.orders[&order], reserved);
    assert_eq!(stockroom.reserve(order, 7, 2).await.unwrap(), reserved);
    assert_eq!(ledger.charge(order, 1, amount).await.unwrap(), charged);
    assert_eq!(
        ledger.report().await.unwrap().credit[&1],
        credit - amount,
        "the credit is not reset, and charged once"
    );
    // Released at once by several deliveries: given back once.
    let mut at_once = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let s = stockroom.clone();
        at_once.spawn(async move { s.release(order).await.unwrap() });
    }
    for released in at_once.join_all().await {
        assert!(released.is_some());
    }
    let report = stockroom.report().await.unwrap();
    assert_eq!(report.stock[&7], opening, "given back once");
    assert!(matches!(
        report.orders[&order],
        StockDecision::Reserved { released: true, .. }
    ));

    // Orders at once for more than is left: never below zero, and each
    // order that did not get its units saw fewer than it asked for.
    let mut at_once = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let s = stockroom.clone();
        at_once.spawn(async move { s.reserve(Uuid::new_v4(), 7, 7).await.unwrap() });
    }
    let decisions = at_once.join_all().await;
    let taken = decisions
        .iter()
        .filter(|d| matches!(d, StockDecision::Reserved { .. }))
        .count() as u32;
    assert_eq!(taken, opening / 7, "{decisions:?}");
    assert_eq!(
        stockroom.report().await.unwrap().stock[&7],
        opening - 7 * taken
    );

    // Other data on the same books is refused, not mixed in.
    let other = Catalogue::generate(DataOptions {
        seed: 9,
        ..DataOptions::default()
    });
    let e = Stockroom::open(&other, &books).await.err().unwrap();
    assert!(e.to_string().contains("a new --prefix"), "{e}");
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
    let _clean = Cleanup::new(NATS_URL, &prefix, None);
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

/// What a run with kills left: the data, every order and how it ended,
/// the participants' final states (printed at SIGTERM), and the ingress's
/// last line.
struct KilledRun {
    catalogue: Catalogue,
    records: Vec<OrderRecord>,
    finals: BTreeMap<String, FinalState>,
}

impl KilledRun {
    /// Checks the books of Inventory and Payment against the data: every
    /// customer charged exactly their completed orders, each product's
    /// stock its opening stock less its completed orders (no double
    /// charge or reservation, no lost or double release), and, when
    /// `counted` (participants never killed: their state is in memory),
    /// the counts of Orders and Notifications too.
    fn check_books(&self, counted: bool) {
        let (Some(FinalState::Inventory(inventory)), Some(FinalState::Payment(payment))) =
            (self.finals.get("Inventory"), self.finals.get("Payment"))
        else {
            panic!("no final books: {:?}", self.finals.keys());
        };
        let mut finals = Finals {
            inventory: Some(inventory),
            payment: Some(payment),
            ..Finals::default()
        };
        if counted {
            let (Some(FinalState::Orders(o)), Some(FinalState::Notifications(n))) =
                (self.finals.get("Orders"), self.finals.get("Notifications"))
            else {
                panic!("no final counts: {:?}", self.finals.keys());
            };
            finals.orders = Some(o);
            finals.notifications = Some(n);
        }
        let verdict = verify(&self.catalogue, &self.records, &finals);
        assert!(verdict.ok(), "{:#?}", verdict.problems);
        assert_adds_up(&self.catalogue, &self.records, inventory, payment);
    }
}

/// Runs one process per participant on `broker` (with `--db`, their books
/// in PostgreSQL), places `orders` orders through the ingress, and while
/// they flow kills each group of `rounds` with SIGKILL, one group after
/// another, and starts it again; then waits for every order to settle and
/// stops every participant with SIGTERM.
fn run_with_kills(broker: &str, db: Option<&str>, orders: usize, rounds: &[&[&str]]) -> KilledRun {
    let started = std::time::Instant::now();
    let prefix = unique_prefix();
    let _clean = Cleanup::new(broker, &prefix, db);
    let data = data_for(orders as u64);
    let mut shared = shared_args(broker, &prefix, data);
    if let Some(db) = db {
        shared.extend(["--db".to_string(), db.to_string()]);
    }
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
        let out = s.stdout_so_far();
        assert!(
            out.contains("stores: NATS Key-Value") || out.contains("stores: Redis"),
            "{}: {out}",
            s.name()
        );
        let books = match (db, s.name()) {
            (Some(_), "Inventory" | "Payment") => {
                "books: PostgreSQL postgres://***@127.0.0.1:5432/test (tables choreotest"
            }
            _ => "books: memory",
        };
        assert!(out.contains(books), "{}: {out}", s.name());
        assert!(!out.contains("postgres@"), "{}: {out}", s.name());
    }
    let report = std::env::temp_dir().join(format!("{prefix}report.json"));
    let report_arg = report.display().to_string();
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
        "--report",
        &report_arg,
        // Gives up before the test does, to print what did not settle.
        "--timeout",
        "240",
    ]);
    let driver = ServiceProcess::spawn("ingress", bin(), &args).unwrap();
    for (round, group) in rounds.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(700));
        for name in *group {
            let at = services.iter().position(|s| s.name() == *name).unwrap();
            let killed = services.swap_remove(at).kill().unwrap();
            assert!(!killed.success, "{name} was killed, not stopped");
        }
        std::thread::sleep(Duration::from_millis(300));
        services.extend(
            spawn_until_ready(bin(), group, &common, "running on", Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("restart {round}: {e}")),
        );
    }
    let done = driver.wait(Duration::from_secs(280)).unwrap();
    assert!(done.success, "{}\n{}", done.stdout, done.stderr);
    let last = done.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with(&format!("settled {orders}/{orders}: ")),
        "{last}\n{}",
        done.stderr
    );
    let mut finals = BTreeMap::new();
    for s in services {
        let name = s.name().to_string();
        let stopped = s.stop(Duration::from_secs(30)).unwrap();
        assert!(stopped.success, "{name}: {}", stopped.stderr);
        let line = stopped.stdout.lines().last().unwrap_or_default();
        let state: FinalState = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", stopped.stdout));
        finals.insert(name, state);
    }
    let records: Vec<OrderRecord> =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let _ = std::fs::remove_file(&report);
    assert_eq!(records.len(), orders);
    eprintln!(
        "{} orders on {broker} with {} kills: {last} in {:.1} s",
        orders,
        rounds.iter().map(|g| g.len()).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    KilledRun {
        catalogue: Catalogue::generate(data),
        records,
        finals,
    }
}

/// The PostgreSQL server for `--db`, when there is one (or, with
/// `CHOREO_REQUIRE_BROKERS=1`, a failure when there is none).
fn db() -> Option<&'static str> {
    broker_available(POSTGRES_URL).then_some(POSTGRES_URL)
}

/// The two participants with joins, Payment and Logistics, killed with
/// SIGKILL twice each while orders flow (so that they hold waiting join
/// slots and unacknowledged deliveries) and started again: with the
/// stores on the broker's own server, the default, every order settles.
/// (With memory stores a killed join participant forgot the half of a
/// join it had acknowledged, and those orders never settled.) With the
/// books in PostgreSQL, the credit at the end is exactly the data's: a
/// Payment killed after charging finds the charge when the join fires
/// again, and charges nothing twice.
fn join_participants_killed_mid_run_lose_no_order(broker: &str) {
    let db = db();
    let joins: &[&str] = &["Payment", "Logistics"];
    let run = run_with_kills(broker, db, 1200, &[joins, joins]);
    if db.is_some() {
        // Inventory, Orders and Notifications ran throughout: their
        // counts hold too, and the Seller prepared one parcel per charge.
        run.check_books(true);
        let Some(FinalState::Seller(seller)) = run.finals.get("Seller") else {
            panic!("no Seller");
        };
        let completed = run.records.iter().filter(|r| r.completed()).count();
        assert_eq!(seller.parcels, completed);
    }
}

#[test]
fn join_participants_killed_mid_run_lose_no_order_on_nats() {
    if broker_available(NATS_URL) {
        join_participants_killed_mid_run_lose_no_order(NATS_URL);
    }
}

#[test]
fn join_participants_killed_mid_run_lose_no_order_on_redis() {
    if broker_available(REDIS_URL) {
        join_participants_killed_mid_run_lose_no_order(REDIS_URL);
    }
}

/// Every participant killed with SIGKILL twice, two at a time, while
/// orders flow, and started again, with the books in PostgreSQL: every
/// order settles, and the stock and the credit at the end are exactly the
/// data's — whichever participant died between deciding and
/// acknowledging, no order was reserved, charged or released twice, and
/// no release was lost.
fn every_participant_killed_mid_run_keeps_the_books(broker: &str) {
    let Some(db) = db() else {
        return;
    };
    let pairs: [&[&str]; 3] = [
        &["Inventory", "Orders"],
        &["Payment", "Seller"],
        &["Logistics", "Notifications"],
    ];
    let rounds: Vec<&[&str]> = pairs.iter().chain(pairs.iter()).copied().collect();
    let run = run_with_kills(broker, Some(db), 1000, &rounds);
    run.check_books(false);
}

#[test]
fn every_participant_killed_mid_run_keeps_the_books_on_nats() {
    if broker_available(NATS_URL) {
        every_participant_killed_mid_run_keeps_the_books(NATS_URL);
    }
}

#[test]
fn every_participant_killed_mid_run_keeps_the_books_on_redis() {
    if broker_available(REDIS_URL) {
        every_participant_killed_mid_run_keeps_the_books(REDIS_URL);
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

/// Deletes what a test left on its broker (streams, stores), in its
/// database (the books' tables) and in the temporary directory (the
/// ingress's report) when it ends, passed or failed.
struct Cleanup {
    broker: Option<String>,
    prefix: String,
    db: Option<String>,
}

impl Cleanup {
    fn new(broker: &str, prefix: &str, db: Option<&str>) -> Self {
        Cleanup {
            broker: Some(broker.to_string()),
            prefix: prefix.to_string(),
            db: db.map(str::to_string),
        }
    }

    /// The books' tables alone.
    fn books(prefix: &str) -> Self {
        Cleanup {
            broker: None,
            prefix: prefix.to_string(),
            db: Some(POSTGRES_URL.to_string()),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (broker, prefix, db) = (self.broker.take(), self.prefix.clone(), self.db.take());
        // The ingress's report, if a run failed before reading it.
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{prefix}report.json")));
        // A thread of its own: a runtime cannot be started inside the
        // async tests' one.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            match broker.as_deref() {
                Some(b) if b.starts_with("nats") => rt.block_on(delete_nats_stream(b, &prefix)),
                Some(b) => rt.block_on(delete_redis_keys(b, &prefix)),
                None => {}
            }
            if let Some(db) = db {
                rt.block_on(drop_books(&db, &prefix));
            }
        })
        .join();
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

/// With `--db`, one process with every participant says where its books
/// are (without credentials) and checks the run against the books as
/// stored; a database that does not answer is one line and exit status 2,
/// without the password.
#[test]
fn with_db_the_binary_names_its_books_and_checks_them() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let prefix = unique_prefix();
    let _clean = Cleanup::books(&prefix);
    let out = std::process::Command::new(bin())
        .args(["--orders", "200", "--users", "20", "--products", "10"])
        .args(["--db", POSTGRES_URL, "--prefix", &prefix])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("books: PostgreSQL postgres://***@127.0.0.1:5432/test (tables choreotest")
            && stdout.contains("for stock and credit, memory for the rest"),
        "{stdout}"
    );
    assert!(!stdout.contains("PROBLEM"), "{stdout}");
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("settled 200/200: "));

    let out = std::process::Command::new(bin())
        .args([
            "--db",
            "postgres://app:s3cret@127.0.0.1:1/x",
            "--orders",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("postgres://app:***@127.0.0.1:1/x"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
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
        // The commands sent again after a 503, on a line of their own
        // before the last.
        assert_eq!(lines[lines.len() - 2], "retried after 503: 0", "{stdout}");
    }
}

/// The program run in this process ([`ecommerce::cli::main_with`]), as a
/// supervisor would run it: it places the orders, and with `--stats`
/// leaves every participant's final counts in the file.
#[test]
fn the_program_runs_in_process_and_leaves_its_stats() {
    let dir = std::env::temp_dir().join(format!("{}stats", unique_prefix()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("stats.json");
    let code = ecommerce::cli::main_with([
        "ecommerce",
        "--orders",
        "60",
        "--users",
        "10",
        "--products",
        "5",
        "--ack-wait",
        "5",
        "--claim-lease",
        "2.5",
        "--stats",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let stats = example_support::StatsSnapshot::read(&file).unwrap();
    assert_eq!(stats.pid, std::process::id());
    assert_eq!(
        stats.services.keys().collect::<Vec<_>>(),
        [
            "Inventory",
            "Logistics",
            "Notifications",
            "Orders",
            "Payment",
            "Seller"
        ]
    );
    for (name, s) in &stats.services {
        // Stopped: nothing in flight, nothing taken again.
        assert!(s.deliveries > 0, "{name}: {s:?}");
        assert_eq!(s.received, s.deliveries, "{name}: {s:?}");
        assert_eq!(s.redelivered, 0, "{name}: {s:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ack_wait_and_claim_lease_must_be_more_than_zero() {
    for option in ["--ack-wait", "--claim-lease"] {
        let out = std::process::Command::new(bin())
            .args([option, "0", "--orders", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(option), "{err}");
        assert!(err.contains("must be more than 0"), "{err}");
        assert!(out.stdout.is_empty());
    }
}
