//! The binary's contract: exit codes, one-line errors naming the file, warnings on stderr.

use crate::util::{exflow, root, stderr, stdout, tmp_path};
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

fn a_sample() -> std::path::PathBuf {
    let mut v: Vec<_> = fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v.into_iter().next().expect("a sample capture")
}

#[test]
fn missing_file_exits_2_naming_it() {
    let o = exflow(&["analyze", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("/nonexistent/x.pcap"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
}

#[test]
fn non_capture_exits_2_naming_it() {
    let p = tmp_path("notes.txt");
    fs::write(&p, b"this is not a capture file at all\n").unwrap();
    let o = exflow(&["analyze", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("not a pcap"),
        "{e}"
    );
}

#[test]
fn truncated_capture_still_reports_and_warns() {
    let sample = a_sample();
    let bytes = fs::read(&sample).unwrap();
    let p = tmp_path("cut.pcap");
    // Cut in the middle of the last record.
    fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
    let o = exflow(&["analyze", p.to_str().unwrap(), "--format", "summary"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(stdout(&o).contains("connections"), "{}", stdout(&o));
}

#[test]
fn standard_input_reads_like_a_file() {
    let sample = a_sample();
    let from_file = exflow(&["analyze", sample.to_str().unwrap(), "--format", "summary"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "-", "--format", "summary"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = fs::read(&sample).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    // Same figures, only the file name differs.
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("files"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(stdout(&o)), strip(stdout(&from_file)));
}

#[test]
fn bad_filter_exits_2_with_libpcaps_message() {
    let sample = a_sample();
    let o = exflow(&[
        "analyze",
        sample.to_str().unwrap(),
        "--filter",
        "tcp port nonsense",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tcp port nonsense"), "{}", stderr(&o));
}

/// Splits a little-endian microsecond pcap into two files at the middle record, each with
/// the global header (what `tcpdump -C` rotation produces).
fn split_pcap(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut offsets = vec![];
    let mut off = 24;
    while off + 16 <= bytes.len() {
        offsets.push(off);
        let incl = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    let mid = offsets[offsets.len() / 2];
    let mut a = bytes[..mid].to_vec();
    let mut b = bytes[..24].to_vec();
    b.extend_from_slice(&bytes[mid..]);
    a.truncate(mid);
    (a, b)
}

#[test]
fn two_files_are_one_capture() {
    let sample = a_sample();
    let bytes = fs::read(&sample).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "sample is a LE pcap"
    );
    let (a, b) = split_pcap(&bytes);
    let (pa, pb) = (tmp_path("part1.pcap"), tmp_path("part2.pcap"));
    fs::write(&pa, a).unwrap();
    fs::write(&pb, b).unwrap();
    let (o1, whole) = crate::util::flows_of(&[sample.as_path()], &[]);
    let (o2, parts) = crate::util::flows_of(&[pa.as_path(), pb.as_path()], &[]);
    assert!(o1.status.success() && o2.status.success());
    let summary = |v: &Vec<serde_json::Value>| {
        let mut s: Vec<String> = v
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c["id.orig_p"], c["id.resp_p"], c["conn_state"], c["history"]
                )
            })
            .collect();
        s.sort();
        s
    };
    assert!(!whole.is_empty());
    assert_eq!(summary(&whole), summary(&parts));
}

#[test]
fn summary_lists_conn_states() {
    let sample = a_sample();
    let o = exflow(&["analyze", sample.to_str().unwrap(), "--format", "summary"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("conn_state") && out.contains("packets"),
        "{out}"
    );
}

#[test]
fn ports_prints_the_catalogue_with_sources() {
    let o = exflow(&["ports"]);
    assert!(o.status.success());
    let t = stdout(&o);
    assert!(
        t.contains("smtp-inbound") && t.contains("edgesync") && t.contains("5075"),
        "{t}"
    );
    let o = exflow(&["ports", "--profile", "mailbox", "--format", "json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"smtp-inbound") && !ids.contains(&"edgesync"),
        "{ids:?}"
    );
    assert!(v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !r["sources"].as_array().unwrap().is_empty()));
}

/// A PPP link (DLT_PPP 9, PPP in HDLC framing 50) decodes: a SYN in each framing, with and
/// without the HDLC-like address and control bytes, is one TCP connection.
#[test]
fn ppp_link_types_decode() {
    let mut syn = vec![
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    syn.extend([
        0x9c, 0x40, 0, 25, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    for (link, header) in [
        (9u32, &[0xff, 0x03, 0x00, 0x21][..]),
        (9, &[0x00, 0x21][..]),
        (50, &[0xff, 0x03, 0x00, 0x21][..]),
        (50, &[0x0f, 0x00, 0x08, 0x00][..]),
    ] {
        let mut frame = header.to_vec();
        frame.extend(&syn);
        let len = u32::try_from(frame.len()).unwrap();
        let mut b = vec![];
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&link.to_le_bytes());
        b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&frame);
        let p = tmp_path("ppp.pcap");
        fs::write(&p, b).unwrap();
        let o = exflow(&["analyze", p.to_str().unwrap(), "--flows", "-"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{link} {header:x?}: {}",
            stderr(&o)
        );
        let out = stdout(&o);
        assert!(
            out.contains(
                r#""id.orig_h":"10.0.0.1","id.orig_p":40000,"id.resp_h":"10.0.0.2","id.resp_p":25"#
            ),
            "{link} {header:x?}: {out}"
        );
    }
}

#[test]
fn unsupported_link_type_exits_2_naming_the_file() {
    // A pcap header (LE, microseconds) for link type 147 (USER0) and one record.
    let mut b = vec![];
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&147u32.to_le_bytes());
    b.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
    let p = tmp_path("user0.pcap");
    fs::write(&p, b).unwrap();
    let o = exflow(&["analyze", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("unsupported link type"),
        "{e}"
    );
}

#[test]
fn json_report_escapes_c1_and_bidi_characters_of_file_names() {
    // A file name that a viewer would show reversed ("exe.pdf") or that a terminal would act
    // on (C1 CSI), given as the capture's name.
    let name = tmp_path("rep\u{202e}fdp.exe\u{9b}31m\u{2066}.pcap");
    fs::copy(root().join("samples/exchange-healthy.pcap"), &name).unwrap();
    let o = exflow(&["analyze", name.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for c in ['\u{202e}', '\u{9b}', '\u{2066}'] {
        assert!(
            !out.contains(c),
            "raw U+{:04X} in the JSON report",
            u32::from(c)
        );
    }
    assert!(out.contains("\\u202e") && out.contains("\\u009b"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["capture"]["files"][0], name.to_str().unwrap());
}
