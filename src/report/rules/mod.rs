//! `exflow rules`: the allow rules a site's Exchange needs, in a firewall's syntax.
//!
//! [`plan`] computes the rules as typed values from the port catalogue and the site (and,
//! with `--report`, the report's failed flows); one file per syntax renders them:
//! [`nft`] (an nftables `table inet exflow`), [`iptables`] (an `iptables-restore` file for
//! IPv4, an `ip6tables-restore` file for IPv6), [`ps1`] (PowerShell `New-NetFirewallRule`
//! for the Windows firewall of the Exchange servers) and [`asa`] (Cisco ASA access lists).
//!
//! Every piece of text that reaches a rule goes through [`one_line`] first, then the syntax's
//! own quoting: a site-file path, a report's strings or a catalogue purpose can never end a
//! comment or a string early.

pub mod asa;
pub mod iptables;
pub mod nft;
pub mod plan;
pub mod ps1;

use plan::{Family, Plan, Rule, Scope, Service};

use crate::classify::catalogue::Catalogue;
use crate::classify::site::Site;
use crate::report::model::{Fix, FlowEntry};

/// The syntaxes `exflow rules` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// nftables: `table inet exflow { chain forward { ... } }`, for `nft -f`.
    Nft,
    /// The IPv4 rules as an `iptables-restore` file.
    Iptables,
    /// The IPv6 rules as an `ip6tables-restore` file.
    Ip6tables,
    /// PowerShell `New-NetFirewallRule` lines for the Exchange servers' own firewall.
    Ps1,
    /// Cisco ASA `access-list ... extended permit` lines.
    Asa,
}

/// The plan in a syntax.
pub fn render(plan: &Plan, syntax: Syntax) -> String {
    match syntax {
        Syntax::Nft => nft::render(plan),
        Syntax::Iptables => iptables::render(plan, Family::V4),
        Syntax::Ip6tables => iptables::render(plan, Family::V6),
        Syntax::Ps1 => ps1::render(plan),
        Syntax::Asa => asa::render(plan),
    }
}

/// Text that stays on one line in every syntax: printable ASCII only; control characters
/// (newlines included) and everything outside ASCII become `?`.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// At most `max` bytes of an ASCII text (from [`one_line`]), with `...` where it was cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
    t.push_str("...");
    t
}

/// The protocol and ports of a rule, e.g. "tcp/25", "tcp/80,3128,6588", "IP protocol 50",
/// "any protocol".
pub fn service_text(service: &Service) -> String {
    match service {
        Service::All => "any protocol and port".into(),
        Service::Ports { proto, ports } if ports.is_empty() => {
            format!("IP protocol {}", proto.number())
        }
        Service::Ports { proto, ports } => {
            let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
            format!("{proto}/{}", list.join(","))
        }
    }
}

/// The seeds of a rule: "seed 001 (Network ports ... (Microsoft Learn)); also 000, 003".
pub fn seed_text(rule: &Rule) -> String {
    let mut s = format!("seed {} ({})", rule.seed.id, rule.seed.title);
    if !rule.other_seeds.is_empty() {
        s.push_str("; also ");
        s.push_str(&rule.other_seeds.join(", "));
    }
    s
}

/// The long comment of a rule, one line (already [`one_line`]).
pub fn describe(rule: &Rule) -> String {
    let roles = rule.roles.join(", ");
    one_line(&format!(
        "{roles}: {} -> {}, {} ({}). {}. Source: {}.",
        rule.src.label(),
        rule.dst.label(),
        service_text(&rule.service),
        rule.family.name(),
        rule.purpose,
        seed_text(rule),
    ))
}

/// The short comment a rule carries inside the firewall: "exflow smtp-inbound seed 001".
pub fn short(rule: &Rule) -> String {
    let first = rule.roles.first().map(String::as_str).unwrap_or("");
    let more = if rule.roles.len() > 1 {
        format!(" +{}", rule.roles.len() - 1)
    } else {
        String::new()
    };
    let what = if rule.unrestricted {
        " allow-all, never restrict"
    } else {
        ""
    };
    one_line(&format!("exflow {first}{more}{what} seed {}", rule.seed.id))
}

/// The DNAT note of a rule, when the destination is reached through NAT.
pub fn dnat_text(rule: &Rule, forward_chain: bool) -> Option<String> {
    if rule.dnat.is_empty() {
        return None;
    }
    let public: Vec<String> = rule.dnat.iter().map(|a| a.to_string()).collect();
    let how = if forward_chain {
        "DNAT in prerouting runs before the forward chain, so this rule matches the \
         translated (internal) address"
    } else {
        "the rule matches the real (internal) address"
    };
    Some(one_line(&format!(
        "DNAT: the internet reaches {} at {}; {how}.",
        rule.dst.label(),
        public.join(", ")
    )))
}

