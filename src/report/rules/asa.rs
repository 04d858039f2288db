//! Cisco ASA: `access-list ... extended permit` lines, one access list per source zone
//! (`exflow-internet`, `exflow-internal`, `exflow-perimeter`), to apply inbound on the
//! interface facing that zone. An ASA (8.3 and later) matches access lists against real,
//! untranslated addresses, so a NAT'ed server is matched by its internal address. The
//! internet is `any4`/`any6`: the list is applied where the internet comes in.

use std::fmt::Write as _;

use super::plan::{Addrs, End, Family, Plan, Rule, Service};
use super::{clip, describe, dnat_text, header, one_line, section, short};
use crate::classify::catalogue::Proto;
use crate::classify::site::Cidr;

/// An ASA remark holds at most 100 characters.
const REMARK_MAX: usize = 100;

fn acl(rule: &Rule) -> String {
    format!("exflow-{}", rule.src.zone.name())
}

fn net(c: &Cidr) -> String {
    let full = if c.is_ipv4() { 32 } else { 128 };
    if c.prefix() == full {
        format!("host {}", c.network())
    } else if c.is_ipv4() {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(c.prefix()))
            .unwrap_or(0);
        format!("{} {}", c.network(), std::net::Ipv4Addr::from(mask))
    } else {
        c.to_string()
    }
}

fn alternatives(family: Family, end: &End) -> Vec<String> {
    match &end.addrs {
        Addrs::In(v) => v.iter().map(net).collect(),
        Addrs::Any | Addrs::NotIn(_) => vec![match family {
            Family::V4 => "any4".into(),
            Family::V6 => "any6".into(),
        }],
    }
}

/// (protocol, port operator per alternative).
fn service(service: &Service) -> (String, Vec<String>) {
    match service {
        Service::All => ("ip".into(), vec![String::new()]),
        Service::Ports { proto, ports } if ports.is_empty() || matches!(proto, Proto::Ip(_)) => {
            (proto.number().to_string(), vec![String::new()])
        }
        Service::Ports { proto, ports } => (
            proto.to_string(),
            ports
                .iter()
                .map(|r| {
                    if r.first() == r.last() {
                        format!(" eq {}", r.first())
                    } else {
                        format!(" range {} {}", r.first(), r.last())
                    }
                })
                .collect(),
        ),
    }
}

fn remark(out: &mut String, acl: &str, text: &str) {
    let _ = writeln!(
        out,
        "access-list {acl} remark {}",
        clip(&one_line(text), REMARK_MAX)
    );
}

/// The whole configuration snippet.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for l in header(plan, "Cisco ASA") {
        let _ = writeln!(out, "! {l}");
    }
    out.push_str(
        "! One access list per source zone: apply each inbound on the interface facing it, e.g.\n\
         !   access-group exflow-internet in interface outside\n\
         !   access-group exflow-internal in interface inside\n\
         ! ASA 8.3+ matches real (untranslated) addresses: NAT'ed servers by their internal address.\n",
    );
    let mut prev_section: Option<(String, String)> = None;
    for rule in &plan.rules {
        let name = acl(rule);
        let sec = (name.clone(), section(rule));
        if prev_section.as_ref() != Some(&sec) {
            let _ = writeln!(out, "! --- {} ---", one_line(&sec.1));
            prev_section = Some(sec);
        }
        let _ = writeln!(out, "! {}", describe(rule));
        if let Some(t) = dnat_text(rule, false) {
            let _ = writeln!(out, "! {t}");
        }
        remark(&mut out, &name, &short(rule));
        let (proto, ports) = service(&rule.service);
        for s in alternatives(rule.family, &rule.src) {
            for d in alternatives(rule.family, &rule.dst) {
                if s == d {
                    continue; // a host to itself never crosses the firewall
                }
                for p in &ports {
                    let _ = writeln!(out, "access-list {name} extended permit {proto} {s} {d}{p}");
                }
            }
        }
    }
    out
}
