//! `--fail-on`: the conditions a report can meet, named after its verdicts and sections.

use super::model::{Report, Verdict};
use std::fmt;
use std::str::FromStr;

/// A condition `--fail-on` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Any failed verdict (blocked, refused, rejected, flaky, cut).
    Failed,
    /// An expected flow with this verdict.
    Verdict(Verdict),
    /// Any unexpected flow.
    Unexpected,
    /// Any unsupported restriction (Exchange ↔ Exchange / DC traffic dropped or reset).
    Unsupported,
    /// Any port scan.
    Scan,
}

impl Condition {
    /// Every condition, in the order `--help` lists them.
    pub fn all() -> Vec<Condition> {
        let mut out = vec![Condition::Failed];
        out.extend(
            Verdict::ALL
                .iter()
                .filter(|v| **v != Verdict::Ok)
                .map(|v| Condition::Verdict(*v)),
        );
        out.extend([
            Condition::Unexpected,
            Condition::Unsupported,
            Condition::Scan,
        ]);
        out
    }

    /// Whether the report meets this condition.
    pub fn met(self, r: &Report) -> bool {
        match self {
            Condition::Failed => r.expected.iter().any(|e| e.verdict.is_failure()),
            // Flows the capture point cannot see are no evidence of anything.
            Condition::Verdict(v) => r.expected.iter().any(|e| e.verdict == v && !e.out_of_view),
            Condition::Unexpected => !r.unexpected.is_empty(),
            Condition::Unsupported => !r.unsupported_restrictions.is_empty(),
            Condition::Scan => !r.scans.is_empty(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Failed => f.write_str("failed"),
            Condition::Verdict(v) => f.write_str(&v.as_str().replace('_', "-")),
            Condition::Unexpected => f.write_str("unexpected"),
            Condition::Unsupported => f.write_str("unsupported"),
            Condition::Scan => f.write_str("scan"),
        }
    }
}

impl FromStr for Condition {
    type Err = String;

    fn from_str(s: &str) -> Result<Condition, String> {
        let all = Condition::all();
        all.iter()
            .find(|c| c.to_string() == s.trim())
            .copied()
            .ok_or_else(|| {
                let names: Vec<String> = all.iter().map(|c| c.to_string()).collect();
                format!("unknown condition (use one of: {})", names.join(", "))
            })
    }
}