/// The zone pair heading of a group of rules.
pub fn section(rule: &Rule) -> String {
    if rule.unrestricted {
        "Exchange <-> Exchange and Exchange <-> domain controllers: allow all, never restrict \
         (Microsoft does not support restricting this traffic)"
            .into()
    } else {
        format!("{} -> {}", rule.src.zone.name(), rule.dst.zone.name())
    }
}

/// The first lines of every output (without comment markers), one line each.
pub fn header(plan: &Plan, what: &str) -> Vec<String> {
    let site = plan
        .site_file
        .as_deref()
        .map_or("an inferred site".to_owned(), |f| format!("site {f}"));
    let mut lines = vec![format!(
        "exflow {} rules ({what}) for {site} (profile {})",
        env!("CARGO_PKG_VERSION"),
        plan.profile.name()
    )];
    match &plan.scope {
        Scope::Site => lines.push(
            "Allow rules for every flow the site's Exchange needs, from exflow's port catalogue \
             (exflow ports shows each role and its sources)."
                .into(),
        ),
        Scope::Fixes { report, failed } => lines.push(format!(
            "Only the rules that fix the {failed} failed flow(s) of the report {report}."
        )),
    }
    if plan.rules.is_empty() {
        lines.push("No rule: nothing to add.".into());
    }
    if plan.scope == Scope::Site && !plan.rules.iter().any(|r| r.unrestricted) {
        lines.push(
            "No allow-all between Exchange servers or with domain controllers: the site names              fewer than two such hosts. Whatever it names later, never restrict that traffic              (seed 001)."
                .into(),
        );
    }
    lines.iter().map(|l| one_line(l)).collect()
}

/// Whether a rule starts a new section after `prev`.
pub fn new_section(prev: Option<&Rule>, rule: &Rule) -> bool {
    prev.is_none_or(|p| section(p) != section(rule))
}

/// The fix of one report entry, for the report's own tables: for a failed flow (or any
/// unsupported restriction, `unsupported`), the rules `exflow rules --report` prints for it
/// ([`plan::plan_fixes`] of that flow alone) as `nft insert rule` commands, and what they allow
/// in words. None for a flow that did not fail, or one the catalogue or the site cannot place.
pub fn fix(cat: &Catalogue, site: &Site, entry: &FlowEntry, unsupported: bool) -> Option<Fix> {
    if !unsupported && entry.died_at == Some(plan::BEYOND) {
        return Some(Fix {
            words: format!(
                "nothing to allow on the firewall: it let the attempts through; open {}/{} on \
                 {} itself (its own host firewall) or start the service",
                entry.proto,
                entry.port,
                side_words(&entry.dst)
            ),
            nft: vec![],
        });
    }
    let failed = plan::FailedFlow::of_entry(entry, unsupported)?;
    let plan = plan::plan_fixes(cat, site, "", std::slice::from_ref(&failed)).ok()?;
    let words = match plan.rules.as_slice() {
        [] => format!(
            "allow {}/{} from {} to {} (the site names no address a rule could match: add its \
             networks to the site file)",
            entry.proto,
            entry.port,
            side_words(&entry.src),
            side_words(&entry.dst)
        ),
        [first, rest @ ..] => {
            let both_ways = rest.iter().any(|r| r.src.label() != first.src.label());
            if both_ways {
                format!(
                    "allow {} both ways between {} and {}",
                    service_text(&first.service),
                    first.src.label(),
                    first.dst.label()
                )
            } else {
                format!(
                    "allow {} from {} to {}",
                    service_text(&first.service),
                    first.src.label(),
                    first.dst.label()
                )
            }
        }
    };
    let mut nft = Vec::new();
    for rule in &plan.rules {
        let command = nft::add_command(rule);
        if !nft.contains(&command) {
            nft.push(command);
        }
    }
    Some(Fix {
        words: one_line(&words),
        nft,
    })
}

/// A report's side in words: "the internet", "internal clients", "mailbox 192.0.2.10".
fn side_words(side: &crate::report::model::Side) -> String {
    match (side.role, side.address.as_deref()) {
        (Some(role), Some(address)) => format!("{role} {address}"),
        (None, Some(address)) => format!("host {address}"),
        (Some("client"), None) => "internal clients".into(),
        (Some(role), None) => format!("every {role} host"),
        (None, None) if side.zone == "internet" => "the internet".into(),
        (None, None) => format!("the {} networks", side.zone),
    }
}
