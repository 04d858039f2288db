//! `exflow init --from CAPTURE`: the site exflow infers from a capture, written as a site
//! file for the admin to correct — every inferred fact with the evidence it rests on, as
//! comments above the keys it set. It parses back with `Site::from_toml`, so that
//! `exflow analyze CAPTURE --site` it gives the verdicts the inferred topology gave.

use super::terminal::sanitize;
use super::words;
use crate::aggregate::Aggregator;
use crate::classify::catalogue::{Catalogue, HostRole};
use crate::classify::infer;
use std::fmt::Write as _;

/// The inferred site of `agg`'s conversations as a commented site file; `from` names the
/// inputs in its header.
pub fn inferred(agg: &Aggregator, cat: &Catalogue, from: &[String]) -> String {
    let inferred = infer::infer(&agg.conversations(), cat);
    let site = &inferred.site;
    let mut out = String::new();
    let names: Vec<String> = from.iter().map(|f| sanitize(f)).collect();
    let _ = writeln!(
        out,
        "# Site file inferred by `exflow init --from` from {}.",
        names.join(", ")
    );
    out.push_str(
        "# Inferred from traffic alone: check every line against what you know of the site, \
         correct it,\n# and keep it (`exflow analyze CAPTURE --site site.toml`). \
         `exflow init` prints every key explained.\n#\n# What exflow inferred, and why:\n",
    );
    for r in &inferred.reasons {
        let line = sanitize(&words::inference_reason(r));
        let _ = writeln!(out, "#   - {line}");
    }
    out.push('\n');
    let _ = writeln!(out, "profile = \"{}\"", site.profile.name());
    let _ = writeln!(out, "internal = {}", toml_list(&site.internal_strings()));
    let _ = writeln!(out, "perimeter = {}", toml_list(&site.perimeter_strings()));
    for h in site.hosts() {
        // Roles a site file names (the catalogue's aggregate roles never come from inference).
        if matches!(h.role, HostRole::Exchange | HostRole::Lync) {
            continue;
        }
        out.push_str("\n[[host]]\n");
        let _ = writeln!(out, "role = \"{}\"", h.role.name());
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "addresses = {}", toml_list(&addrs));
        if !h.nat.is_empty() {
            let nat: Vec<String> = h.nat.iter().map(|a| a.to_string()).collect();
            let _ = writeln!(out, "nat = {}", toml_list(&nat));
        }
    }
    if site.hosts().iter().all(|h| !h.role.is_exchange()) {
        out.push_str(
            "\n# No Exchange server was inferred: name yours here, e.g.\n# [[host]]\n\
             # role = \"mailbox\"\n# addresses = [\"198.51.100.10\"]\n",
        );
    }
    out
}

/// A TOML array of strings (addresses and networks: nothing to escape).
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}
