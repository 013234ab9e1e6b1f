//! Claims engine.
