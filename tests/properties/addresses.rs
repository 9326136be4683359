//! Approver addresses: built from a local part, `@` and domain labels, then
//! twisted (upper case, padding, a `+tag`, a missing or second `@`, empty
//! labels, a trailing dot, spaces, quotes, comments, IP literals, Unicode,
//! control, bidi and header-breaking characters), so that both accepted and
//! refused addresses are common. An accepted address is its mailbox: lower case,
//! unquoted, without its `+tag`.

use deploy_gate::domain::approver::{ApproverEmail, MAX_EMAIL_LEN, parse_approver_list};
use proptest::{prelude::*, sample::Index, strategy::ValueTree, test_runner::TestRunner};

/// What is done to a well-formed address before it is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Twist {
    /// Left as built.
    Plain,
    /// Some letters upper-cased: accepted, canonically lower-cased.
    UpperCase,
    /// A `+tag` sub-address after the local part: accepted, canonically dropped.
    SubAddress,
    /// A comment `(…)` before or after the local part: refused.
    Comment,
    /// An IP literal for a domain, `[1.2.3.4]`: refused.
    IpLiteral,
    /// Surrounding spaces and tabs: accepted, dropped.
    Padded,
    /// A letter such as `é` in the local part: accepted.
    Unicode(char),
    /// The `@` removed.
    MissingAt,
    /// A second `@` inside.
    TwoAt,
    /// Two dots in a row, or a dot right after `@`.
    EmptyLabel,
    /// A dot at the end of the domain.
    TrailingDot,
    /// A space inside.
    InnerSpace,
    /// The local part quoted, with this character inside the quotes: accepted
    /// (unquoted) when the quotes were not needed, refused otherwise.
    Quoted(char),
    /// A control (Unicode Cc) or bidi formatting character inside.
    Hidden(char),
    /// A character that would break a mail header or an address list inside.
    HeaderBreak(char),
}

impl Twist {
    /// Whether an address with this twist is a valid approver.
    pub fn keeps_it_valid(self) -> bool {
        matches!(
            self,
            Self::Plain | Self::UpperCase | Self::Padded | Self::Unicode(_) | Self::SubAddress
        ) || self == Self::Quoted('x')
    }
}

/// An address as typed, what it must parse to (`None`: refused), and its twist.
#[derive(Clone, Debug)]
pub struct Typed {
    pub text: String,
    pub canonical: Option<String>,
    pub twist: Twist,
}

