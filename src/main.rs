//! The `exflow` command: parse arguments, run the pipeline, map the outcome to an exit code
//! (0 fine, 1 a `--fail-on` condition met, 2 usage or input error).

#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::{Args, Parser, Subcommand, ValueEnum};
use exflow::aggregate::stats::RunStats;
use exflow::aggregate::Aggregator;
use exflow::classify::catalogue::{Catalogue, Profile};
use exflow::classify::site::{self, Site};
use exflow::error::Error;
use exflow::flow::FlowConfig;
use exflow::pipeline::{self, Options};
use exflow::report::gate::Condition;
use exflow::report::model::Report;
use exflow::report::port_catalogue as ports_report;
use exflow::report::summary;
use exflow::report::terminal::sanitize;
use exflow::report::words;
use exflow::report::{build, html, junit, live_view, markdown, rules, table};
use exflow::source::file::name_of_path;
use exflow::source::live::{self, Live, LiveOptions};
use exflow::source::outputs;
use exflow::source::privileges::{self, Dropped};
use exflow::time::Duration;
use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "exflow",
    version,
    about = "Which Exchange flows a firewall lets through, drops, refuses or resets — from packets alone"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Analyse capture files (pcap, pcapng; gzip or zstd compressed; `-` for stdin).
    Analyze(AnalyzeArgs),
    /// Capture live on an interface: the report refreshed every --interval, the final one
    /// at Ctrl-C (or SIGTERM, or the end of --duration).
    Live(LiveArgs),
    /// Print the Exchange port catalogue, every port of every source with its source.
    Ports(PortsArgs),
    /// Print a commented site file to start from; with --from, the site inferred from a
    /// capture (or connection records), each fact with its evidence, for you to correct.
    Init(InitArgs),
    /// Print the allow rules the site's Exchange needs (nftables, iptables, Windows
    /// Firewall, Cisco ASA); with --report, only those that fix the report's failed flows.
    Rules(RulesArgs),
}

#[derive(Args)]
struct InitArgs {
    /// Infer the site from these captures or connection records (as `analyze` reads them).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    from: Vec<std::ffi::OsString>,
    /// A BPF filter applied to the captures first (as `analyze --filter`).
    #[arg(long, value_name = "EXPR", requires = "from")]
    filter: Option<String>,
}

