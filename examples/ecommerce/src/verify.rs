//! What must hold at the end of a run, checked against the data: every
//! order settled; no customer charged beyond their credit and every charge
//! an order that completed; every decline beyond the credit left; stock
//! never negative, taken only by completed orders and given back for the
//! declined ones; every customer told once per news.

use crate::data::Catalogue;
use crate::ecommerce::{Key, PlaceOrder};
use crate::participants::{
    InventoryReport, NotificationsReport, OrdersReport, PaymentDecision, PaymentReport, Shop,
    StockDecision,
};
use choreo_runtime::types::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One order a run placed, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The instance key the ingress gave it.
    pub key: Key,
    /// What was posted.
    pub order: PlaceOrder,
    /// What it costs by the catalogue.
    pub amount: Decimal,
    /// Its terminal event (`OrderCompleted`, `OrderFailed`), if it settled.
    pub outcome: Option<String>,
}

impl OrderRecord {
    /// Whether it completed.
    pub fn completed(&self) -> bool {
        self.outcome.as_deref() == Some("OrderCompleted")
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        self.outcome.as_deref() == Some("OrderFailed")
    }
}

/// The participants' final states a verification looks at; the ones not
/// given are not checked.
#[derive(Debug, Clone, Default)]
pub struct Finals<'a> {
    /// Inventory's.
    pub inventory: Option<&'a InventoryReport>,
    /// Payment's.
    pub payment: Option<&'a PaymentReport>,
    /// Orders'.
    pub orders: Option<&'a OrdersReport>,
    /// Notifications'.
    pub notifications: Option<&'a NotificationsReport>,
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// What holds, one line per subject.
    pub lines: Vec<String>,
    /// What does not hold.
    pub problems: Vec<String>,
    /// Orders declined for credit.
    pub declined: usize,
    /// Orders failed for stock.
    pub out_of_stock: usize,
}

impl Verdict {
    /// Whether everything holds.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// [`verify`] against the final state of every participant of `shop`, a
/// shop that ran in this process (its stock and credit as stored, when
/// they are in PostgreSQL; books that cannot be read are a problem).
pub async fn verify_shop(shop: &Shop, records: &[OrderRecord]) -> Verdict {
    let (inventory, payment) = match (shop.inventory.report().await, shop.payment.report().await) {
        (Ok(i), Ok(p)) => (i, p),
        (Err(e), _) | (_, Err(e)) => {
            return Verdict {
                problems: vec![format!("cannot read the books: {e}")],
                ..Verdict::default()
            }
        }
    };
    let (orders, notifications) = (shop.orders.report(), shop.notifications.report());
    verify(
        &shop.catalogue,
        records,
        &Finals {
            inventory: Some(&inventory),
            payment: Some(&payment),
            orders: Some(&orders),
            notifications: Some(&notifications),
        },
    )
}

/// Checks `records` (every order of the run) and the participants' final
/// states against `catalogue`.
pub fn verify(catalogue: &Catalogue, records: &[OrderRecord], finals: &Finals<'_>) -> Verdict {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut problem = |p: String| {
        // A broken run can break every order; the first ones say enough.
        if problems.len() < 20 {
            problems.push(p);
        }
    };
    let completed = records.iter().filter(|r| r.completed()).count();
    let failed = records.iter().filter(|r| r.failed()).count();
    let unsettled = records.len() - completed - failed;
    if unsettled > 0 {
        problem(format!("{unsettled} orders did not settle"));
    }
    for r in records {
        if catalogue.price(r.order.product_id, r.order.quantity) != Some(r.amount) {
            problem(format!(
                "order {}: amount {} is not the catalogue's",
                r.key, r.amount
            ));
        }
    }
    let keys: HashSet<Key> = records.iter().map(|r| r.key).collect();

