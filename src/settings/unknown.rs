//! Environment variables that look like settings but are none: a misspelt
//! `DEPLOY_GATE_*` variable would otherwise be ignored without a word.

use super::{DEFINITIONS, file_variable};

/// Variables of the `DEPLOY_GATE_` prefix that are not settings: read
/// elsewhere, so not unknown.
const KNOWN_BESIDES_SETTINGS: &[&str] = &["DEPLOY_GATE_CONFIG"];

/// The prefix of the variables the test suite reads (never the service).
const TEST_PREFIX: &str = "DEPLOY_GATE_TEST_";

/// Each `DEPLOY_GATE_*` name in `names` that names no setting, with the
/// setting it most likely meant (when one is close).
pub fn unknown_variables<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(&'a str, Option<&'static str>)> {
    names
        .into_iter()
        .filter(|name| name.starts_with("DEPLOY_GATE_") && !name.starts_with(TEST_PREFIX))
        .filter(|name| {
            !KNOWN_BESIDES_SETTINGS.contains(name)
                && !DEFINITIONS
                    .iter()
                    .any(|d| d.env == *name || (d.secret && file_variable(d) == *name))
        })
        .map(|name| (name, closest(name)))
        .collect()
}

/// The setting's variable nearest to `name`, if it is a likely misspelling
/// (at most a third of its characters differ).
fn closest(name: &str) -> Option<&'static str> {
    DEFINITIONS
        .iter()
        .map(|d| (edit_distance(name, d.env), d.env))
        .min()
        .filter(|(distance, env)| *distance * 3 <= env.len().saturating_sub("DEPLOY_GATE_".len()))
        .map(|(_, env)| env)
}

/// Levenshtein distance over bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_setting_is_named_with_the_one_it_likely_meant() {
        let names = [
            "DEPLOY_GATE_APROVAL_DEADLINE",
            "DEPLOY_GATE_API_KEY",
            "DEPLOY_GATE_API_KEY_FILE",
            "DEPLOY_GATE_WORKERS_FILE",
            "DEPLOY_GATE_CONFIG",
            "DEPLOY_GATE_TEST_POSTGRES_URL",
            "DEPLOY_GATE_SOMETHING_ELSE_ENTIRELY",
            "HOME",
        ];
        assert_eq!(
            unknown_variables(names),
            [
                (
                    "DEPLOY_GATE_APROVAL_DEADLINE",
                    Some("DEPLOY_GATE_APPROVAL_DEADLINE")
                ),
                // Only secrets are read from files.
                ("DEPLOY_GATE_WORKERS_FILE", None),
                ("DEPLOY_GATE_SOMETHING_ELSE_ENTIRELY", None),
            ]
        );
    }
}
