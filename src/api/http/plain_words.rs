//! Request errors in words a caller can act on: poem's messages name internal
//! types ("DecisionInput", "optional_StatusFilter") and validator syntax
//! ("maximum(100, exclusive: false)"); these say which field and what it takes.

/// Enumerations a body field takes: the type poem names, the field, its values.
const ENUMS: &[(&str, &str, &str)] = &[("DecisionInput", "decision", "`approve` or `reject`")];

/// `message`, one of poem's parse errors, in plain words.
pub fn plain_words(message: &str) -> String {
    let mut text = message.to_owned();
    // Where poem was when it failed: internal type names, no help to a caller.
    while let Some(start) = text.find(" (occurred while parsing \"") {
        let end = text[start..]
            .find("\")")
            .map_or(text.len(), |e| start + e + 2);
        text.replace_range(start..end, "");
    }
    if let Some(rest) = text.strip_prefix("parse request payload error: ") {
        text = rest.to_owned();
    }
    if let Some(rest) = text.strip_prefix("failed to parse \"")
        && let Some((_, after)) = rest.split_once("\": ")
    {
        text = after.to_owned();
    }
    if let Some(rest) = text.strip_prefix("failed to parse parameter `")
        && let Some((name, problem)) = rest.split_once("`: ")
    {
        text = format!("{name}: {}", validator_words(problem));
    }
    for (type_name, field, values) in ENUMS {
        if text.contains(&format!("Expected input type \"{type_name}\"")) {
            return format!("{field}: must be {values}");
        }
    }
    if let Some(field) = text.strip_suffix(": is required") {
        return format!("{field}: is required (field names are case-sensitive: {field})");
    }
    text.trim_end_matches('.').to_owned()
}

/// A validator's complaint, e.g. `verification failed. maximum(100, exclusive: false)`.
fn validator_words(problem: &str) -> String {
    let Some(rule) = problem.strip_prefix("verification failed. ") else {
        return problem.to_owned();
    };
    let argument = |name: &str| {
        rule.strip_prefix(name)?
            .strip_prefix('(')?
            .split([',', ')'])
            .next()
            .map(str::trim)
            .map(str::to_owned)
    };
    if let Some(n) = argument("maximum") {
        format!("must be at most {n}")
    } else if let Some(n) = argument("minimum") {
        format!("must be at least {n}")
    } else if let Some(n) = argument("maxLength") {
        format!("must be at most {n} characters")
    } else if let Some(n) = argument("minLength") {
        format!("must be at least {n} characters")
    } else {
        format!("does not meet {rule}")
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn poems_messages_become_the_field_and_what_it_takes() {
        assert_eq!(
            plain_words(
                "failed to parse parameter `limit`: verification failed. maximum(100, exclusive: false)"
            ),
            "limit: must be at most 100"
        );
        assert_eq!(
            plain_words(
                "failed to parse parameter `Attempt`: verification failed. minimum(1, exclusive: false)"
            ),
            "Attempt: must be at least 1"
        );
        assert_eq!(
            plain_words(
                "parse request payload error: Expected input type \"DecisionInput\", found \"yes\". (occurred while parsing \"DecisionRequest\")"
            ),
            "decision: must be `approve` or `reject`"
        );
        assert_eq!(
            plain_words(
                "parse request payload error: failed to parse \"ReleaseRequest\": ReleaseName: is required"
            ),
            "ReleaseName: is required (field names are case-sensitive: ReleaseName)"
        );
        assert_eq!(plain_words("something else."), "something else");
    }
}