    let mut declined = 0;
    let mut out_of_stock = 0;
    if let Some(payment) = finals.payment {
        let mut charged: BTreeMap<u64, Decimal> = BTreeMap::new();
        for r in records {
            let decision = payment.orders.get(&r.key);
            match (r.outcome.as_deref(), decision) {
                (
                    Some("OrderCompleted"),
                    Some(PaymentDecision::Charged {
                        user_id, amount, ..
                    }),
                ) => {
                    if *user_id != r.order.user_id || *amount != r.amount {
                        problem(format!(
                            "order {}: charged {amount} to customer {user_id}, not {} to {}",
                            r.key, r.amount, r.order.user_id
                        ));
                    }
                    *charged.entry(r.order.user_id).or_default() += r.amount;
                }
                (Some("OrderCompleted"), d) => {
                    problem(format!("order {} completed without a charge: {d:?}", r.key))
                }
                (_, Some(PaymentDecision::Charged { amount, .. })) => problem(format!(
                    "order {} did not complete ({:?}) but was charged {amount}",
                    r.key, r.outcome
                )),
                (
                    _,
                    Some(PaymentDecision::Declined {
                        amount,
                        available_credit,
                        ..
                    }),
                ) => {
                    declined += 1;
                    if amount <= available_credit {
                        problem(format!(
                            "order {}: declined {amount} with {available_credit} credit left",
                            r.key
                        ));
                    }
                }
                (_, None) => {}
            }
        }
        if let Some(k) = payment.orders.keys().find(|k| !keys.contains(k)) {
            problem(format!("payment decided for {k}, which no one ordered"));
        }
        let mut total = Decimal::ZERO;
        for c in &catalogue.customers {
            let left = payment.credit.get(&c.id).copied().unwrap_or_default();
            let spent = charged.get(&c.id).copied().unwrap_or_default();
            total += spent;
            if left < Decimal::ZERO || spent > c.credit || c.credit - left != spent {
                problem(format!(
                    "customer {}: credit {}, charged {spent} for completed orders, {left} left",
                    c.id, c.credit
                ));
            }
        }
        lines.push(format!(
            "credit: {completed} orders charged {total} in all, each customer exactly the sum of \
             their completed orders and never beyond their credit; {declined} orders declined, \
             each for more than the credit left"
        ));
    }

    if let Some(inventory) = finals.inventory {
        let mut taken: BTreeMap<u64, u64> = BTreeMap::new();
        let mut released = 0u64;
        for r in records {
            match (r.outcome.as_deref(), inventory.orders.get(&r.key)) {
                (
                    Some("OrderCompleted"),
                    Some(StockDecision::Reserved {
                        quantity,
                        released: false,
                        ..
                    }),
                ) if *quantity == r.order.quantity => {
                    *taken.entry(r.order.product_id).or_default() += u64::from(*quantity);
                }
                (Some("OrderCompleted"), d) => problem(format!(
                    "order {} completed without holding {} units: {d:?}",
                    r.key, r.order.quantity
                )),
                (
                    Some("OrderFailed"),
                    Some(StockDecision::Reserved {
                        released: given_back,
                        ..
                    }),
                ) => {
                    if *given_back {
                        released += 1;
                    } else {
                        problem(format!("order {} failed but still holds its stock", r.key));
                    }
                    if !matches!(
                        finals.payment.and_then(|p| p.orders.get(&r.key)),
                        None | Some(PaymentDecision::Declined { .. })
                    ) {
                        problem(format!("order {}: stock released but not declined", r.key));
                    }
                }
                (
                    Some("OrderFailed"),
                    Some(StockDecision::OutOfStock {
                        requested,
                        available,
                        ..
                    }),
                ) => {
                    out_of_stock += 1;
                    if requested <= available {
                        problem(format!(
                            "order {}: out of stock for {requested} with {available} left",
                            r.key
                        ));
                    }
                }
                (outcome, d) => {
                    if outcome.is_some() {
                        problem(format!(
                            "order {} ended {outcome:?} with stock {d:?}",
                            r.key
                        ));
                    }
                }
            }
        }
        if let Some(k) = inventory.orders.keys().find(|k| !keys.contains(k)) {
            problem(format!("inventory decided for {k}, which no one ordered"));
        }
        for p in &catalogue.products {
            let left = inventory.stock.get(&p.id).copied().unwrap_or_default();
            let took = taken.get(&p.id).copied().unwrap_or_default();
            if u64::from(p.stock) < took || u64::from(left) != u64::from(p.stock) - took {
                problem(format!(
                    "product {}: {} in stock at opening, {took} sold, but {left} left",
                    p.id, p.stock
                ));
            }
        }
        let sold: u64 = taken.values().sum();
        let empty = inventory.stock.values().filter(|s| **s == 0).count();
        lines.push(format!(
            "stock: {sold} units sold, each product's stock exactly its opening stock less its \
             completed orders ({empty} products sold out); {released} reservations given back \
             for declined orders; {out_of_stock} orders out of stock"
        ));
    }

    if let Some(n) = finals.notifications {
        let want = (records.len(), completed, failed);
        if (n.placed, n.completed, n.failed) != want {
            problem(format!(
                "notifications: told {} placed, {} completed, {} failed; expected {want:?}",
                n.placed, n.completed, n.failed
            ));
        } else {
            lines.push(format!(
                "notifications: every customer told once per news ({} messages)",
                n.placed + n.completed + n.failed
            ));
        }
    }
    if let Some(o) = finals.orders {
        if (o.placed, o.completed, o.failed) != (records.len(), completed, failed) {
            problem(format!(
                "orders: {} placed, {} completed, {} failed recorded; the run saw {}, {completed}, {failed}",
                o.placed,
                o.completed,
                o.failed,
                records.len()
            ));
        }
    }
    Verdict {
        lines,
        problems,
        declined,
        out_of_stock,
    }
}