#[derive(Args)]
struct RulesArgs {
    /// The site file (exflow init prints one to start from).
    #[arg(long, value_name = "SITE.toml")]
    site: String,
    /// The firewall syntax: nft (an nftables table), iptables / ip6tables (iptables-restore
    /// files for IPv4 / IPv6), ps1 (PowerShell New-NetFirewallRule for the Exchange servers),
    /// asa (Cisco ASA access lists).
    #[arg(long, value_enum, default_value_t = RulesFormat::Nft)]
    format: RulesFormat,
    /// An exflow JSON report (analyze --format json): only the rules that fix its failed
    /// flows (blocked, refused, rejected, flaky, cut, and unsupported restrictions).
    #[arg(long, value_name = "REPORT.json")]
    report: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RulesFormat {
    Nft,
    Iptables,
    Ip6tables,
    Ps1,
    Asa,
}

#[derive(Args)]
struct PortsArgs {
    /// Only the roles a site of this profile expects (mailbox: no Edge; edge: Edge in the
    /// perimeter).
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
    #[arg(long, value_enum, default_value_t = PortsFormat::Table)]
    format: PortsFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Mailbox,
    Edge,
}

impl ProfileArg {
    fn profile(self) -> Profile {
        match self {
            ProfileArg::Mailbox => Profile::Mailbox,
            ProfileArg::Edge => Profile::Edge,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PortsFormat {
    Table,
    Json,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// Capture files, read in order as one capture. `-` reads standard input.
    /// (A name that is not UTF-8 is accepted and printed with its other bytes as `\xNN`.)
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::ffi::OsString>,

    /// Only packets matching this BPF expression (tcpdump syntax, compiled by libpcap).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,

    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,

    /// Read every FILE as this kind instead of telling it by content: a capture (pcap,
    /// pcapng) or connection records (Zeek's conn.log, Suricata's eve.json, exflow's own
    /// --flows lines).
    #[arg(long, value_enum, value_name = "KIND")]
    input: Option<InputArg>,

    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum InputArg {
    Pcap,
    Pcapng,
    Zeek,
    Eve,
    Exflow,
}

impl InputArg {
    fn kind(self) -> pipeline::InputKind {
        use exflow::flow::import::Kind;
        use pipeline::InputKind::{Capture, Records};
        match self {
            InputArg::Pcap | InputArg::Pcapng => Capture,
            InputArg::Zeek => Records(Kind::Zeek),
            InputArg::Eve => Records(Kind::Eve),
            InputArg::Exflow => Records(Kind::Exflow),
        }
    }
}

#[derive(Args)]
struct LiveArgs {
    /// The interface to capture on (`exflow live --list-interfaces` shows them; `any` is every
    /// interface at once on Linux).
    #[arg(
        long = "interface",
        short = 'i',
        value_name = "IFACE",
        required_unless_present = "list_interfaces"
    )]
    interface: Option<String>,

    /// List the interfaces that can be captured on (name, flags, addresses, description)
    /// and exit.
    #[arg(long)]
    list_interfaces: bool,

    /// Only packets matching this BPF expression (tcpdump syntax; applied in the kernel).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,

    /// Print the report this often (e.g. 5s, 500ms, 1m; 0 = only the final report): in place
    /// when standard output is a terminal, appended under a timestamped header line when it is
    /// not, one compact JSON report per line with --format json (the final one last, with
    /// "interim": false). Not printed with --format summary, junit or html, nor with --flows -.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    interval: std::time::Duration,

    /// Stop after this long (e.g. 10m) and print the final report, as Ctrl-C does.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    duration: Option<std::time::Duration>,

    /// Also write every captured packet to this pcap file (flushed at the end).
    #[arg(long, short = 'w', value_name = "OUT.pcap")]
    write: Option<String>,

    /// Do not put the interface in promiscuous mode (on a mirror port it must be).
    #[arg(long)]
    no_promisc: bool,

    /// libpcap's immediate mode: each packet handed over as it arrives instead of in blocks
    /// of up to 10 ms. On Linux it costs buffer space: each packet then takes a slot sized
    /// for the largest packet (64 KiB on interfaces with GRO), so bursts drop sooner.
    #[arg(long)]
    immediate: bool,

    /// Bytes kept of each packet (every header fits in the default).
    #[arg(long, value_name = "BYTES", default_value_t = live::DEFAULT_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(64..=262_144))]
    snaplen: u32,

    /// The kernel's capture buffer in MiB: room for bursts (a full buffer drops packets;
    /// the report counts them).
    #[arg(long, value_name = "MIB", default_value_t = live::DEFAULT_BUFFER_MIB,
          value_parser = clap::value_parser!(u32).range(1..=2047))]
    buffer_size: u32,

    /// As root: the user to run as once the interface and the output files are open, like
    /// tcpdump's -Z (its groups, no capabilities). Not root, the user stays and only drops any
    /// capabilities it was given.
    #[arg(long, short = 'Z', value_name = "USER", default_value = privileges::DEFAULT_USER)]
    user: String,

    /// Keep root (uid 0 and every capability) for the whole capture instead of dropping to
    /// --user once the interface is open.
    #[arg(long, conflicts_with = "user")]
    no_drop_privileges: bool,

    #[command(flatten)]
    report: ReportArgs,
}

/// A duration: a number with a unit (ms, s, m, h; seconds without one), e.g. 5s, 500ms,
/// 1.5m, 10m.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 5s, 500ms, 1m, 2h)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}' (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// What to report and how: shared by `analyze` and `live`.
#[derive(Args)]
struct ReportArgs {
    /// The site file (TOML, see `exflow init`). Without it the topology is inferred from
    /// the traffic, and the report says what was inferred and why.
    #[arg(long, value_name = "SITE.toml")]
    site: Option<String>,

    /// The site profile (overrides the site file's, or the inferred one): mailbox (no Edge)
    /// or edge (an Edge Transport server in the perimeter).
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,

