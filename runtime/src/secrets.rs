//! Named secrets kept on the local machine, and the references configs use
//! to name them: `NAME/KEY`, never the value.
//!
//! # What it promises
//!
//! - A secret lives in `<home>/secrets/<NAME>.json`, written atomically
//!   (a temporary file renamed over it) with mode 0600 inside a 0700
//!   directory. `<home>` is `$PROJECTOR_HOME`, else
//!   `$XDG_CONFIG_HOME/projector`, else `~/.config/projector`.
//! - A value is a [`SecretValue`]: its `Debug` and `Display` print
//!   `<redacted>`, so it cannot reach a log, an error or `config get` by
//!   accident. [`SecretValue::expose`] is the one way to read it.
//! - A missing secret or key is an error naming the secret and the key,
//!   never the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::files::{FileError, failed, write_atomically};

/// A secret value. Prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call only where it is handed to what needs it
    /// (a client's settings, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A reference to one key of a named secret: `NAME/KEY`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    /// The secret's name.
    pub name: String,
    /// The key within it.
    pub key: String,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.key)
    }
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, SecretError> {
        let invalid = || SecretError::InvalidReference;
        let (name, key) = text.split_once('/').ok_or_else(invalid)?;
        if !is_name(name) || !is_key(key) {
            return Err(invalid());
        }
        Ok(Self {
            name: name.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A secret's name: lower-case letters, digits, `-`, `_` and `.`, at most
/// 128, not starting with `.`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// A key within a secret: letters, digits, `-`, `_` and `.`, at most 128.
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Why a secret operation failed. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A reference is not `NAME/KEY`. The text is not echoed: it may be
    /// a value pasted where its reference belongs.
    #[error(
        "not a secret reference: write NAME/KEY, naming a stored secret (name: lower-case \
         letters, digits, - _ .; key: letters, digits, - _ .), never the value itself"
    )]
    InvalidReference,
    /// A name is not valid.
    #[error("{name:?} is not a valid secret name (lower-case letters, digits, - _ ., at most 128)")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A key is not valid.
    #[error("{key:?} is not a valid secret key (letters, digits, - _ ., at most 128)")]
    InvalidKey {
        /// The key given.
        key: String,
    },
    /// No secret has this name.
    #[error(
        "secret {name:?} does not exist in {home}; create it with \
         `projector secret create generic {name} --literal KEY=VALUE`"
    )]
    Missing {
        /// The name.
        name: String,
        /// The home directory searched.
        home: String,
    },
    /// The secret has no such key.
    #[error("secret {name:?} has no key {key:?} (it has: {keys})")]
    MissingKey {
        /// The secret's name.
        name: String,
        /// The key asked for.
        key: String,
        /// The keys it has.
        keys: String,
    },
    /// The secret exists already.
    #[error(
        "secret {name:?} exists already; delete it first with `projector secret delete {name}`"
    )]
    Exists {
        /// The name.
        name: String,
    },
    /// A secret needs at least one key.
    #[error("a secret needs at least one key")]
    Empty,
    /// No home directory could be found.
    #[error("no projector home: set PROJECTOR_HOME (or XDG_CONFIG_HOME or HOME)")]
    NoHome,
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A stored secret does not parse (its content is not echoed).
    #[error("the secret file {path} is corrupt: not a JSON object of strings")]
    Corrupt {
        /// The file.
        path: PathBuf,
    },
}

/// The projector home directory: `$PROJECTOR_HOME`, else
/// `$XDG_CONFIG_HOME/projector`, else `$HOME/.config/projector`.
pub fn home() -> Result<PathBuf, SecretError> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(home) = non_empty("PROJECTOR_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(config) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(config).join("projector"));
    }
    non_empty("HOME")
        .map(|home| PathBuf::from(home).join(".config").join("projector"))
        .ok_or(SecretError::NoHome)
}

/// The secrets under one projector home.
#[derive(Debug, Clone)]
pub struct SecretStore {
    home: PathBuf,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SecretError {
    let failed = failed(action, path);
    move |source| SecretError::Io(failed(source))
}

impl SecretStore {
    /// The secrets under `home`.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into() }
    }

    /// The secrets under [`home()`].
    pub fn from_env() -> Result<Self, SecretError> {
        home().map(Self::new)
    }

    fn dir(&self) -> PathBuf {
        self.home.join("secrets")
    }

