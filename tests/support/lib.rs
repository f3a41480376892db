//! Support code shared by the cross-crate tests, and the modules generated
//! from the test specs by `build.rs`.

pub mod build_crates;

/// The ecommerce example, generated.
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/ecommerce.rs"));
    include!(concat!(env!("OUT_DIR"), "/drone_delivery.rs"));
    include!(concat!(env!("OUT_DIR"), "/self_.rs"));
    include!(concat!(env!("OUT_DIR"), "/tickets.rs"));
}
