//! What the binary writes: an output never overwrites an input (the same file by any name:
//! itself, a symlink, a hard link, standard input redirected from it), `--flows -` and a
//! report format do not share standard output, and uids differ from run to run unless
//! `--seed` fixes them.

use crate::util::{exflow, root, stderr, stdout, tmp_path};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SAMPLE: &str = "samples/exchange-healthy.pcap";

/// A copy of the sample in the temp dir, and its bytes.
fn capture_copy() -> (PathBuf, Vec<u8>) {
    let bytes = fs::read(root().join(SAMPLE)).unwrap();
    let p = tmp_path("c.pcap");
    fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit 2, a message that says an input would be overwritten, and the file intact.
fn assert_refused(o: &std::process::Output, file: &Path, bytes: &[u8]) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let e = stderr(o);
    assert!(e.contains("refusing to overwrite an input"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(o.stdout.is_empty(), "a report was printed: {}", stdout(o));
    assert_eq!(fs::read(file).unwrap(), bytes, "{} changed", file.display());
}

#[test]
fn flows_onto_the_capture_is_refused_and_the_capture_kept() {
    let (cap, bytes) = capture_copy();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&cap)]);
    assert_refused(&o, &cap, &bytes);
    assert!(stderr(&o).contains(&format!("--flows {}", s(&cap))));
    // The same file under a name of its own: a relative path, a symlink, a hard link.
    let rel = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .current_dir(cap.parent().unwrap())
        .args([
            "analyze",
            s(&cap),
            "--flows",
            &format!("./{}", cap.file_name().unwrap().to_str().unwrap()),
        ])
        .output()
        .unwrap();
    assert_refused(&rel, &cap, &bytes);
    let link = tmp_path("link.jsonl");
    std::os::unix::fs::symlink(&cap, &link).unwrap();
    assert_refused(
        &exflow(&["analyze", s(&cap), "--flows", s(&link)]),
        &cap,
        &bytes,
    );
    let hard = tmp_path("hard.pcap");
    fs::hard_link(&cap, &hard).unwrap();
    let o = exflow(&["analyze", s(&hard), "--flows", s(&cap), "--format", "json"]);
    assert_refused(&o, &cap, &bytes);
    assert!(stderr(&o).contains("the same file by another name"));
    // The second of several inputs.
    let other = root().join("samples/syn-dropped.pcap");
    let o = exflow(&["analyze", s(&other), s(&cap), "--flows", s(&cap)]);
    assert_refused(&o, &cap, &bytes);
}

#[test]
fn flows_onto_redirected_standard_input_or_the_site_file_is_refused() {
    let (cap, bytes) = capture_copy();
    let o = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "-", "--flows", s(&cap)])
        .stdin(fs::File::open(&cap).unwrap())
        .output()
        .unwrap();
    assert_refused(&o, &cap, &bytes);
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
    let site = tmp_path("site.toml");
    let text = fs::read(root().join("samples/exchange-healthy.site.toml")).unwrap();
    fs::write(&site, &text).unwrap();
    let o = exflow(&["analyze", s(&cap), "--site", s(&site), "--flows", s(&site)]);
    assert_refused(&o, &site, &text);
}

