//! `classify`: what Exchange flow a conversation is. The knowledge of Exchange's ports is data
//! (`exchange.toml`, loaded by [`catalogue`]); the site is given ([`site`]) or inferred from
//! the conversations ([`infer`]); [`rules`] says which flow of the site a conversation is.

pub mod catalogue;
pub mod infer;
pub mod rules;
pub mod site;
