//! The JSON body of `GET /releases/{TeamProject}/{ReleaseId}`: a release and what happened to it.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object, types::Example};

use crate::{
    api::{
        http::negotiate::PageBody,
        shared::status::{DecisionValue, ReleaseStatusBody, StatusValue},
    },
    domain::snapshot::{ApprovalRecord, CallbackEntry, ReleaseHistory, ReleaseRecord},
};

/// What happened to a release.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum EventKind {
    /// The release was received (`POST /release` or a service hook).
    Created,
    /// Its approvers were found (or found missing).
    ApproversResolved,
    /// An approver's email was accepted by the mail server.
    EmailSent,
    /// An approver approved or rejected.
    Decision,
    /// The release became final: approved, rejected or expired (here or in Azure DevOps).
    Decided,
    /// A check or job in callback mode asked to be told the outcome.
    CallbackRegistered,
    /// Azure DevOps accepted the TaskCompleted event of a callback.
    CallbackDelivered,
    /// The decision was written back to the Azure DevOps release approval.
    WrittenBack,
    /// An operator cancelled the release's approval.
    Cancelled,
    /// The escalation contact was told the release is still undecided.
    Escalated,
}

impl EventKind {
    /// The public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::ApproversResolved => "approvers_resolved",
            Self::EmailSent => "email_sent",
            Self::Decision => "decision",
            Self::Decided => "decided",
            Self::CallbackRegistered => "callback_registered",
            Self::CallbackDelivered => "callback_delivered",
            Self::WrittenBack => "written_back",
            Self::Cancelled => "cancelled",
            Self::Escalated => "escalated",
        }
    }
}

/// One event of a release's timeline. Fields without a value are left out.
#[derive(Object, Clone, Debug)]
#[oai(skip_serializing_if_is_none)]
pub struct TimelineEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// What happened, in words.
    pub summary: String,
    /// The approver concerned (`email_sent`, `decision`).
    pub approver: Option<String>,
    /// The approver's decision (`decision`).
    pub decision: Option<DecisionValue>,
    /// The approver's comment (`decision`), when given.
    pub comment: Option<String>,
    /// The release's final status (`decided`).
    pub status: Option<StatusValue>,
    /// The TaskCompleted result, `succeeded` or `failed` (`callback_delivered`).
    pub result: Option<String>,
}

impl TimelineEvent {
    fn new(at: DateTime<Utc>, kind: EventKind, summary: String) -> Self {
        Self {
            at,
            kind,
            summary,
            approver: None,
            decision: None,
            comment: None,
            status: None,
            result: None,
        }
    }
}

/// A release's timeline: its current status and what happened to it, oldest first.
#[derive(Object, Clone, Debug)]
#[oai(example)]
pub struct ReleaseTimeline {
    /// The release's current status, as `GET /release/{TeamProject}/{ReleaseId}` answers it.
    pub release: ReleaseStatusBody,
    /// What happened, oldest first.
    pub events: Vec<TimelineEvent>,
}

impl PageBody for ReleaseTimeline {
    const DESCRIPTION: &'static str = "The release and its timeline: JSON for API clients, an HTML page when the client accepts `text/html` before `application/json`.";
}