#[test]
fn live_refuses_before_opening_anything() {
    let site = tmp_path("live.site.toml");
    let text = fs::read(root().join("samples/exchange-healthy.site.toml")).unwrap();
    fs::write(&site, &text).unwrap();
    // No such interface: the check comes before the capture is opened (no root needed).
    let o = exflow(&[
        "live",
        "-i",
        "exflow-none0",
        "--site",
        s(&site),
        "--write",
        s(&site),
    ]);
    assert_refused(&o, &site, &text);
    assert!(stderr(&o).contains("--write"), "{}", stderr(&o));
    let out = tmp_path("both.out");
    let o = exflow(&[
        "live",
        "-i",
        "exflow-none0",
        "--write",
        s(&out),
        "--flows",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("are the same file"), "{}", stderr(&o));
    assert!(!out.exists(), "{} was created", out.display());
}

#[test]
fn flows_to_standard_output_with_a_report_format_is_refused() {
    let sample = root().join(SAMPLE);
    for format in ["json", "table", "md", "junit", "summary"] {
        let o = exflow(&["analyze", s(&sample), "--flows", "-", "--format", format]);
        assert_eq!(o.status.code(), Some(2), "{format}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("--flows -") && e.contains(&format!("--format {format}")),
            "{e}"
        );
        assert!(o.stdout.is_empty());
    }
    // Without --format, standard output carries the connection lines alone.
    let o = exflow(&["analyze", s(&sample), "--flows", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!text.is_empty());
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(v["uid"].is_string(), "{line}");
    }
    // /dev/null and a new file are fine outputs.
    let o = exflow(&[
        "analyze",
        s(&sample),
        "--flows",
        "/dev/null",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The `--flows` lines of one run on the sample, with `extra` arguments.
fn flows(extra: &[&str]) -> String {
    let sample = root().join(SAMPLE);
    let mut args = vec!["analyze", s(&sample), "--flows", "-"];
    args.extend(extra);
    let o = exflow(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn first_uid(lines: &str) -> String {
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    first["uid"].as_str().unwrap().to_string()
}

#[test]
fn uids_differ_between_runs_unless_seeded() {
    let (a, b) = (flows(&[]), flows(&[]));
    assert_ne!(first_uid(&a), first_uid(&b));
    // Only the uids differ.
    let strip = |t: &str| -> Vec<serde_json::Value> {
        t.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["uid"] = serde_json::Value::Null;
                v
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    let uids: std::collections::BTreeSet<String> = a
        .lines()
        .chain(b.lines())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["uid"].to_string())
        .collect();
    assert_eq!(uids.len(), a.lines().count() * 2, "a uid repeated");
    // The same seed, the same output; another seed, other uids.
    let (x, y) = (flows(&["--seed", "7"]), flows(&["--seed", "7"]));
    assert_eq!(x, y);
    assert_ne!(first_uid(&x), first_uid(&flows(&["--seed", "8"])));
}

#[test]
fn records_read_from_a_log_get_run_keyed_uids_too() {
    // A conn.log line without a uid of its own: its uid comes from the run's key.
    let log = "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\t\
               conn_state\thistory\n1700000000.0\t203.0.113.5\t40000\t192.0.2.10\t25\ttcp\tS0\tS\n";
    let run = |seed: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_exflow"));
        cmd.args(["analyze", "-", "--flows", "-"]);
        if let Some(n) = seed {
            cmd.args(["--seed", n]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(log.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        first_uid(&stdout(&o))
    };
    assert_ne!(run(None), run(None));
    assert_eq!(run(Some("3")), run(Some("3")));
}

/// A file that is not an input, with its bytes.
fn victim(name: &str) -> (PathBuf, Vec<u8>) {
    let p = tmp_path(name);
    let bytes = b"not exflow's file\n".to_vec();
    fs::write(&p, &bytes).unwrap();
    (p, bytes)
}

/// Exit 2 with one line naming the option, the path and `why`, and no report.
fn assert_output_refused(o: &std::process::Output, option: &str, path: &Path, why: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains(&format!("{option} {}", s(path))), "{e}");
    assert!(e.contains(why), "{e}");
    assert!(o.stdout.is_empty(), "a report was printed: {}", stdout(o));
}

#[test]
fn an_output_that_is_a_symlink_is_refused_not_followed() {
    let (cap, _) = capture_copy();
    // A link to someone's file, and a dangling link (where a file would be created).
    let (target, bytes) = victim("victim.txt");
    let link = tmp_path("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&link)]);
    assert_output_refused(&o, "--flows", &link, "is a symbolic link");
    assert_eq!(
        fs::read(&target).unwrap(),
        bytes,
        "the link's target changed"
    );
    let absent = tmp_path("absent.txt");
    let dangling = tmp_path("dangling.jsonl");
    std::os::unix::fs::symlink(&absent, &dangling).unwrap();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&dangling)]);
    assert_output_refused(&o, "--flows", &dangling, "is a symbolic link");
    assert!(!absent.exists(), "the dangling link's target was created");
}

#[test]
fn an_output_that_is_a_directory_or_has_other_hard_links_is_refused() {
    let (cap, _) = capture_copy();
    let dir = tmp_path("out-dir");
    fs::create_dir_all(&dir).unwrap();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&dir)]);
    assert_output_refused(&o, "--flows", &dir, "is a directory");
    let (target, bytes) = victim("linked.txt");
    let hard = tmp_path("hard.jsonl");
    fs::hard_link(&target, &hard).unwrap();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&hard)]);
    assert_output_refused(&o, "--flows", &hard, "has 2 hard links");
    assert_eq!(fs::read(&target).unwrap(), bytes);
}

#[test]
fn an_output_owned_by_another_user_is_refused() {
    const T: &str = "an_output_owned_by_another_user_is_refused";
    if !crate::util::is_root() {
        crate::util::skip(T, "not root (cannot give a file to another user)");
        return;
    }
    let (cap, _) = capture_copy();
    let (theirs, bytes) = victim("theirs.jsonl");
    let chown = Command::new("chown")
        .args(["65534", s(&theirs)])
        .status()
        .unwrap();
    assert!(chown.success());
    let o = exflow(&["analyze", s(&cap), "--flows", s(&theirs)]);
    assert_output_refused(&o, "--flows", &theirs, "owned by uid 65534");
    assert_eq!(fs::read(&theirs).unwrap(), bytes);
}

