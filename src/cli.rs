//! The command line: `serve` for the Functions host, `assess` for one run from a workstation
//! (or against the built-in demo tenant). Wiring only: every command builds its parts from
//! configuration and hands them to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use azure_core::credentials::TokenCredential;
use clap::{Parser, Subcommand};
use uuid::Uuid;

use crate::auth::{self, TokenSource};
use crate::config::{self, Settings};
use crate::graph::{GraphClient, RetryPolicy};
use crate::host::{Application, HandlerState};
use crate::pipeline::{RunRequest, Scanner};
use crate::results::records::Trigger;
use crate::results::{BlobStore, LocalStore, ResultStore, RunState};
use crate::simulator::{RunningSimulator, SimTenant};
use crate::{summary, telemetry};

/// Default output directory of `mi-assess assess`.
pub const DEFAULT_OUT_DIR: &str = "mi-assess-results";

/// Assess every managed identity in a Microsoft Entra ID tenant.
///
/// Runs inside Azure Functions as a custom handler (`serve`), or from a workstation
/// (`assess`). Configuration comes from environment variables; see README.md.
#[derive(Debug, Parser)]
#[command(name = "mi-assess", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Azure Functions host on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.
    ///
    /// This is what host.json starts. It authenticates with the Function App's managed
    /// identity and writes results to $MI_ASSESS_RESULTS_URL.
    Serve,
    /// Run one assessment now and print a summary.
    ///
    /// Uses the managed identity when IDENTITY_ENDPOINT/IDENTITY_HEADER are set, otherwise
    /// your Azure CLI or azd login. Exit status: 0 complete, 1 failed, 2 partial.
    Assess(AssessArgs),
}

/// Arguments of `mi-assess assess`.
#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// Assess the built-in demo tenant, served by the Graph simulator on loopback. Needs no
    /// Azure access.
    #[arg(long)]
    pub demo: bool,
    /// Write results to this directory (default ./mi-assess-results).
    #[arg(long, value_name = "DIR", conflicts_with = "results_url")]
    pub out: Option<PathBuf>,
    /// Write results to this Blob Storage container URL instead of a directory
    /// (default: $MI_ASSESS_RESULTS_URL when set).
    #[arg(long, value_name = "URL", conflicts_with = "demo")]
    pub results_url: Option<String>,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let target = match cli.command {
        Command::Serve => telemetry::LogTarget::Host,
        Command::Assess(_) => telemetry::LogTarget::Terminal,
    };
    telemetry::init(target);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve().await.map(|()| ExitCode::SUCCESS),
            Command::Assess(args) => assess(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn graph_client(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> anyhow::Result<GraphClient> {
    let tokens = TokenSource::new(credential, settings.graph_scope());
    GraphClient::new(
        settings.graph_endpoint.clone(),
        tokens,
        RetryPolicy::default(),
    )
}

async fn serve() -> anyhow::Result<()> {
    let port = config::handler_port().context("the Functions host did not give a port")?;
    let settings = Settings::from_env().context("reading configuration")?;
    let results_url = settings
        .results_url
        .clone()
        .ok_or(config::ConfigError::Missing(config::RESULTS_URL_VAR))
        .context("serve writes results to Blob Storage")?;
    let (credential, kind) = auth::credential_from_env(settings.identity_client_id.as_deref())?;
    let store: Arc<dyn ResultStore> =
        Arc::new(BlobStore::new(results_url.clone(), credential.clone())?);
    let scanner = Scanner::new(graph_client(&settings, credential)?, store);
    let app = Application::bind(port, HandlerState { scanner })
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    tracing::info!(
        port,
        credential = ?kind,
        graph = %settings.graph_endpoint,
        results = %results_url,
        "mi-assess handler ready"
    );
    app.run_until_stopped()
        .await
        .context("serving the Functions host")
}

async fn assess(args: AssessArgs) -> anyhow::Result<ExitCode> {
    // The simulator must outlive the run, so it is held here.
    let mut _simulator: Option<RunningSimulator> = None;
    let (settings, credential): (Settings, Arc<dyn TokenCredential>) = if args.demo {
        let tenant = SimTenant::demo().context("loading the embedded demo tenant")?;
        let simulator = RunningSimulator::start(tenant)
            .await
            .context("starting the Graph simulator")?;
        let settings = Settings {
            graph_endpoint: simulator.graph_endpoint().clone(),
            results_url: None,
            identity_client_id: None,
        };
        let credential: Arc<dyn TokenCredential> = Arc::new(simulator.credential());
        eprintln!(
            "demo: serving the embedded demo tenant at {}",
            simulator.graph_endpoint()
        );
        _simulator = Some(simulator);
        (settings, credential)
    } else {
        let settings = Settings::from_env().context("reading configuration")?;
        let (credential, kind) = auth::credential_from_env(settings.identity_client_id.as_deref())?;
        tracing::info!(credential = ?kind, graph = %settings.graph_endpoint, "authenticating");
        (settings, credential)
    };

    let results_url = match &args.results_url {
        Some(raw) => Some(config::parse_results_url("--results-url", raw)?),
        None if args.out.is_none() && !args.demo => settings.results_url.clone(),
        None => None,
    };
    let store: Arc<dyn ResultStore> = match results_url {
        Some(url) => Arc::new(BlobStore::new(url, credential.clone())?),
        None => Arc::new(LocalStore::new(
            args.out
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT_DIR)),
        )),
    };
    let scanner = Scanner::new(graph_client(&settings, credential)?, store.clone());
    let request = RunRequest {
        run_id: Uuid::new_v4(),
        trigger: if args.demo {
            Trigger::Demo
        } else {
            Trigger::Cli
        },
        invocation_id: None,
    };
    let outcome = scanner.run(&request).await;
    let location = outcome
        .prefix
        .as_deref()
        .map(|p| store.location(p))
        .unwrap_or_else(|| "(nothing written)".to_owned());
    print!("{}", summary::render(&outcome, &location));
    Ok(match outcome.manifest.status {
        RunState::Complete => ExitCode::SUCCESS,
        RunState::Partial => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    })
}
