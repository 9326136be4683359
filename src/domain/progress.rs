//! The lines a task in callback mode shows in Azure DevOps' timeline feed: what
//! it waits for, each decision, and the outcome. Azure's logs are read by more
//! people than the approvers (anyone who can see the run), so a mailbox shows
//! as its local part only (`ana@…`).

use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    bidi,
    policy::{Decision, ReleaseStatus},
    snapshot::ReleaseSnapshot,
};

/// Most characters of a comment or reason shown in a line.
const MAX_FREE_TEXT: usize = 400;

/// A mailbox as a feed line shows it: `ana@example.com` → `ana@…`.
pub fn shown_mailbox(email: &str) -> String {
    let local = email.split_once('@').map_or(email, |(local, _)| local);
    format!("{}@…", free_text(local))
}

/// What the release waits for at `now`, e.g. `waiting for 2 of 3 approvals: ana@…, bruno@…`.
pub fn waiting_line(snapshot: &ReleaseSnapshot, now: DateTime<Utc>) -> String {
    let release = &snapshot.release;
    if release.approvers_source.is_none() {
        return "waiting for the approvers to be found".to_owned();
    }
    if snapshot.approvals.is_empty() {
        let problem = release.approver_problem.as_deref().unwrap_or("none found");
        return format!("waiting, with no approvers to ask: {}", free_text(problem));
    }
    let outcome = snapshot.outcome(now);
    let undecided: Vec<String> = snapshot
        .approvals
        .iter()
        .filter(|a| a.decided.is_none() && release.rule.counts(&a.email))
        .map(|a| shown_mailbox(&a.email))
        .collect();
    format!(
        "waiting for {} of {} approvals: {}",
        outcome.required.saturating_sub(outcome.approved),
        outcome.required,
        undecided.join(", ")
    )
}

/// An approver's decision, e.g. `approved by ana@…: looks good`.
pub fn decision_line(email: &str, decision: Decision, comment: Option<&str>) -> String {
    with_words(
        format!("{} by {}", decision.as_str(), shown_mailbox(email)),
        comment,
    )
}

/// How the release was decided at `now`, e.g. `outcome: approved (2 of 2 approvals)`;
/// `None` while it is pending.
pub fn outcome_line(snapshot: &ReleaseSnapshot, now: DateTime<Utc>) -> Option<String> {
    let release = &snapshot.release;
    let outcome = snapshot.outcome(now);
    let told = match outcome.status {
        ReleaseStatus::Pending => return None,
        _ if release.settled.is_some() => {
            free_text(release.settled.as_ref().map_or("", |s| s.reason.as_str()))
        }
        ReleaseStatus::Approved => format!(
            "approved ({} of {} approvals)",
            outcome.approved, outcome.required
        ),
        ReleaseStatus::Expired => format!(
            "expired, undecided at its deadline {}",
            release.deadline.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        ReleaseStatus::Rejected => match &release.cancelled {
            Some(cancel) => with_words(
                "cancelled by an operator".to_owned(),
                cancel.reason.as_deref(),
            ),
            None => first_rejection(snapshot),
        },
    };
    Some(format!("outcome: {told}"))
}

/// `rejected by ana@…: comment` for the first rejection, or `rejected`.
fn first_rejection(snapshot: &ReleaseSnapshot) -> String {
    snapshot
        .approvals
        .iter()
        .filter_map(|a| a.decided.map(|d| (d, a)))
        .filter(|(d, _)| d.decision == Decision::Reject)
        .min_by_key(|(d, _)| d.at)
        .map_or_else(
            || "rejected".to_owned(),
            |(_, a)| decision_line(&a.email, Decision::Reject, a.comment.as_deref()),
        )
}

/// `head: words` when there are words, else `head`.
fn with_words(head: String, words: Option<&str>) -> String {
    match words.map(free_text).filter(|w| !w.is_empty()) {
        Some(words) => format!("{head}: {words}"),
        None => head,
    }
}

/// Free text on one line: control characters and runs of white space become one
/// space, bidi controls are written out, and long text is cut with `…`.
fn free_text(text: &str) -> String {
    let one_line = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let shown = bidi::neutralise(&one_line);
    if shown.chars().count() <= MAX_FREE_TEXT {
        return shown.into_owned();
    }
    let cut: String = shown.chars().take(MAX_FREE_TEXT).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_shows_its_local_part_only() {
        assert_eq!(shown_mailbox("ana@example.com"), "ana@…");
        assert_eq!(shown_mailbox("no-at-sign"), "no-at-sign@…");
    }

    #[test]
    fn a_comment_stays_on_one_line_and_is_cut_when_long() {
        let line = decision_line(
            "ana@x.com",
            Decision::Reject,
            Some(" not\r\n\ttoday\u{202e} "),
        );
        assert_eq!(line, "rejected by ana@…: not today[U+202E]");
        assert_eq!(
            decision_line("b@x.com", Decision::Approve, Some(" \n")),
            "approved by b@…"
        );
        let long = decision_line("b@x.com", Decision::Approve, Some(&"y".repeat(500)));
        assert!(long.ends_with(&format!("{}…", "y".repeat(MAX_FREE_TEXT))));
    }
}
