//! Text parameters and fields whose rules are published in the OpenAPI document.
//!
//! [`Text`] parses any JSON string; the handlers and the domain enforce the published rules
//! afterwards, with problems that name the field and the rule in words (poem-openapi's
//! validators would answer with the regular expression).

use std::{borrow::Cow, fmt, marker::PhantomData, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::domain::release::{MAX_RELEASE_ID_CHARS, MAX_TEXT_CHARS};

/// No control characters (Unicode category Cc).
const NO_CONTROLS: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters, and at least one character that is not a space.
const NOT_BLANK: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$";
/// No control characters but tabs and line breaks.
const NO_CONTROLS_BUT_LINES: &str = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$";

/// A plain ASCII address, within the length limits of local part, labels and address:
/// a mailbox before any `+tag`, a top-level domain that is not a number (so not an IP
/// address), and a local part that may be quoted when it needs no quotes (`"ana"@x.com`
/// is `ana@x.com`).
macro_rules! address_pattern {
    () => {
        r##"(?:"[A-Za-z0-9!#$%&'*/=?^_`{|}~-][A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{0,14}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){0,3}"|[A-Za-z0-9!#$%&'*/=?^_`{|}~-][A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{0,14}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,15}){0,3})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?\.){1,3}[A-Za-z](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?"##
    };
}

/// [`address_pattern`] as a constant, for patterns built at run time.
pub const ADDRESS: &str = address_pattern!();

/// The published rules of one kind of text.
pub trait TextRule: Send + Sync + 'static {
    /// Most characters (Unicode scalar values, as JSON Schema counts them), if limited.
    const MAX_CHARS: Option<usize>;
    /// A regular expression the text matches, if any.
    const PATTERN: Option<&'static str>;
    /// Whether the text must hold something other than spaces.
    const NOT_BLANK: bool;
}

/// `TeamProject`, `ReleaseName`: required, no control characters, at most 256 characters.
pub struct NameRule;
impl TextRule for NameRule {
    const MAX_CHARS: Option<usize> = Some(MAX_TEXT_CHARS);
    const PATTERN: Option<&'static str> = Some(NOT_BLANK);
    const NOT_BLANK: bool = true;
}

/// `ReleaseId` as text: required, no control characters, at most 128 characters.
pub struct ReleaseIdRule;
impl TextRule for ReleaseIdRule {
    const MAX_CHARS: Option<usize> = Some(MAX_RELEASE_ID_CHARS);
    const PATTERN: Option<&'static str> = Some(NOT_BLANK);
    const NOT_BLANK: bool = true;
}

/// `Stage`, `DefinitionName`: may be empty, no control characters, at most 256 characters.
pub struct StageRule;
impl TextRule for StageRule {
    const MAX_CHARS: Option<usize> = Some(MAX_TEXT_CHARS);
    const PATTERN: Option<&'static str> = Some(NO_CONTROLS);
    const NOT_BLANK: bool = false;
}

/// `ReleaseUrl`: empty, or an `http`/`https` address. The service takes any absolute web
/// address without credentials; the published pattern is the plain form every such
/// address of Azure DevOps has (letter-led host names, so no IP address to misread).
pub struct UrlRule;
impl TextRule for UrlRule {
    const MAX_CHARS: Option<usize> = Some(crate::domain::link::MAX_URL_CHARS);
    const PATTERN: Option<&'static str> = Some(
        r"^ *(?:[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,4})?(?:[/?#][!-~]*)?)? *$",
    );
    const NOT_BLANK: bool = false;
}

/// An optional email address field, e.g. `RequestedFor`: empty or one address.
pub struct EmailRule;
impl TextRule for EmailRule {
    const MAX_CHARS: Option<usize> = Some(crate::domain::approver::MAX_EMAIL_LEN);
    const PATTERN: Option<&'static str> = Some(concat!("^(?:", address_pattern!(), ")?$"));
    const NOT_BLANK: bool = false;
}