    fn file(&self, name: &str) -> Result<PathBuf, SecretError> {
        if !is_name(name) {
            return Err(SecretError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(self.dir().join(format!("{name}.json")))
    }

    /// Store `entries` as secret `name`. Refused if it exists.
    pub fn create(
        &self,
        name: &str,
        entries: &BTreeMap<String, SecretValue>,
    ) -> Result<(), SecretError> {
        let path = self.file(name)?;
        if entries.is_empty() {
            return Err(SecretError::Empty);
        }
        if let Some(key) = entries.keys().find(|key| !is_key(key)) {
            return Err(SecretError::InvalidKey { key: key.clone() });
        }
        if path.exists() {
            return Err(SecretError::Exists {
                name: name.to_owned(),
            });
        }
        let dir = self.dir();
        create_private_dir(&dir)?;
        let text =
            serde_json::to_vec(entries).map_err(|_| SecretError::Corrupt { path: path.clone() })?;
        Ok(write_atomically(&path, &text, 0o600)?)
    }

    /// Every secret: its name and its keys (never the values).
    pub fn list(&self) -> Result<Vec<(String, Vec<String>)>, SecretError> {
        let dir = self.dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io("list", &dir)(err)),
        };
        let mut secrets = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("list", &dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|file| file.strip_suffix(".json"))
                .filter(|name| is_name(name))
            else {
                continue;
            };
            let keys = self.read(name)?.into_keys().collect();
            secrets.push((name.to_owned(), keys));
        }
        secrets.sort();
        Ok(secrets)
    }

    /// Remove secret `name`.
    pub fn delete(&self, name: &str) -> Result<(), SecretError> {
        let path = self.file(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(self.missing(name)),
            Err(err) => Err(io("delete", &path)(err)),
        }
    }

    /// The value `reference` names.
    pub fn resolve(&self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        let mut entries = self.read(&reference.name)?;
        entries
            .remove(&reference.key)
            .ok_or_else(|| SecretError::MissingKey {
                name: reference.name.clone(),
                key: reference.key.clone(),
                keys: entries.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    fn missing(&self, name: &str) -> SecretError {
        SecretError::Missing {
            name: name.to_owned(),
            home: self.home.display().to_string(),
        }
    }

    fn read(&self, name: &str) -> Result<BTreeMap<String, SecretValue>, SecretError> {
        let path = self.file(name)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.missing(name));
            }
            Err(err) => return Err(io("read", &path)(err)),
        };
        serde_json::from_slice(&bytes).map_err(|_| SecretError::Corrupt { path })
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir))?;
    // An existing directory may have been created with wider permissions.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("restrict", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_home(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("projector-secrets-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v)))
            .collect()
    }

    #[test]
    fn values_never_print() {
        let value = SecretValue::new("hunter2");
        assert_eq!(format!("{value} {value:?}"), "<redacted> <redacted>");
        let map = entries(&[("password", "hunter2")]);
        assert!(!format!("{map:?}").contains("hunter2"));
    }

    #[test]
    fn create_resolve_list_delete() {
        let home = temp_home("crud");
        let store = SecretStore::new(&home);
        store
            .create(
                "kafka",
                &entries(&[("password", "s3cret"), ("user", "key")]),
            )
            .unwrap();
        let reference: SecretRef = "kafka/password".parse().unwrap();
        assert_eq!(store.resolve(&reference).unwrap().expose(), "s3cret");
        assert_eq!(
            store.list().unwrap(),
            vec![(
                "kafka".to_owned(),
                vec!["password".to_owned(), "user".to_owned()]
            )]
        );
        let again = store.create("kafka", &entries(&[("password", "x")]));
        assert!(matches!(again, Err(SecretError::Exists { .. })));
        let missing_key = store.resolve(&"kafka/token".parse().unwrap()).unwrap_err();
        let message = missing_key.to_string();
        assert!(
            message.contains("token") && message.contains("password"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        store.delete("kafka").unwrap();
        assert!(matches!(
            store.resolve(&reference),
            Err(SecretError::Missing { .. })
        ));
        assert!(matches!(
            store.delete("kafka"),
            Err(SecretError::Missing { .. })
        ));
        std::fs::remove_dir_all(&home).ok();
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let home = temp_home("modes");
        let store = SecretStore::new(&home);
        store.create("api", &entries(&[("token", "t")])).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&home.join("secrets")), 0o700);
        assert_eq!(mode(&home.join("secrets/api.json")), 0o600);
        std::fs::remove_dir_all(&home).ok();
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error_and_is_never_overwritten() {
        let home = temp_home("corrupt");
        let store = SecretStore::new(&home);
        store
            .create("kafka", &entries(&[("password", "p")]))
            .unwrap();
        let path = home.join("secrets/kafka.json");
        std::fs::write(&path, "{not json, and maybe a value: hunter2").unwrap();
        let err = store
            .resolve(&"kafka/password".parse().unwrap())
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SecretError::Corrupt { .. }), "{message}");
        assert!(
            message.contains("corrupt") && message.contains("kafka.json"),
            "{message}"
        );
        assert!(
            !message.contains("hunter2"),
            "the content leaked: {message}"
        );
        assert!(matches!(store.list(), Err(SecretError::Corrupt { .. })));
        assert!(matches!(
            store.create("kafka", &entries(&[("password", "new")])),
            Err(SecretError::Exists { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{not json, and maybe a value: hunter2",
            "nothing overwritten"
        );
        std::fs::remove_dir_all(&home).ok();
    }

    #[test]
    fn writes_are_atomic_and_leave_no_temporary_file() {
        let home = temp_home("atomic");
        let store = SecretStore::new(&home);
        store.create("a", &entries(&[("k", "v")])).unwrap();
        // A write that fails (an invalid key) leaves neither a file nor a
        // temporary behind; the existing secret is untouched.
        assert!(store.create("b", &entries(&[("bad key", "v")])).is_err());
        let names: Vec<String> = std::fs::read_dir(home.join("secrets"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json"]);
        assert_eq!(
            store.resolve(&"a/k".parse().unwrap()).unwrap().expose(),
            "v"
        );
        std::fs::remove_dir_all(&home).ok();
    }

    #[test]
    fn references_and_names_are_checked() {
        for bad in [
            "",
            "kafka",
            "/password",
            "kafka/",
            "Kafka/password",
            "../x/y",
            "a/b/c",
        ] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad:?} must be refused");
        }
        let store = SecretStore::new(temp_home("names"));
        assert!(matches!(
            store.create("../escape", &entries(&[("k", "v")])),
            Err(SecretError::InvalidName { .. })
        ));
        assert!(matches!(
            store.create("ok", &entries(&[("bad key", "v")])),
            Err(SecretError::InvalidKey { .. })
        ));
    }
}
