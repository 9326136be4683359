//! The query parameters of `GET /releases`, every refused one named at once.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ParseError, ParseFromParameter, ParseResult, Type},
};
use serde_json::Value;

use super::body::StatusFilter;
use crate::{
    api::http::{
        problem::Problem,
        received::{Expected, Received},
        refusals::Refusals,
        text::{CursorRule, ProjectFilterRule, Text},
    },
    domain::release::ReleaseKey,
    store::{ListingCursor, ReleaseQuery},
};

/// Releases on a page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 50;
/// Fewest releases a page may ask for.
const MIN_LIMIT: u32 = 1;
/// Most releases a page may ask for.
const MAX_LIMIT: u32 = 100;

/// `limit`: releases per page, published with its bounds and checked against them in
/// the handler, so that it is named along with every other refused parameter.
#[derive(Clone, Copy, Debug)]
pub struct PageLimit(u32);

impl Type for PageLimit {
    const IS_REQUIRED: bool = true;
    type RawValueType = u32;
    type RawElementValueType = u32;

    fn name() -> Cow<'static, str> {
        "integer(uint32)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: Some(f64::from(MIN_LIMIT)),
            maximum: Some(f64::from(MAX_LIMIT)),
            ..MetaSchema::new_with_format("integer", "uint32")
        }))
    }

    fn as_raw_value(&self) -> Option<&u32> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a u32> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromParameter for PageLimit {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value
            .parse()
            .map(Self)
            .map_err(|_| ParseError::custom("not a whole number"))
    }
}

impl Expected for PageLimit {
    fn expected() -> Cow<'static, str> {
        format!("must be a whole number from {MIN_LIMIT} to {MAX_LIMIT}").into()
    }
}

impl PageLimit {
    /// The limit, within its bounds.
    fn check(self) -> Result<u32, Problem> {
        match self.0 {
            n if n < MIN_LIMIT => Err(format!("limit: must be at least {MIN_LIMIT}")),
            n if n > MAX_LIMIT => Err(format!("limit: must be at most {MAX_LIMIT}")),
            n => Ok(n),
        }
        .map_err(Problem::invalid_request)
    }
}

impl Expected for StatusFilter {
    fn expected() -> Cow<'static, str> {
        // The values as the OpenAPI document publishes them.
        let mut registry = Registry::new();
        Self::register(&mut registry);
        let values: Vec<String> = registry
            .schemas
            .get(&*Self::name())
            .into_iter()
            .flat_map(|schema| schema.enum_items.iter().filter_map(Value::as_str))
            .map(str::to_owned)
            .collect();
        format!("must be one of {}", values.join(", ")).into()
    }
}

/// The parameters of `GET /releases` as received.
pub struct BoardParams {
    /// `TeamProject`.
    pub team_project: Received<Option<Text<ProjectFilterRule>>>,
    /// `status`.
    pub status: Received<Option<StatusFilter>>,
    /// `limit`.
    pub limit: Received<Option<PageLimit>>,
    /// `cursor`.
    pub cursor: Received<Option<Text<CursorRule>>>,
}

impl BoardParams {
    /// The store's query, or one problem naming every refused parameter; a blank
    /// project means every project.
    pub fn query(&self) -> Result<ReleaseQuery, Problem> {
        let mut refusals = Refusals::default();
        let r = &mut refusals;
        let team_project = self.team_project.read(r, "TeamProject").and_then(|text| {
            let text = text.as_deref().filter(|t| !t.trim().is_empty());
            let parsed = text.map(ReleaseKey::parse_team_project).transpose();
            r.check(
                "TeamProject",
                parsed.map_err(|e| Problem::invalid_field(e.to_string())),
            )
        });
        let status = self.status.read(r, "status").copied();
        let limit = self.limit.read(r, "limit").and_then(|limit| match limit {
            Some(limit) => r.check("limit", limit.check()),
            None => Some(DEFAULT_LIMIT),
        });
        let after = self.cursor.read(r, "cursor").and_then(|cursor| {
            let parsed = cursor
                .as_deref()
                .map(str::parse::<ListingCursor>)
                .transpose();
            r.check(
                "cursor",
                parsed.map_err(|e| Problem::invalid_field(format!("cursor: {e}"))),
            )
        });
        refusals.finish()?;
        match (team_project, status, limit, after) {
            (Some(team_project), Some(status), Some(limit), Some(after)) => Ok(ReleaseQuery {
                team_project,
                status: status.unwrap_or(StatusFilter::Any).status(),
                limit,
                after,
            }),
            // Every `None` above recorded a refusal, so `finish` has failed already.
            _ => Err(Problem::internal()),
        }
    }
}
