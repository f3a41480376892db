// Gateway and Retrier pass a charge back and forth forever: E0200, with the
// other reaction of the cycle named by its line and column.
choreo_runtime::choreo! {
    choreography Payments {
        key payment_id: uuid
        command Charge { amount: decimal }
        event ChargeRequested { amount: decimal }
        event ChargeFailed { }
        @terminal event Charged { }
        participant Front {
            on Charge -> ChargeRequested
        }
        participant Gateway {
            on ChargeRequested -> Charged | ChargeFailed
        }
        participant Retrier {
            on ChargeFailed -> ChargeRequested
        }
    }
}

fn main() {}
