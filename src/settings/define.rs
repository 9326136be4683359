//! The machinery that turns the one list of settings (in `settings/mod.rs`) into
//! the user's `Settings` (TOML keys, variables, flags and their `--help`), the
//! effective values with defaults applied, the masked dump and the reference.

use std::fmt::{self, Display};

use super::files::Source;

/// One setting as the list defines it; `--help` and the reference are made from it.
#[derive(Clone, Copy, Debug)]
pub struct Definition {
    /// TOML key; with dashes, the command-line flag.
    pub name: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// The doc comment's lines.
    pub doc: &'static [&'static str],
    /// What applies when the setting is not given.
    pub default: Fallback,
    /// What the value is (`duration`, `whole number`, …).
    pub kind: &'static str,
    /// Whether the value is masked by `deploy-gate config`.
    pub secret: bool,
}

/// What applies when a setting is not given.
#[derive(Clone, Copy, Debug)]
pub enum Fallback {
    /// A value, written as a user would write it and parsed like one.
    Value(&'static str),
    /// No value; the text says what the service does without one.
    Unset(&'static str),
}

impl Definition {
    /// The doc comment as one line.
    pub fn meaning(&self) -> String {
        let lines: Vec<&str> = self.doc.iter().map(|line| line.trim()).collect();
        lines.join(" ")
    }

    /// The text `--help` shows.
    pub fn help(&self) -> String {
        format!("{} {}", self.meaning(), self.notes())
    }

    /// The default, and whether the value is a secret, as `--help` notes them.
    fn notes(&self) -> String {
        let fallback = match self.default {
            Fallback::Value(value) => format!("[default: {value}]"),
            Fallback::Unset(meaning) => format!("[unset: {meaning}]"),
        };
        let secret = if self.secret {
            format!(" [secret] [file: {}_FILE]", self.env)
        } else {
            String::new()
        };
        format!("{fallback}{secret}")
    }
}

/// An effective value with the variable that sets it, so that a check names it.
#[derive(Clone, Debug)]
pub(crate) struct Named<T> {
    value: T,
    env: &'static str,
    given: bool,
}

impl<T> Named<T> {
    /// Wraps the value of the setting `env` names, `given` by the user or not.
    pub(crate) fn new(value: T, env: &'static str, given: bool) -> Self {
        Self { value, env, given }
    }

    /// Whether the user gave the value (else it is the default, or unset).
    pub(crate) fn given(&self) -> bool {
        self.given
    }

    /// The value.
    pub(crate) fn value(&self) -> &T {
        &self.value
    }

    /// The environment variable of the setting.
    pub(crate) fn env(&self) -> &'static str {
        self.env
    }

    /// The error `{variable} {problem}`.
    pub(crate) fn error(&self, problem: impl Display) -> anyhow::Error {
        anyhow::anyhow!("{} {problem}", self.env)
    }

    /// The value through `convert`, whose error is prefixed with the variable.
    pub(crate) fn convert<U, E: Display>(
        &self,
        convert: impl FnOnce(&T) -> Result<U, E>,
    ) -> anyhow::Result<U> {
        convert(&self.value).map_err(|err| anyhow::anyhow!("{}: {err:#}", self.env))
    }
}

impl<T> Named<Option<T>> {
    /// The value, if given, through `convert`, whose error is prefixed with the variable.
    pub(crate) fn convert_some<U, E: Display>(
        &self,
        convert: impl FnOnce(&T) -> Result<U, E>,
    ) -> anyhow::Result<Option<U>> {
        self.convert(|value| value.as_ref().map(convert).transpose())
    }
}

/// One line of the masked dump: `key = value`, or, when unset, a comment
/// saying what that means (`fallback`, the setting's `unset` text).
/// A secret's line ends with a comment saying where its value came from (`source`).
pub(crate) fn dump_line(
    key: &str,
    value: Option<toml::Value>,
    fallback: &str,
    source: Option<Source>,
) -> String {
    let from = source.map(|s| format!(" # from: {s}")).unwrap_or_default();
    match value {
        Some(value) => format!("{key} = {value}{from}\n"),
        None => format!("# {key} is not set: {fallback}\n"),
    }
}

impl Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::Value(value) => write!(f, "`{value}`"),
            Fallback::Unset(meaning) => write!(f, "unset: {meaning}"),
        }
    }
}

