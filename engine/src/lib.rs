//! Claims engine.

pub mod domain;
