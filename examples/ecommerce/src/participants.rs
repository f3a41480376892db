//! The six participants, with the shop's logic. Each keeps its state
//! behind one mutex and records its decision per order, so that whatever
//! reaches it twice for one order — a duplicate the inbox no longer
//! remembers, a retry after a crash, a command sent twice — gets the first
//! decision again instead of a second charge or reservation.
//!
//! Inventory and Payment keep their books (stock, credit, and that
//! decision per order) in memory, or with `--db` in PostgreSQL, changed
//! together in one transaction: a participant killed after deciding finds
//! its decision when the event comes again, and a restarted one goes on
//! from the stock and credit as stored.

use crate::data::{Catalogue, DataOptions};
use crate::ecommerce::{
    self, inventory, notifications, orders, payment, Carrier, Context, Key, OrderCompleted,
    OrderFailed, OrderPlaced, OutOfStock, ParcelPrepared, PaymentApproved, PaymentDeclined,
    PlaceOrder, ShipmentScheduled, StockReleased, StockReserved,
};
use choreo_runtime::service::{HandlerError, ServiceHandle, ServiceOptions, Stores};
use choreo_runtime::sync::Recover;
use choreo_runtime::types::{Decimal, Duration, Timestamp, Uuid};
use choreo_runtime::SharedBroker;
use example_support::books::{parse_column, Books, BooksError, Row, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The participants' names, as `--service` takes them.
pub const PARTICIPANTS: [&str; 6] = [
    "Orders",
    "Inventory",
    "Payment",
    "Seller",
    "Logistics",
    "Notifications",
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked mid-update is retried by the runtime; the
    // state it guards is only ever changed in whole steps, so it is usable.
    m.locked()
}

/// An id derived from the order's, so that a repeated decision repeats
/// its ids too (`salt` keeps the ids of different things apart).
fn derived_id(key: &Key, salt: u128) -> Uuid {
    let mixed = key.as_u128() ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    // Version 8 (custom) and the RFC 4122 variant, so it reads as a UUID.
    let bits = (mixed & !(0xF << 76) & !(0x3 << 62)) | (0x8 << 76) | (0x2 << 62);
    Uuid::from_u128(bits)
}

// ---------------------------------------------------------------- Orders

/// Prices orders and records how each one ends.
#[derive(Clone)]
pub struct OrderDesk {
    catalogue: Arc<Catalogue>,
    state: Arc<Mutex<OrdersState>>,
}

/// What the desk holds: the orders still open, priced once (a repeated
/// pricing repeats the decision), and counts of the rest. An order that
/// ended is forgotten, so that the desk's memory follows the orders in
/// flight, not every order ever placed (a 30-minute soak grew it by
/// 500 bytes an order).
#[derive(Default)]
struct OrdersState {
    open: HashMap<Key, OrderPlaced>,
    placed: usize,
    completed: usize,
    failed: usize,
}

/// What the Orders service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersReport {
    /// Orders placed (priced).
    pub placed: usize,
    /// Orders completed.
    pub completed: usize,
    /// Orders failed.
    pub failed: usize,
}

impl OrderDesk {
    /// Orders priced from `catalogue`.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        OrderDesk {
            catalogue,
            state: Arc::default(),
        }
    }

    /// What it holds.
    pub fn report(&self) -> OrdersReport {
        let s = lock(&self.state);
        OrdersReport {
            placed: s.placed,
            completed: s.completed,
            failed: s.failed,
        }
    }
}

impl ecommerce::Orders for OrderDesk {
    async fn on_place_order(
        &self,
        ctx: Context,
        event: PlaceOrder,
    ) -> Result<OrderPlaced, HandlerError> {
        // The ingress checks this too; a command sent around it with an
        // unknown product cannot be priced, so it is dead-lettered.
        self.catalogue
            .validate(&event)
            .map_err(HandlerError::rejected)?;
        let amount = self
            .catalogue
            .price(event.product_id, event.quantity)
            .ok_or_else(|| HandlerError::rejected("the product has no price"))?;
        let mut s = lock(&self.state);
        if let Some(placed) = s.open.get(ctx.key()) {
            return Ok(placed.clone());
        }
        let placed = OrderPlaced {
            user_id: event.user_id,
            product_id: event.product_id,
            quantity: event.quantity,
            amount,
            ship_to: event.ship_to,
        };
        s.open.insert(*ctx.key(), placed.clone());
        s.placed += 1;
        Ok(placed)
    }

    async fn on_shipment_scheduled(
        &self,
        ctx: Context,
        _event: ShipmentScheduled,
    ) -> Result<OrderCompleted, HandlerError> {
        let mut s = lock(&self.state);
        if s.open.remove(ctx.key()).is_some() {
            s.completed += 1;
        }
        Ok(OrderCompleted {})
    }

    async fn on_out_of_stock_or_stock_released(
        &self,
        ctx: Context,
        event: orders::OnOutOfStockOrStockReleasedTrigger,
    ) -> Result<OrderFailed, HandlerError> {
        let reason = match event {
            orders::OnOutOfStockOrStockReleasedTrigger::OutOfStock(o) => format!(
                "out of stock: {} of product {} ordered, {} left",
                o.requested, o.product_id, o.available
            ),
            orders::OnOutOfStockOrStockReleasedTrigger::StockReleased(_) => {
                "payment declined: the credit does not cover the amount".to_string()
            }
        };
        let mut s = lock(&self.state);
        if s.open.remove(ctx.key()).is_some() {
            s.failed += 1;
        }
        Ok(OrderFailed { reason })
    }
}

// ------------------------------------------------------------- the books

