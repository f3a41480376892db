// A spec with warnings only (W0301: `Note` is never used; W0300: `lower`
// is not UpperCamelCase) expands: warnings do not fail the build.
choreo_runtime::choreo! {
    choreography Shop {
        key order_id: uuid
        type Note { text: string }
        command lower { }
        @terminal event Done { }
        participant Orders { on lower -> Done }
    }
}

fn main() {
    let _ = shop::lower {};
    let _ = shop::Note { text: String::new() };
}
