//! source_files tests
