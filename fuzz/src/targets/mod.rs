//! The targets. Peer input: `frame`, `entry`, `header`, `body`, `sync`. User input: `api_json`,
//! `values`, `scenario`, `config`, `roster`, `stix`, `misp`.

mod api;
mod files;
mod interop;
mod sync;
mod wire;

pub use api::{api_json, values, view_of};
pub use files::{config, roster, scenario};
pub use interop::{misp, stix};
pub use sync::sync;
pub use wire::{body, entry, frame, header};
