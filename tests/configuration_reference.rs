//! The committed configuration reference (`docs/configuration.md`) matches the
//! settings the code defines.

const COMMITTED: &str = include_str!("../docs/configuration.md");

#[test]
fn the_committed_reference_matches_the_code() {
    assert!(
        COMMITTED == deploy_gate::settings::reference_markdown(),
        "docs/configuration.md is out of date; regenerate it with\n\n    \
         cargo run -q -- config --reference > docs/configuration.md\n"
    );
}

#[test]
fn the_reference_names_every_variable() {
    for definition in deploy_gate::settings::DEFINITIONS {
        assert!(
            COMMITTED.contains(&format!("| `{}` |", definition.env)),
            "{} missing",
            definition.env
        );
    }
}

#[test]
fn the_command_prints_the_reference_without_reading_any_setting() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deploy-gate"))
        .args(["config", "--reference"])
        // A bad setting would stop `deploy-gate config`, but not the reference.
        .env("DEPLOY_GATE_WORKERS", "0")
        .output()
        .expect("deploy-gate runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), COMMITTED);
}
