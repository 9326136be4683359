//! The configuration reference (`docs/configuration.md`), made from the list of
//! settings so that it cannot drift from the code.

use super::{DEFINITIONS, Definition};

const INTRODUCTION: &str = "\
# Configuration reference

<!-- Generated from src/settings/mod.rs by `deploy-gate config --reference`; do not edit. -->

Every setting has a working default. Environment variables override a TOML
file named by `--config` or `DEPLOY_GATE_CONFIG`, whose keys are the variable
names without the prefix, in lower case (`bind = \"0.0.0.0:8000\"`,
`approval_deadline = \"72h\"`). Each setting is also a command-line flag: the
key with dashes (`--approval-deadline 72h`), which wins like the environment.
An invalid value stops the start with a message naming the variable.

`deploy-gate config` prints the effective settings as such a file, with every
secret masked, and in every URL the user name, the password and each query
parameter whose name looks like a credential (`password`, `apikey`, `token`,
`sig`, …) shown as `****`. `RUST_LOG` sets the log filter (`info` by default).

| variable | file key | value | default | meaning |
|---|---|---|---|---|
";

const TABLES: &str = "
Approval policies (`[[policies]]`) and approver groups (`[groups]`) are
tables, so they live in the TOML file only; [approvers.md](approvers.md)
describes them.
";

/// The reference of every setting as Markdown.
pub fn reference_markdown() -> String {
    let mut text = INTRODUCTION.to_owned();
    for definition in DEFINITIONS {
        text.push_str(&row(definition));
    }
    text.push_str(TABLES);
    text
}

fn row(definition: &Definition) -> String {
    let mut meaning = definition.meaning();
    if definition.secret {
        meaning.push_str(" Secret: `deploy-gate config` masks it.");
    }
    format!(
        "| `{}` | `{}` | {} | {} | {} |\n",
        definition.env,
        definition.name,
        definition.kind,
        definition.default,
        meaning.replace('|', "\\|"),
    )
}
