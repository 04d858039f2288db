//! util tests
