//! The service's JSON answers in words: the board as a table, a release's status as a
//! block of labelled lines. Only the fields shown are read, each with a default, so an
//! older or newer service still renders.

use chrono::{DateTime, Utc};
use serde::{Deserialize, de::DeserializeOwned};

use super::request::Failure;

/// Approval counts of a release.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Counts {
    required: u32,
    approved: u32,
    rejected: u32,
}

/// Which release and round an answer is about.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Round {
    #[serde(rename = "TeamProject")]
    team_project: String,
    #[serde(rename = "ReleaseId")]
    release_id: String,
    #[serde(rename = "Stage")]
    stage: String,
    #[serde(rename = "Attempt")]
    attempt: u32,
    #[serde(rename = "Phase")]
    phase: String,
}

impl Round {
    /// The stage, with the attempt and phase when they are not the first and `pre`.
    fn stage_label(&self) -> String {
        let mut label = if self.stage.is_empty() {
            "-".to_owned()
        } else {
            self.stage.clone()
        };
        if self.attempt > 1 {
            label.push_str(&format!(" #{}", self.attempt));
        }
        if self.phase == "post" {
            label.push_str(" post");
        }
        label
    }

    /// `Devx 386`, with the stage label when there is a stage or round to name.
    fn label(&self) -> String {
        let stage = self.stage_label();
        if stage == "-" {
            format!("{} {}", self.team_project, self.release_id)
        } else {
            format!("{} {} ({stage})", self.team_project, self.release_id)
        }
    }
}

/// One release on the board.
#[derive(Deserialize, Default)]
#[serde(default)]
struct BoardEntry {
    #[serde(flatten)]
    round: Round,
    status: String,
    problem: Option<String>,
    approvals: Counts,
    pending_approvers: Vec<String>,
}

/// A page of the board.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Board {
    releases: Vec<BoardEntry>,
    status: Option<String>,
    next_cursor: Option<String>,
}

/// The board as a table: project, release, stage, status, votes, and what it waits for
/// or why it is stuck; then the cursor of the next page, if any.
pub fn board(body: &str) -> Result<String, Failure> {
    let board: Board = parse(body, "a release board")?;
    if board.releases.is_empty() {
        let which = board
            .status
            .filter(|s| s != "any")
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        return Ok(format!("no {which}releases\n"));
    }
    let mut rows = vec![
        [
            "PROJECT",
            "RELEASE",
            "STAGE",
            "STATUS",
            "VOTES",
            "WAITING FOR / PROBLEM",
        ]
        .map(str::to_owned),
    ];
    rows.extend(board.releases.iter().map(|entry| {
        [
            entry.round.team_project.clone(),
            entry.round.release_id.clone(),
            entry.round.stage_label(),
            entry.status.clone(),
            votes(&entry.approvals),
            note(entry),
        ]
    }));
    let mut text = table(&rows);
    if let Some(cursor) = board.next_cursor {
        text.push_str(&format!("more: add --cursor {cursor}\n"));
    }
    Ok(text)
}

/// `1/2`, and the rejections if any.
fn votes(counts: &Counts) -> String {
    match counts.rejected {
        0 => format!("{}/{}", counts.approved, counts.required),
        n => format!("{}/{} ({n} rejected)", counts.approved, counts.required),
    }
}

/// Why a release is stuck, else whom a pending one waits for.
fn note(entry: &BoardEntry) -> String {
    match &entry.problem {
        Some(problem) => format!("stuck: {problem}"),
        None if entry.status == "pending" && entry.pending_approvers.is_empty() => {
            "approvers being resolved".to_owned()
        }
        None => entry.pending_approvers.join(", "),
    }
}

/// Rows as columns padded to their widest cell, two spaces apart; the last is not padded.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (at, cell) in row.iter().enumerate() {
            if at + 1 < N {
                line.push_str(&format!("{cell:<width$}  ", width = widths[at]));
            } else {
                line.push_str(cell);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// An approver and their decision.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Approver {
    email: String,
    decision: String,
    decided_at: Option<DateTime<Utc>>,
    comment: Option<String>,
    notified: bool,
}

/// Something keeping a release from progressing.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Problem {
    code: String,
    detail: String,
}

/// An operator's cancellation.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Cancellation {
    at: Option<DateTime<Utc>>,
    reason: Option<String>,
}