    /// Report format: the terminal table, the JSON report (schema 1), Markdown for a
    /// ticket, the short capture summary (packets, connections per conn_state, anomalies),
    /// or JUnit XML for CI (a test case per expected flow, unexpected flow, unsupported
    /// restriction, scan and flood, and one per finding in a suite of its own), or one self-contained HTML file with the site drawn
    /// (live: the final report only). [default: table]
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Write one JSON line per connection (Zeek conn.log field names) to this file. `-` is
    /// standard output, which then carries those lines only: no report (so `--flows -` with
    /// `--format` is refused). Never an input file (refused). Each line's `role` (the
    /// catalogue role, e.g. smtp-inbound) comes from --site; without a site file it is
    /// always null, because the site is inferred only after the whole input, when the lines
    /// are written already.
    #[arg(long, value_name = "OUT.jsonl")]
    flows: Option<String>,

    /// Derive the connections' uids from N, for output that is the same on every run
    /// (tests). Without it they come from a random number, so that the uids of two runs
    /// (or two sensors) never collide.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,

    /// Exit with 1 when any of these is found (comma-separated): failed (any of blocked,
    /// refused, rejected, flaky, cut), blocked, refused, rejected, flaky, cut, one-sided,
    /// not-seen, unexpected, unsupported, scan.
    #[arg(long, value_delimiter = ',', value_name = "CONDITION,...", value_parser = parse_condition)]
    fail_on: Vec<Condition>,

    /// Colour the terminal table: auto (when stdout is a terminal and NO_COLOR is unset),
    /// always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,

    /// The terminal table's width in columns (no line is wider). By default the terminal's
    /// (COLUMNS, else the terminal's own size) when standard output is one, else 100.
    #[arg(long, value_name = "COLUMNS",
          value_parser = clap::value_parser!(u16).range(20..))]
    width: Option<u16>,

    #[command(flatten)]
    timeouts: TimeoutArgs,
}

impl ReportArgs {
    /// The report format (the terminal table unless --format says otherwise).
    fn format(&self) -> Format {
        self.format.unwrap_or(Format::Table)
    }

    /// Whether the report goes to standard output: not with `--flows -`, whose lines do.
    fn report_to_stdout(&self) -> bool {
        self.flows.as_deref() != Some("-")
    }

    /// Refuses, before anything is opened for writing, an output that would overwrite an
    /// input (the captures or records, the site file) or another output, and `--flows -`
    /// together with a `--format` (both would be standard output).
    fn check_outputs(&self, inputs: &[&str], write: Option<&str>) -> Result<(), Error> {
        if let (Some("-"), Some(f)) = (self.flows.as_deref(), self.format) {
            return Err(Error::Usage(format!(
                "--flows - and --format {} would both write to standard output: write the \
                 connections to a file (--flows conns.jsonl), or leave out --format to get \
                 only the connection lines",
                f.name()
            )));
        }
        let mut ins: Vec<&str> = inputs.to_vec();
        if let Some(site) = &self.site {
            ins.push(site);
        }
        let mut outs = vec![];
        if let Some(path) = write {
            outs.push(outputs::Output {
                option: "--write",
                path,
            });
        }
        if let Some(path) = &self.flows {
            outs.push(outputs::Output {
                option: "--flows",
                path,
            });
        }
        outputs::refuse_overwrite(&ins, &outs)
    }

    /// The flow table's settings, with the uid key: `--seed`, else a random one.
    fn flow_config(&self) -> FlowConfig {
        FlowConfig {
            uid_key: self.seed.unwrap_or_else(random_u64),
            ..self.timeouts.config()
        }
    }

    /// Reads the site file, if one was given (before any capture is read: a mistake in it
    /// should not cost a long read).
    fn load_site(&self) -> Result<Option<Site>, Error> {
        match &self.site {
            Some(path) => Ok(Some(Site::load(std::path::Path::new(path))?)),
            None => Ok(None),
        }
    }

    /// What the `--flows` lines' `role` is classified against: the site file's site with
    /// `--profile` applied, as the report judges it. None without a site file.
    fn roles(&self, given: Option<&Site>) -> Result<Option<pipeline::Roles>, Error> {
        let Some(site) = given else {
            return Ok(None);
        };
        let mut site = site.clone();
        if let Some(p) = self.profile {
            site.profile = p.profile();
        }
        Ok(Some(pipeline::Roles {
            site,
            catalogue: catalogue()?,
        }))
    }

    /// The report of what the pipeline found, against the given site or one inferred, and
    /// that site.
    fn report(
        &self,
        stats: &RunStats,
        agg: &Aggregator,
        given: Option<&Site>,
    ) -> Result<(Report, Site), Error> {
        let profile = self.profile.map(ProfileArg::profile);
        Ok(build::conclude_with_site(
            stats,
            agg,
            given,
            profile,
            catalogue()?,
        ))
    }

