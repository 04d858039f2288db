//! `exflow live`: the batch queue between the capture thread and the analyzer (no root
//! needed), the command's errors, and real captures through a forwarding firewall in network
//! namespaces (root, `ip`, nftables or iptables, python3; skipped with a printed reason
//! otherwise).
//!
//! The lab (documentation addresses only; no default routes, so nothing can leave it):
//!
//! ```text
//!  <p>c (client)                 <p>f (firewall, ip_forward=1)                 <p>s (server)
//!  203.0.113.10/24 [c0]---[fwc] 203.0.113.1   198.51.100.1 [fws]---[s0] 198.51.100.10/24
//!                           ^ exflow live -i fwc
//! ```
//! The server listens on 443, 25 and 587; the firewall lets 443 through, drops 25 and
//! answers 587 with a TCP reset.

use crate::util::{exflow, is_root, stderr, stdout, tmp_path};
use exflow::source::live::{handoff, Batch, BatchLimits, DropCounters};
use exflow::source::LinkType;
use exflow::time::Timestamp;
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ the batch queue

fn packet(i: u32) -> Vec<u8> {
    let mut p = vec![0u8; 60 + (i % 7) as usize];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p
}

fn limits(packets: usize) -> BatchLimits {
    BatchLimits {
        packets,
        bytes: 1 << 16,
    }
}

#[test]
fn batch_frames_round_trip() {
    let mut b = Batch::with_limits(limits(8));
    for i in 0..5u32 {
        b.push(
            LinkType::RAW,
            Timestamp(1_000 + i64::from(i)),
            1500,
            &packet(i),
        );
    }
    assert_eq!(b.len(), 5);
    let frames: Vec<_> = b.frames().collect();
    for (i, f) in frames.iter().enumerate() {
        let want = packet(i as u32);
        assert_eq!(f.bytes, &want[..]);
        assert_eq!(f.caplen as usize, want.len());
        assert_eq!(f.wire_len, 1500);
        assert_eq!(f.ts, Timestamp(1_000 + i as i64));
        assert_eq!(f.link, LinkType::RAW);
    }
    let id = b.buffer_id();
    b.clear();
    assert!(b.is_empty());
    assert_eq!(b.buffer_id(), id, "clear keeps the buffer");
}

#[test]
fn full_queue_drops_whole_batches_and_counts_their_packets() {
    let counters = Arc::new(DropCounters::default());
    let (mut producer, consumer) = handoff(limits(4), 2, Arc::clone(&counters));
    // Nobody reads: 2 batches fit in the queue, the other 3 are dropped.
    for i in 0..20u32 {
        producer
            .push(LinkType::ETHERNET, Timestamp(i64::from(i)), 100, &packet(i))
            .unwrap();
    }
    let drops = counters.get();
    assert_eq!(drops.queue, 12);
    assert_eq!(counters.queue_batches(), 3);
    assert_eq!((drops.kernel, drops.interface), (0, 0));
    // A dropped batch's buffer is kept: nothing was allocated for the drops.
    assert_eq!(producer.allocated(), 3, "the first batch and one per send");
    let mut got = vec![];
    while let Some(b) = consumer.try_recv() {
        got.extend(b.frames().map(|f| f.ts.0));
        consumer.recycle(b);
    }
    assert_eq!(
        got,
        vec![0, 1, 2, 3, 4, 5, 6, 7],
        "the first two batches, in order"
    );
    // Handed-over + dropped + pending = pushed.
    assert_eq!(
        got.len() as u64 + drops.queue + producer.pending() as u64,
        20
    );
}

#[test]
fn batches_are_reused_in_the_steady_state() {
    let counters = Arc::new(DropCounters::default());
    let (mut producer, consumer) = handoff(limits(16), 8, Arc::clone(&counters));
    let mut ids = HashSet::new();
    let mut received = 0u64;
    for i in 0..16_000u32 {
        producer
            .push(LinkType::ETHERNET, Timestamp(i64::from(i)), 100, &packet(i))
            .unwrap();
        while let Some(b) = consumer.try_recv() {
            ids.insert(b.buffer_id());
            received += b.len() as u64;
            consumer.recycle(b);
        }
    }
    assert_eq!(received, 16_000);
    assert_eq!(counters.get().queue, 0);
    // One batch filling, one handed over and given back: two buffers for 1000 batches.
    assert_eq!(producer.allocated(), 2);
    assert_eq!(ids.len(), 2, "buffers seen by the consumer: {ids:?}");
}

#[test]
fn the_pool_never_outgrows_the_queue() {
    let counters = Arc::new(DropCounters::default());
    let queue = 4;
    let (mut producer, consumer) = handoff(limits(8), queue, Arc::clone(&counters));
    // The consumer takes a batch only every 10th push: the queue fills and drains by turns.
    for i in 0..10_000u32 {
        producer
            .push(LinkType::ETHERNET, Timestamp(i64::from(i)), 100, &packet(i))
            .unwrap();
        if i % 10 == 0 {
            if let Some(b) = consumer.try_recv() {
                consumer.recycle(b);
            }
        }
    }
    assert!(counters.get().queue > 0, "the queue filled");
    assert!(
        producer.allocated() <= queue + 2,
        "allocated {} batches for a queue of {queue}",
        producer.allocated()
    );
}

