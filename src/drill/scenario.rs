//! Drill scenarios: TOML files parsed and checked with line-numbered errors.
