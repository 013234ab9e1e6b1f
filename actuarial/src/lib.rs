//! Monte Carlo pricing core.
