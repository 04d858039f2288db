//! iptables: an `iptables-restore` file for the IPv4 rules, or an `ip6tables-restore` file
//! for the IPv6 rules (`--format ip6tables`): iptables keeps the two families in separate
//! tables, so each file loads with its own command, and each names how many rules the other
//! holds.
//!
//! The rules go in a chain `EXFLOW` that `FORWARD` jumps to first; it only accepts, and what
//! it does not accept returns to `FORWARD` and the admin's own rules. iptables negates one
//! network per match, so "the internet" (not internal, not perimeter) is a chain of its own,
//! `EXFLOW-FROM-INTERNET` (and `EXFLOW-TO-INTERNET`), that returns for the site's networks
//! first. Load with `iptables-restore --noflush FILE`: without `--noflush` the file replaces
//! the whole filter table.

use std::fmt::Write as _;

use super::plan::{Addrs, End, Family, Plan, Rule, Service};
use super::{clip, describe, dnat_text, header, new_section, one_line, section, short};
use crate::classify::catalogue::Proto;
use crate::classify::site::Cidr;

const CHAIN: &str = "EXFLOW";
const FROM_INTERNET: &str = "EXFLOW-FROM-INTERNET";
const TO_INTERNET: &str = "EXFLOW-TO-INTERNET";
/// The comment match's limit (bytes).
const COMMENT_MAX: usize = 255;
/// multiport takes at most 15 ports (a range counts two).
const MULTIPORT_MAX: usize = 15;

/// A string iptables-restore reads inside double quotes: no quotes or backslashes in it.
fn quoted(s: &str) -> String {
    let t = one_line(s).replace(['"', '\\'], "'");
    format!("\"{}\"", clip(&t, COMMENT_MAX))
}

fn command(family: Family) -> &'static str {
    match family {
        Family::V4 => "iptables-restore",
        Family::V6 => "ip6tables-restore",
    }
}

/// Each alternative address match of a side (`-s X` per network; none for any address or
/// for the internet, which its chain handles).
fn alternatives(flag: &str, end: &End) -> Vec<String> {
    match &end.addrs {
        Addrs::In(v) => v.iter().map(|c| format!("{flag} {c}")).collect(),
        Addrs::Any | Addrs::NotIn(_) => vec![String::new()],
    }
}

/// The protocol and port matches of a rule, one or more (multiport holds 15 ports).
fn service_matches(service: &Service, family: Family) -> Vec<String> {
    match service {
        Service::All => vec![String::new()],
        // In IPv6, AH is an extension header: ip6tables matches it with the ah module.
        Service::Ports {
            proto: Proto::Ip(51),
            ..
        } if family == Family::V6 => vec!["-m ah".into()],
        Service::Ports { proto, ports } if ports.is_empty() || matches!(proto, Proto::Ip(_)) => {
            vec![format!("-p {}", proto.number())]
        }
        Service::Ports { proto, ports } => {
            let p = if *proto == Proto::Tcp { "tcp" } else { "udp" };
            let port = |r: &crate::classify::catalogue::PortRange| {
                if r.first() == r.last() {
                    r.first().to_string()
                } else {
                    format!("{}:{}", r.first(), r.last())
                }
            };
            if let [one] = ports.as_slice() {
                return vec![format!("-p {p} --dport {}", port(one))];
            }
            let mut out = Vec::new();
            let mut chunk: Vec<String> = Vec::new();
            let mut used = 0;
            for r in ports {
                let cost = if r.first() == r.last() { 1 } else { 2 };
                if used + cost > MULTIPORT_MAX {
                    out.push(format!("-p {p} -m multiport --dports {}", chunk.join(",")));
                    chunk.clear();
                    used = 0;
                }
                chunk.push(port(r));
                used += cost;
            }
            out.push(format!("-p {p} -m multiport --dports {}", chunk.join(",")));
            out
        }
    }
}

