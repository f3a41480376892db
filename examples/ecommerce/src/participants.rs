//! The six participants, with the shop's logic. Each keeps its state
//! behind one mutex and records its decision per order, so that whatever
//! reaches it twice for one order — a duplicate the inbox no longer
//! remembers, a retry after a crash, a command sent twice — gets the first
//! decision again instead of a second charge or reservation.

use crate::data::Catalogue;
use crate::ecommerce::{
    self, inventory, notifications, orders, payment, Carrier, Context, Key, OrderCompleted,
    OrderFailed, OrderPlaced, OutOfStock, ParcelPrepared, PaymentApproved, PaymentDeclined,
    PlaceOrder, ShipmentScheduled, StockReleased, StockReserved,
};
use choreo_runtime::service::{HandlerError, ServiceHandle, ServiceOptions, Stores};
use choreo_runtime::types::{Decimal, Duration, Timestamp, Uuid};
use choreo_runtime::SharedBroker;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
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
    m.lock().unwrap_or_else(|p| p.into_inner())
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

#[derive(Default)]
struct OrdersState {
    placed: HashMap<Key, OrderPlaced>,
    completed: HashSet<Key>,
    failed: HashMap<Key, String>,
}

/// What the Orders service holds at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersReport {
    /// Orders placed (priced).
    pub placed: usize,
    /// Orders completed.
    pub completed: usize,
    /// Orders failed, with the reason.
    pub failed: BTreeMap<Key, String>,
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
            placed: s.placed.len(),
            completed: s.completed.len(),
            failed: s.failed.iter().map(|(k, r)| (*k, r.clone())).collect(),
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
        let placed = s.placed.entry(*ctx.key()).or_insert_with(|| OrderPlaced {
            user_id: event.user_id,
            product_id: event.product_id,
            quantity: event.quantity,
            amount,
            ship_to: event.ship_to,
        });
        Ok(placed.clone())
    }

    async fn on_shipment_scheduled(
        &self,
        ctx: Context,
        _event: ShipmentScheduled,
    ) -> Result<OrderCompleted, HandlerError> {
        lock(&self.state).completed.insert(*ctx.key());
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
        let reason = s.failed.entry(*ctx.key()).or_insert(reason).clone();
        Ok(OrderFailed { reason })
    }
}

// ------------------------------------------------------------- Inventory

/// The stock of every product, and what each order holds of it.
#[derive(Clone)]
pub struct Stockroom {
    state: Arc<Mutex<StockState>>,
}

struct StockState {
    /// Units on the shelf, by product id − 1.
    stock: Vec<u32>,
    decisions: HashMap<Key, StockDecision>,
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
    /// The opening stock of `catalogue`.
    pub fn new(catalogue: &Catalogue) -> Self {
        Stockroom {
            state: Arc::new(Mutex::new(StockState {
                stock: catalogue.products.iter().map(|p| p.stock).collect(),
                decisions: HashMap::new(),
            })),
        }
    }

