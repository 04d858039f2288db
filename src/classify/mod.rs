//! `classify`: what Exchange flow a connection is. The knowledge of Exchange's ports is data
//! (`exchange.toml`, loaded by [`catalogue`]); [`ports`] prints it for `exflow ports`.

pub mod catalogue;
pub mod infer;
pub mod ports;
pub mod site;