    /// The report in the chosen format (the summary format is the caller's); `site` is the
    /// one it was judged against.
    fn render(&self, report: &Report, site: &Site) -> Result<String, Error> {
        Ok(match self.format() {
            Format::Json => {
                let mut s = exflow::report::jsonl::to_json(report, true)
                    .map_err(|e| Error::Usage(format!("JSON report: {e}")))?;
                s.push('\n');
                s
            }
            Format::Md => markdown::render(report),
            Format::Junit => junit::render(report),
            Format::Html => html::render(report, site, catalogue()?),
            Format::Table | Format::Summary => table::render(report, &self.table_options()),
        })
    }

    /// How the terminal table is drawn: colour, and the width (`--width`, else the
    /// terminal's when standard output is one, else the default).
    fn table_options(&self) -> table::TableOptions {
        let terminal = if std::io::stdout().is_terminal() {
            terminal_size().1
        } else {
            None
        };
        table::TableOptions {
            color: self.color(),
            width: self
                .width
                .map(usize::from)
                .or(terminal)
                .unwrap_or(table::DEFAULT_WIDTH),
        }
    }

    fn color(&self) -> bool {
        match self.color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }

    /// 1 when a `--fail-on` condition is met, else 0.
    fn exit_code(&self, report: &Report) -> ExitCode {
        if self.fail_on.iter().any(|c| c.met(report)) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// The terminal's rows and columns: LINES and COLUMNS when set, else what the terminal on
/// standard output says (TIOCGWINSZ), each None when unknown.
fn terminal_size() -> (Option<usize>, Option<usize>) {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let asked = console::Term::stdout().size_checked();
    (
        env("LINES").or(asked.map(|(rows, _)| usize::from(rows))),
        env("COLUMNS").or(asked.map(|(_, cols)| usize::from(cols))),
    )
}

/// `exflow init`: the commented template, or with --from the site inferred from the files.
fn init(a: InitArgs) -> Result<ExitCode, Error> {
    if a.from.is_empty() {
        return print_stdout(&site::template()).map(|_| ExitCode::SUCCESS);
    }
    let from: Vec<String> = a.from.iter().map(|f| name_of_path(f)).collect();
    let opts = Options {
        files: from.clone(),
        filter: a.filter,
        ..Options::default()
    };
    let (outcome, agg, _) = pipeline::analyze(&opts)?;
    for w in &outcome.source.warnings {
        eprintln!("exflow: warning: {}", sanitize(&w.to_string()));
    }
    for w in exflow::report::words::source_warnings(&outcome.source) {
        eprintln!("exflow: warning: {}", sanitize(&w));
    }
    let text = exflow::report::site_file::inferred(&agg, catalogue()?, &from);
    print_stdout(&text).map(|_| ExitCode::SUCCESS)
}

fn catalogue() -> Result<&'static Catalogue, Error> {
    Catalogue::embedded().map_err(|e| Error::Usage(format!("port catalogue: {e}")))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Md,
    Summary,
    /// JUnit XML for CI (live: the final report only).
    Junit,
    /// One self-contained HTML file: the site drawn, the tables, the evidence and fix of
    /// each failed flow (live: the final report only).
    Html,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Md => "md",
            Format::Summary => "summary",
            Format::Junit => "junit",
            Format::Html => "html",
        }
    }
}

/// 64 random bits from the OS (std's hasher keys are seeded by it), mixed with the time and
/// the process id: a different uid key on every run.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    RandomState::new().hash_one((now, std::process::id()))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

/// `--fail-on`'s values: the report's conditions (an unknown one is refused with the list).
fn parse_condition(text: &str) -> Result<Condition, String> {
    text.parse()
}