    /// Reserves `quantity` units of `product_id` for order `key` if there
    /// are that many, or decides it is out of stock; an order decided
    /// already gets the same decision again and changes nothing.
    pub fn reserve(&self, key: Key, product_id: u64, quantity: u32) -> StockDecision {
        let mut s = lock(&self.state);
        if let Some(d) = s.decisions.get(&key) {
            return d.clone();
        }
        // Check and take under one lock: two orders of the last units
        // cannot both get them.
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

    /// Gives back what order `key` reserved, once however often it is
    /// asked; the reservation, or `None` if the order holds none.
    pub fn release(&self, key: Key) -> Option<Uuid> {
        let mut s = lock(&self.state);
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

    /// What it holds.
    pub fn report(&self) -> InventoryReport {
        let s = lock(&self.state);
        InventoryReport {
            stock: (1..).zip(s.stock.iter().copied()).collect(),
            orders: s.decisions.iter().map(|(k, d)| (*k, d.clone())).collect(),
        }
    }
}

impl ecommerce::Inventory for Stockroom {
    async fn on_order_placed(
        &self,
        ctx: Context,
        event: OrderPlaced,
    ) -> Result<inventory::OnOrderPlacedOutcome, HandlerError> {
        Ok(
            match self.reserve(*ctx.key(), event.product_id, event.quantity) {
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
        let reservation_id = self.release(*ctx.key()).ok_or_else(|| {
            HandlerError::rejected(format!(
                "order {} holds no reservation to release",
                ctx.key()
            ))
        })?;
        Ok(StockReleased { reservation_id })
    }
}

// --------------------------------------------------------------- Payment

/// The customers' credit, and what each order was charged.
#[derive(Clone)]
pub struct Ledger {
    state: Arc<Mutex<LedgerState>>,
}

struct LedgerState {
    /// Credit left, by user id − 1.
    credit: Vec<Decimal>,
    decisions: HashMap<Key, PaymentDecision>,
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
    /// The opening credit of `catalogue`'s customers.
    pub fn new(catalogue: &Catalogue) -> Self {
        Ledger {
            state: Arc::new(Mutex::new(LedgerState {
                credit: catalogue.customers.iter().map(|c| c.credit).collect(),
                decisions: HashMap::new(),
            })),
        }
    }

    /// Charges `amount` to `user_id` for order `key` if their credit left
    /// covers it, or declines; an order decided already gets the same
    /// decision again and changes nothing.
    pub fn charge(&self, key: Key, user_id: u64, amount: Decimal) -> PaymentDecision {
        let mut s = lock(&self.state);
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

    /// What it holds.
    pub fn report(&self) -> PaymentReport {
        let s = lock(&self.state);
        PaymentReport {
            credit: (1..).zip(s.credit.iter().copied()).collect(),
            orders: s.decisions.iter().map(|(k, d)| (*k, d.clone())).collect(),
        }
    }
}

impl ecommerce::Payment for Ledger {
    async fn on_order_placed_and_stock_reserved(
        &self,
        ctx: Context,
        order_placed: OrderPlaced,
        _stock_reserved: StockReserved,
    ) -> Result<payment::OnOrderPlacedAndStockReservedOutcome, HandlerError> {
        let decision = self.charge(*ctx.key(), order_placed.user_id, order_placed.amount);
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
    told: Arc<Mutex<HashSet<(Key, u8)>>>,
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
        let mut r = NotificationsReport {
            placed: 0,
            completed: 0,
            failed: 0,
        };
        for (_, news) in lock(&self.told).iter() {
            match news {
                0 => r.placed += 1,
                1 => r.completed += 1,
                _ => r.failed += 1,
            }
        }
        r
    }
}

impl ecommerce::Notifications for Notifications {
    async fn on_order_placed_or_order_completed_or_order_failed(
        &self,
        ctx: Context,
        event: notifications::OnOrderPlacedOrOrderCompletedOrOrderFailedTrigger,
    ) -> Result<(), HandlerError> {
        use notifications::OnOrderPlacedOrOrderCompletedOrOrderFailedTrigger as News;
        let news = match event {
            News::OrderPlaced(_) => 0,
            News::OrderCompleted(_) => 1,
            News::OrderFailed(_) => 2,
        };
        if lock(&self.told).insert((*ctx.key(), news)) {
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
    /// The shop opening with `catalogue`.
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

    /// The final state of `participant`.
    pub fn final_state(&self, participant: &str) -> FinalState {
        match participant {
            "Orders" => FinalState::Orders(self.orders.report()),
            "Inventory" => FinalState::Inventory(self.inventory.report()),
            "Payment" => FinalState::Payment(self.payment.report()),
            "Seller" => FinalState::Seller(self.seller.report()),
            "Logistics" => FinalState::Logistics(self.logistics.report()),
            _ => FinalState::Notifications(self.notifications.report()),
        }
    }
}
