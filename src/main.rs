//! The `deploy-gate` command: `serve` (default), `migrate`, `openapi`, `config`,
//! `healthcheck`, `doctor`, `generate-key`, and the client commands of `client/`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};
use deploy_gate::{
    api,
    client::{self, ClientCommand},
    secret::Secret,
    settings::{self, Config, Settings},
    startup::{self, App, shutdown_signal},
    store, telemetry,
};

/// mimalloc instead of glibc's allocator: a request allocates and frees dozens of
/// small blocks, and glibc's arenas spent about a tenth of a gate poll's CPU on
/// them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Decides whether a release may go to production.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML file with settings; environment variables override it.
    #[arg(long, global = true, env = "DEPLOY_GATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve (the default).
    Serve,
    /// Only migrate the database.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Print the effective configuration (file, then environment) with secrets masked.
    Config {
        /// Print the reference of every setting (`docs/configuration.md`) instead.
        #[arg(long)]
        reference: bool,
    },
    /// Exit 0 when the service on `DEPLOY_GATE_BIND` answers `/healthz` (for container
    /// HEALTHCHECKs in images without curl).
    Healthcheck,
    /// Delete the token secret generated on first start from the database, once
    /// DEPLOY_GATE_TOKEN_SECRET is set and the links it signed have expired; they
    /// stop working when each replica restarts.
    ForgetGeneratedTokenSecret,
    /// Check the database, mail, the approvers API and Azure DevOps write-back,
    /// changing and sending nothing; exit non-zero when one fails.
    Doctor,
    /// Print a new random key (43 URL-safe characters) for DEPLOY_GATE_API_KEY or
    /// DEPLOY_GATE_TOKEN_SECRET.
    GenerateKey,
    #[command(flatten)]
    Client(ClientCommand),
}

/// Writes `text` to standard output. A reader that stops early (`| head`)
/// closes the pipe: that ends the output, and is no error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let matches = Cli::command()
        .try_get_matches_from(&args)
        .unwrap_or_else(|err| settings::named_as_given(err, &Cli::command(), &args).exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if matches!(cli.command, Some(Command::Openapi)) {
        return print_out(&format!("{}\n", api::openapi_json()));
    }
    if matches!(cli.command, Some(Command::Config { reference: true })) {
        return print_out(&settings::reference_markdown());
    }
    if matches!(cli.command, Some(Command::GenerateKey)) {
        return print_out(&format!("{}\n", Secret::generate().expose()));
    }
    let load = loader(cli.config.clone(), cli.settings.clone(), matches.clone());
    let config = load()?;
    if matches!(cli.command, Some(Command::Config { .. })) {
        return print_out(&config.to_masked_toml());
    }
    let command = match cli.command {
        // Before the log is set up: a client command prints only its answer.
        Some(Command::Client(command)) => return run_client(&config, command).await,
        command => command,
    };
    telemetry::init(config.log_format);
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    for (name, meant) in settings::unknown_variables(names.iter().map(String::as_str)) {
        match meant {
            Some(meant) => tracing::warn!(
                variable = name,
                did_you_mean = meant,
                "ignored: no setting has this name"
            ),
            None => tracing::warn!(variable = name, "ignored: no setting has this name"),
        }
    }
    match command {
        Some(Command::Migrate) => {
            let store = store::open(&config.database).await?;
            store.migrate().await?;
            tracing::info!("database migrated");
            Ok(())
        }
        Some(Command::Healthcheck) => healthcheck(config.bind).await,
        Some(Command::ForgetGeneratedTokenSecret) => {
            let message = if startup::forget_generated_token_secret(&config).await? {
                "removed the generated token secret: links it signed stop working as each \
                 replica restarts\n"
            } else {
                "no generated token secret was kept; nothing to remove\n"
            };
            print_out(message)
        }
        Some(Command::Doctor) => {
            let checks = startup::doctor::checks(&config).await;
            print_out(&startup::doctor::report(&checks))?;
            if checks.iter().any(|c| c.outcome.is_err()) {
                std::process::exit(1);
            }
            Ok(())
        }
        _ => {
            App::build(config)
                .await?
                .reloading(load)
                .run(shutdown_signal())
                .await
        }
    }
}

/// Reads the configuration: the TOML file named by `--config` (or
/// `DEPLOY_GATE_CONFIG`), overridden by the environment and the command line
/// (`settings`, which clap read), with the secret files both name read anew
/// at each call, so that a reload sees what start-up would.
fn loader(path: Option<PathBuf>, settings: Settings, matches: ArgMatches) -> startup::Load {
    Box::new(move || {
        let file = match &path {
            Some(path) => Settings::from_toml_file(path)?,
            None => Settings::default(),
        };
        let environment = settings
            .clone()
            .with_secret_files(
                |name| std::env::var_os(name),
                |name| matches.value_source(name) == Some(ValueSource::CommandLine),
            )
            .context("invalid configuration")?;
        Config::from_settings(file.overridden_by(environment)).context("invalid configuration")
    })
}

/// Runs a client command: its answer on stdout, its error on stderr, and its exit code.
async fn run_client(config: &Config, command: ClientCommand) -> anyhow::Result<()> {
    use std::io::Write as _;
    let outcome = client::run(config, command).await;
    print_out(&outcome.stdout)?;
    // Standard error closed too leaves nobody to tell.
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    std::process::exit(outcome.code)
}

/// Asks the service bound to `bind` (on loopback when bound to every interface) for `/healthz`.
async fn healthcheck(bind: SocketAddr) -> anyhow::Result<()> {
    let bind = client::local_address(bind);
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?
        .get(format!("http://{bind}/healthz"))
        .send()
        .await
        .with_context(|| format!("no answer from {bind}"))?;
    anyhow::ensure!(
        answer.status().is_success(),
        "/healthz answered {}",
        answer.status()
    );
    Ok(())
}
