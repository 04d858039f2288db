//! nftables: one `table inet exflow` with a `forward` base chain, for `nft -f` (checked with
//! `nft -c -f` by the tests). Rules match addresses the way a forward chain sees them: after
//! DNAT, so a NAT'ed server is matched by its internal address.

use std::fmt::Write as _;

use super::plan::{Addrs, End, Family, Plan, Rule, Service};
use super::{clip, describe, dnat_text, header, new_section, one_line, section, short};
use crate::classify::catalogue::Proto;

/// nftables rejects rule comments longer than this (bytes).
const COMMENT_MAX: usize = 128;

/// A string nftables reads inside double quotes: it has no escapes, so double quotes become
/// single ones (after [`one_line`]).
fn quoted(s: &str) -> String {
    format!("\"{}\"", clip(&one_line(s).replace('"', "'"), COMMENT_MAX))
}

fn set(items: &[String]) -> String {
    match items {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

fn addr_match(family: Family, dir: &str, end: &End) -> Option<String> {
    let key = match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    };
    let list = |v: &[crate::classify::site::Cidr]| -> Vec<String> {
        v.iter()
            .map(|c| {
                let full = if c.is_ipv4() { 32 } else { 128 };
                if c.prefix() == full {
                    c.network().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    match &end.addrs {
        Addrs::Any => None,
        Addrs::In(v) => Some(format!("{key} {dir} {}", set(&list(v)))),
        Addrs::NotIn(v) => Some(format!("{key} {dir} != {}", set(&list(v)))),
    }
}

fn service_match(service: &Service) -> Option<String> {
    match service {
        Service::All => None,
        Service::Ports { proto, ports } if ports.is_empty() => {
            Some(format!("meta l4proto {}", proto.number()))
        }
        Service::Ports { proto, ports } => {
            let name = match proto {
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
                Proto::Ip(_) => return Some(format!("meta l4proto {}", proto.number())),
            };
            let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            Some(format!("{name} dport {}", set(&list)))
        }
    }
}

/// What the rule matches: addresses, protocol and ports ("ip daddr 192.0.2.10 tcp dport 25").
fn matches(rule: &Rule) -> String {
    let parts: Vec<String> = [
        addr_match(rule.family, "saddr", &rule.src),
        addr_match(rule.family, "daddr", &rule.dst),
        service_match(&rule.service),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join(" ")
}

/// The rule as one nftables statement line.
pub fn statement(rule: &Rule) -> String {
    format!("{} accept comment {}", matches(rule), quoted(&short(rule)))
}

/// The rule as one shell command that puts it at the head of the firewall's own forward
/// chain, before any drop there: "nft insert rule inet filter forward ip daddr 192.0.2.10 tcp
/// dport 25 accept" (without the comment, whose quotes a shell would take away). `inet filter`
/// is the table of Debian's and Fedora's default nftables.conf; another firewall names its
/// own. Not this file's `exflow` table: an accept there does not undo a drop in another table
/// (tests/roundtrip.rs shows both on a real firewall).
pub fn add_command(rule: &Rule) -> String {
    one_line(&format!(
        "nft insert rule inet filter forward {} accept",
        matches(rule)
    ))
}

/// The whole file.
pub fn render(plan: &Plan) -> String {
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    for l in header(plan, "nftables") {
        let _ = writeln!(out, "# {l}");
    }
    out.push_str(
        "# Accept rules only. nftables runs every base chain of a hook, and an accept in one\n\
         # table does not undo a drop in another: loaded beside a forward chain that drops, this\n\
         # table changes nothing. Put the statements in your own forward chain, before its drop\n\
         # (nft insert rule FAMILY TABLE CHAIN STATEMENT). Never load it as the only filter: its\n\
         # policy is accept.\n\
         # Rules match what the forward chain sees: after DNAT, a server's internal address.\n\
         # Check with: nft -c -f FILE\n\
         table inet exflow {\n\
         \tchain forward {\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept comment \"exflow: replies of accepted connections\"\n",
    );
    let mut prev: Option<&Rule> = None;
    for rule in &plan.rules {
        if new_section(prev, rule) {
            let _ = writeln!(out, "\n\t\t# --- {} ---", one_line(&section(rule)));
        }
        let _ = writeln!(out, "\t\t# {}", describe(rule));
        if let Some(n) = dnat_text(rule, true) {
            let _ = writeln!(out, "\t\t# {n}");
        }
        let _ = writeln!(out, "\t\t{}", statement(rule));
        prev = Some(rule);
    }
    out.push_str("\t}\n}\n");
    out
}
