//! The site drawn as an inline SVG: the zones as bands side by side (internet, perimeter,
//! internal), the firewall as a bar between two bands, the hosts as boxes at the top of their
//! band (role and addresses) with a dotted lifeline down from each, and one row per flow
//! under them: an arrow from the lifeline of the side that opens the connection to that of
//! the side that accepts it, its port on it, coloured by verdict (`class="flow
//! verdict-blocked"`), unexpected flows dashed (`class="flow unexpected"`). The flow's number
//! and role are on the left of its row, its verdict on the right; a legend closes the
//! picture.
//!
//! One row per flow (as a sequence diagram has one per message) keeps every label on a line
//! of its own, so none overlaps another however many flows there are, and every arrow runs
//! straight between the two boxes it joins. Text is set in a monospace font, so its width is
//! known without a font engine: [`CW`] per character.

use super::esc;
use crate::classify::catalogue::Zone;
use crate::classify::site::Site;
use crate::report::model::{Report, Side, Verdict};
use crate::report::terminal::sanitize;
use crate::report::words::verdict_label;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The advance of one character of 12px monospace text (0.6 em), rounded up.
const CW: f64 = 7.3;
const MARGIN: f64 = 16.0;
const ROW_H: f64 = 30.0;
const BAND_PAD: f64 = 16.0;
const NODE_GAP: f64 = 26.0;
const NODE_MIN_W: f64 = 118.0;
const BAND_MIN_W: f64 = 160.0;
const FW_W: f64 = 22.0;
/// Between a band's edge and the firewall bar.
const FW_GAP: f64 = 14.0;
const HEADER_H: f64 = 48.0;
const LINE_H: f64 = 15.0;
/// Addresses listed in a host box before "+N more".
const ADDR_MAX: usize = 4;
/// Characters of a left-gutter label (number and role) and of a port label.
const LABEL_MAX: usize = 30;
const PORT_MAX: usize = 22;

/// One flow to draw. Every text is already sanitised (not yet escaped).
pub(super) struct Arrow<'a> {
    /// "3", "R1", "U2": the number the tables show.
    pub id: String,
    /// The group's CSS classes: "flow verdict-ok", "flow restriction verdict-blocked",
    /// "flow unexpected".
    pub class: String,
    pub src: &'a Side,
    pub dst: &'a Side,
    /// "443/tcp".
    pub port: String,
    /// Number and role, left of the row.
    pub left: String,
    /// The verdict (or "unexpected"), right of the row.
    pub right: String,
    /// The tooltip: the whole row in a sentence.
    pub tip: String,
    /// The anchor of the flow's table row (without `#`).
    pub href: String,
    /// Dashed, and its unknown addresses drawn as their zone rather than as boxes.
    pub unexpected: bool,
    /// Faded: a flow the capture point cannot see (its `<a>` has `class="out-of-view"`).
    pub faded: bool,
    /// Where the flow died, when the report knows it: "firewall" or "beyond_firewall".
    pub died: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Band {
    Internet,
    Perimeter,
    Internal,
}

impl Band {
    fn of(zone: &str) -> Band {
        match zone {
            "internet" => Band::Internet,
            "perimeter" => Band::Perimeter,
            _ => Band::Internal,
        }
    }

    fn of_zone(z: Zone) -> Band {
        Band::of(z.name())
    }

    fn title(self) -> &'static str {
        match self {
            Band::Internet => "Internet",
            Band::Perimeter => "Perimeter (DMZ)",
            Band::Internal => "Internal",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Band::Internet => "band-internet",
            Band::Perimeter => "band-perimeter",
            Band::Internal => "band-internal",
        }
    }
}

/// A box: a host, or a whole zone (the internet, the internal clients).
struct Node {
    key: String,
    band: Band,
    /// The order within the band: Exchange servers nearest the firewall.
    order: (u8, Option<IpAddr>, String),
    title: String,
    lines: Vec<String>,
    /// A zone rather than one host (drawn shaded).
    zone: bool,
    x: f64,
    w: f64,
    h: f64,
}

