//! The committed OpenAPI document (`openapi/openapi.json`) matches the code, and the
//! generated document describes every operation, parameter, field and error.

use serde_json::Value;

const COMMITTED: &str = include_str!("../openapi/openapi.json");

fn generated() -> Value {
    serde_json::from_str(&deploy_gate::api::openapi_json()).expect("generated document is JSON")
}

#[test]
fn the_committed_document_matches_the_code() {
    let committed: Value =
        serde_json::from_str(COMMITTED).expect("openapi/openapi.json is valid JSON");
    assert!(
        committed == generated(),
        "openapi/openapi.json is out of date; regenerate it with\n\n    \
         cargo run -q -- openapi > openapi/openapi.json\n"
    );
}

fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            found.push((format!("{} {path}", method.to_uppercase()), operation));
        }
    }
    found
}

#[test]
fn every_operation_of_the_design_is_documented() {
    let doc = generated();
    let names: Vec<String> = operations(&doc).into_iter().map(|(name, _)| name).collect();
    for expected in [
        "POST /release",
        "GET /release/{TeamProject}/{ReleaseId}",
        "GET /approval",
        "POST /approval",
        "POST /hooks/azure-devops",
        "GET /healthz",
        "GET /readyz",
    ] {
        assert!(
            names.contains(&expected.to_owned()),
            "{expected} missing: {names:?}"
        );
    }
}

#[test]
fn every_operation_parameter_and_response_is_described() {
    let doc = generated();
    for (name, operation) in operations(&doc) {
        assert!(
            operation["summary"].is_string(),
            "{name} has no summary (a doc comment on the handler)"
        );
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            assert!(
                parameter["description"].is_string(),
                "{name}: parameter {} has no description",
                parameter["name"]
            );
        }
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(
                !description.is_empty(),
                "{name}: response {status} has no description"
            );
        }
    }
}

#[test]
fn every_error_response_is_a_problem_document_but_the_failsafe_answers() {
    let doc = generated();
    for (name, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let failsafe_answer = response["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("`failsafe=true` only"));
            if !status.starts_with('4') || failsafe_answer {
                // The fail-safe gate answers carry the release status, not a problem.
                continue;
            }
            let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/Problem",
                "{name}: {status} is not documented as application/problem+json"
            );
        }
        assert!(
            responses.keys().any(|s| s.starts_with('4'))
                || name.starts_with("GET /healthz")
                || name.starts_with("GET /readyz"),
            "{name} documents no error response"
        );
    }
}

#[test]
fn every_field_is_described_and_bodies_have_examples() {
    let doc = generated();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for (schema_name, schema) in schemas {
        assert!(
            schema["description"].is_string(),
            "schema {schema_name} has no description"
        );
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        for (field, property) in properties {
            let referenced = property.get("$ref").is_some() || property.get("allOf").is_some();
            assert!(
                referenced || property["description"].is_string(),
                "{schema_name}.{field} has no description"
            );
        }
    }
    for body in [
        "ReleaseRequest",
        "ReleaseStatus",
        "DecisionRequest",
        "ApprovalView",
        "ServiceHookEvent",
        "HookAnswer",
        "Problem",
    ] {
        assert!(
            schemas[body]["example"].is_object(),
            "schema {body} has no example"
        );
    }
}

/// Every schema in `value` (recursively) with the pointer it sits at.
fn schemas_in<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(fields) => {
            found.push((at.clone(), value));
            for (key, child) in fields {
                schemas_in(child, format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                schemas_in(child, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn a_choice_of_shapes_is_a_plain_any_of_that_values_can_satisfy() {
    let doc = generated();
    let mut found = Vec::new();
    schemas_in(&doc, String::new(), &mut found);
    for (at, schema) in found {
        let choice = schema.get("anyOf").or_else(|| schema.get("oneOf"));
        assert!(
            choice.is_none() || schema.get("type").is_none(),
            "{at} has both a type and a choice, which only objects of every shape could satisfy"
        );
    }
    let release_id = &doc["components"]["schemas"]["ReleaseIdValue"]["anyOf"];
    assert_eq!(release_id[0]["type"], "string");
    assert_eq!(release_id[1]["type"], "integer");
}

#[test]
fn the_release_identity_parameters_state_their_limits() {
    let doc = generated();
    let operation = &doc["paths"]["/release/{TeamProject}/{ReleaseId}"]["get"];
    let limit = |name: &str| {
        let parameter = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let schema = &parameter["schema"];
        assert!(schema["pattern"].is_string(), "{name}: {schema}");
        schema["maxLength"].as_u64()
    };
    assert_eq!(limit("TeamProject"), Some(256));
    assert_eq!(limit("ReleaseId"), Some(128));
    assert_eq!(limit("Stage"), Some(256));
}
