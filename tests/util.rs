//! Helpers shared by the integration tests: running the binary, temp paths, ../shared.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test that cannot run here says so and returns; under `CI=true` it fails instead, since CI
/// is set up to run everything (root, network namespaces, `../shared` beside the clone).
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: cannot run under CI=true: {why}");
    }
    println!("{test}: skipped: {why}");
}

/// `../shared/captures`, or None (after [`skip`]) when it is absent.
pub fn shared_captures(test: &str) -> Option<PathBuf> {
    let p = root().join("../shared/captures");
    if p.is_dir() {
        Some(p)
    } else {
        skip(test, "../shared/captures not present");
        None
    }
}

/// A fresh path in the system temp dir (the file is not created).
pub fn tmp_path(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("exflow-tests-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}-{name}", N.fetch_add(1, Ordering::Relaxed)))
}

/// Runs the `exflow` binary.
pub fn exflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .output()
        .expect("run exflow")
}

/// Runs `exflow analyze CAPTURE [--site SITE] --format json`, checks that it succeeded and
/// returns the report.
pub fn json_report(capture: &Path, site: Option<&Path>) -> serde_json::Value {
    let mut args = vec!["analyze".to_string(), capture.to_string_lossy().to_string()];
    if let Some(site) = site {
        args.push("--site".into());
        args.push(site.to_string_lossy().to_string());
    }
    args.extend(["--format".to_string(), "json".to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = exflow(&argv);
    assert!(
        o.status.success(),
        "exflow {}: {}",
        argv.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("a JSON report")
}

/// Runs `exflow analyze FILE... --flows TMP` and returns the JSON lines.
pub fn flows_of(files: &[&Path], extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let out = tmp_path("flows.jsonl");
    let out_s = out.to_string_lossy().to_string();
    let mut args: Vec<String> = vec!["analyze".into()];
    args.extend(files.iter().map(|p| p.to_string_lossy().to_string()));
    args.push("--flows".into());
    args.push(out_s.clone());
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let o = exflow(&argv);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect();
    (o, lines)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the tests run as root (nft -c and iptables-restore --test need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The sample site files (`samples/*.site.toml`), sorted.
pub fn sample_sites() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .expect("samples/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".site.toml"))
        .collect();
    v.sort();
    v
}

/// TCP flags for [`TinyPcap::tcp`].
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A small Ethernet capture (legacy pcap, microseconds) built segment by segment: IPv4 TCP,
/// each frame with an 802.1Q tag when `vlan` is set.
pub struct TinyPcap {
    out: Vec<u8>,
    vlan: Option<u16>,
}

/// One side of a TCP segment: address, port, TTL.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    pub ip: [u8; 4],
    pub port: u16,
    pub ttl: u8,
}

impl TinyPcap {
    pub fn new(vlan: Option<u16>) -> TinyPcap {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        out.extend_from_slice(&65_535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // EN10MB
        TinyPcap { out, vlan }
    }

    /// A segment from `src` to `dst` at `t_us` microseconds since the epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        t_us: u64,
        src: Host,
        dst: Host,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> &mut Self {
        let mut f = vec![0x02, 0, 0, 0, 0, dst.ip[3], 0x02, 0, 0, 0, 0, src.ip[3]];
        if let Some(id) = self.vlan {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let ip_at = f.len();
        let total = 20 + 20 + payload.len();
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&(total as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, src.ttl, 6, 0, 0]);
        f.extend_from_slice(&src.ip);
        f.extend_from_slice(&dst.ip);
        let mut sum = 0u32;
        for c in f[ip_at..ip_at + 20].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let ck = !(sum as u16);
        f[ip_at + 10..ip_at + 12].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&src.port.to_be_bytes());
        f.extend_from_slice(&dst.port.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        let (secs, us) = ((t_us / 1_000_000) as u32, (t_us % 1_000_000) as u32);
        for v in [secs, us, f.len() as u32, f.len() as u32] {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self.out.extend_from_slice(&f);
        self
    }

    pub fn bytes(&self) -> &[u8] {
        &self.out
    }
}