/// Flow-table timeouts and limits.
#[derive(Args)]
struct TimeoutArgs {
    /// Seconds an established TCP connection may stay silent before it is ended (Exchange's
    /// ActiveSync and MAPI/HTTP idle up to 30 minutes; Zeek uses 300).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    tcp_idle: u32,
    /// Seconds an unanswered TCP attempt is kept after its last SYN, so its retransmissions
    /// stay one connection.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    tcp_attempt_idle: u32,
    /// Seconds a closed or reset TCP connection lingers for late packets (Zeek: 5).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    tcp_close_delay: u32,
    /// Seconds of silence that end a UDP flow (Zeek: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    udp_idle: u32,
    /// Seconds of silence that end an ICMP flow (Zeek: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    icmp_idle: u32,
    /// Most connections tracked at once; past it the quietest are evicted (and counted).
    /// Each costs under 750 bytes: the default bounds the table near 70 MiB.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_flows: usize,
    /// Seconds within which packets are put back in time order (a capture of several
    /// interfaces, as dumpcap writes it, steps back by up to a few hundred ms). Up to
    /// 262,144 packets (~32 MiB) wait at most; steps back beyond it are counted and warned of.
    #[arg(long, value_name = "SECS", default_value_t = 1.0,
          value_parser = parse_window)]
    reorder_window: f64,
}

fn parse_window(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{text}' is not a number of seconds from 0 to 3600"
        )),
    }
}

impl TimeoutArgs {
    fn config(&self) -> FlowConfig {
        FlowConfig {
            tcp_idle: Duration::from_secs(self.tcp_idle as i64),
            tcp_attempt_idle: Duration::from_secs(self.tcp_attempt_idle as i64),
            tcp_close_delay: Duration::from_secs(self.tcp_close_delay as i64),
            udp_idle: Duration::from_secs(self.udp_idle as i64),
            icmp_idle: Duration::from_secs(self.icmp_idle as i64),
            max_flows: self.max_flows.max(1),
            reorder_window: Duration((self.reorder_window * 1e9) as i64),
            uid_key: 0,
        }
    }
}

fn analyze(a: AnalyzeArgs) -> Result<ExitCode, Error> {
    let r = &a.report;
    let files: Vec<String> = a.files.iter().map(|f| name_of_path(f)).collect();
    let inputs: Vec<&str> = files.iter().map(String::as_str).collect();
    r.check_outputs(&inputs, None)?;
    let given = r.load_site()?;
    let opts = Options {
        files: files.clone(),
        input: a.input.map(InputArg::kind),
        filter: a.filter.clone(),
        flows: r.flows.clone(),
        flow: r.flow_config(),
        progress: !a.quiet && std::io::stderr().is_terminal(),
        nat: given.as_ref().map(Site::nat_pairs).unwrap_or_default(),
        roles: r.roles(given.as_ref())?,
    };
    let (outcome, agg, failure) = pipeline::analyze(&opts)?;
    for w in &outcome.source.warnings {
        eprintln!("exflow: warning: {}", sanitize(&w.to_string()));
    }
    for w in exflow::report::words::source_warnings(&outcome.source) {
        eprintln!("exflow: warning: {}", sanitize(&w));
    }
    let to_stdout = r.report_to_stdout();
    let code = if r.format() == Format::Summary {
        if to_stdout {
            print_stdout(&summary::render(&outcome))?;
        }
        ExitCode::SUCCESS
    } else {
        let (report, site) = r.report(&outcome, &agg, given.as_ref())?;
        if to_stdout {
            print_stdout(&r.render(&report, &site)?)?;
        }
        r.exit_code(&report)
    };
    Ok(after_write_failures(code, failure.as_slice()))
}