#[test]
fn every_packet_is_received_or_counted_across_threads() {
    let counters = Arc::new(DropCounters::default());
    let (mut producer, consumer) = handoff(limits(32), 4, Arc::clone(&counters));
    const N: u32 = 200_000;
    let reader = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut last = None;
        let mut batches = 0u64;
        while let Ok(b) = consumer.recv_timeout(Duration::from_secs(10)) {
            for f in b.frames() {
                // Whatever is dropped, what arrives is in order.
                assert!(last < Some(f.ts));
                last = Some(f.ts);
                n += 1;
            }
            batches += 1;
            if batches % 50 == 0 {
                // A slow analyzer, now and then.
                std::thread::sleep(Duration::from_millis(2));
            }
            consumer.recycle(b);
        }
        n
    });
    for i in 0..N {
        producer
            .push(LinkType::ETHERNET, Timestamp(i64::from(i)), 100, &packet(i))
            .unwrap();
    }
    producer.finish();
    let received = reader.join().unwrap();
    assert_eq!(received + counters.get().queue, u64::from(N));
}

#[test]
fn a_partial_batch_is_handed_over_when_old_or_at_the_end() {
    let counters = Arc::new(DropCounters::default());
    let (mut producer, consumer) = handoff(limits(100), 4, Arc::clone(&counters));
    producer
        .push(LinkType::ETHERNET, Timestamp(1), 60, &packet(1))
        .unwrap();
    producer.flush_if_older(Duration::from_secs(60)).unwrap();
    assert!(consumer.try_recv().is_none(), "young: kept");
    std::thread::sleep(Duration::from_millis(5));
    producer.flush_if_older(Duration::from_millis(1)).unwrap();
    assert_eq!(consumer.try_recv().map(|b| b.len()), Some(1));
    producer
        .push(LinkType::ETHERNET, Timestamp(2), 60, &packet(2))
        .unwrap();
    producer.finish();
    assert_eq!(consumer.try_recv().map(|b| b.len()), Some(1));
}

#[test]
fn a_gone_analyzer_is_reported_to_the_capture_thread() {
    let counters = Arc::new(DropCounters::default());
    let (mut producer, consumer) = handoff(limits(1), 4, counters);
    drop(consumer);
    assert!(producer
        .push(LinkType::ETHERNET, Timestamp(1), 60, &packet(1))
        .is_err());
}

// ------------------------------------------------------------------ the command, no capture