/// Defines every setting from one list. Each entry reads
///
/// ```text
/// /// What it does (the help text).
/// name: Type, env "DEPLOY_GATE_NAME", default "value";        // or:
/// name: Type, env "DEPLOY_GATE_NAME", unset "what happens";   // optional
/// ```
///
/// optionally followed by `, shown path::to_fn` (a `fn(&Type) -> toml::Value`)
/// when `deploy-gate config` must show the value other than its type does.
/// A `default` setting's effective value is `Type`, an `unset` one's `Option<Type>`.
macro_rules! define_settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty, env $env:literal, $fallback:ident $text:literal $(, shown $show:path)?;
    )+) => {
        /// Settings as given by the user, every one optional: TOML keys as named here,
        /// and the environment variables and flags of [`DEFINITIONS`].
        #[derive(Clone, Debug, Default, serde::Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $(
                $(#[doc = $doc])+
                #[arg(
                    long,
                    env = $env,
                    // Clap names the flag; the variable is named too, as it is the
                    // usual way to set it.
                    value_parser = |text: &str| {
                        <$ty as $crate::settings::value::SettingValue>::parse(text)
                            .map_err(|err| format!("{}: {err}", $env))
                    },
                    help = $crate::settings::define::define_settings!(
                        @definition $name, $ty, $env, [$($doc)+], $fallback $text
                    ).help(),
                    // Giving `long_help` too keeps `--help` in clap's roomy layout, a
                    // paragraph per flag, as before; `-h` stays one line per flag.
                    long_help = $crate::settings::define::define_settings!(
                        @definition $name, $ty, $env, [$($doc)+], $fallback $text
                    ).help(),
                )]
                #[serde(default, deserialize_with = "crate::settings::value::deserialize_some")]
                pub $name: Option<$ty>,
            )+
            /// Approval policies per project and stage (TOML file only: `[[policies]]`).
            #[arg(skip)]
            #[serde(default)]
            pub policies: Vec<$crate::settings::PolicySettings>,
            /// Approver groups named by policies (TOML file only: `[groups]`).
            #[arg(skip)]
            #[serde(default)]
            pub groups: std::collections::BTreeMap<String, Vec<String>>,
            /// Where each secret setting given came from, for `deploy-gate config`.
            #[arg(skip)]
            #[serde(skip)]
            pub sources: $crate::settings::files::Sources,
        }

        /// Every setting, in the order of the list, for the reference and tests.
        pub const DEFINITIONS: &[$crate::settings::define::Definition] = &[$(
            $crate::settings::define::define_settings!(
                @definition $name, $ty, $env, [$($doc)+], $fallback $text
            ),
        )+];

        /// The effective value of every setting: the user's, else the default.
        #[derive(Clone, Debug)]
        pub(crate) struct Effective {
            $(
                $(#[doc = $doc])+
                pub(crate) $name: $crate::settings::define::Named<
                    $crate::settings::define::define_settings!(@effective $fallback $ty)
                >,
            )+
            /// Where each setting's value came from (kept for the secret ones).
            sources: $crate::settings::files::Sources,
        }

        impl Settings {
            /// Settings given in `over` win over the ones in `self`; policies and
            /// groups come from one file alone, as the environment cannot hold tables.
            pub fn overridden_by(self, over: Settings) -> Settings {
                let mut sources = self.sources;
                $(if over.$name.is_some() {
                    sources.forget(stringify!($name));
                })+
                sources.extend(over.sources);
                Settings {
                    $($name: over.$name.or(self.$name),)+
                    policies: if over.policies.is_empty() { self.policies } else { over.policies },
                    groups: if over.groups.is_empty() { self.groups } else { over.groups },
                    sources,
                }
            }

            /// Whether the setting `name` (its TOML key) is given.
            pub(crate) fn is_given(&self, name: &str) -> bool {
                $(if name == stringify!($name) {
                    return self.$name.is_some();
                })+
                false
            }

            /// Gives the setting `name` (its TOML key) as `text` read as a variable is.
            pub(crate) fn set_text(&mut self, name: &str, text: &str) -> Result<(), String> {
                $(if name == stringify!($name) {
                    self.$name = Some(<$ty as $crate::settings::value::SettingValue>::parse(text)?);
                    return Ok(());
                })+
                Err(format!("no setting is named {name}"))
            }

            /// The effective values: each setting given, or else its default.
            pub(crate) fn effective(&self) -> anyhow::Result<Effective> {
                Ok(Effective {$(
                    $name: $crate::settings::define::Named::new(
                        $crate::settings::define::define_settings!(
                            @resolve $fallback $ty, self.$name.clone(), $env, $text
                        ),
                        $env,
                        self.$name.is_some(),
                    ),
                )+
                    sources: self.sources.clone(),
                })
            }
        }

        impl Effective {
            /// The settings (TOML keys) whose effective value differs in `other`,
            /// secrets compared by value and never shown.
            pub(crate) fn changed_in(&self, other: &Effective) -> Vec<&'static str> {
                let mut changed = Vec::new();
                $(if self.$name.value() != other.$name.value() {
                    changed.push(stringify!($name));
                })+
                changed
            }

            /// The values as TOML in the keys of the settings file, secrets masked
            /// and unset keys as comments.
            pub(crate) fn to_masked_toml(&self) -> String {
                let mut text = String::new();
                $({
                    let show: fn(&$ty) -> toml::Value =
                        $crate::settings::define::define_settings!(@shown $ty $(, $show)?);
                    let value = $crate::settings::define::define_settings!(
                        @present $fallback self.$name.value()
                    );
                    let source = <$ty as $crate::settings::value::SettingValue>::SECRET.then(|| {
                        self.sources.of(stringify!($name), self.$name.given())
                    });
                    text.push_str(&$crate::settings::define::dump_line(
                        stringify!($name),
                        value.map(show),
                        $text,
                        source,
                    ));
                })+
                text
            }
        }
    };

    (
        @definition $name:ident, $ty:ty, $env:literal, [$($doc:literal)+],
        $fallback:ident $text:literal
    ) => {
        $crate::settings::define::Definition {
            name: stringify!($name),
            env: $env,
            doc: &[$($doc),+],
            default: $crate::settings::define::define_settings!(@fallback $fallback $text),
            kind: <$ty as $crate::settings::value::SettingValue>::KIND,
            secret: <$ty as $crate::settings::value::SettingValue>::SECRET,
        }
    };
    (@fallback default $text:literal) => { $crate::settings::define::Fallback::Value($text) };
    (@fallback unset $text:literal) => { $crate::settings::define::Fallback::Unset($text) };
    (@effective default $ty:ty) => { $ty };
    (@effective unset $ty:ty) => { Option<$ty> };
    (@resolve default $ty:ty, $given:expr, $env:literal, $text:literal) => {
        match $given {
            Some(value) => value,
            None => <$ty as $crate::settings::value::SettingValue>::parse($text).map_err(|err| {
                anyhow::anyhow!("the built-in default of {} does not parse: {err}", $env)
            })?,
        }
    };
    (@resolve unset $ty:ty, $given:expr, $env:literal, $text:literal) => { $given };
    (@present default $value:expr) => { Some($value) };
    (@present unset $value:expr) => { $value.as_ref() };
    (@shown $ty:ty) => { <$ty as $crate::settings::value::SettingValue>::to_toml };
    (@shown $ty:ty, $show:path) => { $show };
}

pub(crate) use define_settings;
