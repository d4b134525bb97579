//! `projector secret`: create, list and delete named secrets in the local
//! secret store (see [`crate::secrets`]). Values are never printed.
//!
//! A value comes from `--literal KEY=VALUE`, `--from-file KEY=PATH`, or
//! `--from-stdin KEY` (one line, so that the value stays out of shell
//! history and process arguments).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::Output;
use crate::secrets::{SecretStore, SecretValue};

/// Arguments of `projector secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecretCommand,
}

/// The kinds of secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretKind {
    /// Any keys and values.
    Generic,
}

/// `projector secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a new secret.
    Create {
        /// The kind of secret (`generic`).
        kind: SecretKind,
        /// Its name (lower-case letters, digits, `-`, `_`, `.`).
        name: String,
        /// A key and its value: KEY=VALUE. Repeatable.
        #[arg(long = "literal", value_name = "KEY=VALUE")]
        literals: Vec<String>,
        /// A key and a file holding its value: KEY=PATH. Repeatable.
        #[arg(long = "from-file", value_name = "KEY=PATH")]
        files: Vec<String>,
        /// A key whose value is read from standard input (one line).
        #[arg(long = "from-stdin", value_name = "KEY")]
        stdin: Option<String>,
    },
    /// List secrets: names and keys, never values.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Delete a secret.
    Delete {
        /// Its name.
        name: String,
    },
}

fn split<'a>(pair: &'a str, flag: &str) -> anyhow::Result<(&'a str, &'a str)> {
    pair.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .with_context(|| format!("{flag} takes KEY=..., got a value without a key"))
}

fn insert(
    entries: &mut BTreeMap<String, SecretValue>,
    key: &str,
    value: SecretValue,
) -> anyhow::Result<()> {
    if entries.insert(key.to_owned(), value).is_some() {
        anyhow::bail!("key {key:?} is given twice");
    }
    Ok(())
}

/// Run `projector secret`.
pub fn run(args: &SecretArgs) -> anyhow::Result<()> {
    let store = SecretStore::from_env()?;
    match &args.command {
        SecretCommand::Create {
            kind: SecretKind::Generic,
            name,
            literals,
            files,
            stdin,
        } => {
            let mut entries = BTreeMap::new();
            for pair in literals {
                let (key, value) = split(pair, "--literal")?;
                insert(&mut entries, key, SecretValue::new(value))?;
            }
            for pair in files {
                let (key, path) = split(pair, "--from-file")?;
                let path = PathBuf::from(path);
                let value = std::fs::read_to_string(&path).with_context(|| {
                    format!("--from-file {key}: cannot read {}", path.display())
                })?;
                insert(
                    &mut entries,
                    key,
                    SecretValue::new(value.trim_end_matches(['\r', '\n'])),
                )?;
            }
            if let Some(key) = stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("--from-stdin: cannot read standard input")?;
                insert(
                    &mut entries,
                    key,
                    SecretValue::new(line.trim_end_matches(['\r', '\n'])),
                )?;
            }
            store.create(name, &entries)?;
            println!(
                "secret {name} created with keys {}",
                entries.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        SecretCommand::List { output } => {
            let secrets = store.list()?;
            match output {
                Output::Json => {
                    let list: Vec<_> = secrets
                        .iter()
                        .map(|(name, keys)| serde_json::json!({ "name": name, "keys": keys }))
                        .collect();
                    println!("{}", serde_json::Value::Array(list));
                }
                Output::Text => {
                    for (name, keys) in &secrets {
                        println!("{name}\t{}", keys.join(", "));
                    }
                }
            }
        }
        SecretCommand::Delete { name } => {
            store.delete(name)?;
            println!("secret {name} deleted");
        }
    }
    Ok(())
}