#[test]
fn live_list_interfaces_shows_loopback() {
    let o = exflow(&["live", "--list-interfaces"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("INTERFACE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("lo ") && l.contains("loopback")),
        "{out}"
    );
}

#[test]
fn live_unknown_interface_exits_2_listing_those_that_exist() {
    let o = exflow(&["live", "-i", "exlv-nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no interface named 'exlv-nonexistent'"),
        "{err}"
    );
    assert!(err.contains("lo"), "{err}");
}

#[test]
fn live_needs_an_interface_and_valid_durations() {
    let o = exflow(&["live"]);
    assert_eq!(o.status.code(), Some(2));
    let o = exflow(&["live", "-i", "lo", "--interval", "5parsecs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown unit"), "{}", stderr(&o));
}

pub(crate) fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn live_without_permission_says_what_is_needed() {
    let o = if is_root() {
        if !have("setpriv") {
            println!("live_without_permission: skipped: root, and no setpriv to drop it");
            return;
        }
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_exflow"))
            .args(["live", "-i", "lo"])
            .output()
            .unwrap()
    } else {
        exflow(&["live", "-i", "lo", "--duration", "1s"])
    };
    if o.status.success() {
        println!("live_without_permission: skipped: this user may capture (capabilities?)");
        return;
    }
    let err = stderr(&o);
    if err.contains("Permission denied") && err.contains("exec") {
        println!("live_without_permission: skipped: the binary is not executable by nobody");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{err}"
    );
}

#[test]
fn live_bad_filter_exits_2_with_libpcaps_message() {
    if !is_root() {
        crate::util::skip("live_bad_filter", "not root");
        return;
    }
    let o = exflow(&["live", "-i", "lo", "--filter", "tcp port"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("invalid --filter 'tcp port'"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

/// Runs `exflow live` (with `args`) on lo, sends SIGINT twice in a row, and returns the exit
/// code.
fn interrupt_twice(args: &[&str]) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["live", "-i", "lo"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = wait_for_line(child.stderr.take().unwrap(), "capturing on", TIMEOUT_START);
    assert!(started.is_some(), "exflow live did not start");
    let pid = child.id().to_string();
    signal("INT", &pid);
    std::thread::sleep(Duration::from_millis(2));
    signal("INT", &pid);
    wait_bounded(&mut child, Duration::from_secs(10)).and_then(|s| s.code())
}

#[test]
fn live_second_ctrl_c_exits_at_once_with_130() {
    if !is_root() {
        crate::util::skip("live_second_ctrl_c", "not root");
        return;
    }
    // The first SIGINT starts the orderly stop, which ends within ~100 ms; the second must
    // land before that to count. Three tries make a lost race all but impossible.
    let mut codes = vec![];
    for _ in 0..3 {
        let code = interrupt_twice(&["--interval", "0"]);
        assert!(matches!(code, Some(0) | Some(130)), "exit {code:?}");
        codes.push(code);
        if code == Some(130) {
            return;
        }
    }
    panic!("a second Ctrl-C never exited with 130: {codes:?}");
}

// ------------------------------------------------------------------ the lab

pub(crate) const TIMEOUT_START: Duration = Duration::from_secs(15);
pub(crate) const SERVER: &str = "198.51.100.10";
const CLIENT: &str = "203.0.113.10";

/// Sends a signal with the shell's `kill` builtin (no procps needed).
pub(crate) fn signal(sig: &str, pid: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -{sig} \"$1\""), "sh", pid])
        .status();
}

/// Waits for the child to exit, at most `limit`; kills it if it does not.
pub(crate) fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Reads lines from `r` on a thread until one contains `needle` (bounded by `limit`); the
/// rest is drained in the background. Returns the line.
pub(crate) fn wait_for_line<R: std::io::Read + Send + 'static>(
    r: R,
    needle: &str,
    limit: Duration,
) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains(&needle) {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    rx.recv_timeout(limit).ok()
}

/// Collects stdout lines on a thread; the receiver gets each line as it comes.
fn line_reader<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs a command bounded by `timeout(1)`.
pub(crate) fn run(args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("20")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

pub(crate) fn ok(args: &[&str]) {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

/// [`run`] of a command line split at whitespace.
fn run_line(line: &str) -> Output {
    run(&line.split_whitespace().collect::<Vec<_>>())
}

/// [`ok`] of a command line split at whitespace.
fn ok_line(line: &str) {
    ok(&line.split_whitespace().collect::<Vec<_>>());
}

/// Network namespaces for one test, torn down on drop (panics included).
pub(crate) struct Lab {
    prefix: String,
    pub(crate) children: Vec<Child>,
    pub(crate) files: Vec<PathBuf>,
    /// The line `exflow live` printed when it started capturing (the last one started).
    banner: String,
}

impl Lab {
    pub(crate) fn ns(&self, which: char) -> String {
        format!("{}{which}", self.prefix)
    }

    /// Why the lab cannot run here, or None.
    pub(crate) fn unavailable() -> Option<&'static str> {
        if !is_root() {
            return Some("not root");
        }
        if !have("ip") {
            return Some("no ip command");
        }
        if !have("timeout") {
            return Some("no timeout command");
        }
        if !have("python3") {
            return Some("no python3");
        }
        if !have("nft") && !have("iptables") {
            return Some("neither nft nor iptables (Debian: nftables)");
        }
        None
    }

    /// Builds client, firewall and server namespaces joined by veth pairs; None (with a
    /// printed reason) when network namespaces do not work here.
    pub(crate) fn up(test: &str) -> Option<Lab> {
        static N: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "exlv-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            prefix,
            children: vec![],
            files: vec![],
            banner: String::new(),
        };
        for w in ['c', 'f', 's'] {
            let o = run(&["ip", "netns", "add", &lab.ns(w)]);
            if !o.status.success() {
                crate::util::skip(test, &format!("no netns support ({})", stderr(&o).trim()));
                return None;
            }
        }
        let (c, f, s) = (lab.ns('c'), lab.ns('f'), lab.ns('s'));
        for ns in [&c, &f, &s] {
            // No IPv6 (no neighbour discovery or router solicitations in the capture).
            let _ = run_line(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
                 net.ipv6.conf.default.disable_ipv6=1"
            ));
            ok_line(&format!("ip -n {ns} link set lo up"));
        }
        ok_line(&format!(
            "ip netns exec {f} sysctl -qw net.ipv4.ip_forward=1"
        ));
        for (ns_a, a, ns_b, b) in [(&f, "fwc", &c, "c0"), (&f, "fws", &s, "s0")] {
            ok_line(&format!(
                "ip -n {ns_a} link add {a} type veth peer name {b} netns {ns_b}"
            ));
            for (ns, dev) in [(ns_a, a), (ns_b, b)] {
                // MTU-sized segments and real checksums, as on a wire (best effort).
                if have("ethtool") {
                    let _ = run_line(&format!(
                        "ip netns exec {ns} ethtool -K {dev} tx off rx off tso off gso off gro off"
                    ));
                }
                ok_line(&format!("ip -n {ns} link set {dev} up"));
            }
        }
        ok_line(&format!("ip -n {c} addr add {CLIENT}/24 dev c0"));
        ok_line(&format!("ip -n {f} addr add 203.0.113.1/24 dev fwc"));
        ok_line(&format!("ip -n {f} addr add 198.51.100.1/24 dev fws"));
        ok_line(&format!("ip -n {s} addr add {SERVER}/24 dev s0"));
        ok_line(&format!(
            "ip -n {c} route add 198.51.100.0/24 via 203.0.113.1"
        ));
        ok_line(&format!(
            "ip -n {s} route add 203.0.113.0/24 via 198.51.100.1"
        ));
        Some(lab)
    }

    /// The firewall: 443 to the server allowed, 25 dropped, 587 answered by a TCP reset;
    /// everything else dropped.
    fn firewall(&mut self) {
        let f = self.ns('f');
        // EXFLOW_TEST_FIREWALL=iptables tries the iptables rules where nft is present too.
        let iptables = std::env::var("EXFLOW_TEST_FIREWALL").is_ok_and(|v| v == "iptables");
        if have("nft") && !iptables {
            let rules = format!(
                "flush ruleset
table ip exlv {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ip daddr {SERVER} tcp dport 25 drop
        ip daddr {SERVER} tcp dport 587 reject with tcp reset
        ct state established,related accept
        iifname \"fwc\" ip daddr {SERVER} tcp dport 443 ct state new accept
    }}
}}
"
            );
            let path = tmp_path("fw.nft");
            std::fs::write(&path, rules).unwrap();
            self.files.push(path.clone());
            ok(&[
                "ip",
                "netns",
                "exec",
                &f,
                "nft",
                "-f",
                &path.to_string_lossy(),
            ]);
        } else {
            let ipt = |rule: &str| {
                let mut args = vec!["ip", "netns", "exec", &f, "iptables"];
                args.extend(rule.split_whitespace());
                ok(&args);
            };
            ipt("-P FORWARD DROP");
            ipt(&format!("-A FORWARD -d {SERVER} -p tcp --dport 25 -j DROP"));
            ipt(&format!(
                "-A FORWARD -d {SERVER} -p tcp --dport 587 -j REJECT --reject-with tcp-reset"
            ));
            ipt("-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT");
            ipt(&format!(
                "-A FORWARD -i fwc -d {SERVER} -p tcp --dport 443 -j ACCEPT"
            ));
        }
    }

    /// A TCP server on 443, 25 and 587: sends a greeting, reads until the client closes.
    pub(crate) fn servers(&mut self) {
        let script = format!(
            r#"
import socket, threading
def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("{SERVER}", port))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        c.settimeout(5)
        try:
            c.sendall(b"220 exflow live lab\r\n")
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()
for p in (443, 25, 587):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait(120)
"#
        );
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns('s'),
                "python3",
                "-u",
                "-c",
                &script,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        self.children.push(child);
        assert!(
            wait_for_line(out, "ready", Duration::from_secs(10)).is_some(),
            "the lab's server did not start"
        );
    }

    /// The client: 443 (must work), 587 (must be refused), 25 (must time out), each
    /// bounded by a 3-second timeout. Returns what the client saw, one word per port.
    pub(crate) fn clients(&self) -> String {
        let script = format!(
            r#"
import socket
out = []
for port in (443, 587, 25):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("{SERVER}", port))
        s.recv(100)
        s.sendall(b"QUIT\r\n")
        out.append(f"{{port}}:ok")
    except ConnectionRefusedError:
        out.append(f"{{port}}:refused")
    except socket.timeout:
        out.append(f"{{port}}:timeout")
    except OSError as e:
        out.append(f"{{port}}:error-{{e.errno}}")
    s.close()
print(" ".join(out))
"#
        );
        let o = run(&[
            "ip",
            "netns",
            "exec",
            &self.ns('c'),
            "python3",
            "-c",
            &script,
        ]);
        assert!(o.status.success(), "client: {}", stderr(&o));
        stdout(&o).trim().to_string()
    }

    /// Starts `exflow live` in the firewall namespace; returns once it captures.
    fn exflow_live(&mut self, args: &[&str]) -> (usize, mpsc::Receiver<String>) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns('f')])
            .arg(env!("CARGO_BIN_EXE_exflow"))
            .args(["live", "-i", "fwc"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_reader(child.stdout.take().unwrap());
        let err = child.stderr.take().unwrap();
        self.children.push(child);
        let banner = wait_for_line(err, "capturing on fwc", TIMEOUT_START);
        assert!(banner.is_some(), "exflow live did not start capturing");
        self.banner = banner.unwrap_or_default();
        (self.children.len() - 1, lines)
    }

    fn site(&mut self) -> PathBuf {
        let path = tmp_path("live.site.toml");
        std::fs::write(
            &path,
            format!(
                "profile = \"mailbox\"\ninternal = [\"198.51.100.0/24\"]\n\n[[host]]\nrole = \"mailbox\"\naddresses = [\"{SERVER}\"]\n"
            ),
        )
        .unwrap();
        self.files.push(path.clone());
        path
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for w in ['c', 'f', 's'] {
            let ns = self.ns(w);
            // Anything left inside was started by this test.
            if let Ok(o) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    signal("KILL", pid);
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The verdict of the expected flow from the internet to the server on `port`.
pub(crate) fn verdict(report: &Value, port: u64) -> String {
    let hits: Vec<&Value> = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["port"] == port && e["dst"]["address"] == SERVER && e["src"]["zone"] == "internet"
        })
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one expected flow from the internet to {SERVER}:{port}: {hits:?}"
    );
    hits[0]["verdict"].as_str().unwrap().to_string()
}