/// An approver's address in a path: one address, at most 254 characters.
pub struct ApproverRule;
impl TextRule for ApproverRule {
    const MAX_CHARS: Option<usize> = Some(crate::domain::approver::MAX_EMAIL_LEN);
    const PATTERN: Option<&'static str> = Some(concat!("^", address_pattern!(), "$"));
    const NOT_BLANK: bool = true;
}

/// A `TeamProject` filter: may be empty (no filter), no control characters, at most 256 characters.
pub struct ProjectFilterRule;
impl TextRule for ProjectFilterRule {
    const MAX_CHARS: Option<usize> = Some(MAX_TEXT_CHARS);
    const PATTERN: Option<&'static str> = Some(NO_CONTROLS);
    const NOT_BLANK: bool = false;
}

/// A board page's `cursor`, as `next_cursor` gives it: digits, a dot, digits.
pub struct CursorRule;
impl TextRule for CursorRule {
    const MAX_CHARS: Option<usize> = Some(34);
    const PATTERN: Option<&'static str> = Some(r"^[0-9]{1,15}\.[0-9]{1,18}$");
    const NOT_BLANK: bool = true;
}

/// An approver's comment: at most 2000 characters, no control characters but line breaks.
pub struct CommentRule;
impl TextRule for CommentRule {
    const MAX_CHARS: Option<usize> = Some(2000);
    const PATTERN: Option<&'static str> = Some(NO_CONTROLS_BUT_LINES);
    const NOT_BLANK: bool = false;
}

/// A callback-mode field (the job token is the long one): at most 8192 characters.
pub struct CallbackRule;
impl TextRule for CallbackRule {
    const MAX_CHARS: Option<usize> = Some(8192);
    const PATTERN: Option<&'static str> = None;
    const NOT_BLANK: bool = false;
}

/// `mode` and `Mode` of `POST /release`: `poll` (the default) or `callback`.
pub struct ModeRule;

impl TextRule for ModeRule {
    const MAX_CHARS: Option<usize> = None;
    // A pattern, not an enum: OpenAPI 3.0 checks a nullable field's null
    // against its enum, so the body's `"Mode": null` would read as invalid.
    const PATTERN: Option<&'static str> = Some("^(poll|callback)$");
    const NOT_BLANK: bool = true;
}

/// `Phase` of a release's round: `pre` (before the deployment) or `post`.
pub struct PhaseRule;

impl TextRule for PhaseRule {
    const MAX_CHARS: Option<usize> = None;
    // A pattern, like `ModeRule`, so that every parameter reads the same way.
    const PATTERN: Option<&'static str> = Some("^(pre|post)$");
    const NOT_BLANK: bool = true;
}

/// Any string (but a string: not a number or a boolean, which poem-openapi would turn into one).
pub struct AnyRule;
impl TextRule for AnyRule {
    const MAX_CHARS: Option<usize> = None;
    const PATTERN: Option<&'static str> = None;
    const NOT_BLANK: bool = false;
}

/// A JSON string published with the rules `R`, accepted whatever its content when parsed.
pub struct Text<R> {
    text: String,
    rule: PhantomData<R>,
}

impl<R> Text<R> {
    /// Wraps `text` (unchecked: the domain checks it).
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            rule: PhantomData,
        }
    }
}

impl<R> Deref for Text<R> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl<R> Clone for Text<R> {
    fn clone(&self) -> Self {
        Self::new(self.text.clone())
    }
}

impl<R> fmt::Debug for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl<R> fmt::Display for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text.fmt(f)
    }
}

impl<'de, R> serde::Deserialize<'de> for Text<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl<R: TextRule> Type for Text<R> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            max_length: R::MAX_CHARS,
            min_length: R::NOT_BLANK.then_some(1),
            pattern: R::PATTERN.map(str::to_owned),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.text)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.text))
    }
}