/// Control characters (U+0000-001F, U+007F, U+0080-009F) and bidi formatting
/// characters (U+200E/F, U+202A-202E, U+2066-2069).
pub fn hidden_char() -> impl Strategy<Value = char> {
    prop_oneof![
        (0_u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        Just('\u{7f}'),
        (0x80_u32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
        prop::sample::select(vec![
            '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ]),
    ]
}

/// A twist, well-formed ones about half the time.
fn twist() -> impl Strategy<Value = Twist> {
    prop_oneof![
        4 => Just(Twist::Plain),
        3 => Just(Twist::UpperCase),
        2 => Just(Twist::SubAddress),
        2 => Just(Twist::Comment),
        2 => Just(Twist::IpLiteral),
        2 => Just(Twist::Padded),
        2 => prop::sample::select(vec!['é', 'Ä', 'ß', 'ø', 'Ω']).prop_map(Twist::Unicode),
        1 => Just(Twist::MissingAt),
        1 => Just(Twist::TwoAt),
        1 => Just(Twist::EmptyLabel),
        1 => Just(Twist::TrailingDot),
        1 => Just(Twist::InnerSpace),
        2 => prop::sample::select(vec![' ', ',', ';', '<', '@', '\t', 'x'])
            .prop_map(Twist::Quoted),
        // Quotes that change nothing, so that needless quoting is common too.
        2 => Just(Twist::Quoted('x')),
        2 => hidden_char().prop_map(Twist::Hidden),
        1 => prop::sample::select(vec!['<', '>', ',', ';', '"', '(', ')', ':', '\\', '[', '\r', '\n'])
            .prop_map(Twist::HeaderBreak),
    ]
}

/// A well-formed local part and domain labels (the last one a TLD).
fn parts() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        "[a-z0-9]{1,10}([._+-][a-z0-9]{1,6})?",
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..3),
        "[a-z]{2,6}",
    )
        .prop_map(|(local, mut labels, tld)| {
            labels.push(tld);
            (local, labels)
        })
}

/// `text` with `c` inserted at a position strictly inside it (never first or last).
fn insert_inside(text: &str, at: Index, c: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    let position = 1 + at.index((chars.len() - 1).max(1));
    let mut out: String = chars[..position].iter().collect();
    out.push(c);
    out.extend(&chars[position..]);
    out
}

/// Addresses as people and programs type them, with what each must parse to.
pub fn typed() -> impl Strategy<Value = Typed> {
    (parts(), twist(), any::<Index>(), any::<Vec<bool>>()).prop_map(
        |((local, labels), twist, at, upper)| {
            let domain = labels.join(".");
            let plain = format!("{local}@{domain}");
            let text = match twist {
                Twist::Plain => plain.clone(),
                Twist::UpperCase => plain
                    .chars()
                    .zip(upper.iter().chain(std::iter::repeat(&true)))
                    .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                    .collect(),
                Twist::Padded => format!(" \t{plain}  "),
                Twist::SubAddress => format!("{local}+tag{}@{domain}", at.index(100)),
                Twist::Comment if at.index(2) == 0 => format!("(c){plain}"),
                Twist::Comment => format!("{local}(comment)@{domain}"),
                Twist::IpLiteral => format!("{local}@[192.0.2.{}]", at.index(255)),
                Twist::Unicode(c) => {
                    let at = at.index(local.len() + 1);
                    format!("{}{c}{}@{domain}", &local[..at], &local[at..])
                }
                Twist::MissingAt => plain.replacen('@', "", 1),
                Twist::TwoAt => insert_inside(&plain, at, '@'),
                Twist::EmptyLabel if at.index(2) == 0 => format!("{local}@.{domain}"),
                Twist::EmptyLabel => format!("{local}@{}", domain.replacen('.', "..", 1)),
                Twist::TrailingDot => format!("{plain}."),
                Twist::InnerSpace => insert_inside(&plain, at, ' '),
                Twist::Quoted(c) => format!("\"{}\"@{domain}", insert_inside(&local, at, c)),
                Twist::Hidden(c) | Twist::HeaderBreak(c) => insert_inside(&plain, at, c),
            };
            let canonical = twist.keeps_it_valid().then(|| mailbox(&text));
            Typed {
                text,
                canonical,
                twist,
            }
        },
    )
}

/// The mailbox a valid address reaches: trimmed, lower-cased, unquoted, without
/// its `+tag` (the generated domains are ASCII, so IDNA leaves them as they are).
fn mailbox(text: &str) -> String {
    let text = text.trim().to_lowercase();
    let (local, domain) = text.rsplit_once('@').expect("a valid address has an @");
    let local = local.trim_matches('"');
    let local = local.split('+').next().unwrap_or_default();
    format!("{local}@{domain}")
}

/// A well-formed address of exactly `len` bytes (at least 8): a local part of
/// at most 64 letters and labels of at most 63, as mail servers require.
fn address_of_len(len: usize, letter: char) -> String {
    let local_len = (len / 3).min(64);
    let mut rest = len - local_len - 1 - 2;
    let mut domain = String::new();
    while rest > 0 {
        let mut label = (rest - 1).min(63);
        if rest - (label + 1) == 1 {
            label -= 1;
        }
        domain.extend(std::iter::repeat_n(letter, label));
        domain.push('.');
        rest -= label + 1;
    }
    let local: String = std::iter::repeat_n(letter, local_len).collect();
    format!("{local}@{domain}io")
}

/// Lengths around the limit: one below, at, one above, and a few further off.
fn length_around_limit() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(MAX_EMAIL_LEN - 1),
        3 => Just(MAX_EMAIL_LEN),
        3 => Just(MAX_EMAIL_LEN + 1),
        1 => 8..MAX_EMAIL_LEN + 40,
    ]
}

