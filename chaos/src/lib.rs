//! `choreo-chaos`: fault campaigns against the example choreographies.
//!
//! A campaign starts its own broker servers ([`servers`]) behind loopback
//! proxies it can turn bad ([`net`]), runs an example as one process per
//! participant and replica ([`fleet`]), drives instances through the
//! example's HTTP ingress, and meanwhile injects faults from a seed
//! ([`faults`]): participant processes killed and paused, servers killed
//! and restarted, the network slowed, reset and cut, and events published
//! again late ([`duplicates`]). At the end it checks every instance and
//! the participants' books ([`example`]) and writes a report
//! ([`report`]) ending in one line:
//!
//! ```text
//! chaos: settled 600/600, lost 0, double effects 0, dead letters 0
//! ```

pub mod campaign;
pub mod duplicates;
pub mod example;
pub mod faults;
pub mod fleet;
pub mod net;
pub mod report;
pub mod retries;
pub mod servers;
pub mod soak;

pub use campaign::{run, CampaignError, Options};
pub use report::Report;
