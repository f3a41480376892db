// A bare path is not an argument `choreo!` knows: it says what it takes.
choreo_runtime::choreo!("specs/shop.choreo");

fn main() {}