/// Makes sure the books were opened with the same data: one row holds the
/// data options they were seeded from, so that a process given other
/// data (`--seed`, `--users`, `--products`) than the books hold stops at
/// once instead of mixing two shops.
async fn check_data(books: &Books, options: &DataOptions) -> Result<(), BooksError> {
    let table = books.table("shop_data")?;
    books
        .create_tables(&[format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (id integer PRIMARY KEY CHECK (id = 1), data text NOT NULL)"
        )])
        .await?;
    let ours = serde_json::to_string(options).map_err(|e| BooksError::Config(e.to_string()))?;
    let client = books.client().await?;
    client
        .execute(
            &format!("INSERT INTO {table} (id, data) VALUES (1, $1) ON CONFLICT (id) DO NOTHING"),
            &[&ours],
        )
        .await?;
    let row = client
        .query_one(&format!("SELECT data FROM {table} WHERE id = 1"), &[])
        .await?;
    let text: String = row.try_get(0)?;
    let stored: DataOptions = serde_json::from_str(&text)
        .map_err(|e| BooksError::Corrupt(format!("{table}: `{text}`: {e}")))?;
    if stored != *options {
        return Err(BooksError::Config(format!(
            "the books at {} hold the shop of --seed {} --users {} --products {}, not of \
             --seed {} --users {} --products {}: give the same data, or a new --prefix for new books",
            books.url(),
            stored.seed,
            stored.users,
            stored.products,
            options.seed,
            options.users,
            options.products
        )));
    }
    Ok(())
}

/// An integer column as the type the shop holds it in.
fn int_column<T: TryFrom<i64>>(row: &Row, column: &str, table: &str) -> Result<T, BooksError> {
    let n: i64 = row.try_get(column)?;
    T::try_from(n)
        .map_err(|_| BooksError::Corrupt(format!("{table}.{column}: {n} is out of range")))
}

/// A decimal column, stored as `numeric` and read back as text (the
/// driver has no conversion of its own for it here).
fn decimal_column(row: &Row, column: &str, table: &str) -> Result<Option<Decimal>, BooksError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| BooksError::Corrupt(format!("{table}.{column} `{t}`: {e}")))
    })
    .transpose()
}

fn uuid_column(row: &Row, column: &str, table: &str) -> Result<Option<Uuid>, BooksError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| BooksError::Corrupt(format!("{table}.{column} `{t}`: {e}")))
    })
    .transpose()
}

// ------------------------------------------------------------- Inventory

/// The stock of every product, and what each order holds of it: in memory,
/// or in PostgreSQL ([`Stockroom::open`]).
#[derive(Clone)]
pub struct Stockroom {
    books: StockBooks,
}

#[derive(Clone)]
enum StockBooks {
    Memory(Arc<Mutex<StockState>>),
    Db(Arc<StockTables>),
}

struct StockState {
    /// Units on the shelf, by product id − 1.
    stock: Vec<u32>,
    decisions: HashMap<Key, StockDecision>,
}

/// The Inventory's tables: units by product, and the decision per order.
struct StockTables {
    books: Books,
    stock: String,
    orders: String,
    select_decision: String,
    lock_decision: String,
    lock_stock: String,
    insert_decision: String,
    take: String,
    give_back: String,
    mark_released: String,
}

/// What the Inventory decided for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockDecision {
    /// Units set aside for the order.
    Reserved {
        /// The reservation.
        reservation_id: Uuid,
        /// Of which product.
        product_id: u64,
        /// How many units.
        quantity: u32,
        /// Given back (the payment was declined).
        released: bool,
    },
    /// Not enough units.
    OutOfStock {
        /// The product.
        product_id: u64,
        /// Units asked for.
        requested: u32,
        /// Units there were.
        available: u32,
    },
}

/// What the Inventory service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryReport {
    /// Units on the shelf by product id.
    pub stock: BTreeMap<u64, u32>,
    /// The decision of every order it saw.
    pub orders: BTreeMap<Key, StockDecision>,
}

impl Stockroom {
    /// The opening stock of `catalogue`, in memory.
    pub fn new(catalogue: &Catalogue) -> Self {
        Stockroom {
            books: StockBooks::Memory(Arc::new(Mutex::new(StockState {
                stock: catalogue.products.iter().map(|p| p.stock).collect(),
                decisions: HashMap::new(),
            }))),
        }
    }

