//! Body fields and parameters as received: one that is missing or of the wrong type does
//! not stop the request from being read, so the handler can name it along with every
//! other refused field (poem-openapi stops at the first and names no field).

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchemaRef, Registry},
    types::{ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use super::{
    problem::Problem,
    refusals::{Refusals, missing},
    text::Text,
};

/// What a field of type `T` must be, in words, for a value it could not read.
pub trait Expected {
    /// E.g. `must be a string`.
    fn expected() -> Cow<'static, str>;
}

impl<R> Expected for Text<R> {
    fn expected() -> Cow<'static, str> {
        "must be a string".into()
    }
}

impl<T: Expected> Expected for Option<T> {
    fn expected() -> Cow<'static, str> {
        T::expected()
    }
}

/// Why a field could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unreadable {
    /// Required, and absent or `null`.
    Missing,
    /// Of another JSON type.
    WrongType,
}

/// A field published as `T`, read whatever was sent: its value, or why it has none.
#[derive(Clone, Debug)]
pub struct Received<T>(Result<T, Unreadable>);

impl<T> Received<T> {
    /// A field received as `value`.
    pub fn new(value: T) -> Self {
        Self(Ok(value))
    }

    /// The value, if the field was read.
    pub fn value(&self) -> Option<&T> {
        self.0.as_ref().ok()
    }
}

impl<T: Expected> Received<T> {
    /// The value, or `None` with the field's refusal recorded as `field`'s.
    pub fn read(&self, refusals: &mut Refusals, field: &str) -> Option<&T> {
        let refusal = match &self.0 {
            Ok(value) => return Some(value),
            Err(Unreadable::Missing) => missing(field),
            Err(Unreadable::WrongType) => {
                Problem::invalid_request(format!("{field}: {}", T::expected()))
            }
        };
        refusals.refuse(field, refusal);
        None
    }
}

impl<T: Type> Type for Received<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.value().and_then(T::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match self.value() {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }

    fn is_none(&self) -> bool {
        self.value().is_none_or(T::is_none)
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Received<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.filter(|v| !v.is_null());
        Ok(Self(match value {
            None if T::IS_REQUIRED => Err(Unreadable::Missing),
            value => T::parse_from_json(value).map_err(|_| Unreadable::WrongType),
        }))
    }
}

/// A parameter as received: like a body field, read whatever was sent.
impl<T: ParseFromParameter> ParseFromParameter for Received<T> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(
            T::parse_from_parameter(value).map_err(|_| Unreadable::WrongType),
        ))
    }

    fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
        iter: I,
    ) -> ParseResult<Self> {
        let mut values = iter.into_iter().peekable();
        if T::IS_REQUIRED && values.peek().is_none() {
            return Ok(Self(Err(Unreadable::Missing)));
        }
        Ok(Self(
            T::parse_from_parameters(values).map_err(|_| Unreadable::WrongType),
        ))
    }
}

impl<T: ToJSON> ToJSON for Received<T> {
    fn to_json(&self) -> Option<Value> {
        self.value().and_then(T::to_json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::text::AnyRule;

    type Required = Received<Text<AnyRule>>;
    type Optional = Received<Option<Text<AnyRule>>>;

    fn read<T: ParseFromJSON + Expected + std::fmt::Debug>(
        value: Option<Value>,
    ) -> Result<Option<String>, String> {
        let received = Received::<T>::parse_from_json(value).expect("never fails");
        let mut refusals = Refusals::default();
        let value = received.read(&mut refusals, "f").map(|v| format!("{v:?}"));
        refusals.finish().map_err(|p| p.detail)?;
        Ok(value)
    }

    #[test]
    fn missing_null_and_wrong_types_are_named_and_values_read() {
        assert_eq!(
            read::<Text<AnyRule>>(Some("x".into())),
            Ok(Some("\"x\"".into()))
        );
        for absent in [None, Some(Value::Null)] {
            assert_eq!(
                read::<Text<AnyRule>>(absent.clone()),
                Err("f: is required (field names are case-sensitive: f)".into())
            );
            assert_eq!(
                read::<Option<Text<AnyRule>>>(absent),
                Ok(Some("None".into()))
            );
        }
        assert_eq!(
            read::<Option<Text<AnyRule>>>(Some(5.into())),
            Err("f: must be a string".into())
        );
        assert!(Required::parse_from_json(Some(true.into())).is_ok());
        assert!(Optional::parse_from_json(Some(Value::Array(vec![]))).is_ok());
    }
}
