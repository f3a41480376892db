// `OrderShipped` is emitted and consumed by nobody: E0201 at its
// declaration, with the place that emits it by line and column.
choreo_runtime::choreo! {
    choreography Shop {
        key order_id: uuid
        command PlaceOrder { }
        @terminal event OrderPlaced { }
        event OrderShipped { }
        participant Orders {
            on PlaceOrder -> OrderPlaced + OrderShipped
        }
    }
}

fn main() {}