/// The status body of a release.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    #[serde(flatten)]
    round: Round,
    #[serde(rename = "ReleaseName")]
    release_name: String,
    #[serde(rename = "ReleaseUrl")]
    release_url: Option<String>,
    status: String,
    approvals: Counts,
    approvers: Vec<Approver>,
    created_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
    settled_by: Option<String>,
    settled_reason: Option<String>,
    problems: Vec<Problem>,
    waiting_for: Vec<String>,
    requested_for: Option<String>,
    cancelled: Option<Cancellation>,
}

/// A release's status as labelled lines; `timeline` is the board's page of it.
pub fn status(body: &str, timeline: &url::Url) -> Result<String, Failure> {
    let s: Status = parse(body, "a release status")?;
    let mut lines = vec![(
        "release",
        format!(
            "{} {} {}",
            s.round.team_project, s.round.release_id, s.release_name
        ),
    )];
    lines.push(("stage", stage_line(&s.round)));
    lines.push((
        "status",
        format!(
            "{}: {} of {} approvals",
            s.status, s.approvals.approved, s.approvals.required
        ),
    ));
    lines.extend(s.waiting_for.iter().map(|w| ("waiting for", w.clone())));
    lines.extend(
        s.problems
            .iter()
            .map(|p| ("problem", format!("{}: {}", p.code, p.detail))),
    );
    lines.extend(s.approvers.iter().map(|a| ("approver", approver_line(a))));
    if s.approvers.is_empty() {
        lines.push(("approver", "none known yet".to_owned()));
    }
    lines.extend(s.requested_for.map(|r| ("requested by", r)));
    lines.extend(s.created_at.map(|t| ("received", when(t))));
    match s.decided_at {
        Some(at) => lines.push(("decided", decided_line(at, s.settled_by, s.settled_reason))),
        None => lines.extend(s.deadline.map(|t| ("deadline", when(t)))),
    }
    if let Some(c) = s.cancelled {
        let at = c.at.map(when).unwrap_or_default();
        let reason = c.reason.map(|r| format!(": {r}")).unwrap_or_default();
        lines.push(("cancelled", format!("{at}{reason}")));
    }
    lines.extend(s.release_url.map(|u| ("pipeline", u)));
    lines.push(("timeline", timeline.to_string()));
    Ok(lines
        .into_iter()
        .map(|(label, value)| format!("{label:<13}{value}\n"))
        .collect())
}

/// `production, attempt 1, pre`.
fn stage_line(round: &Round) -> String {
    let stage = if round.stage.is_empty() {
        "(none)"
    } else {
        &round.stage
    };
    format!("{stage}, attempt {}, {}", round.attempt, round.phase)
}

/// `ana@example.com  approved 2026-11-22 10:00:00 UTC  "ship it"`, or pending and whether emailed.
fn approver_line(a: &Approver) -> String {
    let mut line = format!("{}  {}", a.email, a.decision);
    match a.decided_at {
        Some(at) => line.push_str(&format!(" {}", when(at))),
        None if a.notified => line.push_str(" (emailed)"),
        None => line.push_str(" (not emailed yet)"),
    }
    if let Some(comment) = &a.comment {
        line.push_str(&format!("  \"{comment}\""));
    }
    line
}

/// When, and by whom when Azure DevOps decided.
fn decided_line(at: DateTime<Utc>, by: Option<String>, reason: Option<String>) -> String {
    match (by.as_deref(), reason) {
        (Some("azure"), Some(reason)) => format!("{} in Azure DevOps: {reason}", when(at)),
        (Some("azure"), None) => format!("{} in Azure DevOps", when(at)),
        _ => when(at),
    }
}

/// The answer to a cancellation, in one line.
pub fn cancelled(body: &str) -> Result<String, Failure> {
    let s: Status = parse(body, "a release status")?;
    Ok(format!(
        "cancelled the approval of {}: it is now {}, and its approval links no longer work\n",
        s.round.label(),
        s.status
    ))
}

/// The answer to a re-send, in one line.
pub fn resent(body: &str, email: &str) -> Result<String, Failure> {
    let s: Status = parse(body, "a release status")?;
    Ok(format!(
        "queued a new approval email to {email} for {}; the earlier links no longer work\n",
        s.round.label()
    ))
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn parse<T: DeserializeOwned>(body: &str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(body).map_err(|e| Failure::unexpected(what, e))
}