impl<R: TextRule> ParseFromJSON for Text<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self::new(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<R: TextRule> ParseFromParameter for Text<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self::new(value))
    }
}

impl<R: TextRule> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.text.clone()))
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::validation::{Pattern, Validator};

    use super::*;
    use crate::domain::release::ReleaseKey;

    fn matches(pattern: &'static str, text: &str) -> bool {
        Validator::<&str>::check(&Pattern::new(pattern), &text)
    }

    #[test]
    fn the_published_patterns_accept_exactly_what_the_domain_accepts() {
        let id_ok = |id: &str| ReleaseKey::parse("p", id, "").is_ok();
        let stage_ok = |stage: &str| ReleaseKey::parse("p", "1", stage).is_ok();
        for text in ["386", " 3 8 6 ", "é", "\u{3000}x", "a\u{a0}b", "😀"] {
            assert!(matches(NOT_BLANK, text) && id_ok(text), "{text:?}");
            assert!(matches(NO_CONTROLS, text) && stage_ok(text), "{text:?}");
        }
        for text in ["", " ", "\u{3000}", "\u{a0} \u{2028}\u{202f}"] {
            assert!(!matches(NOT_BLANK, text) && !id_ok(text), "{text:?}");
            assert!(matches(NO_CONTROLS, text) && stage_ok(text), "{text:?}");
        }
        for text in ["1\n", "\t1", "1\u{85}", "\u{0}", "a\u{7f}b", "\u{9f}"] {
            assert!(!matches(NOT_BLANK, text) && !id_ok(text), "{text:?}");
            assert!(!matches(NO_CONTROLS, text) && !stage_ok(text), "{text:?}");
        }
    }

    #[test]
    fn the_address_pattern_accepts_only_what_is_a_mailbox() {
        let pattern = concat!("^", address_pattern!(), "$");
        let parses = |text: &str| crate::domain::approver::ApproverEmail::parse(text).is_ok();
        for text in [
            "ana@example.com",
            "\"ana\"@example.com",
            "a.b+c@x.co",
            "A@0.x1",
        ] {
            assert!(matches(pattern, text) && parses(text), "{text:?}");
        }
        for text in [
            "+c@x.co",
            "a@1.2.3.4",
            "a@x.0",
            "\"a b\"@x.co",
            "\"a\"b@x.co",
            "a@[1.2.3.4]",
        ] {
            assert!(!matches(pattern, text) && !parses(text), "{text:?}");
        }
    }

    #[test]
    fn what_the_url_pattern_accepts_the_service_takes() {
        let pattern = UrlRule::PATTERN.unwrap();
        let parses =
            |text: &str| crate::domain::link::ReleaseUrl::parse("ReleaseUrl", text).is_ok();
        for text in [
            "",
            " https://dev.azure.com/contoso/Devx/_release?releaseId=1&_a=release-summary ",
            "HTTP://tfs.example:8080/tfs/DefaultCollection#x",
            "https://contoso.visualstudio.com",
        ] {
            assert!(matches(pattern, text) && parses(text), "{text:?}");
        }
        for text in [
            "javascript:alert(1)",
            "https://",
            "https://u@x.example/",
            "https://x/\n",
        ] {
            assert!(!matches(pattern, text) && !parses(text), "{text:?}");
        }
        // Taken, though the pattern does not show them.
        for text in ["https://10.0.0.1/", "http://b\u{fc}cher.example/"] {
            assert!(!matches(pattern, text) && parses(text), "{text:?}");
        }
    }

    #[test]
    fn comments_may_hold_line_breaks_and_tabs_but_no_other_control() {
        assert!(matches(NO_CONTROLS_BUT_LINES, "ship it\r\n\tnow"));
        for text in ["\u{0}", "a\u{b}", "\u{1b}[31m", "\u{85}"] {
            assert!(!matches(NO_CONTROLS_BUT_LINES, text), "{text:?}");
        }
    }
}
