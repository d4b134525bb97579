//! `projector view rebuild NAME`: reset a view so that the next `projector
//! run` rebuilds it from the earliest offset of its topics, with the module
//! and the shard count the config names now. Refused while a runtime holds
//! the data directory.
//!
//! `projector view deploy`, `swap`, `rollback` and `drop-previous`: live
//! redeploy over the runtime's API (`deploy.rs`).
//!
//! `projector view quarantine NAME`, `projector view release NAME
//! [SUBJECT]` and `projector view discard NAME SUBJECT...`: the subjects a
//! running view holds in quarantine, applying their held records again, and
//! taking them out for good (to the view's dead-letter topic, else dropped),
//! over the runtime's API.

use anyhow::Context;
use clap::{Args, Subcommand};

use super::client::{ApiArgs, ApiClient, ApiFailure, encode, json_failure};
use super::run::open;
use super::{Incomplete, Output};
use crate::config::Config;
use crate::http::QuarantineReport;
use crate::pipeline::control::{ReleaseReport, SubjectDiscard};
use crate::store::{Store, ViewStore};

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
    /// Restore the view's store from its changelog topic now, with the
    /// runtime stopped: rows, checkpoints, held records and identities, as
    /// a start would, with a progress bar. Afterwards `projector run`
    /// starts with nothing to restore.
    Restore {
        /// The view's name.
        name: String,
        /// The configuration file.
        #[arg(short, long, default_value = "projector.toml", value_name = "FILE")]
        config: std::path::PathBuf,
    },
    /// Deploy a new module to a running view without downtime: the runtime
    /// checks it, builds a shadow of the view with it (replaying the
    /// view's topics from their earliest offsets) while the live view
    /// serves, and swaps it in once it has caught up; the old version is
    /// kept applying for `projector view rollback`. Shows the replay's
    /// progress until the swap; exits 1 when the shadow fails.
    Deploy {
        /// The view's name.
        name: String,
        /// The new module (`.wasm`).
        #[arg(long, value_name = "FILE", required_unless_present_any = ["watch", "cancel"])]
        module: Option<std::path::PathBuf>,
        /// Stop once the shadow has caught up; `projector view swap`
        /// swaps it in.
        #[arg(long)]
        no_swap: bool,
        /// Return once the shadow is building.
        #[arg(long)]
        detach: bool,
        /// Follow the deploy under way instead of starting one.
        #[arg(long, conflicts_with_all = ["module", "cancel"])]
        watch: bool,
        /// Stop and drop the shadow being built; the live view is untouched.
        #[arg(long, conflicts_with = "module")]
        cancel: bool,
        /// Build even where a topic's earliest records are gone
        /// (retention): the shadow then holds a view of part of the
        /// history.
        #[arg(long)]
        allow_partial_history: bool,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Swap in the shadow a `projector view deploy --no-swap` built, once
    /// it has caught up.
    Swap {
        /// The view's name.
        name: String,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Swap the previous version of a view back in (it kept applying since
    /// the deploy); the version it replaces is kept, so a second rollback
    /// undoes the first.
    Rollback {
        /// The view's name.
        name: String,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Stop the previous version of a view and free its rows: no rollback
    /// afterwards.
    DropPrevious {
        /// The view's name.
        name: String,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List the subjects a running view holds in quarantine
    /// (`on_error = "quarantine"`), with why the first record of each failed.
    Quarantine {
        /// The view's name.
        name: String,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Apply the records a running view holds in quarantine for SUBJECT
    /// (for every subject without it), in order, with the module it runs
    /// now. A record that fails again stays held with those behind it; the
    /// command then names the subjects still held and exits with status 2.
    Release {
        /// The view's name.
        name: String,
        /// The subject to release; every subject held when absent.
        subject: Option<String>,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Take the records a running view holds in quarantine for each SUBJECT
    /// out for good: to the view's dead_letter_topic when it has one
    /// (written once, with the dead-letter headers), else dropped and
    /// logged by origin. "" names the records that had no subject or could
    /// not be decoded. Exits with status 1 when a subject is not held.
    Discard {
        /// The view's name.
        name: String,
        /// The subjects to discard.
        #[arg(required = true)]
        subjects: Vec<String>,
        /// Where the API is.
        #[command(flatten)]
        api: ApiArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Run `projector view`.
pub fn run(args: &ViewArgs) -> anyhow::Result<()> {
    match &args.command {
        ViewCommand::Rebuild { name, config } => {
            let config_path = config;
            let config = Config::load(config)?;
            let view = view_of(&config, name)?;
            let (engine, store) = open(&config)?;
            let module = engine
                .load_file(&view.module)
                .with_context(|| format!("view {name}: module {}", view.module.display()))?;
            let changelog = match &view.changelog {
                // A standby's rebuild drops its copy only: the changelog
                // is its owner's.
                None => None,
                Some(_) if view.role == crate::config::Role::Standby => None,
                Some(_) => {
                    let broker = super::run::broker_of(&config, config_path)?;
                    // The view's count; for a view reset before, the
                    // count its config or its changelog topic has.
                    let shards = match store.view_shards(name)? {
                        Some(shards) => shards,
                        None => view
                            .shards
                            .and_then(crate::shard::Shards::new)
                            .or_else(|| {
                                let topic = view.changelog_topic()?;
                                let count = crate::kafka::partition_count(
                                    &broker,
                                    &topic,
                                    std::time::Duration::from_secs(30),
                                )
                                .ok()?;
                                crate::shard::Shards::new(u32::try_from(count).ok()?)
                            })
                            .unwrap_or(crate::shard::Shards::ONE),
                    };
                    crate::pipeline::changelog::Changelog::open(&broker, view, shards)
                        .with_context(|| format!("view {name}: its changelog"))?
                }
            };
            if let Some(changelog) = &changelog {
                // First the changelog, so that a restore after a crash
                // here never brings the old rows back.
                let removed = changelog
                    .reset(module.hash())
                    .with_context(|| format!("view {name}: resetting its changelog"))?;
                println!(
                    "changelog {}: {removed} entries removed (tombstones written)",
                    changelog.topic()
                );
            }
            let rows = store.reset_view(name, module.hash())?;
            // A rebuild starts the view over from its config: the versions
            // deploys made go, with their record.
            let dropped = crate::deploy::drop_other_versions(store.as_ref(), name, &[])?;
            store.set_deployment(name, None)?;
            if !dropped.is_empty() {
                println!(
                    "view {name}: the versions deployed to it dropped ({}); its config's module builds it again",
                    dropped.join(", ")
                );
            }
            let next = if view.role == crate::config::Role::Standby {
                format!(
                    "This runtime keeps a standby copy: its changelog {} was left alone, and the \
                     next `projector run` copies it afresh.",
                    view.changelog_topic().unwrap_or_default()
                )
            } else {
                format!(
                    "The next `projector run` replays {} from the earliest offset.",
                    view.topics.join(", ")
                )
            };
            println!(
                "view {name} reset: {rows} rows and its checkpoints removed; module {} recorded. \
                 {next}",
                module.hash(),
            );
            Ok(())
        }
        ViewCommand::Restore { name, config } => restore(name, config),
        ViewCommand::Quarantine { name, api, output } => {
            let client = ApiClient::new(api)?;
            let report: QuarantineReport = json_failure(
                client.get_json(&format!("/v1/views/{}/quarantine", encode(name))),
                *output,
            )?;
            match output {
                Output::Json => println!("{}", serde_json::to_string(&report)?),
                Output::Text if report.held.is_empty() => {
                    println!("view {name} holds no subject in quarantine");
                }
                Output::Text => {
                    println!(
                        "view {name} holds {} subjects ({} records) in quarantine{}:",
                        report.subjects,
                        report.records,
                        if report.truncated {
                            "; the first are listed"
                        } else {
                            ""
                        }
                    );
                    for held in &report.held {
                        println!(
                            "  {:?}: {} records, the first {}/{}@{} failed: {}: {}",
                            held.subject,
                            held.records,
                            held.topic,
                            held.partition,
                            held.offset,
                            held.class,
                            held.message
                        );
                    }
                }
            }
            Ok(())
        }
        ViewCommand::Release {
            name,
            subject,
            api,
            output,
        } => {
            let client = ApiClient::new(api)?;
            let path = match subject {
                Some(subject) => format!(
                    "/v1/views/{}/quarantine/release?subject={}",
                    encode(name),
                    encode(subject)
                ),
                None => format!("/v1/views/{}/quarantine/release", encode(name)),
            };
            let report: ReleaseReport = json_failure(client.post_json(&path), *output)?;
            if *output == Output::Json {
                println!("{}", serde_json::to_string(&report)?);
            } else if report.subjects.is_empty() {
                println!("view {name} holds no subject in quarantine");
            }
            let mut held = 0;
            let mut still: Vec<&str> = Vec::new();
            for released in &report.subjects {
                held += released.still_held;
                if released.still_held > 0 {
                    still.push(&released.subject);
                }
                if *output == Output::Text {
                    match &released.error {
                        None => println!(
                            "{:?}: {} records applied; released",
                            released.subject, released.applied
                        ),
                        Some(error) => println!(
                            "{:?}: {} records applied, {} still held: the next one failed again: {error}",
                            released.subject, released.applied, released.still_held
                        ),
                    }
                }
            }
            if held > 0 {
                return Err(Incomplete(format!(
                    "{} of {} subjects released; {held} records of {} still held ({}): fix what fails (the module, a limit) and release again, or take them out with `projector view discard {name} SUBJECT...`",
                    report.subjects.len() - still.len(),
                    report.subjects.len(),
                    still.len(),
                    still
                        .iter()
                        .map(|subject| format!("{subject:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            }
            Ok(())
        }
        ViewCommand::Discard {
            name,
            subjects,
            api,
            output,
        } => discard(name, subjects, api, *output),
        ViewCommand::Deploy {
            name,
            module,
            no_swap,
            detach,
            watch: _,
            cancel,
            allow_partial_history,
            api,
            output,
        } => super::deploy::deploy(
            name,
            super::deploy::DeployRequest {
                module: module.as_deref(),
                no_swap: *no_swap,
                detach: *detach,
                cancel: *cancel,
                allow_partial_history: *allow_partial_history,
            },
            api,
            *output,
        ),
        ViewCommand::Swap { name, api, output } => super::deploy::swap(name, api, *output),
        ViewCommand::Rollback { name, api, output } => super::deploy::rollback(name, api, *output),
        ViewCommand::DropPrevious { name, api, output } => {
            super::deploy::drop_previous(name, api, *output)
        }
    }
}

/// `projector view discard`: one request per subject; every subject is
/// tried, and the command fails when one was not held.
fn discard(name: &str, subjects: &[String], api: &ApiArgs, output: Output) -> anyhow::Result<()> {
    let client = ApiClient::new(api)?;
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for subject in subjects {
        let path = format!(
            "/v1/views/{}/quarantine/discard?subject={}",
            encode(name),
            encode(subject)
        );
        match client.post_json::<SubjectDiscard>(&path) {
            Ok(report) => {
                if output == Output::Text {
                    match &report.dead_letter_topic {
                        Some(topic) => println!(
                            "{:?}: {} records discarded to the dead-letter topic {topic}",
                            report.subject, report.discarded
                        ),
                        None => println!(
                            "{:?}: {} records discarded (dropped: the view has no dead_letter_topic; their origins are in the runtime's log)",
                            report.subject, report.discarded
                        ),
                    }
                }
                reports.push(serde_json::to_value(&report)?);
            }
            Err(err) => {
                let failure = err.downcast_ref::<ApiFailure>().cloned();
                match failure {
                    // Not held: said, and the others are still tried.
                    Some(failure) if failure.code.as_deref() == Some("not_quarantined") => {
                        if output == Output::Text {
                            println!("{subject:?}: not held in quarantine");
                        }
                        reports.push(serde_json::json!({"subject": subject, "error": failure.message, "code": failure.code}));
                        failed.push(subject.as_str());
                    }
                    _ => return json_failure(Err(err), output),
                }
            }
        }
    }
    if output == Output::Json {
        println!("{}", serde_json::json!({ "subjects": reports }));
    }
    anyhow::ensure!(
        failed.is_empty(),
        "{} of the subjects named are not held in quarantine: {}",
        failed.len(),
        failed
            .iter()
            .map(|subject| format!("{subject:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The view called `name` in `config`, or an error listing its views.
fn view_of<'a>(config: &'a Config, name: &str) -> anyhow::Result<&'a crate::config::ViewConfig> {
    config
        .views
        .iter()
        .find(|view| view.name == name)
        .with_context(|| {
            let names: Vec<&str> = config.views.iter().map(|v| v.name.as_str()).collect();
            format!(
                "no view called {name:?} in the config; its views are {}",
                names.join(", ")
            )
        })
}

/// `projector view restore NAME`: the view's store brought up to its
/// changelog, as a start would, with a progress bar on a terminal (a line
/// every ten seconds otherwise).
fn restore(name: &str, config_path: &std::path::Path) -> anyhow::Result<()> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    let config = Config::load(config_path)?;
    let view = view_of(&config, name)?;
    anyhow::ensure!(
        view.changelog.is_some(),
        "view {name} has no changelog to restore from: its config has no `changelog = {{ ... }}`"
    );
    let broker = super::run::broker_of(&config, config_path)?;
    // A restore reads a changelog that exists; a start would make one.
    if let Some(topic) = view.changelog_topic() {
        match crate::kafka::partition_count(&broker, &topic, Duration::from_secs(30)) {
            Ok(_) => {}
            Err(crate::kafka::TopicLookupError::Missing) => anyhow::bail!(
                "view {name}: its changelog topic {topic} does not exist on the broker; there is nothing to restore from"
            ),
            Err(err) => {
                anyhow::bail!("view {name}: cannot read its changelog topic {topic}: {err}")
            }
        }
    }
    let (engine, store) = open(&config)?;
    let module = crate::service::Service::load_module(&engine, view)?;
    let prepared = crate::pipeline::Worker::prepare(
        &broker,
        view.clone(),
        module.instance(),
        std::sync::Arc::clone(&store),
        std::sync::Arc::new(crate::pipeline::status::ViewStatus::default()),
        crate::pipeline::BatchLimits::default(),
    )?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} records ({per_sec}), ETA {eta}",
        )
        .map_err(|err| anyhow::anyhow!("the progress bar's template: {err}"))?
        .progress_chars("=> "),
    );
    bar.set_message(format!("restoring view {name}"));
    let said = Mutex::new(Instant::now());
    let restored = prepared.restore(&|progress| {
        bar.set_length(progress.total.max(progress.records));
        bar.set_position(progress.records);
        if bar.is_hidden() {
            let mut said = said
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if said.elapsed() >= Duration::from_secs(10) {
                *said = Instant::now();
                eprintln!(
                    "restoring view {name}: {} of {} records, {} bytes, {:.0} records/s",
                    progress.records,
                    progress.total,
                    progress.bytes,
                    progress.rate()
                );
            }
        }
    })?;
    bar.finish_and_clear();
    let restored = restored.unwrap_or_default();
    let rows = prepared.rows().row_count();
    if restored.snapshot > 0 {
        println!(
            "view {name}: its changelog held nothing of the store's state; the store ({} entries) was logged to it whole",
            restored.snapshot
        );
    } else if restored.records == 0 && restored.reverted == 0 {
        println!("view {name}: already up to its changelog; {rows} rows");
    } else {
        println!(
            "view {name} restored from its changelog: {} records ({} bytes), {} entries written (each key's latest), {rows} rows{}",
            restored.records,
            restored.bytes,
            restored.written,
            if restored.reverted > 0 {
                format!(
                    "; {} records a crash left after a shard's last whole batch logged again with the store's values",
                    restored.reverted
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
