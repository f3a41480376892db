// `choreo!(file = …)` on the ecommerce example: a participant implemented
// against the generated trait, started on the memory broker, and a command
// sent to it through the typed `Commands`.
use choreo_runtime::service::{HandlerError, ServiceOptions, Stores};
use choreo_runtime::types::{Decimal, Uuid};
use std::time::Duration;
use tokio::sync::mpsc;

choreo_runtime::choreo!(file = "specs/ecommerce.choreo");

use ecommerce::*;

/// Prices each order and tells the test what it priced.
struct Pricing(mpsc::UnboundedSender<(Key, OrderPlaced)>);

impl Orders for Pricing {
    async fn on_place_order(&self, ctx: Context, order: PlaceOrder) -> Result<OrderPlaced, HandlerError> {
        let placed = OrderPlaced {
            user_id: order.user_id,
            product_id: order.product_id,
            quantity: order.quantity,
            amount: Decimal::new(1250 * i64::from(order.quantity), 2),
            ship_to: order.ship_to,
        };
        let _ = self.0.send((*ctx.key(), placed.clone()));
        Ok(placed)
    }

    async fn on_shipment_scheduled(&self, _ctx: Context, _event: ShipmentScheduled) -> Result<OrderCompleted, HandlerError> {
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
        Ok(OrderFailed { reason: reason.into() })
    }
}

#[tokio::main]
async fn main() {
    let broker = choreo_runtime::connect("memory://").await.unwrap();
    let (priced, mut seen) = mpsc::unbounded_channel();
    let service = orders::definition(Pricing(priced))
        .start(broker.clone(), Stores::memory(), ServiceOptions::default())
        .await
        .unwrap();

    let order = Uuid::new_v4();
    let ship_to = Address { street: "1 Rue".into(), city: "Lyon".into(), zip: "69001".into() };
    Commands::new(broker)
        .place_order(&order, PlaceOrder { user_id: 1, product_id: 7, quantity: 2, ship_to })
        .await
        .unwrap();

    let (key, placed) = tokio::time::timeout(Duration::from_secs(10), seen.recv()).await.unwrap().unwrap();
    assert_eq!(key, order);
    assert_eq!(placed.amount, Decimal::new(2500, 2));
    assert_eq!(<PlaceOrder as choreo_runtime::Message>::TYPE, "Ecommerce.v1.PlaceOrder");
    service.shutdown().await.unwrap();
}
