//! A refused setting named the way it was given: clap names a bad value by its flag
//! (`--approval-deadline`) even when it came from the environment, the usual way to
//! set one, where the variable (`DEPLOY_GATE_APPROVAL_DEADLINE`) is what to fix.

use std::error::Error as _;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `err` reworded to name the environment variable when the refused value came from
/// it, not from the flag among the command-line `args`; any other error unchanged.
pub fn named_as_given(err: clap::Error, command: &clap::Command, args: &[String]) -> clap::Error {
    if err.kind() != ErrorKind::ValueValidation {
        return err;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return err;
    };
    // Clap shows the argument as `--approval-deadline <APPROVAL_DEADLINE>`.
    let flag = arg.split_whitespace().next().unwrap_or_default();
    let on_command_line = args
        .iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let Some(env) = variable_of(command, flag).filter(|_| !on_command_line) else {
        return err;
    };
    let reason = err.source().map(|s| s.to_string()).unwrap_or_default();
    let reason = reason
        .strip_prefix(&format!("{env}: "))
        .unwrap_or(&reason)
        .to_owned();
    let message = format!("invalid value '{value}' in the environment variable {env}: {reason}\n");
    clap::Error::raw(ErrorKind::ValueValidation, message).with_cmd(command)
}

/// The environment variable of the long `flag` (`--name`), in `command` or a subcommand.
fn variable_of(command: &clap::Command, flag: &str) -> Option<String> {
    let long = flag.strip_prefix("--")?;
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .or_else(|| {
            command
                .get_subcommands()
                .find_map(|sub| variable_of(sub, flag))
        })
}