#[test]
fn an_existing_file_of_ours_is_overwritten_whole() {
    let (cap, _) = capture_copy();
    let mine = tmp_path("mine.jsonl");
    // Longer than the lines written: a leftover tail would show.
    fs::write(&mine, vec![1u8; 1 << 20]).unwrap();
    let o = exflow(&["analyze", s(&cap), "--flows", s(&mine), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&mine).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let conns = report["capture"]["connections"].as_u64();
    assert!(!text.contains('\u{1}'), "the old content is still there");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    if let Some(n) = conns {
        assert_eq!(text.lines().count() as u64, n);
    }
}

/// A capture of `n` unanswered SYNs, each its own connection.
fn many_connections(n: u32) -> PathBuf {
    use crate::util::{Host, TinyPcap, SYN};
    let mut p = TinyPcap::new(None);
    for i in 0..n {
        let c = Host {
            ip: [192, 0, 2, 10],
            port: 10_000 + (i % 50_000) as u16,
            ttl: 64,
        };
        let srv = Host {
            ip: [198, 51, 100, 20],
            port: 443,
            ttl: 60,
        };
        p.tcp(
            1_700_000_000_000_000 + u64::from(i) * 1000,
            c,
            srv,
            SYN,
            i,
            0,
            &[],
        );
    }
    let path = tmp_path("many.pcap");
    fs::write(&path, p.bytes()).unwrap();
    path
}

/// "N connections written, M connections not written" from a warning.
fn written_counts(e: &str, unit: &str) -> (u64, u64) {
    let num = |before: &str| -> u64 {
        let at = e
            .find(before)
            .unwrap_or_else(|| panic!("no {before:?} in {e}"));
        let digits: String = e[..at]
            .chars()
            .rev()
            .skip(1)
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    };
    (
        num(&format!("{unit} written,")),
        num(&format!("{unit} not written")),
    )
}

#[test]
fn flows_on_a_full_device_warns_with_the_counts_and_exits_3() {
    let cap = many_connections(200);
    let o = exflow(&[
        "analyze",
        s(&cap),
        "--flows",
        "/dev/full",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The report is still printed whole.
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let e = stderr(&o);
    assert!(e.contains("--flows /dev/full: write failed"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    let (written, not) = written_counts(&e, "connections");
    assert_eq!(written, 0);
    assert_eq!(
        not,
        report["capture"]["connections"].as_u64().unwrap_or(200)
    );
    assert_eq!(not, 200);
}

/// A 64 KiB tmpfs mounted on a fresh directory (root only), unmounted on drop.
pub(crate) struct SmallDisk(pub PathBuf);

impl SmallDisk {
    pub(crate) fn mount(test: &str) -> Option<SmallDisk> {
        if !crate::util::is_root() {
            crate::util::skip(test, "not root (cannot mount a tmpfs)");
            return None;
        }
        let dir = tmp_path("small-disk");
        fs::create_dir_all(&dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs", s(&dir)])
            .output()
            .unwrap();
        if !o.status.success() {
            crate::util::skip(
                test,
                &format!("mount -t tmpfs failed: {}", stderr(&o).trim()),
            );
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn flows_on_a_full_disk_keeps_whole_lines_counts_them_and_exits_3() {
    const T: &str = "flows_on_a_full_disk_keeps_whole_lines_counts_them_and_exits_3";
    let Some(disk) = SmallDisk::mount(T) else {
        return;
    };
    // ~600 bytes a line: 2,000 lines do not fit in 64 KiB.
    let cap = many_connections(2000);
    let out = disk.0.join("conns.jsonl");
    let o = exflow(&["analyze", s(&cap), "--flows", s(&out), "--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let e = stderr(&o);
    assert!(e.contains("No space left on device"), "{e}");
    let (written, not) = written_counts(&e, "connections");
    assert!(written > 0 && not > 0, "{e}");
    assert_eq!(written + not, 2000, "{e}");
    assert_eq!(
        written + not,
        report["capture"]["connections"].as_u64().unwrap_or(2000)
    );
    // The file holds exactly the lines said written, whole, and maybe part of the next.
    let text = fs::read(&out).unwrap();
    let whole = text.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(whole, written, "{e}");
}

#[test]
fn own_descriptors_and_devices_are_fine_outputs() {
    let (cap, _) = capture_copy();
    let o = exflow(&[
        "analyze",
        s(&cap),
        "--flows",
        "/dev/stderr",
        "--format",
        "summary",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).lines().any(|l| l.starts_with("{\"ts\":")),
        "{}",
        stderr(&o)
    );
    let o = exflow(&[
        "analyze",
        s(&cap),
        "--flows",
        "/dev/null",
        "--format",
        "summary",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}
