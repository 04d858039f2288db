//! The single loop.
