// The ecommerce example written inline, as it stands in its file (doc
// comments, newline- and comma-separated fields, attributes, durations):
// the Inventory participant run alone in its test fixture.
use choreo_runtime::service::HandlerError;
use choreo_runtime::types::{Decimal, Uuid};

choreo_runtime::choreo! {
    /// An online shop whose order process no service coordinates.
    ///
    /// An order service
    /// that takes orders over HTTP and payment and shipping services reacting to
    /// it; a payment saga that approves or declines against the
    /// customer's credit and completes or fails the order; and seller,
    /// logistics and customer notifications all reacting to the placed order
    /// instead of being called by it.
    choreography Ecommerce {
        version "1.0.0"

        /// Every event of one order carries its id.
        key order_id: uuid

        /// Where an order is shipped.
        type Address {
            street: string
            city: string
            zip: string
        }

        /// Who carries the parcel.
        enum Carrier { Drone, Truck, Courier }

        /// A customer orders a quantity of one product.
        @http(POST "/orders")
        command PlaceOrder {
            user_id: u64
            product_id: u64
            quantity: u32
            ship_to: Address
        }

        /// The order was accepted and priced.
        event OrderPlaced {
            user_id: u64
            product_id: u64
            quantity: u32
            /// Unit price times quantity.
            amount: decimal
            ship_to: Address
        }

        /// Stock for the order is set aside.
        event StockReserved { reservation_id: uuid, product_id: u64, quantity: u32 }

        /// Not enough stock: the order cannot be served.
        event OutOfStock { product_id: u64, requested: u32, available: u32 }

        /// The customer's credit covered the amount, which was charged.
        event PaymentApproved { transaction_id: uuid, amount: decimal }

        /// The customer's credit did not cover the amount.
        event PaymentDeclined { amount: decimal, available_credit: decimal, reason: string }

        /// The reservation was given back to stock.
        event StockReleased { reservation_id: uuid }

        /// The seller has the parcel ready for pick-up.
        event ParcelPrepared { parcel_id: uuid }

        /// A delivery partner picked the parcel up.
        event ShipmentScheduled { carrier: Carrier, tracking_id: string, eta: timestamp }

        /// The order is paid and on its way.
        @terminal
        event OrderCompleted { }

        /// The order could not be served; nothing is charged or held for it.
        @terminal(failure)
        event OrderFailed { reason: string }

        /// Takes orders and records how each one ends.
        participant Orders {
            /// Prices the order.
            on PlaceOrder -> OrderPlaced
            on ShipmentScheduled -> OrderCompleted
            on OutOfStock | StockReleased -> OrderFailed
        }

        /// Holds the stock of every product.
        participant Inventory {
            on OrderPlaced -> StockReserved | OutOfStock
            /// Gives the stock back when the payment fails.
            on PaymentDeclined -> StockReleased compensates StockReserved
        }

        /// Charges the customer's credit.
        participant Payment {
            /// Needs the amount of the order and its reserved stock.
            @retry(max = 5, backoff = 200ms)
            @timeout(10s)
            on OrderPlaced & StockReserved -> PaymentApproved | PaymentDeclined
        }

        /// Keeps the shipment ready once the order is paid.
        participant Seller {
            on PaymentApproved -> ParcelPrepared
        }

        /// Assigns a delivery partner (the logistics service).
        participant Logistics {
            @retry(max = 3, backoff = 1s)
            on OrderPlaced & ParcelPrepared -> ShipmentScheduled
        }

        /// Tells the customer what happened to their order.
        participant Notifications {
            on OrderPlaced | OrderCompleted | OrderFailed
        }
    }
}

use ecommerce::*;

/// Five units of stock, whatever the product.
struct Stock;

impl Inventory for Stock {
    async fn on_order_placed(&self, _ctx: Context, order: OrderPlaced) -> Result<inventory::OnOrderPlacedOutcome, HandlerError> {
        Ok(if order.quantity <= 5 {
            inventory::OnOrderPlacedOutcome::StockReserved(StockReserved {
                reservation_id: Uuid::new_v4(),
                product_id: order.product_id,
                quantity: order.quantity,
            })
        } else {
            inventory::OnOrderPlacedOutcome::OutOfStock(OutOfStock {
                product_id: order.product_id,
                requested: order.quantity,
                available: 5,
            })
        })
    }

    async fn on_payment_declined(&self, _ctx: Context, _event: PaymentDeclined) -> Result<StockReleased, HandlerError> {
        Ok(StockReleased { reservation_id: Uuid::nil() })
    }
}

fn placed(quantity: u32) -> OrderPlaced {
    OrderPlaced {
        user_id: 1,
        product_id: 7,
        quantity,
        amount: Decimal::new(1000, 2),
        ship_to: Address { street: "1 Rue".into(), city: "Lyon".into(), zip: "69001".into() },
    }
}

#[tokio::main]
async fn main() {
    let mut inventory = inventory::fixture(Stock).await.unwrap();
    let reserved: StockReserved = inventory.deliver(&Uuid::new_v4(), placed(3)).await.unwrap().one().unwrap();
    assert_eq!(reserved.quantity, 3);
    let out: OutOfStock = inventory.deliver(&Uuid::new_v4(), placed(9)).await.unwrap().one().unwrap();
    assert_eq!(out.requested, 9);
    inventory.shutdown().await;
    assert_eq!(Carrier::Courier, Carrier::Courier);
    assert_eq!(CHOREOGRAPHY, "Ecommerce");
    assert_eq!(VERSION, "1.0.0");
}
