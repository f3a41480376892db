// Orders has three reactions; leaving one out does not compile.
use choreo_runtime::service::HandlerError;
use choreo_tests::generated::ecommerce::*;

struct Orders;

impl choreo_tests::generated::ecommerce::Orders for Orders {
    async fn on_place_order(&self, _ctx: Context, _c: PlaceOrder) -> Result<OrderPlaced, HandlerError> {
        unimplemented!()
    }
    async fn on_shipment_scheduled(&self, _ctx: Context, _e: ShipmentScheduled) -> Result<OrderCompleted, HandlerError> {
        unimplemented!()
    }
}

fn main() {}