/// Every expected flow's verdict and counts, for comparing two reports.
fn verdicts(report: &Value) -> Vec<String> {
    let mut v: Vec<String> = report["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}->{} {}: {} attempts={} established={} dropped={} refused={}",
                e["role"],
                e["src"]["zone"],
                e["dst"]["address"],
                e["port"],
                e["verdict"],
                e["attempts"],
                e["established"],
                e["dropped"],
                e["refused"]
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn live_firewall_verdicts_periodic_reports_and_write() {
    const T: &str = "live_firewall_verdicts";
    if let Some(why) = Lab::unavailable() {
        crate::util::skip(T, why);
        return;
    }
    let Some(mut lab) = Lab::up(T) else { return };
    lab.firewall();
    lab.servers();
    let site = lab.site();
    let written = tmp_path("live-written.pcap");
    lab.files.push(written.clone());
    let (site_s, written_s) = (
        site.to_string_lossy().to_string(),
        written.to_string_lossy().to_string(),
    );
    let (idx, lines) = lab.exflow_live(&[
        "--format",
        "json",
        "--interval",
        "1s",
        "--write",
        &written_s,
        "--site",
        &site_s,
        "--fail-on",
        "blocked",
    ]);
    let seen = lab.clients();
    assert_eq!(seen, "443:ok 587:refused 25:timeout", "what the client saw");

    // At least two periodic reports before the stop (bounded wait).
    let mut got: Vec<String> = vec![];
    let start = Instant::now();
    while got.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
            got.push(l);
        }
    }
    assert!(got.len() >= 2, "periodic reports: {}", got.len());
    let pid = lab.children[idx].id().to_string();
    // The analyzer has parsed the wire (two reports): as nobody, without any capability.
    assert!(
        lab.banner.contains("running as nobody (uid 65534"),
        "{}",
        lab.banner
    );
    assert_unprivileged(&pid, !lab.banner.contains("bounding set could not"));
    signal("INT", &pid);
    let status = wait_bounded(&mut lab.children[idx], Duration::from_secs(15));
    let status = status.expect("exflow live did not stop after SIGINT");
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(2)) {
        got.push(l);
    }
    // --fail-on blocked: port 25 is blocked.
    assert_eq!(status.code(), Some(1), "exit code");

    let reports: Vec<Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(reports.len() >= 3, "{} reports", reports.len());
    let (last, periodic) = reports.split_last().unwrap();
    assert!(periodic.iter().all(|r| r["interim"] == true));
    assert_eq!(last["interim"], false);
    assert_eq!(last["schema_version"], 1);
    let cap = &last["capture"];
    assert_eq!(cap["files"], serde_json::json!(["live:fwc"]));
    assert_eq!(cap["link_types"], serde_json::json!(["EN10MB"]));
    assert_eq!(cap["kernel_drops"], 0);
    assert_eq!(cap["interface_drops"], 0);
    assert_eq!(cap["queue_drops"], 0);
    assert!(cap["packets"].as_u64().unwrap() >= 8, "{cap}");
    assert_eq!(verdict(last, 443), "ok");
    assert_eq!(verdict(last, 25), "blocked");
    assert_eq!(verdict(last, 587), "refused");
    // Periodic reports grow: the last one before the stop already knows the 443 flow.
    assert_eq!(verdict(periodic.last().unwrap(), 443), "ok");

    // --write: the same packets give the same report offline.
    let o = exflow(&["analyze", &written_s, "--site", &site_s, "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let offline: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(offline["capture"]["packets"], cap["packets"]);
    assert_eq!(verdict(&offline, 443), "ok");
    assert_eq!(verdict(&offline, 25), "blocked");
    assert_eq!(verdict(&offline, 587), "refused");
    assert_eq!(verdicts(&offline), verdicts(last));
}

#[test]
fn live_duration_ends_with_the_final_table_after_timestamped_headers() {
    const T: &str = "live_duration";
    if let Some(why) = Lab::unavailable() {
        crate::util::skip(T, why);
        return;
    }
    let Some(mut lab) = Lab::up(T) else { return };
    lab.firewall();
    lab.servers();
    let site = lab.site();
    let site_s = site.to_string_lossy().to_string();
    let (idx, lines) = lab.exflow_live(&[
        "--interval",
        "1s",
        "--duration",
        "5s",
        "--site",
        &site_s,
        "--color",
        "never",
    ]);
    let seen = lab.clients();
    assert_eq!(seen, "443:ok 587:refused 25:timeout");
    // It stops on its own.
    let status = wait_bounded(&mut lab.children[idx], Duration::from_secs(20))
        .expect("exflow live did not stop at the end of --duration");
    assert_eq!(status.code(), Some(0));
    let mut text = vec![];
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(2)) {
        text.push(l);
    }
    let headers: Vec<&String> = text.iter().filter(|l| l.starts_with("=== ")).collect();
    assert!(headers.len() >= 3, "{headers:?}");
    let (last, interim) = headers.split_last().unwrap();
    assert!(
        interim.iter().all(|h| h.contains("interim report at")),
        "{headers:?}"
    );
    assert!(
        last.starts_with("=== exflow live on fwc: final report at 20"),
        "{last}"
    );
    let final_part: Vec<&String> = text
        .iter()
        .skip_while(|l| !l.contains("final report"))
        .collect();
    let table = final_part
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(table.contains("kernel drops"), "{table}");
    assert!(table.contains("live:fwc"), "{table}");
    assert!(
        !table.contains('\x1b'),
        "no escape codes when not a terminal"
    );
}

