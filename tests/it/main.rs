//! ctix integration tests: one binary, one module per feature.

mod api;
mod cli;
mod daemon;
mod demo;
mod drill;
mod federation;
mod interop;
mod log;
mod model;
mod sim;
mod store;
mod support;
mod taxii;
mod vectors;
