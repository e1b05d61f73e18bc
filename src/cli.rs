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

use crate::arm::{ArmClient, AzurePlane};
use crate::auth::{self, TokenSource};
use crate::config::{self, AzurePlaneMode, Settings};
use crate::graph::GraphClient;
use crate::host::{Application, HandlerState};
use crate::http::RetryPolicy;
use crate::model::Severity;
use crate::pipeline::{Publisher, RunOutcome, RunRequest, Scanner, preflight};
use crate::results::records::Trigger;
use crate::results::{self, BlobStore, LocalStore, Manifest, ResultStore, RunState, ScanStatus};
use crate::rules;
use crate::simulator::{FaultRates, RunningSimulator, SimOptions, SimTenant, TenantSize};
use crate::snapshot::suppressions::SUPPRESSIONS_FILE;
use crate::snapshot::{AssessmentSettings, TenantSnapshot};
use crate::{summary, telemetry};

/// The workspace id of `simulate --usage`.
const GENERATED_WORKSPACE_ID: &str = "00000000-0000-4000-8000-00000000a11a";

/// Default output directory of `mi-assess assess`.
pub const DEFAULT_OUT_DIR: &str = "mi-assess-results";

/// Assess every managed identity in a Microsoft Entra ID tenant.
///
/// Runs inside Azure Functions as a custom handler (`serve`), or from a workstation
/// (`assess`). Configuration comes from environment variables; see docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "mi-assess", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log more: -v info, -vv debug (on a terminal the default is warn; MI_ASSESS_LOG
    /// overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// How `assess` prints its outcome on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A summary with tables that fit the terminal.
    #[default]
    Text,
    /// One JSON document: the run's outcome and its top findings
    /// (schemas/cli-summary.schema.json).
    Json,
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
    /// your Azure CLI or azd login. Exit status: 0 complete (and no gate hit), 1 failed,
    /// 2 partial, 3 a finding at or above --fail-on, 64 a usage error.
    Assess(AssessArgs),
    /// Serve a simulated tenant (Graph and the managed-identity token endpoint) on loopback.
    ///
    /// Prints one JSON line with the endpoints to point `serve` or `assess` at
    /// (MI_ASSESS_GRAPH_ENDPOINT, IDENTITY_ENDPOINT, IDENTITY_HEADER), then serves until stopped.
    /// The benchmark and local experiments use it.
    Simulate(SimulateArgs),
    /// Export a run's findings as CSV or OCSF, from its folder (runs/{tenantId}/…/{runId}).
    ///
    /// Every run already writes findings.csv and findings.ocsf.json; this makes them for a run
    /// folder you downloaded, or for runs written before the exports existed. Prints to stdout
    /// unless --output is given.
    Export(ExportArgs),
    /// Print the app settings, their defaults and what they do.
    Settings {
        /// Print them as a Markdown table (this is how docs/configuration.md's table is made).
        #[arg(long)]
        markdown: bool,
    },
    /// Print the rule catalogue.
    Rules {
        /// Print it as Markdown (this is how docs/rules.md is generated).
        #[arg(long)]
        markdown: bool,
    },
}