/// `exflow live`: capture until Ctrl-C, SIGTERM or --duration; periodic reports from the
/// engine's snapshot of open flows; the final report from every packet captured.
fn live(a: LiveArgs) -> Result<ExitCode, Error> {
    if a.list_interfaces {
        print_stdout(&exflow::report::terminal::interface_table(
            &live::list_interfaces()?,
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(iface) = a.interface.as_deref() else {
        return Err(Error::Usage("live: -i IFACE is required".into()));
    };
    let r = &a.report;
    r.check_outputs(&[], a.write.as_deref())?;
    // The user is looked up before anything is opened: a name that does not exist stops here.
    let run_as = if a.no_drop_privileges || !privileges::is_root() {
        None
    } else {
        Some(privileges::lookup(&a.user)?)
    };
    let given = r.load_site()?;
    let opts = LiveOptions {
        interface: iface.to_string(),
        filter: a.filter.clone(),
        snaplen: a.snaplen,
        promisc: !a.no_promisc,
        buffer_size: a.buffer_size.saturating_mul(1024 * 1024),
        write: a.write.clone(),
        immediate: a.immediate,
    };
    let to_stdout = r.report_to_stdout();
    let periodic =
        to_stdout && !matches!(r.format(), Format::Summary | Format::Junit | Format::Html);
    // On a terminal, the interim reports are the live view, on the alternate screen.
    let view = periodic && r.format() != Format::Json && std::io::stdout().is_terminal();
    let in_view = Arc::new(AtomicBool::new(false));
    let run = pipeline::LiveRun {
        capture: opts,
        flow: r.flow_config(),
        flows: r.flows.clone(),
        duration: a.duration,
        interval: periodic.then_some(a.interval),
        nat: given.as_ref().map(Site::nat_pairs).unwrap_or_default(),
        roles: r.roles(given.as_ref())?,
        abort: view.then(|| pipeline::AbortOutput {
            armed: Arc::clone(&in_view),
            text: live_view::LEAVE,
        }),
        run_as,
    };
    let started = std::time::Instant::now();
    let banner = |capture: &Live, dropped: &Dropped| {
        eprintln!(
            "exflow: capturing on {} (link type {}, snaplen {}, buffer {} MiB{}{}); {}; {}",
            sanitize(iface),
            capture.link(),
            a.snaplen,
            a.buffer_size,
            match (!a.no_promisc, a.immediate) {
                (true, false) => "",
                (true, true) => ", immediate mode",
                (false, false) => ", not promiscuous",
                (false, true) => ", not promiscuous, immediate mode",
            },
            match &a.filter {
                Some(f) => format!(", filter '{}'", sanitize(f)),
                None => String::new(),
            },
            privileges_text(dropped),
            match a.duration {
                Some(d) => format!("stopping after {d:?} or at Ctrl-C"),
                None => "Ctrl-C for the final report".to_string(),
            }
        )
    };
    let on_tick = |stats: &RunStats, agg: &Aggregator| -> Result<(), Error> {
        let (mut report, site) = r.report(stats, agg, given.as_ref())?;
        report.interim = Some(true);
        if !view {
            return print_stdout(&render_live(r, &report, &site, iface)?);
        }
        let (rows, cols) = terminal_size();
        let opts = table::TableOptions {
            color: r.color(),
            width: r
                .width
                .map(usize::from)
                .or(cols)
                .unwrap_or(table::DEFAULT_WIDTH),
        };
        let status = live_view::Status {
            interface: iface,
            elapsed: started.elapsed(),
        };
        let lines = live_view::render(&report, &status, &opts, rows.unwrap_or(24));
        // Under the lock the signal thread takes: it sees the alternate screen entered
        // exactly when it is.
        let _out = std::io::stdout().lock();
        let mut text = String::new();
        if !in_view.swap(true, Ordering::SeqCst) {
            text.push_str(live_view::ENTER);
        }
        text.push_str(&live_view::frame(&lines));
        print_stdout(&text)
    };
    let end = pipeline::live(&run, banner, on_tick);
    // Back to the normal screen, as it was before the view, whatever happened: warnings,
    // errors and the final report go there.
    let viewed = {
        let _out = std::io::stdout().lock();
        let viewed = in_view.swap(false, Ordering::SeqCst);
        if viewed {
            print_stdout(live_view::LEAVE)?;
        }
        viewed
    };
    let end = end?;
    let outcome = end.stats;
    let agg = end.agg;
    if let Some(w) = outcome
        .live_drops
        .as_ref()
        .and_then(words::live_drops_warning)
    {
        eprintln!("exflow: warning: {}", sanitize(&w));
    }
    let code = if to_stdout && r.format() == Format::Summary {
        print_stdout(&summary::render(&outcome))?;
        ExitCode::SUCCESS
    } else {
        let (mut report, site) = r.report(&outcome, &agg, given.as_ref())?;
        report.interim = Some(false);
        if to_stdout {
            // After the view, the final report whole, on its own.
            let text = if viewed {
                r.render(&report, &site)?
            } else {
                render_live(r, &report, &site, iface)?
            };
            print_stdout(&text)?;
        }
        r.exit_code(&report)
    };
    if let Some(e) = end.capture_error {
        for f in &end.write_failures {
            eprintln!(
                "exflow: warning: {}",
                sanitize(&words::write_failure_warning(f))
            );
        }
        return Err(Error::input(
            format!("live:{iface}"),
            format!("capture stopped: {e}"),
        ));
    }
    Ok(after_write_failures(code, &end.write_failures))
}

/// What the banner says of the user the capture runs as.
fn privileges_text(dropped: &Dropped) -> String {
    match dropped {
        Dropped::KeptRoot => "running as root (--no-drop-privileges)".to_string(),
        Dropped::User { target, bounding } => format!(
            "running as {} (uid {}, gid {}) without capabilities{}",
            sanitize(&target.name),
            target.uid,
            target.gid,
            if *bounding {
                ""
            } else {
                " (the bounding set could not be emptied)"
            }
        ),
        Dropped::NotRoot { uid, capabilities } => format!(
            "not root (uid {uid}): user unchanged{}",
            if *capabilities > 0 {
                format!(", {capabilities} capabilities dropped")
            } else {
                String::new()
            }
        ),
    }
}

/// Exit code 3 when an output (`--write`, `--flows`) could not be written whole, each with a
/// warning on stderr giving what was and was not written; else `code`.
fn after_write_failures(code: ExitCode, failures: &[pipeline::WriteFailure]) -> ExitCode {
    for f in failures {
        eprintln!(
            "exflow: warning: {}",
            sanitize(&words::write_failure_warning(f))
        );
    }
    if failures.is_empty() {
        code
    } else {
        ExitCode::from(3)
    }
}

/// A live report as printed outside the live view: JSON on one line; the table or Markdown
/// after a header line with the time.
fn render_live(r: &ReportArgs, report: &Report, site: &Site, iface: &str) -> Result<String, Error> {
    if r.format() == Format::Json {
        let mut s = exflow::report::jsonl::to_json(report, false)
            .map_err(|e| Error::Usage(format!("JSON report: {e}")))?;
        s.push('\n');
        return Ok(s);
    }
    let body = r.render(report, site)?;
    if matches!(r.format(), Format::Junit | Format::Html) {
        // One XML or HTML document: no header line in front of it.
        return Ok(body);
    }
    Ok(format!(
        "=== exflow live on {}: {} report at {} ({} packets) ===\n{body}",
        sanitize(iface),
        if report.interim == Some(true) {
            "interim"
        } else {
            "final"
        },
        utc_now(),
        report.capture.packets
    ))
}

/// The wall-clock time now, as RFC 3339 UTC to the second.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64().floor())
        .unwrap_or(0.0);
    words::utc_rfc3339(secs)
}

fn print_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::BrokenPipe),
        Err(e) => Err(Error::Output {
            file: "standard output".into(),
            problem: e.to_string(),
        }),
        Ok(()) => Ok(()),
    }
}

