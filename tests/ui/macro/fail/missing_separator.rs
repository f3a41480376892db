// Fields may be separated by newlines or commas, not by a space alone: the
// layout of the tokens counts inline as it does in a file.
choreo_runtime::choreo! {
    choreography Shop {
        key order_id: uuid
        command PlaceOrder {
            user_id: u64
            quantity: u32
        }
        event Priced { amount: decimal currency: string }
        @terminal event OrderPlaced { }
        participant Orders {
            on PlaceOrder -> Priced
            on Priced -> OrderPlaced
        }
    }
}

fn main() {}
