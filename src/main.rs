//! The `exflow` command: parse arguments, run the pipeline, map the outcome to an exit code
//! (0 fine, 1 a `--fail-on` condition met, 2 usage or input error).

use clap::{Args, Parser, Subcommand, ValueEnum};
use exflow::aggregate::Aggregator;
use exflow::classify::catalogue::{Catalogue, Profile};
use exflow::classify::infer;
use exflow::classify::ports as ports_report;
use exflow::classify::site::{self, Site};
use exflow::error::Error;
use exflow::flow::FlowConfig;
use exflow::pipeline::{self, Options, Outcome};
use exflow::report::model::{Report, Verdict};
use exflow::report::summary;
use exflow::report::{build, markdown, table};
use exflow::time::Duration;
use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;

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
    /// Print the Exchange port catalogue, every port of every source with its source.
    Ports(PortsArgs),
    /// Print a commented site file to start from.
    Init,
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
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,

    /// Only packets matching this BPF expression (tcpdump syntax, compiled by libpcap).
    #[arg(long, short = 'f', value_name = "BPF")]
    filter: Option<String>,

    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    report: ReportArgs,
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
    /// ticket, or the short capture summary (packets, connections per conn_state, anomalies).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Write one JSON line per connection (Zeek conn.log field names) to this file (`-` = stdout).
    #[arg(long, value_name = "OUT.jsonl")]
    flows: Option<String>,

    /// Exit with 1 when any of these is found (comma-separated): failed (any of blocked,
    /// refused, rejected, flaky, cut), blocked, refused, rejected, flaky, cut, one-sided,
    /// not-seen, unexpected, unsupported, scan.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CONDITION,...")]
    fail_on: Vec<FailOn>,

    /// Colour the terminal table: auto (when stdout is a terminal and NO_COLOR is unset),
    /// always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,

    #[command(flatten)]
    timeouts: TimeoutArgs,
}

impl ReportArgs {
    /// Reads the site file, if one was given (before any capture is read: a mistake in it
    /// should not cost a long read).
    fn load_site(&self) -> Result<Option<Site>, Error> {
        match &self.site {
            Some(path) => Ok(Some(Site::load(std::path::Path::new(path))?)),
            None => Ok(None),
        }
    }

    /// The report of what the pipeline found, against the given site or one inferred.
    fn report(
        &self,
        outcome: &Outcome,
        agg: &Aggregator,
        given: Option<&Site>,
    ) -> Result<Report, Error> {
        let cat = catalogue()?;
        let (mut site, reasons) = match given {
            Some(site) => (site.clone(), vec![]),
            None => {
                let inferred = infer::infer(agg, cat);
                (inferred.site, inferred.reasons)
            }
        };
        if let Some(p) = self.profile {
            site.profile = p.profile();
        }
        let fin = agg.finalize(&site, cat);
        Ok(build::report(outcome, &site, &reasons, fin))
    }

    /// The report in the chosen format (the summary format is the caller's).
    fn render(&self, report: &Report) -> Result<String, Error> {
        Ok(match self.format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(report)
                    .map_err(|e| Error::Usage(format!("JSON report: {e}")))?;
                s.push('\n');
                s
            }
            Format::Md => markdown::render(report),
            Format::Table | Format::Summary => table::render(
                report,
                &table::TableOptions {
                    color: self.color(),
                    ..table::TableOptions::default()
                },
            ),
        })
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

fn catalogue() -> Result<&'static Catalogue, Error> {
    Catalogue::embedded().map_err(|e| Error::Usage(format!("port catalogue: {e}")))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Md,
    Summary,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Failed,
    Blocked,
    Refused,
    Rejected,
    Flaky,
    Cut,
    OneSided,
    NotSeen,
    Unexpected,
    Unsupported,
    Scan,
}

impl FailOn {
    /// Whether the report meets this condition.
    fn met(self, r: &Report) -> bool {
        let any = |v: Verdict| r.expected.iter().any(|e| e.verdict == v);
        match self {
            FailOn::Failed => r.expected.iter().any(|e| e.verdict.is_failure()),
            FailOn::Blocked => any(Verdict::Blocked),
            FailOn::Refused => any(Verdict::Refused),
            FailOn::Rejected => any(Verdict::Rejected),
            FailOn::Flaky => any(Verdict::Flaky),
            FailOn::Cut => any(Verdict::Cut),
            FailOn::OneSided => any(Verdict::OneSided),
            FailOn::NotSeen => any(Verdict::NotSeen),
            FailOn::Unexpected => !r.unexpected.is_empty(),
            FailOn::Unsupported => !r.unsupported_restrictions.is_empty(),
            FailOn::Scan => !r.scans.is_empty(),
        }
    }
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
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    max_flows: usize,
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
        }
    }
}

fn analyze(a: AnalyzeArgs) -> Result<ExitCode, Error> {
    let r = &a.report;
    let given = r.load_site()?;
    let opts = Options {
        files: a.files.clone(),
        filter: a.filter.clone(),
        flows: r.flows.clone(),
        flow: r.timeouts.config(),
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let (outcome, agg) = pipeline::analyze(&opts)?;
    for w in &outcome.files.warnings {
        eprintln!("exflow: warning: {w}");
    }
    let to_stdout = r.flows.as_deref() != Some("-");
    if r.format == Format::Summary {
        if to_stdout {
            print_stdout(&summary::render(&outcome))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = r.report(&outcome, &agg, given.as_ref())?;
    if to_stdout {
        print_stdout(&r.render(&report)?)?;
    }
    Ok(r.exit_code(&report))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Ports(a) => ports(a),
        Command::Init => print_stdout(&site::template()).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("exflow: {e}");
            ExitCode::from(2)
        }
    }
}
