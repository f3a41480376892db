// `on OrderPlaced -> StockReserved | OutOfStock`: there is no way to say
// `PaymentApproved` in its outcome type.
use choreo_runtime::service::HandlerError;
use choreo_tests::generated::ecommerce::*;

struct Stock;

impl Inventory for Stock {
    async fn on_order_placed(&self, _ctx: Context, _event: OrderPlaced) -> Result<inventory::OnOrderPlacedOutcome, HandlerError> {
        Ok(inventory::OnOrderPlacedOutcome::PaymentApproved(PaymentApproved {
            transaction_id: choreo_runtime::types::Uuid::nil(),
            amount: choreo_runtime::types::Decimal::ZERO,
        }))
    }
    async fn on_payment_declined(&self, _ctx: Context, _event: PaymentDeclined) -> Result<StockReleased, HandlerError> {
        Ok(StockReleased { reservation_id: choreo_runtime::types::Uuid::nil() })
    }
}

fn main() {}