impl ReleaseTimeline {
    /// The timeline of `history` at `now`.
    pub fn of(history: &ReleaseHistory, now: DateTime<Utc>) -> Self {
        let snapshot = &history.snapshot;
        let release = &snapshot.release;
        let body = ReleaseStatusBody::from_snapshot(snapshot, now);
        let mut events = vec![TimelineEvent::new(
            release.created_at,
            EventKind::Created,
            "Release received".into(),
        )];
        events.extend(approvers_found(release, &snapshot.approvals));
        for approval in &snapshot.approvals {
            events.extend(approval_events(approval));
        }
        if let Some(cancellation) = &release.cancelled {
            let reason = cancellation
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            events.push(TimelineEvent::new(
                cancellation.at,
                EventKind::Cancelled,
                format!("Approval cancelled by an operator{reason}"),
            ));
        }
        if let Some(at) = release.escalated_at {
            events.push(TimelineEvent::new(
                at,
                EventKind::Escalated,
                "Escalation contact told the release is still undecided".into(),
            ));
        }
        if let Some(at) = body.decided_at {
            let mut event = TimelineEvent::new(
                at,
                EventKind::Decided,
                match &release.settled {
                    Some(settlement) => format!("Release {}", settlement.reason),
                    None => format!("Release {}", body.status.as_str()),
                },
            );
            event.status = Some(body.status);
            events.push(event);
        }
        for callback in &history.callbacks {
            events.extend(callback_events(callback));
        }
        for azure_approval in &history.azure_approvals {
            if let Some(at) = azure_approval.written_back_at {
                events.push(TimelineEvent::new(
                    at,
                    EventKind::WrittenBack,
                    format!(
                        "Decision written back to Azure DevOps approval {}",
                        azure_approval.approval.id
                    ),
                ));
            }
        }
        // Stable: events at the same moment keep the order in which they follow each other.
        events.sort_by_key(|e| e.at);
        Self {
            release: body,
            events,
        }
    }
}

fn approvers_found(release: &ReleaseRecord, approvals: &[ApprovalRecord]) -> Option<TimelineEvent> {
    let at = release.approvers_resolved_at?;
    let source = match release.approvers_source.as_deref() {
        Some("request") => " named in the request",
        Some("approvers_url") => " from the approvers API",
        Some("static") => " from the static list",
        _ => "",
    };
    let summary = match approvals.len() {
        0 => "No approvers found".to_owned(),
        1 => format!("1 approver{source}"),
        n => format!("{n} approvers{source}"),
    };
    Some(TimelineEvent::new(
        at,
        EventKind::ApproversResolved,
        summary,
    ))
}

fn callback_events(callback: &CallbackEntry) -> Vec<TimelineEvent> {
    let hub = &callback.hub_name;
    let mut events = vec![TimelineEvent::new(
        callback.registered_at,
        EventKind::CallbackRegistered,
        format!("Azure DevOps ({hub}) asked to be told the outcome"),
    )];
    if let (Some(at), Some(result)) = (callback.delivered_at, &callback.result) {
        let mut event = TimelineEvent::new(
            at,
            EventKind::CallbackDelivered,
            format!("Azure DevOps ({hub}) told the outcome: {result}"),
        );
        event.result = Some(result.clone());
        events.push(event);
    }
    events
}

fn approval_events(approval: &ApprovalRecord) -> Vec<TimelineEvent> {
    let mut events = Vec::new();
    if let Some(at) = approval.email_sent_at {
        let mut event = TimelineEvent::new(
            at,
            EventKind::EmailSent,
            format!("Approval email sent to {}", approval.email),
        );
        event.approver = Some(approval.email.clone());
        events.push(event);
    }
    if let Some(decided) = approval.decided {
        let decision = DecisionValue::from(Some(decided.decision));
        let mut event = TimelineEvent::new(
            decided.at,
            EventKind::Decision,
            format!("{} {}", approval.email, decision.as_str()),
        );
        event.approver = Some(approval.email.clone());
        event.decision = Some(decision);
        event.comment = approval.comment.clone();
        events.push(event);
    }
    events
}

impl Example for ReleaseTimeline {
    fn example() -> Self {
        let release = ReleaseStatusBody::example();
        let at = |minutes| release.created_at + chrono::Duration::minutes(minutes);
        let mut email = TimelineEvent::new(
            at(0),
            EventKind::EmailSent,
            "Approval email sent to ana@example.com".into(),
        );
        email.approver = Some("ana@example.com".into());
        let mut decision = TimelineEvent::new(
            at(7),
            EventKind::Decision,
            "ana@example.com approved".into(),
        );
        decision.approver = Some("ana@example.com".into());
        decision.decision = Some(DecisionValue::Approved);
        decision.comment = Some("ship it".into());
        Self {
            events: vec![
                TimelineEvent::new(at(0), EventKind::Created, "Release received".into()),
                TimelineEvent::new(
                    at(0),
                    EventKind::ApproversResolved,
                    "2 approvers named in the request".into(),
                ),
                email,
                decision,
            ],
            release,
        }
    }
}