// ------------------------------------------------------------------ on a terminal

const ALT_ON: &str = "\x1b[?1049h";
const ALT_OFF: &str = "\x1b[?1049l";

/// Text from a terminal with the escape sequences the live view and the table may write
/// (SGR colours, erase in line / display, cursor shown / hidden) taken out, and carriage
/// returns dropped; any other escape sequence fails the test.
fn strip_terminal(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\x1b' => {
                assert_eq!(chars.next(), Some('['), "ESC not starting a CSI in {s:?}");
                let mut seq = String::new();
                loop {
                    let Some(c) = chars.next() else {
                        panic!("unfinished escape sequence in {s:?}")
                    };
                    seq.push(c);
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
                assert!(
                    seq.ends_with('m')
                        || seq == "K"
                        || seq == "J"
                        || seq == "?25l"
                        || seq == "?25h",
                    "unexpected escape sequence ESC[{seq} in {s:?}"
                );
            }
            c => out.push(c),
        }
    }
    out
}

/// Runs `command` in a pseudo-terminal of 80×24 (util-linux `script`) in namespace `ns`,
/// bounded by `timeout(1)`; returns the child and a buffer that fills with what the terminal
/// shows (the bytes written to it).
fn in_pty(ns: Option<&str>, command: &str) -> (Child, Arc<std::sync::Mutex<Vec<u8>>>) {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "timeout"]);
            c
        }
        None => Command::new("timeout"),
    };
    let mut child = cmd
        .args(["60", "script", "-qfec"])
        .arg(format!("stty rows 24 cols 80 && {command}"))
        .arg("/dev/null")
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut out = child.stdout.take().unwrap();
    let sink = Arc::clone(&buf);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = out.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (child, buf)
}