/// Arguments of `mi-assess assess`.
#[derive(Debug, clap::Args)]
pub struct AssessArgs {
    /// Assess the built-in demo tenant, served by the Graph simulator on loopback. Needs no
    /// Azure access.
    #[arg(long)]
    pub demo: bool,
    /// The tenant to assess (its id or domain), when your Azure CLI login covers several: the
    /// token comes from `az account get-access-token --tenant`, and a token of another tenant
    /// is refused.
    #[arg(long, value_name = "TENANT", conflicts_with_all = ["demo", "from_snapshot"])]
    pub tenant: Option<String>,
    /// Write results to this directory (default ./mi-assess-results).
    #[arg(long, value_name = "DIR", conflicts_with = "results_url")]
    pub out: Option<PathBuf>,
    /// Write results to this Blob Storage container URL instead of a directory
    /// (default: $MI_ASSESS_RESULTS_URL when set). With --demo it tests the storage setup
    /// without a tenant: the demo's results go there, written with your own credential.
    #[arg(long, value_name = "URL")]
    pub results_url: Option<String>,
    /// Replay the assessment offline from a run's snapshot.json.gz (or a plain JSON snapshot)
    /// instead of reading Graph. The findings are identical to the original run's.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["demo", "results_url"])]
    pub from_snapshot: Option<PathBuf>,
    /// Exit 3 when the run has a finding at or above this severity (critical, high, medium, low
    /// or info) that is not suppressed: a gate for CI pipelines.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    /// With --fail-on: gate only on findings that are new since the previous complete run.
    #[arg(long, requires = "fail_on")]
    pub fail_on_new: bool,
    /// With --from-snapshot: make the replayed run the tenant's baseline (move latest/) when it
    /// is complete. Without it a replay never moves latest/, so the next run still compares
    /// against the last real one.
    #[arg(long, requires = "from_snapshot", conflicts_with_all = ["demo", "results_url"])]
    pub as_baseline: bool,
    /// The most a replayed snapshot may decompress to, in MiB: a larger one (or a gzip bomb)
    /// stops with an error before it fills memory.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_SNAPSHOT_MIB, requires = "from_snapshot")]
    pub max_snapshot_mib: u64,
    /// Write run statistics (wall time, Graph requests, resource units, 429s, peak memory) to
    /// this JSON file.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Print the outcome as a text summary or as one JSON document.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Arguments of `mi-assess export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// csv (one row per finding, RFC 4180) or ocsf (OCSF 1.5.0 Detection Finding events).
    #[arg(long, value_enum)]
    pub format: crate::export::Format,
    /// Write the export to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The run folder: the one holding manifest.json and findings.ndjson.
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

/// Arguments of `mi-assess simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Serve a generated tenant of this many managed identities instead of the demo tenant.
    #[arg(long, value_name = "N")]
    pub identities: Option<usize>,
    /// Seed of the generated tenant and of the fault generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// Give the generated tenant a Log Analytics workspace with usage evidence for every
    /// identity (its id is printed as logAnalyticsWorkspaceId).
    #[arg(long, requires = "identities")]
    pub usage: bool,
    /// Azure role assignments per managed identity in the generated tenant's Azure estate, on
    /// average; a realistic estate is 10 (0 with --resources-per-identity 0, the default: no
    /// readable subscription).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub role_assignments_per_identity: usize,
    /// Azure resources per managed identity in the generated tenant's Azure estate, about; a
    /// realistic estate is 2.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub resources_per_identity: usize,
    /// Enforce Graph's throttling budget: small (3,500 RU/10 s), medium (5,000), large (8,000).
    #[arg(long, value_enum)]
    pub budget: Option<BudgetArg>,
    /// Latency added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Fraction of requests answered 429 at random (inside $batch too).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Fraction of requests answered 503 at random (inside $batch too).
    #[arg(long, default_value_t = 0.0)]
    pub unavailable_rate: f64,
    /// Fraction of responses whose connection drops mid-body.
    #[arg(long, default_value_t = 0.0)]
    pub reset_rate: f64,
    /// Fraction of responses whose JSON body is cut short.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Tenant sizes for `--budget`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BudgetArg {
    /// 3,500 RU per 10 s.
    Small,
    /// 5,000 RU per 10 s.
    Medium,
    /// 8,000 RU per 10 s.
    Large,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let target = match cli.command {
        Command::Serve => telemetry::LogTarget::Host,
        Command::Export(args) => return export(&args),
        Command::Settings { markdown } => {
            if markdown {
                print!("{}", config::settings_markdown());
            } else {
                for s in config::settings() {
                    println!(
                        "{}\n  default: {}\n  {}\n",
                        s.name, s.default, s.description
                    );
                }
            }
            return ExitCode::SUCCESS;
        }
        Command::Rules { markdown } => {
            print!(
                "{}",
                if markdown {
                    rules::catalogue_markdown()
                } else {
                    rules::catalogue_text()
                }
            );
            return ExitCode::SUCCESS;
        }
        Command::Assess(_) | Command::Simulate(_) => telemetry::LogTarget::Terminal,
    };
    telemetry::init(target, cli.verbose);
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
            Command::Simulate(args) => simulate(args).await.map(|()| ExitCode::SUCCESS),
            Command::Rules { .. } | Command::Export(_) | Command::Settings { .. } => {
                Ok(ExitCode::SUCCESS)
            }
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

fn assessment_settings(settings: &Settings) -> AssessmentSettings {
    AssessmentSettings {
        privileged_group_ids: settings.privileged_groups.clone(),
        suppressions: Vec::new(),
        rejected_suppressions: Vec::new(),
        fic_allowed_issuers: settings.fic_allowed_issuers.clone(),
        max_secret_days: settings.max_secret_days,
        max_certificate_days: settings.max_certificate_days,
        suppression_max_days: settings.suppression_max_days,
    }
}

/// The usage plane as configured: off, or a Log Analytics client for the workspace.
fn usage_plane(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> anyhow::Result<crate::usage::UsagePlane> {
    let Some(usage) = &settings.usage else {
        return Ok(crate::usage::UsagePlane::off());
    };
    let client = crate::usage::LogAnalyticsClient::new(
        &usage.endpoint,
        &usage.workspace_id,
        TokenSource::new(credential, usage.scope()),
        RetryPolicy::default(),
    )?;
    Ok(crate::usage::UsagePlane::new(client, usage.window_days))
}

/// The Azure plane as configured: off, or an ARM client for `{arm}/.default`.
fn azure_plane(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> anyhow::Result<AzurePlane> {
    if settings.azure_plane == AzurePlaneMode::Off {
        return Ok(AzurePlane::off());
    }
    let tokens = TokenSource::new(credential, settings.arm_scope());
    let client = ArmClient::new(
        settings.arm_endpoint.clone(),
        tokens,
        RetryPolicy::default(),
    )?
    .with_limits(settings.limits);
    Ok(AzurePlane::new(settings.azure_plane, client))
}

fn graph_client(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> anyhow::Result<GraphClient> {
    let tokens = TokenSource::new(credential, settings.graph_scope());
    Ok(GraphClient::new(
        settings.graph_endpoint.clone(),
        tokens,
        RetryPolicy::default(),
    )?
    .with_limits(settings.limits))
}

async fn serve() -> anyhow::Result<()> {
    let port = config::handler_port().context("the Functions host did not give a port")?;
    let settings = Settings::from_env().context("reading configuration")?;
    let results_url = settings
        .results_url
        .clone()
        .ok_or(config::ConfigError::Missing(config::RESULTS_URL_VAR))
        .context("serve writes results to Blob Storage")?;
    // Listen first: the host's probe is answered while the clients (and their TLS roots) are
    // built; invocations wait for them.
    let (app, state) = Application::bind_pending(port)
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let server = tokio::spawn(app.run_until_stopped());
    let (credential, kind) =
        auth::credential_from_env(settings.identity_client_id.as_deref(), None)?;
    let store: Arc<dyn ResultStore> =
        Arc::new(BlobStore::new(results_url.clone(), credential.clone())?);
    let scanner = Scanner::new(
        graph_client(&settings, credential.clone())?,
        store,
        assessment_settings(&settings),
    )
    .with_usage(usage_plane(&settings, credential.clone())?)
    .with_azure(azure_plane(&settings, credential)?)
    .with_run_timeout(settings.run_timeout);
    state.ready(HandlerState {
        scanner,
        identity_timeout: settings.identity_timeout,
    });
    tracing::info!(
        port,
        credential = ?kind,
        graph = %settings.graph_endpoint,
        arm = %settings.arm_endpoint,
        azure_plane = settings.azure_plane.as_str(),
        results = %results_url,
        "mi-assess handler ready"
    );
    server
        .await
        .context("the server task ended abnormally")?
        .context("serving the Functions host")
}

async fn assess(args: AssessArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.from_snapshot {
        return replay(
            path,
            args.max_snapshot_mib,
            args.out.clone(),
            args.as_baseline,
            Gate::of(&args),
            args.format,
        )
        .await;
    }
    // The simulator must outlive the run, so it is held here.
    let mut _simulator: Option<RunningSimulator> = None;
    let (settings, credential, kind): (Settings, Arc<dyn TokenCredential>, auth::CredentialKind) =
        if args.demo {
            let tenant = SimTenant::demo().context("loading the embedded demo tenant")?;
            let simulator = RunningSimulator::start(tenant)
                .await
                .context("starting the Graph simulator")?;
            // The simulator serves Graph and ARM on one origin; ARM access is part of the demo, so
            // the Azure plane is required there.
            let settings = Settings {
                graph_endpoint: simulator.graph_endpoint().clone(),
                results_url: None,
                identity_client_id: None,
                privileged_groups: Vec::new(),
                arm_endpoint: simulator.arm_endpoint().clone(),
                azure_plane: AzurePlaneMode::Required,
                fic_allowed_issuers: config::DEFAULT_FIC_ALLOWED_ISSUERS
                    .map(str::to_owned)
                    .to_vec(),
                max_secret_days: crate::snapshot::DEFAULT_MAX_SECRET_DAYS,
                max_certificate_days: crate::snapshot::DEFAULT_MAX_CERTIFICATE_DAYS,
                suppression_max_days: crate::config::DEFAULT_SUPPRESSION_MAX_DAYS,
                usage: simulator.tenant().tenant().log_analytics.as_ref().map(|w| {
                    config::UsageSettings {
                        workspace_id: w.workspace_id.clone(),
                        window_days: config::DEFAULT_USAGE_WINDOW_DAYS,
                        endpoint: url::Url::parse(&simulator.log_analytics_endpoint())
                            .unwrap_or_else(|_| simulator.graph_endpoint().clone()),
                    }
                }),
                run_timeout: config::DEFAULT_RUN_TIMEOUT,
                identity_timeout: config::MAX_IDENTITY_TIMEOUT,
                limits: Default::default(),
            };
            let credential: Arc<dyn TokenCredential> = Arc::new(simulator.credential());
            eprintln!(
                "demo: serving the embedded demo tenant at {}",
                simulator.graph_endpoint()
            );
            _simulator = Some(simulator);
            (settings, credential, auth::CredentialKind::Supplied)
        } else {
            let settings = Settings::from_env().context("reading configuration")?;
            let (credential, kind) = auth::credential_from_env(
                settings.identity_client_id.as_deref(),
                args.tenant.as_deref(),
            )?;
            tracing::info!(credential = ?kind, graph = %settings.graph_endpoint, arm = %settings.arm_endpoint, azure_plane = settings.azure_plane.as_str(), "authenticating");
            (settings, credential, kind)
        };

    let (results_url, results_setting) = match &args.results_url {
        Some(raw) => (
            Some(config::parse_results_url("--results-url", raw)?),
            "--results-url",
        ),
        None if args.out.is_none() && !args.demo => {
            (settings.results_url.clone(), config::RESULTS_URL_VAR)
        }
        None => (None, "--out"),
    };
    // The demo's results go to real storage with the caller's own credential; everything else
    // uses the run's.
    let (store_credential, store_kind) = if args.demo && results_url.is_some() {
        auth::credential_from_env(None, None)?
    } else {
        (credential.clone(), kind)
    };
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_OUT_DIR));
    let targets = preflight::Targets {
        graph: settings.graph_endpoint.clone(),
        arm: settings.arm_endpoint.clone(),
        azure_plane: settings.azure_plane,
        results: match &results_url {
            Some(url) => preflight::ResultsTarget::Blob {
                url: url.clone(),
                setting: results_setting,
            },
            None => preflight::ResultsTarget::Local(out_dir.clone()),
        },
        token_source: kind.source().to_owned(),
        store_token_source: store_kind.source().to_owned(),
    };
    let progress = crate::progress::Progress::new();
    let view = crate::terminal::ProgressView::show(progress.clone());
    let started = std::time::Instant::now();
    if let Err(failed) =
        preflight::check(&targets, credential.clone(), store_credential.clone()).await
    {
        view.finish().await;
        return Err(failed.into());
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "every endpoint answered"
    );
    if let Some(tenant) = &args.tenant
        && let Err(wrong) =
            auth::ensure_tenant(credential.clone(), &settings.graph_scope(), tenant).await
    {
        view.finish().await;
        return Err(wrong);
    }
    // A demo into a real container never writes suppressions.json there: the container's
    // accepted risks belong to its real tenant.
    let seed_suppressions = args.demo && results_url.is_none();
    let store: Arc<dyn ResultStore> = match results_url {
        Some(url) => Arc::new(BlobStore::new(url, store_credential)?),
        None => Arc::new(LocalStore::new(out_dir)),
    };
    if seed_suppressions {
        seed_demo_suppressions(store.as_ref()).await?;
    }
    let scanner = Scanner::new(
        graph_client(&settings, credential.clone())?,
        store.clone(),
        assessment_settings(&settings),
    )
    .with_usage(usage_plane(&settings, credential.clone())?)
    .with_azure(azure_plane(&settings, credential)?)
    .with_run_timeout(settings.run_timeout)
    .with_progress(progress);
    let request = RunRequest {
        run_id: Uuid::new_v4(),
        trigger: if args.demo {
            Trigger::Demo
        } else {
            Trigger::Cli
        },
        invocation_id: None,
    };
    let ran = scanner.run(&request).await;
    view.finish().await;
    match ran {
        Ok(outcome) => {
            if let Some(path) = &args.stats_json {
                let stats = serde_json::json!({
                    "status": outcome.manifest.status,
                    "wallSeconds": started.elapsed().as_secs_f64(),
                    "identities": outcome.manifest.counts.identities,
                    "credentialServicePrincipals": outcome.manifest.counts.credential_service_principals,
                    "findings": outcome.manifest.counts.findings,
                    "graph": outcome.manifest.graph,
                    "usage": outcome.manifest.usage,
                    "peakRssBytes": crate::telemetry::memory_bytes().map(|(_, peak)| peak),
                    "prefix": outcome.prefix,
                });
                std::fs::write(path, serde_json::to_vec_pretty(&stats)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(report(
                &outcome,
                store.as_ref(),
                Gate::of(&args),
                args.format,
            ))
        }
        Err(busy) => anyhow::bail!("{busy}; try again when it has finished"),
    }
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let tenant = match args.identities {
        Some(n) => {
            let tenant = SimTenant::generated_with(
                n,
                args.seed,
                estate_size(
                    args.role_assignments_per_identity,
                    args.resources_per_identity,
                ),
            );
            if args.usage {
                tenant.with_usage_evidence(GENERATED_WORKSPACE_ID)
            } else {
                tenant
            }
        }
        None => SimTenant::demo().context("loading the embedded demo tenant")?,
    };
    let options = SimOptions {
        budget: args.budget.map(|b| match b {
            BudgetArg::Small => TenantSize::Small,
            BudgetArg::Medium => TenantSize::Medium,
            BudgetArg::Large => TenantSize::Large,
        }),
        latency: std::time::Duration::from_millis(args.latency_ms),
        faults: FaultRates {
            throttle: args.throttle_rate,
            unavailable: args.unavailable_rate,
            reset: args.reset_rate,
            malformed: args.malformed_rate,
        },
        seed: u64::from(args.seed),
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let simulator = RunningSimulator::start_on(tenant, addr, options)
        .await
        .context("starting the simulator")?;
    println!(
        "{}",
        serde_json::json!({
            "graphEndpoint": simulator.graph_endpoint().as_str().trim_end_matches('/'),
            "armEndpoint": simulator.graph_endpoint().as_str().trim_end_matches('/'),
            "identityEndpoint": simulator.identity_endpoint(),
            "logAnalyticsEndpoint": simulator.log_analytics_endpoint(),
            "identityHeader": simulator.identity_header(),
            "tenantId": simulator.tenant().tenant_id,
            "logAnalyticsWorkspaceId": simulator
                .tenant()
                .tenant()
                .log_analytics
                .as_ref()
                .map(|w| w.workspace_id.clone()),
        })
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

/// `mi-assess export`: a run folder's findings as CSV or OCSF, to stdout or a file.
fn export(args: &ExportArgs) -> ExitCode {
    let written = crate::export::read_run(&args.run_dir)
        .and_then(|run| run.export(args.format))
        .map_err(anyhow::Error::from)
        .and_then(|bytes| match &args.output {
            Some(path) => {
                std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
            }
            None => {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .context("writing to stdout")
            }
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The estate size of `simulate --identities`.
fn estate_size(
    role_assignments_per_identity: usize,
    resources_per_identity: usize,
) -> crate::simulator::estate::EstateSize {
    crate::simulator::estate::EstateSize {
        role_assignments_per_identity,
        resources_per_identity,
    }
}

/// Gives a fresh demo output folder the example `suppressions.json`, so the demo shows accepted
/// risk (and an expired acceptance); an existing file is left alone.
async fn seed_demo_suppressions(store: &dyn ResultStore) -> anyhow::Result<()> {
    if store.get(SUPPRESSIONS_FILE).await?.is_none() {
        store
            .put(
                SUPPRESSIONS_FILE,
                bytes::Bytes::from(crate::simulator::tenant::demo_suppressions(
                    time::OffsetDateTime::now_utc().date(),
                )),
                results::JSON,
                &[],
            )
            .await?;
        eprintln!("demo: wrote an example {SUPPRESSIONS_FILE} into the output folder");
    }
    Ok(())
}

/// Exit status of a usage error (sysexits `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit status of a run whose findings hit `--fail-on`.
pub const EXIT_GATE: u8 = 3;

/// `--fail-on` and `--fail-on-new`: fail a pipeline on findings at or above a severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The lowest severity that fails.
    pub fail_on: Severity,
    /// Only findings new since the previous complete run count.
    pub only_new: bool,
}

impl Gate {
    fn of(args: &AssessArgs) -> Option<Self> {
        args.fail_on.map(|fail_on| Self {
            fail_on,
            only_new: args.fail_on_new,
        })
    }

    /// How many findings of the run hit the gate; suppressed findings never do.
    pub fn hits(&self, counts: &results::records::RunCounts) -> usize {
        let counted = if self.only_new {
            &counts.new_by_severity
        } else {
            &counts.active_by_severity
        };
        counted.at_or_above(self.fail_on)
    }
}

/// `critical`, `high`, `medium`, `low` or `info`.
fn parse_severity(value: &str) -> Result<Severity, String> {
    [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .into_iter()
    .find(|s| s.as_str().eq_ignore_ascii_case(value.trim()))
    .ok_or_else(|| format!("{value:?} is not a severity: critical, high, medium, low or info"))
}

/// The exit status of a run: failed (1) before a gate hit (3) before partial (2) before
/// complete (0). A partial run's findings are real, so they still trip the gate.
pub fn exit_status(manifest: &Manifest, gate: Option<Gate>) -> u8 {
    let hit = gate.is_some_and(|g| g.hits(&manifest.counts) > 0);
    match manifest.status {
        RunState::Complete | RunState::Partial if hit => EXIT_GATE,
        RunState::Complete => 0,
        RunState::Partial => 2,
        _ => 1,
    }
}

/// The width the summary fits: `$COLUMNS` when set, else the terminal's, else
/// [`summary::DEFAULT_WIDTH`] (output piped to a file or a CI log).
fn summary_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(|| {
            console::Term::stdout()
                .size_checked()
                .map(|(_, columns)| usize::from(columns))
        })
        .unwrap_or(summary::DEFAULT_WIDTH)
}

/// Prints the summary (text or JSON) and maps the run state and the gate to the exit status.
fn report(
    outcome: &RunOutcome,
    store: &dyn ResultStore,
    gate: Option<Gate>,
    format: OutputFormat,
) -> ExitCode {
    let location = outcome
        .prefix
        .as_deref()
        .map(|p| store.location(p))
        .unwrap_or_else(|| "(nothing written)".to_owned());
    let status = exit_status(&outcome.manifest, gate);
    match format {
        OutputFormat::Text => print!(
            "{}",
            summary::render(
                &outcome.manifest,
                outcome.highlights.as_ref(),
                &location,
                summary_width()
            )
        ),
        OutputFormat::Json => {
            let document = summary::document(
                &outcome.manifest,
                outcome.highlights.as_ref(),
                &location,
                gate.map(|g| summary::GateOutcome {
                    fail_on: g.fail_on,
                    only_new: g.only_new,
                    hits: g.hits(&outcome.manifest.counts),
                }),
                status,
            );
            match serde_json::to_string_pretty(&document) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: cannot print the summary as JSON: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if let Some(gate) = gate {
        let hits = gate.hits(&outcome.manifest.counts);
        if hits > 0 {
            eprintln!(
                "gate: {hits} {}finding(s) at or above {} that are not suppressed (--fail-on)",
                if gate.only_new { "new " } else { "" },
                gate.fail_on.as_str()
            );
        }
    }
    ExitCode::from(status)
}

/// `assess --from-snapshot`: assess a recorded snapshot and write a run from it, offline. It
/// moves `latest/` only `as_baseline`.
async fn replay(
    path: &std::path::Path,
    max_snapshot_mib: u64,
    out: Option<PathBuf>,
    as_baseline: bool,
    gate: Option<Gate>,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let snapshot = read_snapshot_at_most(path, max_snapshot_mib)?;
    let store: Arc<dyn ResultStore> = Arc::new(LocalStore::new(
        out.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT_DIR)),
    ));
    let run_id = Uuid::new_v4();
    let started_at = time::OffsetDateTime::now_utc();
    let mut manifest = Manifest::started(run_id, Trigger::Replay, None, started_at);
    manifest.tenant_id = snapshot.tenant_id.clone();
    let prefix = results::run_prefix(&snapshot.tenant_id, started_at, run_id);
    let mut status = ScanStatus::queued(run_id, Trigger::Replay, started_at);
    status.tenant_id = Some(snapshot.tenant_id.clone());
    status.results_prefix = Some(prefix.clone());
    crate::telemetry::memory_mark("loaded");
    let progress = crate::progress::Progress::new();
    let view = crate::terminal::ProgressView::show(progress.clone());
    let outcome = Publisher::new(store.clone())
        .moving_latest(as_baseline)
        .publish(manifest, prefix, &snapshot, &mut status, &progress)
        .await;
    view.finish().await;
    if !as_baseline {
        eprintln!(
            "replay: latest/ was left as it was, so the next run still compares against the last real one (--as-baseline makes this replay the baseline)"
        );
    }
    Ok(report(&outcome, store.as_ref(), gate, format))
}

/// What `--from-snapshot` decompresses at most by default: 4 GiB, far beyond a 50,000-identity
/// snapshot (a few hundred MiB), far below what a bomb would take.
pub const DEFAULT_MAX_SNAPSHOT_MIB: u64 = 4096;

/// Reads a snapshot written by a run (`snapshot.json.gz`) or a plain JSON snapshot, of at most
/// [`DEFAULT_MAX_SNAPSHOT_MIB`].
pub fn read_snapshot(path: &std::path::Path) -> anyhow::Result<TenantSnapshot> {
    read_snapshot_at_most(path, DEFAULT_MAX_SNAPSHOT_MIB)
}

/// Reads a snapshot that decompresses to at most `max_mib` MiB; past that it stops and says so.
pub fn read_snapshot_at_most(
    path: &std::path::Path,
    max_mib: u64,
) -> anyhow::Result<TenantSnapshot> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    snapshot_from_reader(std::io::BufReader::new(file), max_mib)
        .with_context(|| format!("{} is not a mi-assess tenant snapshot", path.display()))
}

/// Reads a snapshot, gzip-compressed or plain JSON, from `reader`, decompressing at most
/// `max_mib` MiB (a fuzz target's entry point).
pub fn snapshot_from_reader(
    mut reader: impl std::io::BufRead,
    max_mib: u64,
) -> anyhow::Result<TenantSnapshot> {
    use std::io::Read as _;
    let limit = max_mib.saturating_mul(1024 * 1024);
    let gzip = reader
        .fill_buf()
        .context("reading")?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn std::io::Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    // One byte past the limit tells "exactly the limit" from "more".
    let mut text = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut text)
        .context("not valid gzip")?;
    if text.len() as u64 > limit {
        anyhow::bail!(
            "it decompresses to more than {max_mib} MiB, so it was not read (raise --max-snapshot-mib if it is a real snapshot)"
        );
    }
    check_snapshot_version(&text)?;
    serde_json::from_slice(&text).context("its JSON does not have the snapshot's shape")
}

/// Refuses a snapshot whose `schemaVersion` has another major version than this build writes
/// ([`crate::snapshot::SNAPSHOT_SCHEMA_VERSION`]): its fields may mean something else, so
/// assessing it could give wrong findings rather than an error. Read before the full parse,
/// so the message names the version rather than the first field that differs.
fn check_snapshot_version(text: &[u8]) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versioned {
        schema_version: Option<String>,
    }
    let Ok(Versioned {
        schema_version: Some(found),
    }) = serde_json::from_slice::<Versioned>(text)
    else {
        // No version (or not JSON): the full parse says what is wrong.
        return Ok(());
    };
    let major = |v: &str| v.split('.').next().unwrap_or_default().trim().to_owned();
    let supported = crate::snapshot::SNAPSHOT_SCHEMA_VERSION;
    if major(&found) != major(supported) {
        anyhow::bail!(
            "its schemaVersion is {found:.32}, and this mi-assess reads snapshot schema {supported} (major version {}) only: replay it with the mi-assess version that wrote it",
            major(supported)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::records::SeverityCounts;

    fn manifest(status: RunState, active: SeverityCounts, new: SeverityCounts) -> Manifest {
        let mut m = Manifest::started(
            Uuid::nil(),
            Trigger::Cli,
            None,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        m.status = status;
        m.counts.active_by_severity = active;
        m.counts.new_by_severity = new;
        m
    }

    /// Failed before gate before partial before complete; suppressed findings (not in the active
    /// counts) never trip the gate; the new-only gate reads the new counts.
    #[test]
    fn exit_status_orders_failed_gate_partial_complete() {
        let high = SeverityCounts {
            high: 1,
            ..SeverityCounts::default()
        };
        let none = SeverityCounts::default();
        let gate = |fail_on, only_new| Some(Gate { fail_on, only_new });
        assert_eq!(
            exit_status(&manifest(RunState::Complete, none, none), None),
            0
        );
        assert_eq!(
            exit_status(&manifest(RunState::Partial, none, none), None),
            2
        );
        assert_eq!(
            exit_status(
                &manifest(RunState::Failed, high, high),
                gate(Severity::Low, false)
            ),
            1
        );
        let complete = manifest(RunState::Complete, high, none);
        assert_eq!(exit_status(&complete, gate(Severity::High, false)), 3);
        assert_eq!(exit_status(&complete, gate(Severity::Medium, false)), 3);
        assert_eq!(exit_status(&complete, gate(Severity::Critical, false)), 0);
        assert_eq!(
            exit_status(&complete, gate(Severity::High, true)),
            0,
            "nothing new"
        );
        assert_eq!(
            exit_status(
                &manifest(RunState::Partial, high, none),
                gate(Severity::High, false)
            ),
            3
        );
        // Only suppressed high findings: the active counts hold none, so the gate passes.
        assert_eq!(
            exit_status(
                &manifest(RunState::Complete, none, none),
                gate(Severity::Info, false)
            ),
            0
        );
    }
}
