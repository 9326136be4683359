//! The board's SQL against the decision rule. `GET /releases?status=` narrows
//! the candidates in SQL (store/listing.rs) before `decide` has the last word;
//! the narrowing must never drop a release of the wanted status. Generated
//! releases (the decision oracle's, in every status, with groups, requesters,
//! late decisions and cancellations) are stored through the store's own
//! transactions in a SQLite database, and the board listed by each status at
//! one instant must hold exactly the releases `decide` gives that status.
//! Only states the service can reach are stored: decisions and cancellations
//! happen before the deadline and by the instant looked at, and none once the
//! release is final (the service refuses them).

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use deploy_gate::{
    domain::{
        approver::ApproverEmail,
        policy::ReleaseStatus,
        policy::{NewApprovers, ResolvedApprovers},
        release::{NewRelease, ReleaseKey},
    },
    secret::Secret,
    settings::DatabaseConfig,
    store::{self, ReleaseQuery, Store},
};
use proptest::prelude::*;

use crate::decision::{Case, DEADLINE, cases, minute};

const STATUSES: [ReleaseStatus; 4] = [
    ReleaseStatus::Pending,
    ReleaseStatus::Approved,
    ReleaseStatus::Rejected,
    ReleaseStatus::Expired,
];

/// `case` at minute `now` as the service would have recorded it: each decision
/// and the cancellation, in the order of their minutes, kept only if made
/// before the deadline, by `now`, and while the release was still pending.
fn reachable(case: &Case, now: i64) -> Case {
    let mut events: Vec<(i64, Option<usize>)> = case
        .votes
        .iter()
        .enumerate()
        .filter_map(|(i, (_, decided))| decided.map(|(_, at)| (at, Some(i))))
        .chain(case.cancelled.map(|at| (at, None)))
        .collect();
    events.sort_unstable();
    let mut state = Case {
        votes: case.votes.iter().map(|(email, _)| (*email, None)).collect(),
        cancelled: None,
        now,
        ..case.clone()
    };
    for (at, event) in events {
        let pending = Case {
            now: at,
            ..state.clone()
        }
        .decide()
        .status
            == ReleaseStatus::Pending;
        if at >= DEADLINE || at > now || !pending {
            continue;
        }
        match event {
            Some(i) => state.votes[i].1 = case.votes[i].1,
            None => state.cancelled = Some(at),
        }
    }
    state
}

/// A migrated SQLite database in `dir`, opened as the application opens it.
async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let config = DatabaseConfig {
        url: Secret::new(format!(
            "sqlite://{}",
            dir.path().join("board.db").display()
        )),
        max_connections: 4,
        statement_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
    };
    let store = store::open(&config).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Stores `case` as release `id` of project `Devx`: its approvers under its
/// rule, each decision at its minute, and its cancellation.
async fn store_case(store: &dyn Store, id: usize, case: &Case) {
    let key = ReleaseKey::parse("Devx", &id.to_string(), "").unwrap();
    let new = NewRelease::parse(key, "R", None).unwrap();
    let mut tx = store.begin().await.unwrap();
    let release_id = tx
        .insert_release(&new, None, minute(DEADLINE), minute(0))
        .await
        .unwrap()
        .expect("a new release")
        .id;
    let emails: Vec<ApproverEmail> = (case.votes.iter())
        .map(|(email, _)| ApproverEmail::parse(email).unwrap())
        .collect();
    let approvers: Vec<_> = (0..)
        .zip(&emails)
        .map(|(position, email)| (email, minute(0) + chrono::Duration::milliseconds(position)))
        .collect();
    let resolved = ResolvedApprovers {
        approvers: Vec::new(),
        source: "request".to_owned(),
        problem: None,
        rule: case.rule.clone(),
        channels: Vec::new(),
    };
    let new = NewApprovers {
        release_id,
        approvers: &approvers,
        jobs: &[],
        resolved: &resolved,
        now: minute(0),
    };
    let added = tx.add_approvers(&new, None).await.unwrap();
    let approvals = (added.ids.into_iter())
        .zip(&case.votes)
        .map(|(id, (_, decided))| (id.expect("a new approver"), *decided));
    for (approval_id, decided) in approvals {
        if let Some((decision, at)) = decided {
            tx.record_decision(approval_id, decision, None, None, minute(at))
                .await
                .unwrap();
        }
    }
    if let Some(at) = case.cancelled {
        tx.record_cancellation(release_id, None, minute(at))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The `ReleaseId`s the board lists with `status` at minute `now`, across pages of 3.
async fn listed(store: &dyn Store, status: ReleaseStatus, now: i64) -> BTreeSet<usize> {
    let mut query = ReleaseQuery {
        team_project: None,
        status: Some(status),
        limit: 3,
        after: None,
    };
    let mut ids = BTreeSet::new();
    loop {
        let page = store.list_releases(&query, minute(now)).await.unwrap();
        for summary in &page.releases {
            ids.insert(summary.release.key.release_id.parse().unwrap());
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return ids,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_board_lists_by_status_exactly_the_releases_decide_gives_that_status(
        batch in prop::collection::vec(cases(), 1..8),
        now in 0_i64..30,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let batch: Vec<Case> = batch.iter().map(|case| reachable(case, now)).collect();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = sqlite_store(&dir).await;
            for (id, case) in batch.iter().enumerate() {
                store_case(&*store, id, case).await;
            }
            for status in STATUSES {
                let expected: BTreeSet<usize> = batch
                    .iter()
                    .enumerate()
                    .filter(|(_, case)| case.decide().status == status)
                    .map(|(id, _)| id)
                    .collect();
                assert_eq!(listed(&*store, status, now).await, expected, "{status:?} at minute {now}");
            }
        });
    }
}