/// Waits (at most `limit`) until the terminal's output holds `needle`.
fn wait_for_output(buf: &std::sync::Mutex<Vec<u8>>, needle: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if String::from_utf8_lossy(&buf.lock().unwrap()).contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Splits a terminal's output at the alternate screen's switches: (the normal screen before,
/// the alternate screen, the normal screen after). Exactly one switch each way.
fn alternate_screen(out: &str) -> (&str, &str, &str) {
    assert_eq!(
        out.matches(ALT_ON).count(),
        1,
        "one switch to the alternate screen"
    );
    assert_eq!(out.matches(ALT_OFF).count(), 1, "one switch back");
    let on = out.find(ALT_ON).unwrap();
    let off = out.find(ALT_OFF).unwrap();
    assert!(on < off, "the alternate screen is left after it is entered");
    (
        &out[..on],
        &out[on + ALT_ON.len()..off],
        &out[off + ALT_OFF.len()..],
    )
}

#[test]
fn live_view_on_an_80x24_terminal_fits_and_leaves_no_copy_in_the_scrollback() {
    const T: &str = "live_view_pty";
    if let Some(why) = Lab::unavailable() {
        crate::util::skip(T, why);
        return;
    }
    if !have("script") || !have("stty") {
        crate::util::skip(T, "no script or stty (util-linux, coreutils)");
        return;
    }
    let Some(mut lab) = Lab::up(T) else { return };
    lab.firewall();
    lab.servers();
    let site = lab.site();
    let command = format!(
        "exec '{}' live -i fwc --interval 1s --duration 8s --site '{}'",
        env!("CARGO_BIN_EXE_exflow"),
        site.to_string_lossy()
    );
    let (child, buf) = in_pty(Some(&lab.ns('f')), &command);
    lab.children.push(child);
    let idx = lab.children.len() - 1;
    assert!(
        wait_for_output(&buf, "capturing on fwc", TIMEOUT_START),
        "exflow live did not start: {}",
        String::from_utf8_lossy(&buf.lock().unwrap())
    );
    assert_eq!(lab.clients(), "443:ok 587:refused 25:timeout");
    let status = wait_bounded(&mut lab.children[idx], Duration::from_secs(30))
        .expect("exflow live did not stop at the end of --duration");
    assert_eq!(status.code(), Some(0));
    // The reader has the rest once the pty is closed (bounded).
    assert!(wait_for_output(&buf, "Topology", Duration::from_secs(5)));
    let out = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    let (before, alt, after) = alternate_screen(&out);

    // Each refresh: from the cursor's home, at most 24 lines of at most 80 columns.
    let frames: Vec<Vec<String>> = alt
        .split("\x1b[H")
        .skip(1)
        .map(|f| strip_terminal(f).split('\n').map(str::to_string).collect())
        .collect();
    assert!(frames.len() >= 4, "{} refreshes:\n{alt:?}", frames.len());
    for (i, frame) in frames.iter().enumerate() {
        assert!(
            frame.len() <= 24,
            "refresh {i}: {} lines:\n{}",
            frame.len(),
            frame.join("\n")
        );
        for line in frame {
            assert!(
                line.chars().count() <= 80,
                "refresh {i}: a line of {} columns: {line}",
                line.chars().count()
            );
        }
        assert!(
            frame[0].starts_with("exflow live · fwc · ") && frame[0].contains("Ctrl-C"),
            "refresh {i} status line: {}",
            frame[0]
        );
    }
    // Once the clients ran: the failed flows, first.
    let last = frames.last().unwrap();
    let text = last.join("\n");
    println!("the last refresh of {}:\n{text}", frames.len());
    let at = |f: &dyn Fn(&String) -> bool| last.iter().position(f);
    let failed = at(&|l| l == "Failed flows").unwrap_or_else(|| panic!("{text}"));
    let blocked = at(&|l| l.contains("smtp-inbound") && l.contains("blocked"))
        .unwrap_or_else(|| panic!("{text}"));
    let refused = at(&|l| l.contains("smtp-submission") && l.contains("refused"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(failed < blocked && failed < refused, "{text}");
    if let Some(other) = at(&|l| l == "Other expected flows") {
        assert!(other > blocked && other > refused, "{text}");
    }

    // The normal screen: the banner before the view, the final report whole after it, and
    // no copy of the view anywhere.
    let normal = strip_terminal(&format!("{before}{after}"));
    for view_only in [
        "exflow live · fwc",
        "Failed flows",
        "Other expected flows",
        "more flow",
    ] {
        assert!(
            !normal.contains(view_only),
            "{view_only:?} in the scrollback:\n{normal}"
        );
    }
    let after = strip_terminal(after);
    assert_eq!(after.matches("Expected flows").count(), 1, "{after}");
    assert!(after.contains("Topology"), "{after}");
    for line in after.lines() {
        assert!(
            line.chars().count() <= 80,
            "the final report at the terminal's width: {line}"
        );
    }
    let rows: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("smtp-inbound") && l.contains("blocked"))
        .collect();
    assert_eq!(rows.len(), 1, "{after}");
    assert!(
        after.contains("fix: nft insert rule inet filter forward"),
        "{after}"
    );
}

#[test]
fn live_view_second_ctrl_c_exits_at_once_and_leaves_the_alternate_screen() {
    const T: &str = "live_view_ctrl_c";
    if !is_root() {
        crate::util::skip(T, "not root");
        return;
    }
    if !have("script") || !have("stty") || !have("timeout") {
        crate::util::skip(T, "no script, stty or timeout");
        return;
    }
    // As in live_second_ctrl_c: the second SIGINT must land before the orderly stop ends;
    // three tries make a lost race all but impossible. Either way the terminal is back on
    // its normal screen.
    let mut codes = vec![];
    for _ in 0..3 {
        let command = format!(
            "echo pid=$$; exec '{}' live -i lo --interval 200ms --duration 60s",
            env!("CARGO_BIN_EXE_exflow")
        );
        let (mut child, buf) = in_pty(None, &command);
        let shown = wait_for_output(&buf, ALT_ON, TIMEOUT_START);
        let out = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
        assert!(shown, "no live view: {out:?}");
        let pid: String = out
            .split("pid=")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert!(!pid.is_empty(), "{out:?}");
        signal("INT", &pid);
        std::thread::sleep(Duration::from_millis(2));
        signal("INT", &pid);
        let code = wait_bounded(&mut child, Duration::from_secs(15)).and_then(|s| s.code());
        assert!(matches!(code, Some(0) | Some(130)), "exit {code:?}");
        // What the terminal got, once the pty is closed (bounded).
        let start = Instant::now();
        let mut out = String::new();
        while start.elapsed() < Duration::from_secs(5) {
            out = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
            if out.contains(ALT_OFF) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // One switch to the alternate screen and one back, in that order, whichever way it
        // ended.
        let _ = alternate_screen(&out);
        if code == Some(130) {
            return;
        }
        codes.push(code);
    }
    panic!("a second Ctrl-C never exited with 130: {codes:?}");
}

/// Every thread of process `pid` runs without root: no user or group id 0, no supplementary
/// group 0, no permitted, effective or ambient capability, and (when `bounding`) an empty
/// bounding set. Returns the main thread's lines checked, for the report.
pub(crate) fn assert_unprivileged(pid: &str, bounding: bool) -> Vec<String> {
    let tasks: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("status"))
        .collect();
    assert!(tasks.len() >= 2, "the capture thread is missing: {tasks:?}");
    let mut main = vec![];
    for path in &tasks {
        let Ok(status) = std::fs::read_to_string(path) else {
            continue; // a thread that ended meanwhile
        };
        let field = |name: &str| -> String {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in {}", path.display()))
                .trim()
                .to_string()
        };
        for ids in ["Uid", "Gid", "Groups"] {
            let v = field(ids);
            assert!(
                v.split_whitespace().all(|id| id != "0"),
                "{}: {ids}: {v}",
                path.display()
            );
        }
        let mut sets = vec!["CapPrm", "CapEff", "CapAmb"];
        if bounding {
            sets.push("CapBnd");
        }
        for set in sets {
            assert_eq!(field(set), "0000000000000000", "{}: {set}", path.display());
        }
        if path.starts_with(format!("/proc/{pid}/task/{pid}")) {
            main = [
                "Uid", "Gid", "Groups", "CapPrm", "CapEff", "CapBnd", "CapAmb",
            ]
            .iter()
            .map(|f| format!("{f}:\t{}", field(f)))
            .collect();
        }
    }
    main
}

#[test]
fn live_drops_root_to_the_user_asked_or_keeps_it_when_told() {
    const T: &str = "live_drops_root";
    if !is_root() {
        crate::util::skip(T, "not root");
        return;
    }
    let live = |extra: &[&str]| {
        let mut args = vec![
            "live",
            "-i",
            "lo",
            "--duration",
            "200ms",
            "--format",
            "summary",
        ];
        args.extend_from_slice(extra);
        exflow(&args)
    };
    let o = live(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running as nobody (uid 65534"),
        "{}",
        stderr(&o)
    );
    let o = live(&["--no-drop-privileges"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running as root (--no-drop-privileges)"),
        "{}",
        stderr(&o)
    );
    let o = live(&["--user", "exflow-no-such-user"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--user exflow-no-such-user: no such user"),
        "{}",
        stderr(&o)
    );
    let o = live(&["--user", "root"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("uid 0"), "{}", stderr(&o));
}

/// Whole records in a pcap file's bytes (a record cut short at the end is not counted).
fn pcap_records(bytes: &[u8]) -> u64 {
    let mut at = 24;
    let mut n = 0;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if at + 16 + caplen > bytes.len() {
            break;
        }
        at += 16 + caplen;
        n += 1;
    }
    n
}

#[test]
fn live_write_on_a_full_disk_warns_with_the_counts_and_exits_3() {
    const T: &str = "live_write_on_a_full_disk";
    if let Some(why) = Lab::unavailable() {
        crate::util::skip(T, why);
        return;
    }
    let Some(disk) = crate::outputs::SmallDisk::mount(T) else {
        return;
    };
    let Some(mut lab) = Lab::up(T) else { return };
    lab.firewall();
    lab.servers();
    let out = disk.0.join("full.pcap");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.ns('f')])
        .arg(env!("CARGO_BIN_EXE_exflow"))
        .args(["live", "-i", "fwc", "--format", "json", "--interval", "0"])
        .arg("--write")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let errs = line_reader(child.stderr.take().unwrap());
    let pid = child.id().to_string();
    lab.children.push(child);
    let idx = lab.children.len() - 1;
    let banner = errs.recv_timeout(TIMEOUT_START).unwrap_or_default();
    assert!(banner.contains("capturing on fwc"), "{banner}");
    // 1 MB through the firewall: far more than the 64 KiB disk holds.
    let script = format!(
        r#"
import socket
s = socket.create_connection(("{SERVER}", 443), timeout=5)
s.recv(100)
s.sendall(b"x" * 1000000)
s.close()
print("sent")
"#
    );
    let o = run(&[
        "ip",
        "netns",
        "exec",
        &lab.ns('c'),
        "python3",
        "-c",
        &script,
    ]);
    assert!(stdout(&o).contains("sent"), "client: {}", stderr(&o));
    let seen = assert_unprivileged(&pid, !banner.contains("bounding set could not"));
    println!("{T}: the analyzer's /proc/{pid}/status: {seen:?}");
    signal("INT", &pid);
    let status = wait_bounded(&mut lab.children[idx], Duration::from_secs(15))
        .expect("exflow live did not stop after SIGINT");
    assert_eq!(status.code(), Some(3), "exit code");
    let mut report = String::new();
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(2)) {
        report = l;
    }
    let report: Value = serde_json::from_str(&report).unwrap();
    let packets = report["capture"]["packets"].as_u64().unwrap();
    let mut warning = String::new();
    while let Ok(l) = errs.recv_timeout(Duration::from_secs(1)) {
        if l.contains("--write") {
            warning = l;
        }
    }
    println!("{T}: {warning}");
    assert!(warning.contains("No space left on device"), "{warning}");
    let count = |unit: &str| -> u64 {
        let at = warning
            .find(unit)
            .unwrap_or_else(|| panic!("{unit}: {warning}"));
        let digits: String = warning[..at]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    };
    let (written, not) = (count(" packets written"), count(" packets not written"));
    assert!(written > 0 && not > 0, "{warning}");
    assert_eq!(written + not, packets, "{warning}");
    assert_eq!(pcap_records(&std::fs::read(&out).unwrap()), written);
}

#[test]
fn live_interface_names_are_escaped_in_the_list_the_start_line_and_the_header() {
    const T: &str = "live_interface_names_are_escaped";
    if !is_root() || !have("ip") {
        crate::util::skip(T, "needs root and ip");
        return;
    }
    let ns = format!("exlv-{}-names", std::process::id());
    let o = run(&["ip", "netns", "add", &ns]);
    if !o.status.success() {
        crate::util::skip(T, &format!("no netns support ({})", stderr(&o).trim()));
        return;
    }
    // An escape sequence and a right-to-left override in an interface name (Linux allows both).
    let name = "ev\u{1b}[7mil\u{202e}";
    let made = run(&[
        "ip", "-n", &ns, "link", "add", name, "type", "veth", "peer", "name", "exlvp",
    ]);
    let up = run(&["ip", "-n", &ns, "link", "set", name, "up"]);
    let list = run(&[
        "ip",
        "netns",
        "exec",
        &ns,
        env!("CARGO_BIN_EXE_exflow"),
        "live",
        "--list-interfaces",
    ]);
    let live = run(&[
        "ip",
        "netns",
        "exec",
        &ns,
        env!("CARGO_BIN_EXE_exflow"),
        "live",
        "-i",
        name,
        "--duration",
        "200ms",
        "--format",
        "md",
    ]);
    let _ = run(&["ip", "netns", "del", &ns]);
    assert!(
        made.status.success() && up.status.success(),
        "{}",
        stderr(&made)
    );
    let escaped = "ev\\x1b[7mil\\u{202e}";
    for (what, text) in [
        ("--list-interfaces", stdout(&list)),
        ("start line", stderr(&live)),
        ("report header", stdout(&live)),
    ] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{what}: {text:?}"
        );
        assert!(text.contains(escaped), "{what}: {text}");
    }
}

#[test]
fn live_not_root_keeps_its_user_and_drops_the_capabilities_it_was_given() {
    const T: &str = "live_not_root_drops_capabilities";
    if !is_root() || !have("setpriv") {
        crate::util::skip(
            T,
            "needs root and setpriv (to start exflow as nobody with capabilities)",
        );
        return;
    }
    // As `setcap cap_net_raw,cap_net_admin=eip` would: nobody, with the two capabilities.
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_raw,+net_admin",
            "--ambient-caps=+net_raw,+net_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_exflow"))
        .args([
            "live",
            "-i",
            "lo",
            "--duration",
            "3s",
            "--format",
            "summary",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let errs = line_reader(child.stderr.take().unwrap());
    let pid = child.id().to_string();
    let banner = errs.recv_timeout(TIMEOUT_START).unwrap_or_default();
    if !banner.contains("capturing on lo") {
        let _ = child.kill();
        let _ = child.wait();
        // e.g. the binary is not executable by nobody, or setpriv lacks ambient support.
        crate::util::skip(T, &format!("exflow did not start as nobody: {banner}"));
        return;
    }
    assert!(
        banner.contains("not root (uid 65534): user unchanged, 2 capabilities dropped"),
        "{banner}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let status_ok = wait_bounded(&mut child, Duration::from_secs(15));
    for set in ["CapPrm", "CapEff", "CapInh", "CapAmb"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap_or("");
        assert!(line.ends_with("0000000000000000"), "{set}: {status}");
    }
    assert!(status_ok.is_some_and(|s| s.success()), "{status_ok:?}");
}
