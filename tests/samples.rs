//! samples tests
