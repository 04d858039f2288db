//! A finished connection, owned, with Zeek's conn.log field names.
pub struct ConnRecord;
