//! `projector view rebuild NAME`: reset a view so that the next `projector
//! run` rebuilds it from the earliest offset of its topics, with the module
//! and the shard count the config names now. Refused while a runtime holds
//! the data directory.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::run::open;
use crate::config::Config;
use crate::store::Store;

/// Arguments of `projector view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// What to do with the view.
    #[command(subcommand)]
    pub command: ViewCommand,
}

/// Subcommands of `projector view`.
#[derive(Debug, Subcommand)]
pub enum ViewCommand {
    /// Remove the view's rows and checkpoints and record the configured
    /// module, so the next run replays its topics from the earliest offset.
    Rebuild {
        /// The view's name.
        name: String,
        /// The configuration file.
        #[arg(short, long, default_value = "projector.toml", value_name = "FILE")]
        config: std::path::PathBuf,
    },
}

/// Run `projector view`.
pub fn run(args: &ViewArgs) -> anyhow::Result<()> {
    match &args.command {
        ViewCommand::Rebuild { name, config } => {
            let config = Config::load(config)?;
            let view = config
                .views
                .iter()
                .find(|view| &view.name == name)
                .with_context(|| {
                    let names: Vec<&str> = config.views.iter().map(|v| v.name.as_str()).collect();
                    format!(
                        "no view called {name:?} in the config; its views are {}",
                        names.join(", ")
                    )
                })?;
            let (engine, store) = open(&config)?;
            let module = engine
                .load_file(&view.module)
                .with_context(|| format!("view {name}: module {}", view.module.display()))?;
            let rows = store.reset_view(name, module.hash())?;
            println!(
                "view {name} reset: {rows} rows and its checkpoints removed; module {} recorded. \
                 The next `projector run` replays {} from the earliest offset.",
                module.hash(),
                view.topics.join(", ")
            );
            Ok(())
        }
    }
}
