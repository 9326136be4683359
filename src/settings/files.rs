//! Secret settings read from files, as Docker and Kubernetes hand secrets over:
//! `DEPLOY_GATE_<NAME>_FILE` beside `DEPLOY_GATE_<NAME>`, and `<name>_file` beside
//! `<name>` in the TOML file. Each level holds one form or the other, never both;
//! the environment overrides the TOML file whichever form each uses.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{Context, anyhow, bail};

use super::{DEFINITIONS, Definition, Settings};

/// Where a secret setting's value came from, as `deploy-gate config` says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Its environment variable.
    Environment,
    /// The file its `_FILE` variable names.
    EnvironmentFile(PathBuf),
    /// Its command-line flag.
    CommandLine,
    /// Its key in the TOML file.
    ConfigFile,
    /// The file its `_file` key in the TOML file names.
    ConfigFileFile(PathBuf),
    /// The built-in default (or, for a setting without one, nowhere).
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::EnvironmentFile(path) => write!(f, "environment file {}", path.display()),
            Source::CommandLine => f.write_str("command line"),
            Source::ConfigFile => f.write_str("config file"),
            Source::ConfigFileFile(path) => write!(f, "config file's file {}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The source of each secret setting given, by TOML key; a setting given but
/// missing here was set by the program itself and counts as the environment.
#[derive(Clone, Debug, Default)]
pub struct Sources(BTreeMap<&'static str, Source>);

impl Sources {
    /// The source of the setting `name`, given (`given`) or not.
    pub(crate) fn of(&self, name: &str, given: bool) -> Source {
        match self.0.get(name) {
            Some(source) if given => source.clone(),
            _ if given => Source::Environment,
            _ => Source::Default,
        }
    }

    /// Whether any setting was read from a file.
    pub(crate) fn any_from_file(&self) -> bool {
        self.0
            .values()
            .any(|s| matches!(s, Source::EnvironmentFile(_) | Source::ConfigFileFile(_)))
    }

    /// The files the settings were read from.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.0
            .values()
            .filter_map(|s| match s {
                Source::EnvironmentFile(path) | Source::ConfigFileFile(path) => Some(path.clone()),
                _ => None,
            })
            .collect()
    }

    /// Forgets the source of `name`, which another level now gives.
    pub(crate) fn forget(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Adds the sources of `over`, which win.
    pub(crate) fn extend(&mut self, over: Sources) {
        self.0.extend(over.0);
    }
}

/// The `_FILE` variable of a secret setting.
pub fn file_variable(definition: &Definition) -> String {
    format!("{}_FILE", definition.env)
}

/// The `_file` key of a secret setting in the TOML file.
pub fn file_key(definition: &Definition) -> String {
    format!("{}_file", definition.name)
}

fn secret_definitions() -> impl Iterator<Item = &'static Definition> {
    DEFINITIONS.iter().filter(|d| d.secret)
}

/// A secret file's text without one trailing newline (`\n` or `\r\n`), which
/// editors and `echo` add and no secret means.
pub(crate) fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the file {}", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Replaces each secret's `<name>_file` key in the TOML `table` by the named
/// file's text under `<name>` (a relative path counts from `folder`, the TOML
/// file's); fails when a secret has both keys or its file cannot be read.
pub(crate) fn read_toml_files(table: &mut toml::Table, folder: &Path) -> anyhow::Result<Sources> {
    let mut sources = Sources::default();
    for definition in secret_definitions() {
        let key = file_key(definition);
        let Some(named) = table.remove(&key) else {
            if table.contains_key(definition.name) {
                sources.0.insert(definition.name, Source::ConfigFile);
            }
            continue;
        };
        if table.contains_key(definition.name) {
            bail!(
                "{} and {key} are both set in the config file; set one of them",
                definition.name
            );
        }
        let toml::Value::String(named) = named else {
            bail!(
                "{key}: expected the path of a file, found {}",
                named.type_str()
            );
        };
        let path = folder.join(named);
        let text = read_secret_file(&path).with_context(|| key.clone())?;
        table.insert(definition.name.to_owned(), toml::Value::String(text));
        sources
            .0
            .insert(definition.name, Source::ConfigFileFile(path));
    }
    Ok(sources)
}

impl Settings {
    /// Settings given by the environment (and flags), completed by the `_FILE`
    /// variables of secret settings that `variable` reads; `from_command_line`
    /// says whether a setting was given as a flag. Fails when a secret is given
    /// both ways, naming both, or when its file cannot be read, naming the path.
    pub fn with_secret_files(
        mut self,
        variable: impl Fn(&str) -> Option<OsString>,
        from_command_line: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Settings> {
        for definition in secret_definitions() {
            let name = definition.name;
            let file_variable = file_variable(definition);
            let given = self.is_given(name);
            let flag = from_command_line(name);
            let Some(path) = variable(&file_variable) else {
                if given {
                    let source = if flag {
                        Source::CommandLine
                    } else {
                        Source::Environment
                    };
                    self.sources.0.insert(name, source);
                }
                continue;
            };
            if given {
                let other = if flag {
                    format!("--{}", name.replace('_', "-"))
                } else {
                    definition.env.to_owned()
                };
                bail!("{other} and {file_variable} are both set; set one of them");
            }
            let path = PathBuf::from(path);
            let text = read_secret_file(&path).with_context(|| file_variable.clone())?;
            self.set_text(name, &text)
                .map_err(|err| anyhow!("{file_variable}: {err}"))?;
            self.sources.0.insert(name, Source::EnvironmentFile(path));
        }
        Ok(self)
    }
}
