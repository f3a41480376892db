// `on PaymentApproved -> ParcelPrepared`: returning another event is a type error.
use choreo_runtime::service::HandlerError;
use choreo_tests::generated::ecommerce::*;

struct Seller;

impl choreo_tests::generated::ecommerce::Seller for Seller {
    async fn on_payment_approved(&self, _ctx: Context, _event: PaymentApproved) -> Result<ParcelPrepared, HandlerError> {
        Ok(OrderCompleted {})
    }
}

fn main() {}