impl Node {
    fn size(&mut self) {
        let chars = std::iter::once(&self.title)
            .chain(&self.lines)
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0);
        self.w = (chars as f64 * CW + 20.0).max(NODE_MIN_W);
        self.h = 30.0 + self.lines.len() as f64 * LINE_H;
    }
}

/// The rank of a box in its band (lower is nearer the internet side).
fn rank(band: Band, role: Option<&str>, zone: bool) -> u8 {
    match band {
        Band::Internet => u8::from(!zone),
        Band::Perimeter => match (zone, role) {
            (true, _) => 3,
            (false, Some("edge")) => 0,
            (false, Some("mailbox")) => 1,
            _ => 2,
        },
        Band::Internal => match (zone, role) {
            (false, Some("mailbox")) => 0,
            (false, Some("edge")) => 1,
            (false, Some("lync")) => 2,
            (true, Some("client")) => 3,
            (false, Some("client")) => 4,
            (false, Some("dc")) => 5,
            (false, Some("dns")) => 6,
            (true, _) => 7,
            _ => 8,
        },
    }
}

/// The box key of a host address: its host's first address when the site knows the host
/// (so every address and NAT address of a host is one box).
fn host_key(addr: &str, site: &Site) -> String {
    match addr.parse::<IpAddr>() {
        Ok(ip) => match site.host_of(ip).and_then(|h| h.addresses.first()) {
            Some(first) => format!("host:{first}"),
            None => format!("host:{ip}"),
        },
        Err(_) => format!("host:{addr}"),
    }
}

struct Nodes<'s> {
    site: &'s Site,
    list: Vec<Node>,
}

impl Nodes<'_> {
    fn find(&self, key: &str) -> Option<usize> {
        self.list.iter().position(|n| n.key == key)
    }

    fn add_host(&mut self, key: String, band: Band, role: &str, addr: &str, line: String) -> usize {
        if let Some(i) = self.find(&key) {
            let n = &mut self.list[i];
            if !n.lines.contains(&line) {
                n.lines.push(line);
            }
            return i;
        }
        self.list.push(Node {
            key,
            band,
            order: (
                rank(band, Some(role), false),
                addr.parse().ok(),
                addr.to_string(),
            ),
            title: sanitize(role),
            lines: vec![line],
            zone: false,
            x: 0.0,
            w: 0.0,
            h: 0.0,
        });
        self.list.len() - 1
    }

    /// The box of a whole zone (with a role: the internal clients).
    fn zone(&mut self, zone: &str, role: Option<&str>) -> usize {
        let band = Band::of(zone);
        let key = format!("zone:{zone}:{}", role.unwrap_or(""));
        if let Some(i) = self.find(&key) {
            return i;
        }
        let (title, line) = match (band, role) {
            (Band::Internet, None) => ("Internet".to_string(), "any outside address"),
            (Band::Internal, Some("client")) => {
                ("internal clients".to_string(), "the internal networks")
            }
            (Band::Internal, None) => ("internal network".to_string(), "the internal networks"),
            (Band::Perimeter, None) => ("perimeter network".to_string(), "the perimeter networks"),
            (_, Some(r)) => (format!("{} hosts", sanitize(r)), "in this zone"),
        };
        self.list.push(Node {
            key,
            band,
            order: (rank(band, role, true), None, String::new()),
            title,
            lines: vec![line.to_string()],
            zone: true,
            x: 0.0,
            w: 0.0,
            h: 0.0,
        });
        self.list.len() - 1
    }

    /// The box a flow's side is drawn from or to. A host the report does not list gets a box
    /// of its own on an expected flow, and is drawn as its zone on an unexpected one (a
    /// scanner's hundred addresses would not fit).
    fn side(&mut self, s: &Side, unexpected: bool) -> usize {
        match &s.address {
            Some(addr) => {
                let key = host_key(addr, self.site);
                if let Some(i) = self.find(&key) {
                    return i;
                }
                if unexpected {
                    let role = (Band::of(s.zone) == Band::Internal && s.role == Some("client"))
                        .then_some("client");
                    return self.zone(s.zone, role);
                }
                let role = s.role.unwrap_or("host");
                self.add_host(key, Band::of(s.zone), role, addr, sanitize(addr))
            }
            None => self.zone(s.zone, s.role),
        }
    }
}

