//! Micro-benchmarks of the per-request hot paths: minting and verifying an
//! approval token, and computing a release's status. Run with
//! `cargo bench --bench micro`; results are recorded in BENCHMARKS.md.

use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use deploy_gate::{
    domain::{
        policy::{Decided, Decision, Rule, Vote, decide},
        release::ReleaseKey,
    },
    token::{ApprovalClaims, TokenKeys},
};
use uuid::Uuid;

fn tokens(c: &mut Criterion) {
    let keys = TokenKeys::new(b"bench-secret-0123456789abcdef");
    let now = Utc::now();
    let key = ReleaseKey::parse("Devx", "386", "prod").unwrap();
    let claims = ApprovalClaims::new(
        Uuid::new_v4(),
        0,
        "ana@example.com",
        &key,
        "Desafio-CD",
        now,
        now + Duration::hours(48),
    );
    let token = keys.mint(&claims);
    c.bench_function("token/mint", |b| b.iter(|| keys.mint(black_box(&claims))));
    c.bench_function("token/verify", |b| {
        b.iter(|| keys.verify(black_box(&token)).unwrap())
    });
    let tampered = format!("{}x", &token[..token.len() - 1]);
    c.bench_function("token/verify_tampered", |b| {
        b.iter(|| keys.verify(black_box(&tampered)).unwrap_err())
    });
}

fn status(c: &mut Criterion) {
    let now = Utc::now();
    let deadline = now + Duration::hours(48);
    let rule = Rule::from_required(None);
    for approvers in [3_usize, 50] {
        let emails: Vec<String> = (0..approvers)
            .map(|i| format!("a{i}@example.com"))
            .collect();
        let votes: Vec<Vote<'_>> = emails
            .iter()
            .enumerate()
            .map(|(i, email)| Vote {
                email,
                decided: (i % 2 == 0).then(|| Decided {
                    decision: Decision::Approve,
                    at: now - Duration::minutes(i as i64),
                }),
            })
            .collect();
        c.bench_function(&format!("status/decide_{approvers}_approvers"), |b| {
            b.iter(|| decide(black_box(&rule), black_box(&votes), None, deadline, now))
        });
    }
}

criterion_group!(benches, tokens, status);
criterion_main!(benches);
