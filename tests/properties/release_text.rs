//! The text of a release request (`TeamProject`, `ReleaseId`, `Stage`,
//! `ReleaseName`) and its approver count: lengths exactly at, one below and one
//! above each limit, control characters anywhere and bidi marks inside.

use deploy_gate::domain::{
    approver::ApproverEmail,
    release::{
        FieldError, MAX_APPROVERS, MAX_RELEASE_ID_CHARS, MAX_TEXT_CHARS, NewRelease, ReleaseKey,
    },
};
use proptest::{prelude::*, sample::Index};

use crate::addresses::{hidden_char, share};

/// The four text fields of a release request, by public name.
#[derive(Clone, Copy, Debug)]
enum Field {
    TeamProject,
    ReleaseId,
    Stage,
    ReleaseName,
}

impl Field {
    /// The most characters the field takes.
    fn max(self) -> usize {
        match self {
            Self::ReleaseId => MAX_RELEASE_ID_CHARS,
            _ => MAX_TEXT_CHARS,
        }
    }

    /// Parses a request whose other fields are valid, with `text` in this field;
    /// answers the field's value as stored.
    fn parse(self, text: &str) -> Result<String, FieldError> {
        let key = |p, i, s| ReleaseKey::parse(p, i, s);
        Ok(match self {
            Self::TeamProject => key(text, "386", "prod")?.team_project,
            Self::ReleaseId => key("Devx", text, "prod")?.release_id,
            Self::Stage => key("Devx", "386", text)?.stage,
            Self::ReleaseName => NewRelease::parse(key("Devx", "386", "prod")?, text, None)?.name,
        })
    }

    /// The public name that an error must carry.
    fn name(self) -> &'static str {
        match self {
            Self::TeamProject => "TeamProject",
            Self::ReleaseId => "ReleaseId",
            Self::Stage => "Stage",
            Self::ReleaseName => "ReleaseName",
        }
    }
}

fn field() -> impl Strategy<Value = Field> {
    prop::sample::select(vec![
        Field::TeamProject,
        Field::ReleaseId,
        Field::Stage,
        Field::ReleaseName,
    ])
}

/// Visible text of exactly `len` characters (one to four bytes each), starting
/// and ending with a non-space, with spaces inside.
fn visible_text(len: usize) -> impl Strategy<Value = String> {
    let visible = prop::sample::select(vec!['a', 'Z', '7', '-', '.', 'é', '漢', '🚀']);
    let any = prop::sample::select(vec!['a', 'Z', '7', '-', ' ', 'é', '漢', '🚀', '\u{3000}']);
    (
        visible.clone(),
        prop::collection::vec(any, len.saturating_sub(2)),
        visible,
    )
        .prop_map(move |(first, middle, last)| {
            let mut text = String::from(first);
            text.extend(middle);
            if len > 1 {
                text.push(last);
            }
            text
        })
}

/// A field and a length around its limit (one below, at, one above), sometimes short.
fn field_and_length() -> impl Strategy<Value = (Field, usize)> {
    field().prop_flat_map(|field| {
        let max = field.max();
        (
            Just(field),
            prop_oneof![
                3 => Just(max - 1),
                3 => Just(max),
                3 => Just(max + 1),
                1 => 1..max + 20,
            ],
        )
    })
}

/// `text` with `c` inserted anywhere, ends included.
fn insert_anywhere(text: &str, at: Index, c: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let position = at.index(chars.len() + 1);
    let mut out: String = chars[..position].iter().collect();
    out.push(c);
    out.extend(&chars[position..]);
    out
}

/// Characters that are blank to `trim` but are not control characters.
fn blank_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            ' ', '\u{a0}', '\u{1680}', '\u{2003}', '\u{202f}', '\u{3000}',
        ]),
        0..6,
    )
    .prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_field_is_accepted_up_to_its_limit_in_characters_as_sent(
        (field, text) in field_and_length().prop_flat_map(|(field, len)| {
            // Trailing spaces count, since the limit applies to the text as sent.
            let padding = 0..3.min(len);
            (Just(field), Just(len), padding).prop_flat_map(|(field, len, padding)| {
                visible_text(len - padding)
                    .prop_map(move |value| (field, format!("{value}{}", " ".repeat(padding))))
            })
        }),
    ) {
        let len = text.chars().count();
        let parsed = field.parse(&text);
        if len <= field.max() {
            prop_assert_eq!(parsed, Ok(text.trim().to_owned()));
        } else {
            let refused = parsed.unwrap_err();
            prop_assert_eq!(refused.field, field.name());
            prop_assert_eq!(refused.reason, format!("must be at most {} characters", field.max()));
        }
    }

    #[test]
    fn a_control_character_anywhere_is_refused_with_the_fields_name(
        field in field(),
        value in visible_text(12),
        at in any::<Index>(),
        hidden in hidden_char(),
    ) {
        let text = insert_anywhere(&value, at, hidden);
        let parsed = field.parse(&text);
        if hidden.is_control() {
            let refused = parsed.unwrap_err();
            prop_assert_eq!(refused.field, field.name());
            prop_assert_eq!(refused.reason, "must not contain control characters");
        } else {
            // Bidi marks are format characters (Cf), which the published schema allows.
            prop_assert_eq!(parsed, Ok(text.trim().to_owned()));
        }
    }

    #[test]
    fn a_blank_required_field_is_refused_and_a_blank_stage_is_empty(
        field in field(),
        blank in blank_text(),
    ) {
        let parsed = field.parse(&blank);
        match field {
            Field::Stage => prop_assert_eq!(parsed, Ok(String::new())),
            _ => {
                let refused = parsed.unwrap_err();
                prop_assert_eq!(refused.field, field.name());
                prop_assert_eq!(refused.reason, "must not be empty");
            }
        }
    }

    #[test]
    fn a_release_names_at_most_100_approvers_and_none_means_unnamed(
        count in prop_oneof![
            3 => Just(MAX_APPROVERS - 1),
            3 => Just(MAX_APPROVERS),
            3 => Just(MAX_APPROVERS + 1),
            2 => 0..MAX_APPROVERS + 5,
        ],
    ) {
        let approvers: Vec<ApproverEmail> = (0..count)
            .map(|i| ApproverEmail::parse(&format!("a{i}@example.com")).unwrap())
            .collect();
        let key = ReleaseKey::parse("Devx", "386", "").unwrap();
        let parsed = NewRelease::parse(key, "R", Some(approvers.clone()));
        if count == 0 {
            prop_assert_eq!(parsed.unwrap().approvers, None);
        } else if count <= MAX_APPROVERS {
            prop_assert_eq!(parsed.unwrap().approvers, Some(approvers));
        } else {
            let refused = parsed.unwrap_err();
            prop_assert_eq!(refused.field, "Approvers");
        }
    }
}

#[test]
fn the_length_generator_reaches_each_side_of_each_limit() {
    let strategy = field_and_length();
    for offset in [-1_isize, 0, 1] {
        let hits = share(&strategy, 2000, |(field, len)| {
            *len as isize == field.max() as isize + offset
        });
        assert!(hits >= 20, "limit {offset:+} is rare: {hits}%");
    }
}