/// Keeps at most `max` characters, ending in "…" when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn width(s: &str) -> f64 {
    s.chars().count() as f64 * CW
}

/// A band as laid out.
struct BandBox {
    band: Band,
    x: f64,
    w: f64,
    nets: String,
}

/// The networks under a band's title: the first two, then "+N".
fn nets_line(band: Band, r: &Report) -> String {
    let nets = match band {
        Band::Internet => return "outside the site's networks".to_string(),
        Band::Perimeter => &r.topology.perimeter,
        Band::Internal => &r.topology.internal,
    };
    let shown: Vec<String> = nets.iter().take(2).map(|n| sanitize(n)).collect();
    let mut s = shown.join(", ");
    if nets.len() > 2 {
        let _ = write!(s, " +{}", nets.len() - 2);
    }
    if s.is_empty() {
        s = "no networks named".to_string();
    }
    s
}

/// The picture, as an `<svg>` element (with a newline after it).
pub(super) fn draw(r: &Report, site: &Site, arrows: &[Arrow<'_>]) -> String {
    let mut nodes = Nodes {
        site,
        list: Vec::new(),
    };
    for th in &r.topology.hosts {
        let key = host_key(&th.address, site);
        let ip = th.address.parse::<IpAddr>().ok();
        let host = ip.and_then(|ip| site.host_of(ip));
        let nat = matches!((ip, host), (Some(ip), Some(h)) if h.has_nat(ip));
        // The site's zone for its hosts; else the zone a flow gives the address; else the
        // site's zone for the address.
        let flow_zone = arrows
            .iter()
            .flat_map(|a| [a.src, a.dst])
            .find(|s| s.address.as_deref() == Some(th.address.as_str()))
            .map(|s| Band::of(s.zone));
        let band = match (ip, host, flow_zone) {
            (_, Some(h), _) => Band::of_zone(site.host_zone(h)),
            (_, None, Some(b)) => b,
            (Some(ip), None, None) => Band::of_zone(site.zone_of(ip)),
            (None, None, None) => Band::Internal,
        };
        let line = if nat {
            format!("NAT {}", sanitize(&th.address))
        } else {
            sanitize(&th.address)
        };
        nodes.add_host(key, band, th.role, &th.address, line);
    }
    let ends: Vec<(usize, usize)> = arrows
        .iter()
        .map(|a| {
            (
                nodes.side(a.src, a.unexpected),
                nodes.side(a.dst, a.unexpected),
            )
        })
        .collect();
    let mut list = nodes.list;
    for n in &mut list {
        if n.lines.len() > ADDR_MAX {
            let more = n.lines.len() - (ADDR_MAX - 1);
            n.lines.truncate(ADDR_MAX - 1);
            n.lines.push(format!("+{more} more"));
        }
        n.size();
    }

    // Bands left to right; the perimeter only when the site has one.
    let mut bands: Vec<BandBox> = Vec::new();
    for band in [Band::Internet, Band::Perimeter, Band::Internal] {
        let used = list.iter().any(|n| n.band == band);
        let named = match band {
            Band::Perimeter => !r.topology.perimeter.is_empty(),
            _ => true,
        };
        if used || named {
            bands.push(BandBox {
                band,
                x: 0.0,
                w: 0.0,
                nets: nets_line(band, r),
            });
        }
    }

    let lefts: Vec<String> = arrows.iter().map(|a| clip(&a.left, LABEL_MAX)).collect();
    let left_w = lefts.iter().map(|s| width(s)).fold(width("flow"), f64::max) + 16.0;
    let right_w = arrows
        .iter()
        .map(|a| width(&a.right))
        .fold(width("verdict"), f64::max)
        + 8.0;

    // Horizontal layout: the bands, a firewall between each two, boxes in band order.
    let mut x = MARGIN + left_w;
    let mut firewalls: Vec<f64> = Vec::new();
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by(|&a, &b| (list[a].band, &list[a].order).cmp(&(list[b].band, &list[b].order)));
    for (bi, b) in bands.iter_mut().enumerate() {
        if bi > 0 {
            firewalls.push(x + FW_GAP);
            x += FW_GAP * 2.0 + FW_W;
        }
        b.x = x;
        let members: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| list[i].band == b.band)
            .collect();
        let content: f64 = if members.is_empty() {
            0.0
        } else {
            members.iter().map(|&i| list[i].w).sum::<f64>()
                + NODE_GAP * (members.len() - 1) as f64
                + BAND_PAD * 2.0
        };
        let header = (width(b.band.title()) * 13.0 / 12.0).max(width(&b.nets) * 11.0 / 12.0)
            + BAND_PAD * 2.0;
        b.w = content.max(header).max(BAND_MIN_W);
        let mut inner = x + BAND_PAD + (b.w - content) / 2.0;
        for &i in &members {
            list[i].x = inner + list[i].w / 2.0;
            inner += list[i].w + NODE_GAP;
        }
        x += b.w;
    }
    let right_x = x + 12.0;
    let total_w = (right_x + right_w + MARGIN).max(720.0);

    // Vertical layout.
    let top = MARGIN;
    let boxes_top = top + HEADER_H;
    let boxes_bottom = list
        .iter()
        .map(|n| boxes_top + n.h)
        .fold(boxes_top + 30.0, f64::max);
    let rows_top = boxes_bottom + 30.0;
    let rows = arrows.len().max(1);
    let rows_bottom = rows_top + rows as f64 * ROW_H;
    let bands_bottom = rows_bottom + 12.0;

    let legend = legend_items(arrows.iter().any(|a| a.died.is_some()));
    let mut legend_rows = 1usize;
    {
        let mut lx = MARGIN;
        for (label, _) in &legend {
            let w = 40.0 + width(label) + 20.0;
            if lx + w > total_w - MARGIN && lx > MARGIN {
                legend_rows += 1;
                lx = MARGIN;
            }
            lx += w;
        }
    }
    let legend_top = bands_bottom + 22.0;
    let total_h = legend_top + legend_rows as f64 * 22.0 + MARGIN;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"site\" viewBox=\"0 0 {tw:.0} {th:.0}\" width=\"{tw:.0}\" height=\"{th:.0}\" \
         role=\"img\" aria-labelledby=\"site-title\">\n<title id=\"site-title\">The site: {} \
         flow{} between {} box{} in {} zone{}</title>",
        arrows.len(),
        if arrows.len() == 1 { "" } else { "s" },
        list.len(),
        if list.len() == 1 { "" } else { "es" },
        bands.len(),
        if bands.len() == 1 { "" } else { "s" },
        tw = total_w,
        th = total_h,
    );

    // Bands and their titles.
    for b in &bands {
        let _ = writeln!(
            s,
            "<g class=\"band\"><rect class=\"{}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" rx=\"6\"/><text class=\"band-title\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\
             <text class=\"band-nets\" x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            b.band.class(),
            b.x,
            b.w,
            bands_bottom - top,
            b.x + BAND_PAD,
            top + 19.0,
            esc(b.band.title()),
            b.x + BAND_PAD,
            top + 35.0,
            esc(&b.nets),
        );
    }
    // Row stripes, under everything else.
    for i in (0..arrows.len()).step_by(2) {
        let _ = writeln!(
            s,
            "<rect class=\"stripe\" x=\"{MARGIN:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ROW_H:.1}\"/>",
            rows_top + i as f64 * ROW_H,
            total_w - 2.0 * MARGIN
        );
    }
    // The firewall between each two bands.
    for fx in &firewalls {
        let mid = (top + boxes_bottom) / 2.0;
        let cx = fx + FW_W / 2.0;
        let _ = writeln!(
            s,
            "<g class=\"firewall\"><rect x=\"{fx:.1}\" y=\"{top:.1}\" width=\"{FW_W:.1}\" \
             height=\"{:.1}\" rx=\"3\"/><text x=\"{cx:.1}\" y=\"{mid:.1}\" text-anchor=\"middle\" \
             dominant-baseline=\"central\" transform=\"rotate(-90 {cx:.1} {mid:.1})\">FIREWALL</text></g>",
            bands_bottom - top
        );
    }
    // Lifelines and boxes.
    for n in &list {
        let _ = writeln!(
            s,
            "<line class=\"lifeline\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{rows_bottom:.1}\"/>",
            boxes_top + n.h,
            x = n.x
        );
    }
    for n in &list {
        let x0 = n.x - n.w / 2.0;
        let _ = write!(
            s,
            "<g class=\"host{}\"><rect x=\"{x0:.1}\" y=\"{boxes_top:.1}\" width=\"{:.1}\" \
             height=\"{:.1}\" rx=\"{}\"/><text class=\"role\" x=\"{:.1}\" y=\"{:.1}\" \
             text-anchor=\"middle\">{}</text>",
            if n.zone { " group" } else { "" },
            n.w,
            n.h,
            if n.zone { 14 } else { 3 },
            n.x,
            boxes_top + 19.0,
            esc(&n.title)
        );
        for (i, line) in n.lines.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                n.x,
                boxes_top + 19.0 + (i + 1) as f64 * LINE_H,
                esc(line)
            );
        }
        s.push_str("</g>\n");
    }
    // Column heads of the rows.
    if arrows.is_empty() {
        let _ = writeln!(
            s,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\">No flows to draw.</text>",
            bands.first().map_or(MARGIN, |b| b.x + BAND_PAD),
            rows_top + ROW_H / 2.0 + 4.0
        );
    } else {
        let _ = writeln!(
        s,
        "<text class=\"gutter-head\" x=\"{:.1}\" y=\"{:.1}\">flow</text><text class=\"gutter-head\" \
         x=\"{right_x:.1}\" y=\"{:.1}\">verdict</text>",
        MARGIN + 6.0,
        rows_top - 8.0,
        rows_top - 8.0
    );
    }
    // One row per flow.
    for (i, (a, &(si, di))) in arrows.iter().zip(&ends).enumerate() {
        let y = rows_top + i as f64 * ROW_H + ROW_H / 2.0;
        let _ = write!(
            s,
            "<a href=\"#{}\"{}><g class=\"{}\" id=\"arrow-{}\"><title>{}</title>",
            esc(&a.href),
            if a.faded {
                " class=\"out-of-view\""
            } else {
                ""
            },
            esc(&a.class),
            esc(&a.id),
            esc(&a.tip)
        );
        let _ = write!(
            s,
            "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            MARGIN + 6.0,
            y + 4.0,
            esc(&lefts[i])
        );
        let (sx, dx) = (list[si].x, list[di].x);
        let port = esc(&clip(&a.port, PORT_MAX));
        if si == di {
            // A flow between two addresses drawn as one box: a loop beside its lifeline.
            let _ = write!(
                s,
                "<circle class=\"origin\" cx=\"{sx:.1}\" cy=\"{:.1}\" r=\"3.5\"/>\
                 <path class=\"shaft\" d=\"M{sx:.1},{:.1} h34 v12 h-26\"/>\
                 <polygon class=\"head\" points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\"/>\
                 <text class=\"port\" x=\"{:.1}\" y=\"{:.1}\">{port}</text>",
                y - 6.0,
                y - 6.0,
                sx + 1.5,
                y + 6.0,
                sx + 10.0,
                y + 1.0,
                sx + 10.0,
                y + 11.0,
                sx + 40.0,
                y + 4.0,
            );
        } else {
            let dir = if dx > sx { 1.0 } else { -1.0 };
            let died = a.died.map(|place| died_x(sx, dx, place, &firewalls));
            let tip = dx - dir * 1.5;
            let base = tip - dir * 10.0;
            // Past the mark of where it died, the arrow is faded: the packets never got there.
            let (stop, after) = match died {
                Some(mx) => (mx, " after"),
                None => (base, ""),
            };
            let _ = write!(s, "<circle class=\"origin\" cx=\"{sx:.1}\" cy=\"{y:.1}\" r=\"3.5\"/>\
                 <line class=\"shaft\" x1=\"{sx:.1}\" y1=\"{y:.1}\" x2=\"{stop:.1}\" y2=\"{y:.1}\"/>");
            if died.is_some() {
                let _ = write!(
                    s,
                    "<line class=\"shaft after\" x1=\"{stop:.1}\" y1=\"{y:.1}\" x2=\"{base:.1}\" \
                     y2=\"{y:.1}\"/>"
                );
            }
            let _ = write!(
                s,
                "<polygon class=\"head{after}\" points=\"{tip:.1},{y:.1} {base:.1},{:.1} {base:.1},{:.1}\"/>\
                 <text class=\"port\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{port}</text>",
                y - 5.0,
                y + 5.0,
                label_x(sx, dx, &firewalls, died),
                y - 5.0,
            );
            if let (Some(place), Some(mx)) = (a.died, died) {
                let _ = write!(
                    s,
                    "<g class=\"died died-{}\"><circle cx=\"{mx:.1}\" cy=\"{y:.1}\" r=\"8\"/>\
                     <path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\"/></g>",
                    esc(&place.replace('_', "-")),
                    mx - 4.5,
                    y - 4.5,
                    mx + 4.5,
                    y + 4.5,
                    mx - 4.5,
                    y + 4.5,
                    mx + 4.5,
                    y - 4.5,
                );
            }
        }
        let _ = writeln!(
            s,
            "<text class=\"verdict\" x=\"{right_x:.1}\" y=\"{:.1}\">{}</text></g></a>",
            y + 4.0,
            esc(&a.right)
        );
    }
    // The legend.
    let _ = write!(s, "<g class=\"legend\">");
    let mut lx = MARGIN;
    let mut ly = legend_top;
    for (label, class) in &legend {
        let w = 40.0 + width(label) + 20.0;
        if lx + w > total_w - MARGIN && lx > MARGIN {
            lx = MARGIN;
            ly += 22.0;
        }
        if *class == "fw" {
            let _ = write!(
                s,
                "<g class=\"item\"><rect class=\"fw\" x=\"{:.1}\" y=\"{:.1}\" width=\"30\" \
                 height=\"10\" rx=\"2\"/>",
                lx,
                ly - 5.0
            );
        } else if *class == "died" {
            let (cx, d) = (lx + 15.0, 4.5);
            let _ = write!(
                s,
                "<g class=\"item died-item\"><circle cx=\"{cx:.1}\" cy=\"{ly:.1}\" r=\"8\"/>\
                 <path d=\"M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}\"/>",
                cx - d,
                ly - d,
                cx + d,
                ly + d,
                cx - d,
                ly + d,
                cx + d,
                ly - d,
            );
        } else if *class == "origin" {
            let _ = write!(
                s,
                "<g class=\"item\"><circle cx=\"{:.1}\" cy=\"{ly:.1}\" r=\"3.5\" fill=\"#1f2328\"/>\
                 <line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"#1f2328\" \
                 stroke-width=\"1.5\"/><polygon points=\"{:.1},{ly:.1} {:.1},{:.1} {:.1},{:.1}\" \
                 fill=\"#1f2328\"/>",
                lx + 2.0,
                lx + 2.0,
                lx + 22.0,
                lx + 30.0,
                lx + 22.0,
                ly - 4.0,
                lx + 22.0,
                ly + 4.0
            );
        } else {
            let _ = write!(
                s,
                "<g class=\"item {class}\"><line class=\"shaft\" x1=\"{lx:.1}\" y1=\"{ly:.1}\" \
                 x2=\"{:.1}\" y2=\"{ly:.1}\"/>",
                lx + 30.0
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            lx + 38.0,
            ly + 4.0,
            esc(label)
        );
        lx += w;
    }
    s.push_str("</g>\n</svg>\n");
    s
}

