//! `flow`: the connection table. Implemented next.
pub mod record;
pub use record::ConnRecord;
