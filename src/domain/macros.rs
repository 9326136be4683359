//! Azure Pipelines macros `$(Name)` left unresolved: Azure sends a variable that
//! does not exist where the pipeline runs (a classic-release variable in a YAML
//! pipeline, a typo) as its literal text, which must never name a release.

/// Classic-release variables and what a YAML pipeline offers instead
/// (learn.microsoft.com: "Classic release and artifacts variables" and
/// "Use predefined variables").
const YAML_EQUIVALENTS: &[(&str, &str)] = &[
    (
        "Release.ReleaseName",
        "$(Build.BuildNumber) (or $(Resources.Pipeline.<alias>.RunName) for a pipeline resource)",
    ),
    ("Release.ReleaseId", "$(Build.BuildId)"),
    ("Release.DeploymentId", "$(Build.BuildId)"),
    (
        "Release.EnvironmentName",
        "$(System.StageName) (or $(Environment.Name) in a deployment job)",
    ),
    ("Release.AttemptNumber", "$(System.StageAttempt)"),
    ("Release.DefinitionName", "$(Build.DefinitionName)"),
    ("Release.DefinitionId", "$(System.DefinitionId)"),
    ("Release.RequestedFor", "$(Build.RequestedFor)"),
    ("Release.RequestedForEmail", "$(Build.RequestedForEmail)"),
    ("Release.Deployment.RequestedFor", "$(Build.RequestedFor)"),
    (
        "Release.Deployment.RequestedForEmail",
        "$(Build.RequestedForEmail)",
    ),
    (
        "Release.ReleaseWebUrl",
        "$(System.CollectionUri)$(System.TeamProject)/_build/results?buildId=$(Build.BuildId)",
    ),
];

/// The first `$(Name)` in `text` whose name is a variable name (letters, digits,
/// `.`, `_`, `-`), as written.
pub fn unresolved_macro(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(')') {
            return Some(&rest[start..start + 2 + name_len + 1]);
        }
        rest = after;
    }
    None
}

/// What a YAML pipeline uses instead of the classic variable `$(Name)`, if anything
/// (Azure's variable names are case-insensitive).
pub fn yaml_equivalent(found: &str) -> Option<&'static str> {
    let name = found.strip_prefix("$(")?.strip_suffix(')')?;
    YAML_EQUIVALENTS
        .iter()
        .find(|(classic, _)| classic.eq_ignore_ascii_case(name))
        .map(|(_, yaml)| *yaml)
}

/// The explanation of `found` in `field`: the variable, why it is there, and the
/// YAML equivalent where there is one.
pub fn describe(field: &str, found: &str) -> String {
    let hint = match yaml_equivalent(found) {
        Some(yaml) => {
            format!(" {found} exists only in classic release pipelines; in YAML use {yaml}.")
        }
        None => " Define the variable, or correct its name.".to_owned(),
    };
    format!(
        "{field}: holds {found}, a pipeline variable Azure DevOps left unresolved (it does not exist where the pipeline runs).{hint}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_macro_anywhere_in_the_text() {
        assert_eq!(
            unresolved_macro("$(Release.ReleaseName)"),
            Some("$(Release.ReleaseName)")
        );
        assert_eq!(
            unresolved_macro("R $(Build.DefinitionName) $(x_y-z)"),
            Some("$(Build.DefinitionName)")
        );
        assert_eq!(unresolved_macro("a $( b) $(c)"), Some("$(c)"));
    }

    #[test]
    fn text_that_is_no_macro_passes() {
        for text in [
            "Desafio-CD",
            "$",
            "$()",
            "$(a b)",
            "$(unclosed",
            "($x)",
            "€$(é)",
        ] {
            assert_eq!(unresolved_macro(text), None, "{text}");
        }
    }

    #[test]
    fn classic_release_variables_name_their_yaml_equivalent_whatever_the_case() {
        assert!(
            yaml_equivalent("$(release.releasename)")
                .is_some_and(|y| y.starts_with("$(Build.BuildNumber)"))
        );
        assert_eq!(
            yaml_equivalent("$(Release.ReleaseId)"),
            Some("$(Build.BuildId)")
        );
        assert_eq!(yaml_equivalent("$(Custom.Var)"), None);
        let text = describe("ReleaseName", "$(Release.ReleaseName)");
        assert!(
            text.starts_with("ReleaseName: holds $(Release.ReleaseName)"),
            "{text}"
        );
        assert!(text.contains("in YAML use $(Build.BuildNumber)"), "{text}");
    }
}
