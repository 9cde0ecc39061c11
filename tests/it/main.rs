//! ctix integration tests: one binary, one module per feature.

mod api;
mod attacks;
mod backup;
mod cli;
mod crash;
mod daemon;
mod dashboard;
mod demo;
mod drill;
mod federation;
mod interop;
mod lab;
mod log;
mod model;
mod ops;
mod sim;
mod store;
mod support;
mod taxii;
mod vectors;
