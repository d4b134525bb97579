//! `projector run -c projector.toml`: run the configured views until
//! SIGINT or SIGTERM, then stop gracefully: stop fetching, finish the record
//! in hand, commit the batch to the store, flush, commit offsets.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::{BrokerConfig, Config};
use crate::engine::Engine;
use crate::http::{self, ApiState};
use crate::pipeline::BatchLimits;
use crate::secrets::{SecretStore, SecretValue};
use crate::service::Service;
use crate::store::SledStore;

/// Arguments of `projector run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(short, long, default_value = "projector.toml", value_name = "FILE")]
    pub config: PathBuf,
}

/// Open the engine and the store a runtime with `config` uses: compiled
/// code is cached in `<data_dir>/compiled`, rows live in `<data_dir>/store`.
/// Every view's module is loaded first: when one does not load, the start
/// fails with nothing left behind (no store, and no cache directory this
/// start created).
pub fn open(config: &Config) -> anyhow::Result<(Arc<Engine>, Arc<SledStore>)> {
    let mut engine_config = config.engine.clone();
    let cache = engine_config
        .cache_dir
        .get_or_insert_with(|| config.data_dir.join("compiled"))
        .clone();
    // The directories this start creates, outermost first.
    let created: Vec<PathBuf> = [config.data_dir.clone(), cache]
        .into_iter()
        .filter(|dir| !dir.exists())
        .collect();
    let loaded = Engine::new(engine_config)
        .map_err(anyhow::Error::from)
        .and_then(|engine| {
            for view in &config.views {
                super::compile::announced(&view.name, &view.module, || {
                    Service::load_module(&engine, view)
                })?;
            }
            Ok(engine)
        });
    let engine = match loaded {
        Ok(engine) => engine,
        Err(err) => {
            for dir in &created {
                // Only what this start made, and only when nothing else
                // was put there meanwhile.
                let _ = std::fs::remove_dir_all(dir);
            }
            return Err(err);
        }
    };
    let store = Arc::new(SledStore::open(&config.data_dir.join("store"))?);
    Ok((Arc::new(engine), store))
}

/// The API's bearer token, if `config` names one, resolved from the secret
/// store.
pub fn api_token(config: &Config) -> anyhow::Result<Option<SecretValue>> {
    let Some(reference) = &config.http.token_secret else {
        return Ok(None);
    };
    SecretStore::from_env()
        .and_then(|secrets| secrets.resolve(reference))
        .map(Some)
        .with_context(|| format!("[http] token_secret = \"{reference}\""))
}

/// The broker `config` (read from `path`) names: its `[broker]`, else the
/// stored one, with the password resolved now, so that a missing secret
/// fails the command, naming it.
///
/// # Errors
/// When there is none, or its secret cannot be read.
pub fn broker_of(config: &Config, path: &std::path::Path) -> anyhow::Result<BrokerConfig> {
    let mut broker = match config.broker.clone() {
        Some(broker) => broker,
        None => {
            crate::stored_broker::load(&crate::secrets::home()?)
                .with_context(|| format!("{} has no [broker] table", path.display()))?
                .broker
        }
    };
    super::broker::resolve(&mut broker)?;
    Ok(broker)
}

/// Run `projector run`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let broker = broker_of(&config, &args.config)?;
    let token = api_token(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Bind first: a port in use fails the start before any view runs.
    let listener = runtime.block_on(http::bind(config.http.bind))?;
    let (engine, store) = open(&config)?;
    let service = Service::start(&config, &broker, &engine, store, BatchLimits::default())?;
    let mut state = ApiState::for_service(&service).with_console(config.http.console);
    if let Some(token) = &token {
        state = state.with_token(token);
    }
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(http::serve(listener, state, async {
        let _ = http_stopped.await;
    }));
    tracing::info!(
        views = service.statuses().len(),
        http = %config.http.bind,
        "projector running; SIGINT or SIGTERM stops it"
    );
    runtime.block_on(wait_for_signal(&service, &args.config))?;
    tracing::info!("stopping: finishing in-flight work, flushing, committing offsets");
    let ended = service.stop();
    let _ = stop_http.send(());
    match runtime.block_on(server) {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "the HTTP server failed"),
        Err(err) => tracing::error!(error = %err, "the HTTP server task failed"),
    }
    let failed: Vec<String> = ended
        .iter()
        .filter_map(|(name, outcome)| outcome.as_ref().err().map(|err| format!("{name}: {err}")))
        .collect();
    if failed.is_empty() {
        tracing::info!("stopped cleanly");
        Ok(())
    } else {
        anyhow::bail!("views ended with errors: {}", failed.join("; "))
    }
}

/// Wait for SIGINT or SIGTERM, or until every view has stopped by itself;
/// on SIGHUP, read `config` again and deploy the modules it changed.
async fn wait_for_signal(service: &Service, config: &std::path::Path) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            result = tokio::signal::ctrl_c() => {
                result.context("cannot listen for SIGINT")?;
                return Ok(());
            }
            _ = terminate.recv() => return Ok(()),
            _ = hangup.recv() => {
                let deployer = std::sync::Arc::clone(service.deployer());
                let path = config.to_owned();
                // A deploy compiles: off the async workers.
                let reloaded = tokio::task::spawn_blocking(move || reload(&deployer, &path)).await;
                if let Err(err) = reloaded {
                    tracing::error!(error = %err, "SIGHUP: the reload failed");
                }
            }
            _ = tick.tick() => {
                if service.statuses().values().all(|status| status.fatal_error().is_some()) {
                    tracing::error!("every view has stopped");
                    return Ok(());
                }
            }
        }
    }
}

/// SIGHUP: read the config at `path` again; every view whose module file
/// now holds another module than the one it runs (or builds) is deployed
/// as `projector view deploy` does, swapped in once caught up. Only a
/// module changes this way: other changes are logged and wait for a
/// restart.
fn reload(deployer: &Arc<crate::deploy::Deployer>, path: &std::path::Path) {
    use sha2::Digest;
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(config = %path.display(), error = %format!("{err:#}"), "SIGHUP: the config does not load; nothing changed");
            return;
        }
    };
    tracing::info!(config = %path.display(), "SIGHUP: reading the config again for changed modules");
    for view in &config.views {
        let Some(slot) = deployer.views().slot(&view.name) else {
            tracing::warn!(view = %view.name, "SIGHUP: a view that is not running is started by a restart, not a reload");
            continue;
        };
        let bytes = match std::fs::read(&view.module) {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(view = %view.name, module = %view.module.display(), error = %err, "SIGHUP: cannot read the module");
                continue;
            }
        };
        let hash = hex::encode(sha2::Sha256::digest(&bytes));
        let running = slot.live().version.module_hash.clone();
        let building = slot
            .beside()
            .shadow
            .as_ref()
            .map(|shadow| shadow.version.module_hash.clone());
        if hash == running || building.as_deref() == Some(hash.as_str()) {
            continue;
        }
        let options = crate::deploy::DeployOptions {
            swap: crate::deploy::SwapMode::Auto,
            allow_partial_history: false,
        };
        match deployer.deploy(&view.name, &bytes, options) {
            Ok(report) => tracing::info!(
                view = %view.name,
                version = report.shadow.map_or(0, |s| s.version),
                module = %hash,
                "SIGHUP: the view's module changed; deploying it (a shadow builds, then swaps in)"
            ),
            Err(err) => {
                tracing::error!(view = %view.name, error = %err, "SIGHUP: the changed module was not deployed");
            }
        }
    }
}