/// List entries that hold no separator, so that each stays one entry.
fn list_entry() -> impl Strategy<Value = Typed> {
    prop_oneof![
        6 => typed().prop_filter("no separator inside", |t| !t.text.contains([',', ';'])),
        1 => prop::sample::select(vec!["", " ", "\t "]).prop_map(|blank| Typed {
            text: blank.to_owned(),
            canonical: None,
            twist: Twist::Plain,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn an_address_is_accepted_exactly_when_well_formed_and_then_lower_cased(typed in typed()) {
        let parsed = ApproverEmail::parse(&typed.text);
        match &typed.canonical {
            Some(canonical) => prop_assert_eq!(
                parsed.as_ref().map(ApproverEmail::as_str), Ok(canonical.as_str()),
                "{:?} ({:?}) was refused", typed.text, typed.twist
            ),
            None => prop_assert!(
                parsed.is_err(), "{:?} ({:?}) was accepted as {:?}", typed.text, typed.twist, parsed
            ),
        }
    }

    #[test]
    fn an_accepted_address_is_one_plain_address(typed in typed()) {
        if let Ok(address) = ApproverEmail::parse(&typed.text) {
            let address = address.as_str();
            prop_assert!(address.len() <= MAX_EMAIL_LEN);
            prop_assert_eq!(address.matches('@').count(), 1);
            prop_assert!(!address.chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(!address.contains(['<', '>', ',', ';', '"', '\\']), "{}", address);
            prop_assert_eq!(address.to_lowercase(), address);
            prop_assert!(!address.contains(['+', '(', ')', '[']), "{}", address);
            // The canonical form is its own canonical form.
            prop_assert_eq!(ApproverEmail::parse(address).map(|a| a.to_string()), Ok(address.to_owned()));
        }
    }

    #[test]
    fn an_address_is_accepted_up_to_254_bytes_and_refused_beyond(
        len in length_around_limit(),
        letter in prop::sample::select(vec!['a', 'Q', '7']),
        padded in any::<bool>(),
    ) {
        let address = address_of_len(len, letter);
        prop_assert_eq!(address.len(), len);
        let text = if padded { format!("  {address} ") } else { address.clone() };
        let parsed = ApproverEmail::parse(&text);
        if len <= MAX_EMAIL_LEN {
            prop_assert_eq!(parsed.map(|a| a.as_str().to_owned()), Ok(address.to_lowercase()));
        } else {
            let refused = parsed.unwrap_err();
            // The error names the address, shortened for the problem document.
            prop_assert_eq!(refused.address, address.chars().take(80).collect::<String>());
        }
    }

    #[test]
    fn an_approver_list_is_its_distinct_addresses_in_order_or_its_first_bad_entry(
        pool in prop::collection::vec(list_entry(), 1..6),
        picks in prop::collection::vec(any::<Index>(), 0..9),
        separators in prop::collection::vec(prop::sample::select(vec![",", ";", " ; ", ", "]), 9),
    ) {
        // Entries drawn from a small pool, so that repeats (in other cases too) are common.
        let entries: Vec<&Typed> = picks.iter().map(|i| &pool[i.index(pool.len())]).collect();
        let mut text = String::new();
        for (entry, separator) in entries.iter().zip(&separators) {
            text.push_str(&entry.text);
            text.push_str(separator);
        }
        let listed: Vec<&&Typed> = entries.iter().filter(|e| !e.text.trim().is_empty()).collect();
        let parsed = parse_approver_list(&text);
        match listed.iter().find(|e| e.canonical.is_none()) {
            Some(bad) => {
                let expected: String = bad.text.trim().chars().take(80).collect();
                prop_assert_eq!(parsed.map_err(|e| e.address), Err(expected));
            }
            None => {
                let mut distinct: Vec<&str> = Vec::new();
                for entry in &listed {
                    let canonical = entry.canonical.as_deref().unwrap();
                    if !distinct.contains(&canonical) {
                        distinct.push(canonical);
                    }
                }
                let parsed = parsed.expect("every entry is valid");
                let texts: Vec<&str> = parsed.iter().map(ApproverEmail::as_str).collect();
                prop_assert_eq!(texts, distinct);
            }
        }
    }
}

/// The share (in percent) of `samples` draws of `strategy` that satisfy `hit`.
pub fn share<S: Strategy>(strategy: &S, samples: usize, hit: impl Fn(&S::Value) -> bool) -> usize {
    let mut runner = TestRunner::deterministic();
    let hits = (0..samples)
        .filter(|_| hit(&strategy.new_tree(&mut runner).unwrap().current()))
        .count();
    hits * 100 / samples
}

#[test]
fn the_address_generator_reaches_accepted_and_each_kind_of_refused_address() {
    let strategy = typed();
    assert!(share(&strategy, 2000, |t| t.canonical.is_some()) >= 40);
    for (name, kind) in [
        (
            "upper case",
            (|t: &Twist| *t == Twist::UpperCase) as fn(&Twist) -> bool,
        ),
        ("missing @", |t| *t == Twist::MissingAt),
        ("two @", |t| *t == Twist::TwoAt),
        ("empty label", |t| *t == Twist::EmptyLabel),
        ("trailing dot", |t| *t == Twist::TrailingDot),
        ("quoted", |t| matches!(t, Twist::Quoted(_))),
        ("quoted needlessly", |t| *t == Twist::Quoted('x')),
        ("sub-address", |t| *t == Twist::SubAddress),
        ("comment", |t| *t == Twist::Comment),
        ("ip literal", |t| *t == Twist::IpLiteral),
        ("control or bidi", |t| matches!(t, Twist::Hidden(_))),
        ("unicode", |t| matches!(t, Twist::Unicode(_))),
    ] {
        assert!(
            share(&strategy, 2000, |t| kind(&t.twist)) >= 3,
            "{name} is rare"
        );
    }
    let lengths = length_around_limit();
    for len in [MAX_EMAIL_LEN - 1, MAX_EMAIL_LEN, MAX_EMAIL_LEN + 1] {
        assert!(share(&lengths, 1000, |l| *l == len) >= 20, "{len} is rare");
    }
}
