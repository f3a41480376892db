// `=>` where the spec wants `->`: E0001 at the token.
choreo_runtime::choreo! {
    choreography Shop {
        key order_id: uuid
        command PlaceOrder { }
        @terminal event OrderPlaced { }
        participant Orders {
            on PlaceOrder => OrderPlaced
        }
    }
}

fn main() {}