/// Where a port label is centred on an arrow from `a` to `b`: the middle of the longest
/// stretch of it that no firewall bar (and no mark of where it died, at `died`) covers, so
/// the label never sits on either.
fn label_x(a: f64, b: f64, firewalls: &[f64], died: Option<f64>) -> f64 {
    let (lo, hi) = (a.min(b), a.max(b));
    let mut cuts: Vec<(f64, f64)> = firewalls
        .iter()
        .filter(|&&f| f + FW_W > lo && f < hi)
        .map(|&f| (f - 3.0, f + FW_W + 3.0))
        .chain(died.map(|m| (m - 11.0, m + 11.0)))
        .collect();
    cuts.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut best = (lo, hi);
    let mut best_len = f64::NEG_INFINITY;
    let mut start = lo;
    for (from, to) in cuts.iter().copied().chain(std::iter::once((hi, hi))) {
        let len = from - start;
        if len > best_len {
            best = (start, from);
            best_len = len;
        }
        start = start.max(to);
    }
    (best.0 + best.1) / 2.0
}

/// Where the mark of a flow that died goes on its arrow from `a` to `b`: on the first
/// firewall bar it crosses ("firewall"), or between the last bar and the destination
/// ("beyond_firewall"); the middle of the arrow when it crosses no bar.
fn died_x(a: f64, b: f64, place: &str, firewalls: &[f64]) -> f64 {
    let dir = if b > a { 1.0 } else { -1.0 };
    let mut crossed: Vec<f64> = firewalls
        .iter()
        .map(|f| f + FW_W / 2.0)
        .filter(|c| (c - a) * dir > 0.0 && (b - c) * dir > 0.0)
        .collect();
    crossed.sort_by(|x, y| ((x - a) * dir).total_cmp(&((y - a) * dir)));
    match (place, crossed.first(), crossed.last()) {
        ("firewall", Some(first), _) => *first,
        (_, _, Some(last)) => {
            let after = last + dir * (FW_W / 2.0 + 3.0);
            // Halfway between the bar and the arrow head.
            (after + (b - dir * 12.0)) / 2.0
        }
        _ => (a + b) / 2.0,
    }
}