fn ports(a: PortsArgs) -> Result<ExitCode, Error> {
    let cat = catalogue()?;
    let profile = a.profile.map(ProfileArg::profile);
    let text = match a.format {
        PortsFormat::Table => ports_report::render_table(cat, profile),
        PortsFormat::Json => ports_report::render_json(cat, profile)
            .map_err(|e| Error::Usage(format!("port catalogue: {e}")))?,
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `exflow rules`: the plan from the catalogue and the site (and the report), rendered.
fn rules(a: RulesArgs) -> Result<ExitCode, Error> {
    let cat = catalogue()?;
    let site = Site::load(std::path::Path::new(&a.site))?;
    let plan = match &a.report {
        None => rules::plan::plan(cat, &site),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::input(path.clone(), format!("cannot read the report: {e}")))?;
            let failed =
                rules::plan::failed_flows(&text).map_err(|e| Error::input(path.clone(), e))?;
            rules::plan::plan_fixes(cat, &site, path, &failed)
                .map_err(|e| Error::input(path.clone(), e))?
        }
    };
    let syntax = match a.format {
        RulesFormat::Nft => rules::Syntax::Nft,
        RulesFormat::Iptables => rules::Syntax::Iptables,
        RulesFormat::Ip6tables => rules::Syntax::Ip6tables,
        RulesFormat::Ps1 => rules::Syntax::Ps1,
        RulesFormat::Asa => rules::Syntax::Asa,
    };
    print_stdout(&rules::render(&plan, syntax))?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Live(a) => live(a),
        Command::Ports(a) => ports(a),
        Command::Init(a) => init(a),
        Command::Rules(a) => rules(a),
    };
    match result {
        Ok(code) => code,
        Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exflow: {}", sanitize(&e.to_string()));
            ExitCode::from(2)
        }
    }
}
