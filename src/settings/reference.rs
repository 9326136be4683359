//! The configuration reference (`docs/configuration.md`), made from the list of
//! settings so that it cannot drift from the code.

use super::{DEFINITIONS, Definition, file_key, file_variable};

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
`sig`, …) shown as `****`; a comment after each secret says where it came
from (`environment`, `environment file <path>`, `command line`, `config file`,
`config file's file <path>` or `default`). `RUST_LOG` sets the log filter
(`info` by default).

Every secret may instead be read from a file, as Docker and Kubernetes hand
secrets over: the variable `DEPLOY_GATE_<NAME>_FILE`, or the file key
`<name>_file` (relative to the TOML file's folder), names a file holding the
value; one trailing newline is ignored. Giving both forms at one level (both
variables, or both keys) stops the start naming both, as does a file that cannot
be read, naming its path. The environment overrides the TOML file whichever form
each uses. [secrets.md](secrets.md) shows Docker Compose, Kubernetes and the
rotation of the token secret.

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
    let mut text = format!(
        "| `{}` | `{}` | {} | {} | {} |\n",
        definition.env,
        definition.name,
        definition.kind,
        definition.default,
        meaning.replace('|', "\\|"),
    );
    if definition.secret {
        text.push_str(&format!(
            "| `{}` | `{}` | path | unset | A file holding `{}` (one trailing newline ignored); not with it at the same level. |\n",
            file_variable(definition),
            file_key(definition),
            definition.env,
        ));
    }
    text
}
