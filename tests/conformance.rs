//! conformance tests