    /// The stock kept in `books`: the tables are created if missing and
    /// given the opening stock of `catalogue` for each product they do
    /// not hold yet, so that a restart goes on from the stock as stored.
    pub async fn open(catalogue: &Catalogue, books: &Books) -> Result<Self, BooksError> {
        check_data(books, &catalogue.options).await?;
        let stock = books.table("inventory_stock")?;
        let orders = books.table("inventory_orders")?;
        books
            .create_tables(&[
                format!(
                    "CREATE TABLE IF NOT EXISTS {stock} \
                     (product_id bigint PRIMARY KEY, units bigint NOT NULL CHECK (units >= 0))"
                ),
                // `reservation_id` null: out of stock, with `available`.
                format!(
                    "CREATE TABLE IF NOT EXISTS {orders} (order_key text PRIMARY KEY, \
                     product_id bigint NOT NULL, quantity bigint NOT NULL, reservation_id text, \
                     available bigint, released boolean NOT NULL DEFAULT false)"
                ),
            ])
            .await?;
        let ids = catalogue
            .products
            .iter()
            .map(|p| i64::try_from(p.id))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|e| BooksError::Config(format!("a product id: {e}")))?;
        let units: Vec<i64> = catalogue
            .products
            .iter()
            .map(|p| i64::from(p.stock))
            .collect();
        books
            .client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO {stock} (product_id, units) \
                     SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
                     ON CONFLICT (product_id) DO NOTHING"
                ),
                &[&ids, &units],
            )
            .await?;
        let columns = "order_key, product_id, quantity, reservation_id, available, released";
        Ok(Stockroom {
            books: StockBooks::Db(Arc::new(StockTables {
                books: books.clone(),
                select_decision: format!("SELECT {columns} FROM {orders} WHERE order_key = $1"),
                lock_decision: format!(
                    "SELECT {columns} FROM {orders} WHERE order_key = $1 FOR UPDATE"
                ),
                lock_stock: format!("SELECT units FROM {stock} WHERE product_id = $1 FOR UPDATE"),
                insert_decision: format!(
                    "INSERT INTO {orders} (order_key, product_id, quantity, reservation_id, available) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_key) DO NOTHING"
                ),
                take: format!("UPDATE {stock} SET units = units - $2 WHERE product_id = $1"),
                give_back: format!("UPDATE {stock} SET units = units + $2 WHERE product_id = $1"),
                mark_released: format!("UPDATE {orders} SET released = true WHERE order_key = $1"),
                stock,
                orders,
            })),
        })
    }

    /// Where the stock is kept: `memory`, or the books' description.
    pub fn books(&self) -> String {
        match &self.books {
            StockBooks::Memory(_) => "memory".into(),
            StockBooks::Db(t) => t.books.description(),
        }
    }

    /// Reserves `quantity` units of `product_id` for order `key` if there
    /// are that many, or decides it is out of stock; an order decided
    /// already gets the same decision again and changes nothing. An error
    /// only when the books are in PostgreSQL and it does not answer.
    pub async fn reserve(
        &self,
        key: Key,
        product_id: u64,
        quantity: u32,
    ) -> Result<StockDecision, BooksError> {
        match &self.books {
            StockBooks::Memory(state) => Ok(reserve_in_memory(state, key, product_id, quantity)),
            StockBooks::Db(t) => t.reserve(key, product_id, quantity).await,
        }
    }

    /// Gives back what order `key` reserved, once however often it is
    /// asked; the reservation, or `None` if the order holds none.
    pub async fn release(&self, key: Key) -> Result<Option<Uuid>, BooksError> {
        match &self.books {
            StockBooks::Memory(state) => Ok(release_in_memory(state, key)),
            StockBooks::Db(t) => t.release(key).await,
        }
    }

    /// What it holds (read from PostgreSQL when the books are there).
    pub async fn report(&self) -> Result<InventoryReport, BooksError> {
        match &self.books {
            StockBooks::Memory(state) => {
                let s = lock(state);
                Ok(InventoryReport {
                    stock: (1..).zip(s.stock.iter().copied()).collect(),
                    orders: s.decisions.iter().map(|(k, d)| (*k, d.clone())).collect(),
                })
            }
            StockBooks::Db(t) => t.report().await,
        }
    }
}

fn reserve_in_memory(
    state: &Mutex<StockState>,
    key: Key,
    product_id: u64,
    quantity: u32,
) -> StockDecision {
    let mut s = lock(state);
    if let Some(d) = s.decisions.get(&key) {
        return d.clone();
    }
    // Check and take under one lock: two orders of the last units cannot
    // both get them.
    let slot = usize::try_from(product_id.wrapping_sub(1))
        .ok()
        .and_then(|i| s.stock.get_mut(i));
    let decision = match slot {
        Some(left) if *left >= quantity => {
            *left -= quantity;
            StockDecision::Reserved {
                reservation_id: derived_id(&key, 1),
                product_id,
                quantity,
                released: false,
            }
        }
        left => StockDecision::OutOfStock {
            product_id,
            requested: quantity,
            available: left.map_or(0, |l| *l),
        },
    };
    s.decisions.insert(key, decision.clone());
    decision
}

fn release_in_memory(state: &Mutex<StockState>, key: Key) -> Option<Uuid> {
    let mut s = lock(state);
    let StockState { stock, decisions } = &mut *s;
    let Some(StockDecision::Reserved {
        reservation_id,
        product_id,
        quantity,
        released,
    }) = decisions.get_mut(&key)
    else {
        return None;
    };
    if !*released {
        *released = true;
        let i = usize::try_from(product_id.wrapping_sub(1)).unwrap_or(usize::MAX);
        if let Some(left) = stock.get_mut(i) {
            *left += *quantity;
        }
    }
    Some(*reservation_id)
}

impl StockTables {
    /// The decision stored for order `key` (`lock`: and hold its row
    /// until the transaction ends).
    async fn decision(
        &self,
        tx: &Transaction<'_>,
        key: &str,
        lock: bool,
    ) -> Result<Option<StockDecision>, BooksError> {
        let sql = if lock {
            &self.lock_decision
        } else {
            &self.select_decision
        };
        let stmt = tx.prepare_cached(sql).await?;
        tx.query_opt(&stmt, &[&key])
            .await?
            .map(|row| self.decision_of(&row).map(|(_, d)| d))
            .transpose()
    }

    fn decision_of(&self, row: &Row) -> Result<(Key, StockDecision), BooksError> {
        let t = &self.orders;
        let key = parse_column(row, "order_key", t)?;
        let product_id = int_column(row, "product_id", t)?;
        let quantity = int_column(row, "quantity", t)?;
        let decision =
            match uuid_column(row, "reservation_id", t)? {
                Some(reservation_id) => StockDecision::Reserved {
                    reservation_id,
                    product_id,
                    quantity,
                    released: row.try_get("released")?,
                },
                None => {
                    let available: Option<i64> = row.try_get("available")?;
                    StockDecision::OutOfStock {
                        product_id,
                        requested: quantity,
                        available: available.and_then(|a| u32::try_from(a).ok()).ok_or_else(
                            || BooksError::Corrupt(format!("{t}.available: {available:?}")),
                        )?,
                    }
                }
            };
        Ok((key, decision))
    }

