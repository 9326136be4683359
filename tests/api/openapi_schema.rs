// Checks a JSON value against a schema of the committed OpenAPI document
// (openapi/openapi.json), for requests built outside the service (the Azure DevOps
// extension's task). It knows what that document uses: `$ref`, `allOf`, `anyOf`,
// `type`, `nullable`, `required`, `properties`, `minLength`, `maxLength`, `pattern`,
// `minimum`, `maximum`, `items` and `maxItems`; any other keyword fails the check,
// so a schema it does not understand is never passed over.

use regex::Regex;
use serde_json::Value;

/// The committed OpenAPI document.
pub fn document() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The schema of `method path`'s JSON request body, resolved.
pub fn request_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let content = &doc["paths"][path][method]["requestBody"]["content"];
    let (_, media) = content
        .as_object()
        .and_then(|c| {
            c.iter()
                .find(|(kind, _)| kind.starts_with("application/json"))
        })
        .unwrap_or_else(|| panic!("{method} {path} takes no JSON body"));
    resolve(doc, &media["schema"])
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local $ref");
            resolve(doc, doc.pointer(pointer).expect("the $ref's target"))
        }
        None => schema,
    }
}

/// The ways `value` breaks `schema` (resolved in `doc`), each naming where; empty
/// when it conforms. Fields the schema does not list are reported too: the service
/// ignores them, so a misspelt field would be dropped without a word.
pub fn violations(doc: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(doc, schema, value, "$", &mut found);
    found
}

fn check(doc: &Value, schema: &Value, value: &Value, at: &str, found: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    for (keyword, rule) in schema.as_object().expect("a schema object") {
        check_keyword(doc, schema, keyword, rule, value, at, found);
    }
}

fn check_keyword(
    doc: &Value,
    schema: &Value,
    keyword: &str,
    rule: &Value,
    value: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let mut fail = |why: String| found.push(format!("{at}: {why}"));
    let text = value.as_str();
    match keyword {
        "$ref" | "nullable" | "description" | "title" | "example" | "format" | "writeOnly" => {}
        "type" => {
            let fits = match rule.as_str().unwrap() {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                other => panic!("type {other} is not known here"),
            };
            if !fits {
                fail(format!("{value} is not of type {rule}"));
            }
        }
        "minLength" | "maxLength" => {
            let limit = rule.as_u64().unwrap() as usize;
            if let Some(length) = text.map(|t| t.chars().count())
                && ((keyword == "minLength" && length < limit)
                    || (keyword == "maxLength" && length > limit))
            {
                fail(format!("{length} characters break {keyword} {limit}"));
            }
        }
        "pattern" => {
            let pattern = Regex::new(rule.as_str().unwrap()).unwrap();
            if text.is_some_and(|t| !pattern.is_match(t)) {
                fail(format!("{value} does not match {rule}"));
            }
        }
        "minimum" | "maximum" => {
            let limit = rule.as_f64().unwrap();
            if let Some(number) = value.as_f64()
                && ((keyword == "minimum" && number < limit)
                    || (keyword == "maximum" && number > limit))
            {
                fail(format!("{number} breaks {keyword} {limit}"));
            }
        }
        "maxItems" => {
            if value
                .as_array()
                .is_some_and(|a| a.len() as u64 > rule.as_u64().unwrap())
            {
                fail(format!("more than {rule} items"));
            }
        }
        "items" => {
            for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                check(doc, rule, item, &format!("{at}[{i}]"), found);
            }
        }
        "allOf" => {
            for part in rule.as_array().unwrap() {
                check(doc, part, value, at, found);
            }
        }
        "anyOf" => {
            let fits_one = rule
                .as_array()
                .unwrap()
                .iter()
                .any(|part| violations(doc, part, value).is_empty());
            if !fits_one {
                fail(format!("{value} fits none of {rule}"));
            }
        }
        "required" => {
            for name in rule.as_array().unwrap() {
                if value.get(name.as_str().unwrap()).is_none_or(Value::is_null) {
                    fail(format!("{name} is required"));
                }
            }
        }
        "properties" => check_properties(doc, schema, rule, value, at, found),
        other => panic!("the keyword {other} is not known here"),
    }
}

fn check_properties(
    doc: &Value,
    schema: &Value,
    properties: &Value,
    value: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let title = schema["title"].as_str().unwrap_or("the schema");
    for (name, field) in value.as_object().into_iter().flatten() {
        match properties.get(name) {
            Some(property) => check(doc, property, field, &format!("{at}.{name}"), found),
            None => found.push(format!("{at}.{name}: not a field of {title}")),
        }
    }
}
