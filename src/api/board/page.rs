//! The operator's pages: the release board and a release's timeline.

use chrono::{DateTime, Utc};
use minijinja::context;

use super::{body::ReleaseBoard, timeline::ReleaseTimeline};
use crate::api::pages::render;

/// The statuses the board's filter offers, `any` first.
const STATUS_CHOICES: [&str; 5] = ["any", "pending", "approved", "rejected", "expired"];

/// From the timeline page (`/releases/{TeamProject}/{ReleaseId}`) back to the board,
/// relative so that the pages work behind a proxy that serves them under a prefix.
const BOARD_FROM_TIMELINE: &str = "../../releases";

/// The board as a page: filters, a table of releases, and a link to the next page.
pub fn board_page(board: &ReleaseBoard) -> String {
    let releases: Vec<_> = board
        .releases
        .iter()
        .map(|r| {
            context! {
                name => r.release_name,
                release_id => r.release_id,
                project => r.team_project,
                stage => r.stage,
                round => (r.attempt != 1 || r.phase != "pre")
                    .then(|| format!("attempt {}, {}", r.attempt, r.phase)),
                status => r.status.as_str(),
                problem => r.problem,
                approved => r.approvals.approved,
                required => r.approvals.required,
                pending_approvers => r.pending_approvers,
                age => age_text(r.age_seconds),
                created_at => minutes(r.created_at),
                created_at_iso => r.created_at.to_rfc3339(),
                link => relative_to_board(&r.timeline_url),
            }
        })
        .collect();
    render(
        "board.html",
        context! {
            releases,
            team_project => board.team_project,
            status => board.status.as_str(),
            statuses => STATUS_CHOICES,
            limit => board.limit,
            next => board.next.as_deref().map(relative_to_board),
        },
    )
}

/// A release's timeline as a page: its status, approvers and events.
pub fn timeline_page(timeline: &ReleaseTimeline) -> String {
    let release = &timeline.release;
    let approvers: Vec<_> = release
        .approvers
        .iter()
        .map(|a| {
            context! {
                email => a.email,
                decision => a.decision.as_str(),
                decided_at => a.decided_at.map(minutes),
            }
        })
        .collect();
    let events: Vec<_> = timeline
        .events
        .iter()
        .map(|e| {
            let outcome = e
                .decision
                .map(|d| d.as_str())
                .or(e.status.map(|s| s.as_str()));
            context! {
                kind => e.kind.as_str(),
                at => e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                at_iso => e.at.to_rfc3339(),
                summary => e.summary,
                comment => e.comment,
                outcome,
            }
        })
        .collect();
    render(
        "timeline.html",
        context! {
            release_name => release.release_name,
            release_id => release.release_id,
            team_project => release.team_project,
            stage => release.stage,
            status => release.status.as_str(),
            created_at => minutes(release.created_at),
            deadline => minutes(release.deadline),
            required => release.approvals.required,
            approved => release.approvals.approved,
            problems => release.problems.iter().map(|p| p.detail.clone()).collect::<Vec<_>>(),
            approvers,
            events,
            board => BOARD_FROM_TIMELINE,
        },
    )
}

fn minutes(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A path below the board (`/releases…`) relative to the board page itself.
fn relative_to_board(path: &str) -> String {
    path.trim_start_matches('/').to_owned()
}

/// An age in its largest whole unit: `42 s`, `5 min`, `3 h`, `2 d`.
fn age_text(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::Example;

    use super::*;

    #[test]
    fn ages_read_in_their_largest_whole_unit() {
        assert_eq!(age_text(59), "59 s");
        assert_eq!(age_text(60), "1 min");
        assert_eq!(age_text(7_199), "1 h");
        assert_eq!(age_text(172_800), "2 d");
    }

    #[test]
    fn the_operator_pages_escape_what_they_show_and_link_relatively() {
        let mut board = ReleaseBoard::example();
        board.releases[0].release_name = "<script>x</script>".into();
        let html = board_page(&board);
        assert!(html.contains("&lt;script&gt;x") && !html.contains("<script>"));
        assert!(
            html.contains(r#"href="releases&#x2f;Devx&#x2f;386?Stage=prod""#),
            "{html}"
        );
        let mut timeline = ReleaseTimeline::example();
        timeline.events[3].comment = Some("<img src=x onerror=alert(1)>".into());
        let html = timeline_page(&timeline);
        assert!(html.contains("&lt;img src=x") && !html.contains("<img"));
    }
}