    /// [`Stockroom::reserve`] in one transaction: the decision stored
    /// already, or the product's row locked, the decision inserted (if
    /// no other delivery of the order got there first) and the units
    /// taken.
    async fn reserve(
        self: &Arc<Self>,
        key: Key,
        product_id: u64,
        quantity: u32,
    ) -> Result<StockDecision, BooksError> {
        let Ok(product) = i64::try_from(product_id) else {
            // No such product in the books: the answer changes nothing,
            // and is the same every time, so it needs no row.
            return Ok(StockDecision::OutOfStock {
                product_id,
                requested: quantity,
                available: 0,
            });
        };
        let k = key.to_string();
        self.books
            .transaction(|tx| {
                let (t, k) = (self.clone(), k.clone());
                Box::pin(async move {
                    if let Some(d) = t.decision(tx, &k, false).await? {
                        return Ok(d);
                    }
                    let stmt = tx.prepare_cached(&t.lock_stock).await?;
                    let left: Option<i64> = match tx.query_opt(&stmt, &[&product]).await? {
                        Some(row) => Some(row.try_get(0)?),
                        None => None,
                    };
                    let decision = match left {
                        Some(l) if l >= i64::from(quantity) => StockDecision::Reserved {
                            reservation_id: derived_id(&key, 1),
                            product_id,
                            quantity,
                            released: false,
                        },
                        l => StockDecision::OutOfStock {
                            product_id,
                            requested: quantity,
                            available: l.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
                        },
                    };
                    let (reservation, available) = match &decision {
                        StockDecision::Reserved { reservation_id, .. } => {
                            (Some(reservation_id.to_string()), None)
                        }
                        StockDecision::OutOfStock { available, .. } => {
                            (None, Some(i64::from(*available)))
                        }
                    };
                    let stmt = tx.prepare_cached(&t.insert_decision).await?;
                    let inserted = tx
                        .execute(
                            &stmt,
                            &[&k, &product, &i64::from(quantity), &reservation, &available],
                        )
                        .await?;
                    if inserted == 0 {
                        // Another delivery of this order decided while this
                        // one waited: its decision stands, nothing is taken.
                        return t.decision(tx, &k, false).await?.ok_or_else(|| {
                            BooksError::Corrupt(format!("{}: order {k} vanished", t.orders))
                        });
                    }
                    if matches!(decision, StockDecision::Reserved { .. }) {
                        let stmt = tx.prepare_cached(&t.take).await?;
                        tx.execute(&stmt, &[&product, &i64::from(quantity)]).await?;
                    }
                    Ok(decision)
                })
            })
            .await
    }

    /// [`Stockroom::release`] in one transaction: the order's decision
    /// locked, marked released and its units given back, unless it was
    /// released already.
    async fn release(self: &Arc<Self>, key: Key) -> Result<Option<Uuid>, BooksError> {
        let k = key.to_string();
        self.books
            .transaction(|tx| {
                let (t, k) = (self.clone(), k.clone());
                Box::pin(async move {
                    match t.decision(tx, &k, true).await? {
                        Some(StockDecision::Reserved {
                            reservation_id,
                            product_id,
                            quantity,
                            released,
                        }) => {
                            if !released {
                                let product = i64::try_from(product_id).map_err(|e| {
                                    BooksError::Corrupt(format!("{}: {e}", t.orders))
                                })?;
                                let stmt = tx.prepare_cached(&t.mark_released).await?;
                                tx.execute(&stmt, &[&k]).await?;
                                let stmt = tx.prepare_cached(&t.give_back).await?;
                                tx.execute(&stmt, &[&product, &i64::from(quantity)]).await?;
                            }
                            Ok(Some(reservation_id))
                        }
                        Some(StockDecision::OutOfStock { .. }) | None => Ok(None),
                    }
                })
            })
            .await
    }

    /// Everything, from one snapshot.
    async fn report(self: &Arc<Self>) -> Result<InventoryReport, BooksError> {
        self.books
            .transaction(|tx| {
                let t = self.clone();
                Box::pin(async move {
                    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .await?;
                    let mut stock = BTreeMap::new();
                    let rows = tx
                        .query(&format!("SELECT product_id, units FROM {}", t.stock), &[])
                        .await?;
                    for row in rows {
                        stock.insert(
                            int_column(&row, "product_id", &t.stock)?,
                            int_column(&row, "units", &t.stock)?,
                        );
                    }
                    let mut orders = BTreeMap::new();
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT order_key, product_id, quantity, reservation_id, \
                                 available, released FROM {}",
                                t.orders
                            ),
                            &[],
                        )
                        .await?;
                    for row in rows {
                        let (key, decision) = t.decision_of(&row)?;
                        orders.insert(key, decision);
                    }
                    Ok(InventoryReport { stock, orders })
                })
            })
            .await
    }
}

impl ecommerce::Inventory for Stockroom {
    async fn on_order_placed(
        &self,
        ctx: Context,
        event: OrderPlaced,
    ) -> Result<inventory::OnOrderPlacedOutcome, HandlerError> {
        Ok(
            match self
                .reserve(*ctx.key(), event.product_id, event.quantity)
                .await?
            {
                StockDecision::Reserved {
                    reservation_id,
                    product_id,
                    quantity,
                    ..
                } => inventory::OnOrderPlacedOutcome::StockReserved(StockReserved {
                    reservation_id,
                    product_id,
                    quantity,
                }),
                StockDecision::OutOfStock {
                    product_id,
                    requested,
                    available,
                } => inventory::OnOrderPlacedOutcome::OutOfStock(OutOfStock {
                    product_id,
                    requested,
                    available,
                }),
            },
        )
    }

