//! Repeated keys in a JSON body: serde_json (and so poem) keeps the last of them,
//! so `{"TeamProject": "a", "TeamProject": "b"}` would mean whatever the last copy
//! says while a proxy, a log or a reviewer reading the first saw something else.

use std::{cell::RefCell, collections::HashSet, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The first key that one object of `body` holds twice (after unescaping, so
/// `"a"` and `"\u0061"` are the same key); `None` when there is none or when
/// `body` is not JSON, which the endpoint then refuses in its own words.
pub fn repeated_key(body: &[u8]) -> Option<String> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let _ = Walk(&found).deserialize(&mut deserializer);
    found.into_inner()
}

/// Reads any JSON value, noting in its cell the first repeated key, where it stops.
#[derive(Clone, Copy)]
struct Walk<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom("repeated key"));
            }
            seen.insert(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::repeated_key;

    #[test]
    fn a_key_repeated_in_one_object_is_found_at_any_depth() {
        let found = |body: &str| repeated_key(body.as_bytes());
        assert_eq!(found(r#"{"a": 1, "b": 2, "a": 3}"#).as_deref(), Some("a"));
        assert_eq!(found(r#"{"a": 1, "\u0061": 2}"#).as_deref(), Some("a"));
        assert_eq!(
            found(r#"[1, {"x": [{"b": 1, "b": 1}]}]"#).as_deref(),
            Some("b")
        );
        for fine in [
            r#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#,
            "[]",
            "null",
            "not json",
            r#"{"a": 1, "b""#,
        ] {
            assert_eq!(found(fine), None, "{fine}");
        }
    }
}
