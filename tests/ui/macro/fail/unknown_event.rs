// An outcome that names no event: E0101 at the misspelt name, with the
// closest known name as help.
choreo_runtime::choreo! {
    choreography Shop {
        key order_id: uuid
        command PlaceOrder { quantity: u32 }
        @terminal event OrderPlaced { }
        participant Orders {
            on PlaceOrder -> OrderPlacd
        }
    }
}

fn main() {}