    async fn on_payment_declined(
        &self,
        ctx: Context,
        _event: PaymentDeclined,
    ) -> Result<StockReleased, HandlerError> {
        let reservation_id = self.release(*ctx.key()).await?.ok_or_else(|| {
            HandlerError::rejected(format!(
                "order {} holds no reservation to release",
                ctx.key()
            ))
        })?;
        Ok(StockReleased { reservation_id })
    }
}

// --------------------------------------------------------------- Payment

/// The customers' credit, and what each order was charged: in memory, or
/// in PostgreSQL ([`Ledger::open`]).
#[derive(Clone)]
pub struct Ledger {
    books: LedgerBooks,
}

#[derive(Clone)]
enum LedgerBooks {
    Memory(Arc<Mutex<LedgerState>>),
    Db(Arc<LedgerTables>),
}

struct LedgerState {
    /// Credit left, by user id − 1.
    credit: Vec<Decimal>,
    decisions: HashMap<Key, PaymentDecision>,
}

/// The Payment's tables: credit by customer, and the decision per order.
struct LedgerTables {
    books: Books,
    credit: String,
    orders: String,
    select_decision: String,
    lock_credit: String,
    insert_decision: String,
    spend: String,
}

/// What the Payment decided for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentDecision {
    /// Charged.
    Charged {
        /// The customer.
        user_id: u64,
        /// The amount.
        amount: Decimal,
        /// The transaction.
        transaction_id: Uuid,
    },
    /// Not charged: the credit left did not cover the amount.
    Declined {
        /// The customer.
        user_id: u64,
        /// The amount.
        amount: Decimal,
        /// The credit the customer had left.
        available_credit: Decimal,
    },
}

/// What the Payment service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentReport {
    /// Credit left by user id.
    pub credit: BTreeMap<u64, Decimal>,
    /// The decision of every order it saw.
    pub orders: BTreeMap<Key, PaymentDecision>,
}

impl Ledger {
    /// The opening credit of `catalogue`'s customers, in memory.
    pub fn new(catalogue: &Catalogue) -> Self {
        Ledger {
            books: LedgerBooks::Memory(Arc::new(Mutex::new(LedgerState {
                credit: catalogue.customers.iter().map(|c| c.credit).collect(),
                decisions: HashMap::new(),
            }))),
        }
    }

    /// The credit kept in `books`: the tables are created if missing and
    /// given the opening credit of `catalogue` for each customer they do
    /// not hold yet, so that a restart goes on from the credit as stored.
    pub async fn open(catalogue: &Catalogue, books: &Books) -> Result<Self, BooksError> {
        check_data(books, &catalogue.options).await?;
        let credit = books.table("payment_credit")?;
        let orders = books.table("payment_orders")?;
        books
            .create_tables(&[
                format!(
                    "CREATE TABLE IF NOT EXISTS {credit} \
                     (user_id bigint PRIMARY KEY, credit numeric NOT NULL CHECK (credit >= 0))"
                ),
                // `transaction_id` null: declined, with `available`.
                format!(
                    "CREATE TABLE IF NOT EXISTS {orders} (order_key text PRIMARY KEY, \
                     user_id bigint NOT NULL, amount numeric NOT NULL, transaction_id text, \
                     available numeric)"
                ),
            ])
            .await?;
        let ids = catalogue
            .customers
            .iter()
            .map(|c| i64::try_from(c.id))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|e| BooksError::Config(format!("a customer id: {e}")))?;
        let amounts: Vec<String> = catalogue
            .customers
            .iter()
            .map(|c| c.credit.to_string())
            .collect();
        books
            .client()
            .await?
            .execute(
                &format!(
                    "INSERT INTO {credit} (user_id, credit) \
                     SELECT u, c::numeric FROM unnest($1::bigint[], $2::text[]) AS t (u, c) \
                     ON CONFLICT (user_id) DO NOTHING"
                ),
                &[&ids, &amounts],
            )
            .await?;
        Ok(Ledger {
            books: LedgerBooks::Db(Arc::new(LedgerTables {
                books: books.clone(),
                select_decision: format!(
                    "SELECT order_key, user_id, amount::text AS amount, transaction_id, \
                     available::text AS available FROM {orders} WHERE order_key = $1"
                ),
                lock_credit: format!(
                    "SELECT credit::text AS credit FROM {credit} WHERE user_id = $1 FOR UPDATE"
                ),
                insert_decision: format!(
                    "INSERT INTO {orders} (order_key, user_id, amount, transaction_id, available) \
                     VALUES ($1, $2, $3::text::numeric, $4, $5::text::numeric) \
                     ON CONFLICT (order_key) DO NOTHING"
                ),
                spend: format!(
                    "UPDATE {credit} SET credit = credit - $2::text::numeric WHERE user_id = $1"
                ),
                credit,
                orders,
            })),
        })
    }

    /// Where the credit is kept: `memory`, or the books' description.
    pub fn books(&self) -> String {
        match &self.books {
            LedgerBooks::Memory(_) => "memory".into(),
            LedgerBooks::Db(t) => t.books.description(),
        }
    }

    /// Charges `amount` to `user_id` for order `key` if their credit left
    /// covers it, or declines; an order decided already gets the same
    /// decision again and changes nothing. An error only when the books
    /// are in PostgreSQL and it does not answer.
    pub async fn charge(
        &self,
        key: Key,
        user_id: u64,
        amount: Decimal,
    ) -> Result<PaymentDecision, BooksError> {
        match &self.books {
            LedgerBooks::Memory(state) => Ok(charge_in_memory(state, key, user_id, amount)),
            LedgerBooks::Db(t) => t.charge(key, user_id, amount).await,
        }
    }

    /// What it holds (read from PostgreSQL when the books are there).
    pub async fn report(&self) -> Result<PaymentReport, BooksError> {
        match &self.books {
            LedgerBooks::Memory(state) => {
                let s = lock(state);
                Ok(PaymentReport {
                    credit: (1..).zip(s.credit.iter().copied()).collect(),
                    orders: s.decisions.iter().map(|(k, d)| (*k, d.clone())).collect(),
                })
            }
            LedgerBooks::Db(t) => t.report().await,
        }
    }
}

