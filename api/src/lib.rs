//! Puhui server and command line.
