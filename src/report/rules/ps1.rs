//! PowerShell for the Windows firewall on the Exchange servers themselves: one
//! `New-NetFirewallRule` per rule whose destination is an Exchange server (inbound: what
//! must reach it). Windows allows outbound traffic by default, so rules from an Exchange
//! server to elsewhere are left to the network firewall. Every rule has `-LocalAddress` set
//! to its server's addresses, so the same file can run on every server, and `-Group exflow`,
//! so `Remove-NetFirewallRule -Group exflow` takes them all away.

use std::fmt::Write as _;

use super::plan::{Addrs, End, Plan, Rule, Service};
use super::{describe, dnat_text, header, new_section, one_line, section, service_text};
use crate::classify::catalogue::Proto;

/// A PowerShell single-quoted string: a quote is doubled (after [`one_line`], which also
/// removes the typographic quotes PowerShell reads as quotes).
fn quoted(s: &str) -> String {
    format!("'{}'", one_line(s).replace('\'', "''"))
}

fn addresses(end: &End) -> String {
    match &end.addrs {
        Addrs::In(v) => v
            .iter()
            .map(|c| quoted(&c.to_string()))
            .collect::<Vec<_>>()
            .join(","),
        // The Windows firewall cannot exclude networks: the internet is any address.
        Addrs::Any | Addrs::NotIn(_) => "Any".into(),
    }
}

/// The `New-NetFirewallRule` line of a rule.
pub fn command(rule: &Rule) -> String {
    let (protocol, ports) = match &rule.service {
        Service::All => ("Any".to_owned(), None),
        Service::Ports { proto, ports } => {
            let p = match proto {
                Proto::Tcp => "TCP".to_owned(),
                Proto::Udp => "UDP".to_owned(),
                Proto::Ip(n) => n.to_string(),
            };
            let list: Vec<String> = ports.iter().map(|r| quoted(&r.to_string())).collect();
            (p, (!list.is_empty()).then(|| list.join(",")))
        }
    };
    let name = format!(
        "exflow {} from {}, {} ({})",
        rule.roles.first().map(String::as_str).unwrap_or(""),
        rule.src.label(),
        service_text(&rule.service),
        rule.family.name()
    );
    let mut line = format!(
        "New-NetFirewallRule -Group 'exflow' -DisplayName {} -Description {} -Direction Inbound \
         -Action Allow -Protocol {protocol}",
        quoted(&name),
        quoted(&describe(rule)),
    );
    if let Some(p) = ports {
        let _ = write!(line, " -LocalPort {p}");
    }
    let _ = write!(
        line,
        " -RemoteAddress {} -LocalAddress {} | Out-Null",
        addresses(&rule.src),
        addresses(&rule.dst)
    );
    line
}

/// The whole script.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for l in header(plan, "Windows Firewall, PowerShell") {
        let _ = writeln!(out, "# {l}");
    }
    out.push_str(
        "# Inbound rules for the Windows firewall of the Exchange servers: what must reach them.\n\
         # Run elevated on each Exchange server; -LocalAddress keeps each rule to its server.\n\
         # The internet is 'Any' here (the Windows firewall cannot exclude your networks).\n\
         # Undo with: Remove-NetFirewallRule -Group 'exflow'\n",
    );
    let mut prev: Option<&Rule> = None;
    let mut n = 0;
    for rule in plan.rules.iter().filter(|r| r.dst.is_exchange()) {
        if new_section(prev, rule) {
            let _ = writeln!(out, "\n# --- {} ---", one_line(&section(rule)));
        }
        let _ = writeln!(out, "# {}", describe(rule));
        if let Some(t) = dnat_text(rule, false) {
            let _ = writeln!(out, "# {t}");
        }
        let _ = writeln!(out, "{}", command(rule));
        prev = Some(rule);
        n += 1;
    }
    if n == 0 && !plan.rules.is_empty() {
        out.push_str("# No rule reaches an Exchange server: nothing for its own firewall.\n");
    }
    out
}