fn charge_in_memory(
    state: &Mutex<LedgerState>,
    key: Key,
    user_id: u64,
    amount: Decimal,
) -> PaymentDecision {
    let mut s = lock(state);
    if let Some(d) = s.decisions.get(&key) {
        return d.clone();
    }
    // Check and take under one lock: two orders of one customer cannot
    // both spend the last of the credit.
    let slot = usize::try_from(user_id.wrapping_sub(1))
        .ok()
        .and_then(|i| s.credit.get_mut(i));
    let decision = match slot {
        Some(left) if *left >= amount => {
            *left -= amount;
            PaymentDecision::Charged {
                user_id,
                amount,
                transaction_id: derived_id(&key, 2),
            }
        }
        left => PaymentDecision::Declined {
            user_id,
            amount,
            available_credit: left.map_or(Decimal::ZERO, |l| *l),
        },
    };
    s.decisions.insert(key, decision.clone());
    decision
}

impl LedgerTables {
    fn decision_of(&self, row: &Row) -> Result<(Key, PaymentDecision), BooksError> {
        let t = &self.orders;
        let key = parse_column(row, "order_key", t)?;
        let user_id = int_column(row, "user_id", t)?;
        let amount = decimal_column(row, "amount", t)?
            .ok_or_else(|| BooksError::Corrupt(format!("{t}.amount: null")))?;
        let decision = match uuid_column(row, "transaction_id", t)? {
            Some(transaction_id) => PaymentDecision::Charged {
                user_id,
                amount,
                transaction_id,
            },
            None => PaymentDecision::Declined {
                user_id,
                amount,
                available_credit: decimal_column(row, "available", t)?
                    .ok_or_else(|| BooksError::Corrupt(format!("{t}.available: null")))?,
            },
        };
        Ok((key, decision))
    }

    async fn decision(
        &self,
        tx: &Transaction<'_>,
        key: &str,
    ) -> Result<Option<PaymentDecision>, BooksError> {
        let stmt = tx.prepare_cached(&self.select_decision).await?;
        tx.query_opt(&stmt, &[&key])
            .await?
            .map(|row| self.decision_of(&row).map(|(_, d)| d))
            .transpose()
    }

    /// [`Ledger::charge`] in one transaction: the decision stored already,
    /// or the customer's row locked, the decision inserted (if no other
    /// delivery of the order got there first) and the credit spent.
    async fn charge(
        self: &Arc<Self>,
        key: Key,
        user_id: u64,
        amount: Decimal,
    ) -> Result<PaymentDecision, BooksError> {
        let Ok(user) = i64::try_from(user_id) else {
            // No such customer in the books: the answer changes nothing,
            // and is the same every time, so it needs no row.
            return Ok(PaymentDecision::Declined {
                user_id,
                amount,
                available_credit: Decimal::ZERO,
            });
        };
        let k = key.to_string();
        self.books
            .transaction(|tx| {
                let (t, k) = (self.clone(), k.clone());
                Box::pin(async move {
                    if let Some(d) = t.decision(tx, &k).await? {
                        return Ok(d);
                    }
                    let stmt = tx.prepare_cached(&t.lock_credit).await?;
                    let left = match tx.query_opt(&stmt, &[&user]).await? {
                        Some(row) => decimal_column(&row, "credit", &t.credit)?,
                        None => None,
                    };
                    let decision = match left {
                        Some(l) if l >= amount => PaymentDecision::Charged {
                            user_id,
                            amount,
                            transaction_id: derived_id(&key, 2),
                        },
                        l => PaymentDecision::Declined {
                            user_id,
                            amount,
                            available_credit: l.unwrap_or(Decimal::ZERO),
                        },
                    };
                    let (transaction, available) = match &decision {
                        PaymentDecision::Charged { transaction_id, .. } => {
                            (Some(transaction_id.to_string()), None)
                        }
                        PaymentDecision::Declined {
                            available_credit, ..
                        } => (None, Some(available_credit.to_string())),
                    };
                    let stmt = tx.prepare_cached(&t.insert_decision).await?;
                    let inserted = tx
                        .execute(
                            &stmt,
                            &[&k, &user, &amount.to_string(), &transaction, &available],
                        )
                        .await?;
                    if inserted == 0 {
                        // Another delivery of this order decided while this
                        // one waited: its decision stands, nothing is spent.
                        return t.decision(tx, &k).await?.ok_or_else(|| {
                            BooksError::Corrupt(format!("{}: order {k} vanished", t.orders))
                        });
                    }
                    if matches!(decision, PaymentDecision::Charged { .. }) {
                        let stmt = tx.prepare_cached(&t.spend).await?;
                        tx.execute(&stmt, &[&user, &amount.to_string()]).await?;
                    }
                    Ok(decision)
                })
            })
            .await
    }

