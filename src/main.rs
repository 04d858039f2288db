//! The `exflow` command: parse arguments, run the pipeline, map the outcome to an exit code
//! (0 fine, 1 a `--fail-on` condition met, 2 usage or input error).

use clap::{Args, Parser, Subcommand, ValueEnum};
use exflow::classify::catalogue::{Catalogue, Profile};
use exflow::classify::ports as ports_report;
use exflow::error::Error;
use exflow::flow::FlowConfig;
use exflow::pipeline::{self, Options};
use exflow::report::summary;
use exflow::time::Duration;
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

    /// Write one JSON line per connection (Zeek conn.log field names) to this file (`-` = stdout).
    #[arg(long, value_name = "OUT.jsonl")]
    flows: Option<String>,

    /// Hide the progress bar and the summary's warnings.
    #[arg(long, short = 'q')]
    quiet: bool,

    #[command(flatten)]
    timeouts: TimeoutArgs,
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
    let opts = Options {
        files: a.files,
        filter: a.filter,
        flows: a.flows,
        flow: a.timeouts.config(),
    };
    let outcome = pipeline::analyze(&opts)?;
    for w in &outcome.files.warnings {
        eprintln!("exflow: warning: {w}");
    }
    if opts.flows.as_deref() != Some("-") {
        print_stdout(&summary::render(&outcome))?;
    }
    let _ = a.quiet;
    Ok(ExitCode::SUCCESS)
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
    let cat = Catalogue::embedded().map_err(|e| Error::Usage(format!("port catalogue: {e}")))?;
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