/// The legend: every verdict's colour, the dashes of unexpected flows, the firewall and
/// which end opens the connection. (label, class)
fn legend_items(died: bool) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = Verdict::ALL
        .iter()
        .map(|&v| (verdict_label(v).to_string(), super::verdict_class(v)))
        .collect();
    items.push(("unexpected (dashed)".into(), "unexpected".into()));
    items.push(("firewall".into(), "fw".into()));
    if died {
        items.push((
            "where it died (the firewall's interfaces show it)".into(),
            "died".into(),
        ));
    }
    items.push((
        "from the side that connects to the side that accepts".into(),
        "origin".into(),
    ));
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text() {
        assert_eq!(clip("smtp", 10), "smtp");
        assert_eq!(clip("abcdefghijk", 5), "abcd…");
    }

    #[test]
    fn a_port_label_avoids_the_firewall_bars() {
        // One bar at 100..122 on an arrow from 40 to 300: the label goes right of it.
        assert_eq!(label_x(40.0, 300.0, &[100.0], None), (125.0 + 300.0) / 2.0);
        // The same arrow drawn right to left.
        assert_eq!(label_x(300.0, 40.0, &[100.0], None), (125.0 + 300.0) / 2.0);
        // No bar in between: the middle.
        assert_eq!(label_x(40.0, 90.0, &[100.0], None), 65.0);
        // Two bars: the longest free stretch.
        assert_eq!(
            label_x(0.0, 400.0, &[50.0, 300.0], None),
            (75.0 + 297.0) / 2.0
        );
        // A mark of where it died is kept clear too.
        assert_eq!(
            label_x(40.0, 300.0, &[100.0], Some(200.0)),
            (211.0 + 300.0) / 2.0
        );
    }

    #[test]
    fn where_it_died_is_marked_on_the_bar_or_beyond_it() {
        // Bars at 100..122 and 300..322; an arrow from 40 to 500 crosses both.
        let bars = [100.0, 300.0];
        assert_eq!(died_x(40.0, 500.0, "firewall", &bars), 111.0);
        let beyond = died_x(40.0, 500.0, "beyond_firewall", &bars);
        assert!(beyond > 322.0 && beyond < 500.0, "{beyond}");
        // Right to left: the first bar crossed is the one nearer the source.
        assert_eq!(died_x(500.0, 40.0, "firewall", &bars), 311.0);
        let beyond = died_x(500.0, 40.0, "beyond_firewall", &bars);
        assert!(beyond > 40.0 && beyond < 100.0, "{beyond}");
        // No bar crossed: the middle.
        assert_eq!(died_x(130.0, 290.0, "firewall", &bars), 210.0);
    }

    #[test]
    fn escaped_text_cannot_open_a_tag() {
        assert_eq!(
            super::super::h("<script>\u{1b}'\""),
            "&lt;script&gt;\\x1b&#39;&quot;"
        );
    }
}