    /// Everything, from one snapshot.
    async fn report(self: &Arc<Self>) -> Result<PaymentReport, BooksError> {
        self.books
            .transaction(|tx| {
                let t = self.clone();
                Box::pin(async move {
                    tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        .await?;
                    let mut credit = BTreeMap::new();
                    let rows = tx
                        .query(
                            &format!("SELECT user_id, credit::text AS credit FROM {}", t.credit),
                            &[],
                        )
                        .await?;
                    for row in rows {
                        let left = decimal_column(&row, "credit", &t.credit)?.ok_or_else(|| {
                            BooksError::Corrupt(format!("{}.credit: null", t.credit))
                        })?;
                        credit.insert(int_column(&row, "user_id", &t.credit)?, left);
                    }
                    let mut orders = BTreeMap::new();
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT order_key, user_id, amount::text AS amount, \
                                 transaction_id, available::text AS available FROM {}",
                                t.orders
                            ),
                            &[],
                        )
                        .await?;
                    for row in rows {
                        let (key, decision) = t.decision_of(&row)?;
                        orders.insert(key, decision);
                    }
                    Ok(PaymentReport { credit, orders })
                })
            })
            .await
    }
}

impl ecommerce::Payment for Ledger {
    async fn on_order_placed_and_stock_reserved(
        &self,
        ctx: Context,
        order_placed: OrderPlaced,
        _stock_reserved: StockReserved,
    ) -> Result<payment::OnOrderPlacedAndStockReservedOutcome, HandlerError> {
        let decision = self
            .charge(*ctx.key(), order_placed.user_id, order_placed.amount)
            .await?;
        Ok(match decision {
            PaymentDecision::Charged {
                amount,
                transaction_id,
                ..
            } => payment::OnOrderPlacedAndStockReservedOutcome::PaymentApproved(PaymentApproved {
                transaction_id,
                amount,
            }),
            PaymentDecision::Declined {
                amount,
                available_credit,
                ..
            } => payment::OnOrderPlacedAndStockReservedOutcome::PaymentDeclined(PaymentDeclined {
                reason: format!("credit of {available_credit} does not cover {amount}"),
                amount,
                available_credit,
            }),
        })
    }
}

// ---------------------------------------------------------------- Seller

/// Prepares a parcel for every paid order.
#[derive(Clone, Default)]
pub struct Seller {
    parcels: Arc<Mutex<HashMap<Key, Uuid>>>,
}

/// What the Seller service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SellerReport {
    /// Parcels prepared.
    pub parcels: usize,
}

impl Seller {
    /// What it holds.
    pub fn report(&self) -> SellerReport {
        SellerReport {
            parcels: lock(&self.parcels).len(),
        }
    }
}

impl ecommerce::Seller for Seller {
    async fn on_payment_approved(
        &self,
        ctx: Context,
        _event: PaymentApproved,
    ) -> Result<ParcelPrepared, HandlerError> {
        let key = *ctx.key();
        let parcel_id = *lock(&self.parcels)
            .entry(key)
            .or_insert_with(|| derived_id(&key, 3));
        Ok(ParcelPrepared { parcel_id })
    }
}

// ------------------------------------------------------------- Logistics

/// Picks a carrier for every prepared parcel.
#[derive(Clone, Default)]
pub struct Logistics {
    shipments: Arc<Mutex<HashMap<Key, ShipmentScheduled>>>,
}

/// What the Logistics service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticsReport {
    /// Shipments by carrier.
    pub carriers: BTreeMap<String, usize>,
}

impl Logistics {
    /// What it holds.
    pub fn report(&self) -> LogisticsReport {
        let mut carriers = BTreeMap::new();
        for s in lock(&self.shipments).values() {
            *carriers.entry(format!("{:?}", s.carrier)).or_default() += 1;
        }
        LogisticsReport { carriers }
    }

    /// The carrier for `quantity` units to `city`: drones carry single
    /// units in the cities they serve, trucks bulk orders, couriers the rest.
    pub fn carrier(quantity: u32, city: &str) -> Carrier {
        match (quantity, city) {
            (1, "Zurich" | "Turku" | "Graz") => Carrier::Drone,
            (q, _) if q >= 4 => Carrier::Truck,
            _ => Carrier::Courier,
        }
    }
}

impl ecommerce::Logistics for Logistics {
    async fn on_order_placed_and_parcel_prepared(
        &self,
        ctx: Context,
        order_placed: OrderPlaced,
        parcel_prepared: ParcelPrepared,
    ) -> Result<ShipmentScheduled, HandlerError> {
        let key = *ctx.key();
        let mut shipments = lock(&self.shipments);
        let shipment = shipments.entry(key).or_insert_with(|| {
            let carrier = Self::carrier(order_placed.quantity, &order_placed.ship_to.city);
            let (prefix, hours) = match carrier {
                Carrier::Drone => ("DR", 2),
                Carrier::Courier => ("CO", 24),
                Carrier::Truck => ("TR", 72),
            };
            let eta = Timestamp::now()
                .checked_add(Duration::from_hours(hours))
                .unwrap_or_else(|_| Timestamp::now());
            let parcel = parcel_prepared.parcel_id.simple().to_string();
            ShipmentScheduled {
                carrier,
                tracking_id: format!("{prefix}-{}", &parcel[..12]).to_uppercase(),
                eta,
            }
        });
        Ok(shipment.clone())
    }
}

// --------------------------------------------------------- Notifications

/// Tells customers what happened to their orders (here: counts what it
/// would tell them, once per order and news).
#[derive(Clone, Default)]
pub struct Notifications {
    told: Arc<Mutex<Told>>,
}

/// The news told per order still waiting for some (a bit per news), and
/// counts. An order told it was placed and how it ended is forgotten, so
/// that memory follows the orders in flight.
#[derive(Default)]
struct Told {
    open: HashMap<Key, u8>,
    counts: [usize; 3],
}

/// What the Notifications service holds at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationsReport {
    /// "We have your order."
    pub placed: usize,
    /// "Your order is on its way."
    pub completed: usize,
    /// "We could not serve your order."
    pub failed: usize,
}

