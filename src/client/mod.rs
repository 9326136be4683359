//! The client commands: `releases`, `status`, `cancel` and `resend` ask a running service
//! (`DEPLOY_GATE_URL`, with the first key of `DEPLOY_GATE_API_KEY`) over its HTTP API and
//! print the answer for people, or as the service's JSON with `--json`.

mod render;
mod request;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;

use request::{Failure, Target};
pub use request::{FailureKind, local_address};

use crate::settings::Config;

/// A command that talks to a running service.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// List recent releases, newest first (`GET /releases`).
    Releases {
        #[command(flatten)]
        board: BoardArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Show a release's status and approvers (`GET /release/{TeamProject}/{ReleaseId}`).
    Status {
        #[command(flatten)]
        release: ReleaseArgs,
        #[command(flatten)]
        output: Output,
    },
    /// Cancel a pending release's approval: it becomes rejected and its links stop working.
    Cancel {
        #[command(flatten)]
        release: ReleaseArgs,
        /// Why; shown on the release and to approvers who open their link.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Re-send one approver's email with a new link; the earlier links stop working.
    Resend {
        #[command(flatten)]
        release: ReleaseArgs,
        /// The approver's email address.
        email: String,
        #[command(flatten)]
        output: Output,
    },
}

/// Which releases `releases` lists, as the board's query does.
#[derive(Args, Debug)]
pub struct BoardArgs {
    /// Only releases with this status.
    #[arg(long, value_enum)]
    status: Option<StatusFilter>,
    /// Only this project's releases (exact name).
    #[arg(long)]
    project: Option<String>,
    /// Releases to list, 1 to 100 (the service's default: 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: Option<u32>,
    /// Start at this page (the cursor a previous listing printed).
    #[arg(long)]
    cursor: Option<String>,
}

impl BoardArgs {
    /// `TeamProject`, `status`, `limit` and `cursor`, those given.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        query.extend(self.project.clone().map(|p| ("TeamProject", p)));
        query.extend(
            self.status
                .and_then(|s| s.to_possible_value())
                .map(|s| ("status", s.get_name().to_owned())),
        );
        query.extend(self.limit.map(|l| ("limit", l.to_string())));
        query.extend(self.cursor.clone().map(|c| ("cursor", c)));
        query
    }
}

/// Which release (and round) a command names, as the routes' path and query do.
#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// The Azure DevOps project.
    #[arg(value_name = "TeamProject")]
    team_project: String,
    /// The release id.
    #[arg(value_name = "ReleaseId")]
    release_id: String,
    /// The gated stage, if the release was created with one.
    #[arg(long)]
    stage: Option<String>,
    /// The stage's deployment attempt; without it, the latest round.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
    attempt: Option<u32>,
    /// The round before (`pre`) or after (`post`) the deployment; without it, the latest.
    #[arg(long, value_enum)]
    phase: Option<Phase>,
}

impl ReleaseArgs {
    /// The path segments of the release, then `more`.
    fn segments<'a>(&'a self, root: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut segments = vec![root, &self.team_project, &self.release_id];
        segments.extend_from_slice(more);
        segments
    }

    /// `Stage`, `Attempt` and `Phase`, those given.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(stage) = &self.stage {
            query.push(("Stage", stage.clone()));
        }
        if let Some(attempt) = self.attempt {
            query.push(("Attempt", attempt.to_string()));
        }
        if let Some(phase) = self.phase {
            query.push(("Phase", phase.as_str().to_owned()));
        }
        query
    }
}

/// How a command prints its answer.
#[derive(Args, Debug)]
pub struct Output {
    /// Print the service's JSON as it answered (a problem document on failure).
    #[arg(long)]
    json: bool,
}

/// A status to list releases by.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatusFilter {
    /// Every release.
    Any,
    /// Waiting for decisions.
    Pending,
    /// Approved.
    Approved,
    /// Rejected (or cancelled).
    Rejected,
    /// Expired undecided.
    Expired,
}

/// Before or after the deployment.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Phase {
    /// The approval before the deployment.
    Pre,
    /// The approval after it.
    Post,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pre => "pre",
            Self::Post => "post",
        }
    }
}

/// What a command prints and its exit code.
#[derive(Debug)]
pub struct Outcome {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// The exit code: 0, or that of the [`FailureKind`]; 1 when the client could not start.
    pub code: i32,
}

/// Runs `command` against the service `config` names.
pub async fn run(config: &Config, command: ClientCommand) -> Outcome {
    let target = match Target::from_config(config) {
        Ok(target) => target,
        Err(e) => {
            return Outcome {
                stdout: String::new(),
                stderr: format!("error: {e:#}\n"),
                code: 1,
            };
        }
    };
    let json = command.output().json;
    match answer(&target, command).await {
        Ok(stdout) => Outcome {
            stdout,
            stderr: String::new(),
            code: 0,
        },
        Err(failure) => Outcome {
            stdout: match (json, failure.body) {
                (true, Some(body)) => with_newline(body),
                _ => String::new(),
            },
            stderr: format!("error: {}\n", failure.message),
            code: failure.kind.exit_code(),
        },
    }
}

impl ClientCommand {
    fn output(&self) -> &Output {
        match self {
            Self::Releases { output, .. }
            | Self::Status { output, .. }
            | Self::Cancel { output, .. }
            | Self::Resend { output, .. } => output,
        }
    }
}

/// Sends the command's request and renders its answer.
async fn answer(target: &Target, command: ClientCommand) -> Result<String, Failure> {
    let json = command.output().json;
    let (method, url) = request_of(target, &command);
    let body = target.send(method, url).await?;
    if json {
        return Ok(with_newline(body));
    }
    match &command {
        ClientCommand::Releases { .. } => render::board(&body),
        ClientCommand::Status { release, .. } => {
            render::status(&body, &timeline_url(target, release))
        }
        ClientCommand::Cancel { .. } => render::cancelled(&body),
        ClientCommand::Resend { email, .. } => render::resent(&body, email),
    }
}

/// The method and URL of the command's request.
fn request_of(target: &Target, command: &ClientCommand) -> (Method, url::Url) {
    match command {
        ClientCommand::Releases { board, .. } => {
            (Method::GET, target.url(&["releases"], &board.query()))
        }
        ClientCommand::Status { release, .. } => (
            Method::GET,
            target.url(&release.segments("release", &[]), &release.query()),
        ),
        ClientCommand::Cancel {
            release, reason, ..
        } => {
            let mut query = release.query();
            if let Some(reason) = reason {
                query.push(("reason", reason.clone()));
            }
            (
                Method::POST,
                target.url(&release.segments("release", &["cancel"]), &query),
            )
        }
        ClientCommand::Resend { release, email, .. } => (
            Method::POST,
            target.url(
                &release.segments("release", &["approvers", email, "resend"]),
                &release.query(),
            ),
        ),
    }
}

/// The board's page of the release's timeline, for people to open.
fn timeline_url(target: &Target, release: &ReleaseArgs) -> url::Url {
    target.url(&release.segments("releases", &[]), &release.query())
}

fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