/// The chain a rule goes in.
fn chain_of(rule: &Rule) -> &'static str {
    if matches!(rule.src.addrs, Addrs::NotIn(_)) {
        FROM_INTERNET
    } else if matches!(rule.dst.addrs, Addrs::NotIn(_)) {
        TO_INTERNET
    } else {
        CHAIN
    }
}

fn networks(rules: &[&Rule], from: bool) -> Vec<Cidr> {
    rules
        .iter()
        .find_map(|r| match (&r.src.addrs, &r.dst.addrs, from) {
            (Addrs::NotIn(v), _, true) | (_, Addrs::NotIn(v), false) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The restore file of one family's rules.
pub fn render(plan: &Plan, family: Family) -> String {
    let rules: Vec<&Rule> = plan.rules.iter().filter(|r| r.family == family).collect();
    let other = match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    let mut out = String::new();
    let what = format!("{}, {}", command(family), family.name());
    for l in header(plan, &what) {
        let _ = writeln!(out, "# {l}");
    }
    let others = plan.rules.iter().filter(|r| r.family == other).count();
    if others > 0 {
        let _ = writeln!(
            out,
            "# {others} {} rule(s) are not in this file: exflow rules --format {} ({}).",
            other.name(),
            match other {
                Family::V4 => "iptables",
                Family::V6 => "ip6tables",
            },
            command(other)
        );
    }
    let _ = writeln!(
        out,
        "# Load with: {} --noflush FILE (without --noflush it replaces your whole filter table).\n\
         # Chain {CHAIN} only accepts; FORWARD jumps to it first and gets back what it does not accept.\n\
         # Rules match what the FORWARD chain sees: after DNAT, a server's internal address.",
        command(family)
    );
    let from: Vec<Cidr> = networks(&rules, true);
    let to: Vec<Cidr> = networks(&rules, false);
    let uses = |chain: &str| rules.iter().any(|r| chain_of(r) == chain);
    out.push_str("*filter\n");
    let _ = writeln!(out, ":{CHAIN} - [0:0]");
    for chain in [FROM_INTERNET, TO_INTERNET] {
        if uses(chain) {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
    }
    let _ = writeln!(
        out,
        "-I FORWARD 1 -j {CHAIN} -m comment --comment \"exflow: the Exchange allow rules\"\n\
         -A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT -m comment --comment \"exflow: replies of accepted connections\""
    );
    for (chain, flag, nets, what) in [
        (FROM_INTERNET, "-s", &from, "from"),
        (TO_INTERNET, "-d", &to, "to"),
    ] {
        if uses(chain) {
            let _ = writeln!(
                out,
                "# {chain}: traffic {what} the internet, i.e. not {what} the internal or perimeter networks (they return first)."
            );
            let _ = writeln!(out, "-A {CHAIN} -j {chain}");
            for n in nets {
                let _ = writeln!(out, "-A {chain} {flag} {n} -j RETURN");
            }
        }
    }
    let mut prev: Option<&Rule> = None;
    for rule in rules {
        if new_section(prev, rule) {
            let _ = writeln!(out, "\n# --- {} ---", one_line(&section(rule)));
        }
        let _ = writeln!(out, "# {}", describe(rule));
        if let Some(n) = dnat_text(rule, true) {
            let _ = writeln!(out, "# {n}");
        }
        let chain = chain_of(rule);
        let comment = quoted(&short(rule));
        for s in alternatives("-s", &rule.src) {
            for d in alternatives("-d", &rule.dst) {
                if s.strip_prefix("-s ")
                    .is_some_and(|a| Some(a) == d.strip_prefix("-d "))
                {
                    continue; // a host to itself never crosses the firewall
                }
                for svc in service_matches(&rule.service, family) {
                    let matches: Vec<&str> = [s.as_str(), d.as_str(), svc.as_str()]
                        .into_iter()
                        .filter(|m| !m.is_empty())
                        .collect();
                    let _ = writeln!(
                        out,
                        "-A {chain} {} -m comment --comment {comment} -j ACCEPT",
                        matches.join(" ")
                    );
                }
            }
        }
        prev = Some(rule);
    }
    out.push_str("COMMIT\n");
    out
}