impl Notifications {
    /// What it holds.
    pub fn report(&self) -> NotificationsReport {
        let [placed, completed, failed] = lock(&self.told).counts;
        NotificationsReport {
            placed,
            completed,
            failed,
        }
    }
}

impl ecommerce::Notifications for Notifications {
    async fn on_order_placed_or_order_completed_or_order_failed(
        &self,
        ctx: Context,
        event: notifications::OnOrderPlacedOrOrderCompletedOrOrderFailedTrigger,
    ) -> Result<(), HandlerError> {
        use notifications::OnOrderPlacedOrOrderCompletedOrOrderFailedTrigger as News;
        let news: u8 = match event {
            News::OrderPlaced(_) => 0,
            News::OrderCompleted(_) => 1,
            News::OrderFailed(_) => 2,
        };
        let mut told = lock(&self.told);
        let bits = told.open.entry(*ctx.key()).or_default();
        let bit = 1u8 << news;
        if *bits & bit == 0 {
            *bits |= bit;
            // Placed, and completed or failed: nothing more to tell.
            let ended = *bits & 1 != 0 && *bits & 0b110 != 0;
            if ended {
                told.open.remove(ctx.key());
            }
            told.counts[usize::from(news)] += 1;
            tracing::debug!(order = %ctx.key(), news, "customer notified");
        }
        Ok(())
    }
}

// ------------------------------------------------------------ all of them

/// Every participant of the shop, over one catalogue.
#[derive(Clone)]
pub struct Shop {
    /// The data.
    pub catalogue: Arc<Catalogue>,
    /// Orders.
    pub orders: OrderDesk,
    /// Inventory.
    pub inventory: Stockroom,
    /// Payment.
    pub payment: Ledger,
    /// Seller.
    pub seller: Seller,
    /// Logistics.
    pub logistics: Logistics,
    /// Notifications.
    pub notifications: Notifications,
}

/// One participant's state at the end, as a service prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FinalState {
    /// Orders.
    Orders(OrdersReport),
    /// Inventory.
    Inventory(InventoryReport),
    /// Payment.
    Payment(PaymentReport),
    /// Seller.
    Seller(SellerReport),
    /// Logistics.
    Logistics(LogisticsReport),
    /// Notifications.
    Notifications(NotificationsReport),
}

impl Shop {
    /// The shop opening with `catalogue`, every book in memory.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Shop {
            orders: OrderDesk::new(catalogue.clone()),
            inventory: Stockroom::new(&catalogue),
            payment: Ledger::new(&catalogue),
            seller: Seller::default(),
            logistics: Logistics::default(),
            notifications: Notifications::default(),
            catalogue,
        }
    }

    /// The shop of `catalogue` with the stock and the credit in `books`
    /// (the rest in memory), for `participant` (the books of the others
    /// are not opened) or for all of them (`None`); without books, as
    /// [`Shop::new`].
    pub async fn open(
        catalogue: Arc<Catalogue>,
        books: Option<&Books>,
        participant: Option<&str>,
    ) -> Result<Self, BooksError> {
        let mut shop = Shop::new(catalogue.clone());
        if let Some(books) = books {
            if matches!(participant, None | Some("Inventory")) {
                shop.inventory = Stockroom::open(&catalogue, books).await?;
            }
            if matches!(participant, None | Some("Payment")) {
                shop.payment = Ledger::open(&catalogue, books).await?;
            }
        }
        Ok(shop)
    }

    /// Where `participant` (or, for `None`, every participant) keeps its
    /// books, for the line a process prints at start.
    pub fn books(&self, participant: Option<&str>) -> String {
        match participant {
            Some("Inventory") => self.inventory.books(),
            Some("Payment") => self.payment.books(),
            Some(_) => "memory".into(),
            None => {
                let (stock, credit) = (self.inventory.books(), self.payment.books());
                if stock == "memory" && credit == "memory" {
                    stock
                } else {
                    format!("{stock} for stock and credit, memory for the rest")
                }
            }
        }
    }

    /// Starts `participant` (one of [`PARTICIPANTS`]), or every one of
    /// them for `None`.
    pub async fn start(
        &self,
        broker: SharedBroker,
        stores: Stores,
        options: ServiceOptions,
        participant: Option<&str>,
    ) -> Result<Vec<ServiceHandle>, choreo_runtime::service::ServiceError> {
        let Some(name) = participant else {
            return ecommerce::start_all(
                broker,
                stores,
                options,
                self.orders.clone(),
                self.inventory.clone(),
                self.payment.clone(),
                self.seller.clone(),
                self.logistics.clone(),
                self.notifications.clone(),
            )
            .await;
        };
        let definition = match name {
            "Orders" => ecommerce::orders::definition(self.orders.clone()),
            "Inventory" => ecommerce::inventory::definition(self.inventory.clone()),
            "Payment" => ecommerce::payment::definition(self.payment.clone()),
            "Seller" => ecommerce::seller::definition(self.seller.clone()),
            "Logistics" => ecommerce::logistics::definition(self.logistics.clone()),
            _ => ecommerce::notifications::definition(self.notifications.clone()),
        };
        Ok(vec![definition.start(broker, stores, options).await?])
    }

    /// The final state of `participant` (the stock and the credit as
    /// stored, when they are in PostgreSQL).
    pub async fn final_state(&self, participant: &str) -> Result<FinalState, BooksError> {
        Ok(match participant {
            "Orders" => FinalState::Orders(self.orders.report()),
            "Inventory" => FinalState::Inventory(self.inventory.report().await?),
            "Payment" => FinalState::Payment(self.payment.report().await?),
            "Seller" => FinalState::Seller(self.seller.report()),
            "Logistics" => FinalState::Logistics(self.logistics.report()),
            _ => FinalState::Notifications(self.notifications.report()),
        })
    }
}
