//! How far each instance has got: a static topology, the notices services
//! publish, and a tracker that puts them together.

pub mod notice;
