//! `ReleaseId` and `Approvers` of `POST /release`, each of which comes in two JSON shapes.
//!
//! poem-openapi's `Union` publishes such a choice as `type: object` plus `anyOf`, which no value
//! satisfies; these types publish the plain `anyOf`.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::{
    api::http::{
        problem::Problem,
        received::Expected,
        text::{ADDRESS, ReleaseIdRule, Text},
    },
    domain::{
        approver::{ApproverEmail, MAX_EMAIL_LEN, dedup, parse_approver_list},
        release::{MAX_APPROVERS, MAX_ATTEMPT},
    },
};

/// `ReleaseId` as sent: Azure substitutes `$(Release.ReleaseId)` as text, scripts may send a number.
#[derive(Clone, Debug)]
pub enum ReleaseIdValue {
    /// As text, e.g. `"386"`.
    Text(Text<ReleaseIdRule>),
    /// As a whole number, e.g. `386`.
    Number(i64),
}

impl ReleaseIdValue {
    /// The id as text, the way the release is stored and answered.
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(text) => text.to_string(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// `Attempt` as sent: Azure substitutes `$(Release.AttemptNumber)` as text
/// inside quotes, or as a number without them.
#[derive(Clone, Debug)]
pub enum AttemptValue {
    /// As text, e.g. `"2"`.
    Text(String),
    /// As a whole number, e.g. `2`.
    Number(i64),
}

impl AttemptValue {
    /// The value as sent, for the macro check.
    pub fn to_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Number(n) => n.to_string(),
        }
    }

    /// The attempt, from 1 to [`MAX_ATTEMPT`].
    pub fn parse(&self) -> Result<u32, Problem> {
        let refused = || {
            Problem::invalid_field(format!(
                "Attempt: must be a whole number from 1 to {MAX_ATTEMPT}, e.g. $(Release.AttemptNumber) or $(System.StageAttempt)"
            ))
        };
        let number = match self {
            Self::Text(text) => text.trim().parse::<i64>().map_err(|_| refused())?,
            Self::Number(n) => *n,
        };
        u32::try_from(number)
            .ok()
            .filter(|n| (1..=MAX_ATTEMPT).contains(n))
            .ok_or_else(refused)
    }
}

/// Approvers as sent: a list of addresses, or one string separated by `;` or `,`.
#[derive(Clone, Debug)]
pub enum ApproversValue {
    /// `["ana@example.com", "bo@example.com"]`.
    List(Vec<String>),
    /// `"ana@example.com; bo@example.com"`.
    Text(String),
}

impl ApproversValue {
    /// The addresses, validated and de-duplicated.
    pub fn parse(&self) -> Result<Vec<ApproverEmail>, Problem> {
        let parsed = match self {
            Self::Text(text) => parse_approver_list(text),
            Self::List(items) => items
                .iter()
                .map(|item| ApproverEmail::parse(item))
                .collect::<Result<Vec<_>, _>>()
                .map(dedup),
        };
        parsed.map_err(|err| Problem::invalid_field(format!("Approvers: {err}")))
    }
}

impl Expected for ReleaseIdValue {
    fn expected() -> Cow<'static, str> {
        "must be a string or a whole number".into()
    }
}

impl Expected for AttemptValue {
    fn expected() -> Cow<'static, str> {
        "must be a whole number, as a number or as text".into()
    }
}

impl Expected for ApproversValue {
    fn expected() -> Cow<'static, str> {
        "must be a list of email addresses, or one string of them separated by `;` or `,`".into()
    }
}

/// A list of addresses separated by `;` or `,`, possibly empty (then the other sources apply).
fn address_list_pattern() -> String {
    format!(r"^[ ;,]*(?:{ADDRESS}(?: *[;,][ ;,]*{ADDRESS})*)?[ ;,]*$")
}

/// [`Type`] of a choice: a component schema named `$name` with no `type` of its own.
macro_rules! choice_type {
    ($ty:ty, $name:literal, $description:literal, $variants:expr) => {
        impl Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                $name.into()
            }

            fn schema_ref() -> MetaSchemaRef {
                MetaSchemaRef::Reference($name.to_owned())
            }

            fn register(registry: &mut Registry) {
                registry.create_schema::<Self, _>($name.to_owned(), |_| MetaSchema {
                    description: Some($description),
                    any_of: $variants,
                    ..MetaSchema::ANY
                });
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
        }
    };
}

choice_type!(
    ReleaseIdValue,
    "ReleaseIdValue",
    "`ReleaseId` as sent: text (Azure substitutes `$(Release.ReleaseId)` as text) or a whole number.",
    vec![
        Text::<ReleaseIdRule>::schema_ref(),
        <i64 as Type>::schema_ref(),
    ]
);

choice_type!(
    AttemptValue,
    "AttemptValue",
    "`Attempt` as sent: text (`\"$(Release.AttemptNumber)\"`) or a whole number, from 1.",
    vec![
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some("^(10000|[1-9][0-9]{0,3})$".to_owned()),
            ..MetaSchema::new("string")
        })),
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: Some(1.0),
            maximum: Some(f64::from(MAX_ATTEMPT)),
            ..MetaSchema::new("integer")
        })),
    ]
);

choice_type!(
    ApproversValue,
    "ApproversValue",
    "Approvers as sent: a list of addresses, or one string of them separated by `;` or `,`.",
    vec![
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(MetaSchemaRef::Inline(Box::new(MetaSchema {
                max_length: Some(MAX_EMAIL_LEN),
                ..MetaSchema::new_with_format("string", "email")
            })))),
            max_items: Some(MAX_APPROVERS),
            ..MetaSchema::new("array")
        })),
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            pattern: Some(address_list_pattern()),
            ..MetaSchema::new("string")
        })),
    ]
);

impl ParseFromJSON for ReleaseIdValue {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self::Text(Text::new(text))),
            Some(Value::Number(n)) if n.is_i64() => n
                .as_i64()
                .map(Self::Number)
                .ok_or_else(|| ParseError::custom(Self::expected())),
            _ => Err(ParseError::custom(Self::expected())),
        }
    }
}

impl ToJSON for ReleaseIdValue {
    fn to_json(&self) -> Option<Value> {
        Some(match self {
            Self::Text(text) => Value::String(text.to_string()),
            Self::Number(n) => Value::from(*n),
        })
    }
}

impl ParseFromJSON for AttemptValue {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self::Text(text)),
            Some(Value::Number(n)) if n.is_i64() => n
                .as_i64()
                .map(Self::Number)
                .ok_or_else(|| ParseError::custom(Self::expected())),
            _ => Err(ParseError::custom(Self::expected())),
        }
    }
}

impl ToJSON for AttemptValue {
    fn to_json(&self) -> Option<Value> {
        Some(match self {
            Self::Text(text) => Value::String(text.clone()),
            Self::Number(n) => Value::from(*n),
        })
    }
}

impl ParseFromJSON for ApproversValue {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let refused = || ParseError::custom(Self::expected());
        match value {
            Some(Value::String(text)) => Ok(Self::Text(text)),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text),
                    _ => Err(refused()),
                })
                .collect::<Result<_, _>>()
                .map(Self::List),
            _ => Err(refused()),
        }
    }
}

impl ToJSON for ApproversValue {
    fn to_json(&self) -> Option<Value> {
        Some(match self {
            Self::List(items) => Value::from(items.clone()),
            Self::Text(text) => Value::String(text.clone()),
        })
    }
}
