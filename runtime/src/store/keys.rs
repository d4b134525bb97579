//! Key and value encodings of a view's entries, shared by every backend.
//!
//! | key | value |
//! |---|---|
//! | `r/<subject>` | the row: format byte, version (u64 BE), event id length (u32 BE), event id, JSON |
//! | `c/<topic>/<partition>` | the next offset to apply (i64 BE): the lowest over the view's shards |
//! | `k/<topic>/<partition>/<shard>` | a shard's next offset (i64 BE), when above the partition's |
//! | `x/<index>/<value length u32 BE><value><subject>` | empty |
//! | `m/rows` | the number of rows (u64 BE) |
//! | `o/<topic>/<partition>/<offset i64 BE>` | a held dead letter: format byte, then key, value, headers, timestamp, class and message (lengths u32 BE, absent values flagged) |
//! | `d/<topic>/<partition>` | of a dead-letter topic: the offset below which this view's records there are released (i64 BE) |
//! | `q/<subject length u32 BE><subject><sequence u64 BE>` | a record held by `on_error = "quarantine"`: its origin (topic, partition i32 BE, offset i64 BE), then as a held dead letter |
//! | `j/<newest time, sign bit flipped, u64 BE><sequence u64 BE><shard u32 BE>` | the event identities one batch remembered for one shard (records written before the changelog have no shard) (`dedup`): per identity its 16 bytes and the time it counts from (i64 BE, milliseconds); the key's time is the newest, so the records past a window are one range |
//! | `m/changelog-snapshot` | present while the whole view is being logged to its changelog |
//! | `l/<shard>` | how far the view's changelog holds this store's changes of the shard: the offset after the last record of it acknowledged (i64 BE); never logged itself |
//!
//! The changelog (`pipeline::changelog`) logs `r/`, `o/`, `q/` and `j/`
//! entries as they are, each to its shard's partition ([`logged_shard`]),
//! and per shard one positions record under the key `p`
//! ([`encode_positions`]): the shard's own checkpoint on every source
//! partition and the dead-letter positions, from which a restore writes
//! `c/`, `k/` and `d/` again. Index entries and the row count are derived
//! again on restore, never logged.
//!
//! The index key carries the value's length, so values and subjects may
//! contain any byte (`/` included) and a lookup is one prefix scan.

use crate::config::IndexConfig;

use super::{DeadLetter, HeldSummary, Identity, Origin, StoredRow};
use crate::shard::{ShardId, Shards};
use std::collections::BTreeMap;

pub(super) const ROW_PREFIX: &[u8] = b"r/";
pub(super) const CHECKPOINT_PREFIX: &[u8] = b"c/";
pub(super) const INDEX_PREFIX: &[u8] = b"x/";

pub(super) const DEAD_LETTER_PREFIX: &[u8] = b"o/";
pub(super) const DEAD_LETTER_POSITION_PREFIX: &[u8] = b"d/";

pub(super) const QUARANTINE_PREFIX: &[u8] = b"q/";

pub(super) const ROW_COUNT_KEY: &[u8] = b"m/rows";

pub(super) const JOURNAL_PREFIX: &[u8] = b"j/";

pub(super) const LOG_POSITION_PREFIX: &[u8] = b"l/";

/// Present while a snapshot to the changelog is under way.
pub(super) const SNAPSHOT_PENDING_KEY: &[u8] = b"m/changelog-snapshot";
/// When a standby copy last followed its changelog (milliseconds since the
/// epoch): a copy older than the changelog's `delete.retention.ms` may have
/// missed tombstones compaction has since removed.
pub(super) const STANDBY_FOLLOWED_KEY: &[u8] = b"m/standby-followed";

/// The changelog key of a shard's positions record.
pub const POSITIONS_KEY: &[u8] = b"p";

/// A time as bytes that sort as the times do (the sign bit flipped).
fn sortable_time(time: i64) -> [u8; 8] {
    (time.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

/// The key of a batch's identity record of `shard`: its newest time, then
/// `sequence` (unique per record), then the shard.
pub(super) fn journal_key(newest: i64, sequence: u64, shard: ShardId) -> Vec<u8> {
    [
        JOURNAL_PREFIX,
        &sortable_time(newest),
        &sequence.to_be_bytes(),
        &shard.0.to_be_bytes(),
    ]
    .concat()
}

/// The shard of an identity record's key; `None` for a record written
/// before identities were kept per shard.
pub(super) fn journal_shard(key: &[u8]) -> Option<ShardId> {
    let rest = key.strip_prefix(JOURNAL_PREFIX)?;
    let shard: [u8; 4] = rest.get(16..20)?.try_into().ok()?;
    Some(ShardId(u32::from_be_bytes(shard)))
}

/// The local key of how far the changelog holds `shard`'s changes.
pub(super) fn log_position_key(shard: ShardId) -> Vec<u8> {
    [LOG_POSITION_PREFIX, &shard.0.to_be_bytes()].concat()
}

/// The shard of a [`log_position_key`].
pub(super) fn parse_log_position_key(key: &[u8]) -> Result<ShardId, String> {
    let shard: [u8; 4] = key
        .strip_prefix(LOG_POSITION_PREFIX)
        .ok_or("not a changelog position key")?
        .try_into()
        .map_err(|_| "a changelog position key holds a 4-byte shard")?;
    Ok(ShardId(u32::from_be_bytes(shard)))
}

/// One shard's positions, as its changelog record carries them: its own
/// next offset on every source partition, and the dead-letter positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardPositions {
    /// The hash of the module that built the shard's rows.
    pub module: String,
    /// Per source `(topic, partition)`, the shard's next offset.
    pub checkpoints: BTreeMap<(String, i32), i64>,
    /// Per dead-letter `(topic, partition)`, the offset below which every
    /// record of the view there is released.
    pub dead_letters: BTreeMap<(String, i32), i64>,
}

const POSITIONS_FORMAT: u8 = 1;

/// A positions record: format byte, the module hash, then two lists of
/// (topic, partition i32 BE, offset i64 BE), each led by its count (u32
/// BE).
pub fn encode_positions(positions: &ShardPositions) -> Vec<u8> {
    let mut out = vec![POSITIONS_FORMAT];
    put_bytes(&mut out, Some(positions.module.as_bytes()));
    for list in [&positions.checkpoints, &positions.dead_letters] {
        let count = u32::try_from(list.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for ((topic, partition), offset) in list {
            put_bytes(&mut out, Some(topic.as_bytes()));
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
    }
    out
}

/// Reads what [`encode_positions`] wrote.
pub fn decode_positions(value: &[u8]) -> Result<ShardPositions, String> {
    let mut reader = Reader(value);
    match reader.take(1, "format")? {
        [POSITIONS_FORMAT] => {}
        [other] => return Err(format!("unknown positions format {other}")),
        _ => return Err("no format".to_owned()),
    }
    let module = reader.text("module")?;
    let mut lists = [BTreeMap::new(), BTreeMap::new()];
    for list in &mut lists {
        let count = reader.u32("count")?;
        for _ in 0..count {
            let topic = reader.text("topic")?;
            let partition = i32::from_be_bytes(
                reader
                    .take(4, "partition")?
                    .try_into()
                    .map_err(|_| "bad partition")?,
            );
            let offset = decode_offset(reader.take(8, "offset")?)?;
            list.insert((topic, partition), offset);
        }
    }
    if !reader.0.is_empty() {
        return Err("trailing bytes".to_owned());
    }
    let [checkpoints, dead_letters] = lists;
    Ok(ShardPositions {
        module,
        checkpoints,
        dead_letters,
    })
}

/// The shard whose changelog partition logs the entry `key` (with `value`,
/// when it has one): a row's subject's, a held record's own, an identity
/// record's. `None` for what is never logged as it is: index entries, the
/// row count, checkpoints and dead-letter positions (a shard's positions
/// record carries those), changelog positions.
///
/// # Errors
/// When the entry does not decode.
pub(super) fn logged_shard(
    key: &[u8],
    value: Option<&[u8]>,
    shards: Shards,
) -> Result<Option<ShardId>, String> {
    if key.starts_with(ROW_PREFIX) {
        return Ok(Some(shards.of_subject(&subject_of_row_key(key)?)));
    }
    if key.starts_with(JOURNAL_PREFIX) {
        return Ok(Some(journal_shard(key).unwrap_or(ShardId(0))));
    }
    let held = if key.starts_with(DEAD_LETTER_PREFIX) {
        let value = value.ok_or("a held dead letter without its record")?;
        decode_dead_letter(key, value)?
    } else if key.starts_with(QUARANTINE_PREFIX) {
        let value = value.ok_or("a quarantined record without its record")?;
        let (subject, _, record) = decode_quarantined(key, value)?;
        if record.shard.is_none() && !subject.is_empty() {
            return Ok(Some(shards.of_subject(&subject)));
        }
        record
    } else {
        return Ok(None);
    };
    Ok(Some(held.shard.map_or_else(
        || shards.of_unrouted(held.key.as_deref(), held.origin.partition),
        |shard| ShardId(shard.0 % shards.count()),
    )))
}

/// Where the identity records whose newest time is below `time` end.
pub(super) fn journal_bound(time: i64) -> Vec<u8> {
    [JOURNAL_PREFIX, &sortable_time(time)].concat()
}

const IDENTITY_ENTRY: usize = 16 + 8;

/// A batch's identities: per identity its 16 bytes and its time (i64 BE).
pub(super) fn encode_identities(entries: &[(Identity, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * IDENTITY_ENTRY);
    for (identity, time) in entries {
        out.extend_from_slice(&identity.0);
        out.extend_from_slice(&time.to_be_bytes());
    }
    out
}

/// Reads what [`encode_identities`] wrote.
pub(super) fn decode_identities(value: &[u8]) -> Result<Vec<(Identity, i64)>, String> {
    if !value.len().is_multiple_of(IDENTITY_ENTRY) {
        return Err(format!(
            "{} bytes is not a whole number of {IDENTITY_ENTRY}-byte identities",
            value.len()
        ));
    }
    value
        .chunks_exact(IDENTITY_ENTRY)
        .map(|entry| {
            let (identity, time) = entry.split_at(16);
            Ok((
                Identity(identity.try_into().map_err(|_| "bad identity")?),
                i64::from_be_bytes(time.try_into().map_err(|_| "bad time")?),
            ))
        })
        .collect()
}

const ROW_FORMAT: u8 = 1;

pub(super) fn row_key(subject: &str) -> Vec<u8> {
    [ROW_PREFIX, subject.as_bytes()].concat()
}

pub(super) fn subject_of_row_key(key: &[u8]) -> Result<String, String> {
    let subject = key.strip_prefix(ROW_PREFIX).ok_or("not a row key")?;
    String::from_utf8(subject.to_vec()).map_err(|_| "the subject is not UTF-8".to_owned())
}

pub(super) fn checkpoint_key(topic: &str, partition: i32) -> Vec<u8> {
    format!("c/{topic}/{partition}").into_bytes()
}

pub(super) fn parse_checkpoint(key: &[u8], value: &[u8]) -> Result<(String, i32, i64), String> {
    let (topic, partition) = parse_topic_partition(CHECKPOINT_PREFIX, key)?;
    Ok((topic, partition, decode_offset(value)?))
}

pub(super) fn shard_checkpoints_prefix(topic: &str, partition: i32) -> Vec<u8> {
    format!("k/{topic}/{partition}/").into_bytes()
}

pub(super) fn shard_checkpoint_key(topic: &str, partition: i32, shard: ShardId) -> Vec<u8> {
    format!("k/{topic}/{partition}/{shard}").into_bytes()
}

/// The shard and offset of a shard checkpoint under `prefix`
/// ([`shard_checkpoints_prefix`]).
pub(super) fn parse_shard_checkpoint(
    prefix: &[u8],
    key: &[u8],
    value: &[u8],
) -> Result<(ShardId, i64), String> {
    let shard = std::str::from_utf8(key.strip_prefix(prefix).ok_or("not a shard checkpoint")?)
        .map_err(|_| "the key is not UTF-8")?
        .parse()
        .map_err(|_| "the shard is not a number")?;
    Ok((ShardId(shard), decode_offset(value)?))
}

/// The topic and partition of a `<prefix><topic>/<partition>` key.
fn parse_topic_partition(prefix: &[u8], key: &[u8]) -> Result<(String, i32), String> {
    let text = std::str::from_utf8(key.strip_prefix(prefix).ok_or("not a key of this kind")?)
        .map_err(|_| "the key is not UTF-8")?;
    let (topic, partition) = text.rsplit_once('/').ok_or("no partition in the key")?;
    let partition = partition
        .parse()
        .map_err(|_| "the partition is not a number")?;
    Ok((topic.to_owned(), partition))
}

pub(super) fn dead_letter_key(origin: &Origin) -> Vec<u8> {
    let mut key = format!("o/{}/{}/", origin.topic, origin.partition).into_bytes();
    key.extend_from_slice(&origin.offset.to_be_bytes());
    key
}

pub(super) fn dead_letter_position_key(topic: &str, partition: i32) -> Vec<u8> {
    format!("d/{topic}/{partition}").into_bytes()
}

pub(super) fn parse_dead_letter_position(
    key: &[u8],
    value: &[u8],
) -> Result<((String, i32), i64), String> {
    Ok((
        parse_topic_partition(DEAD_LETTER_POSITION_PREFIX, key)?,
        decode_offset(value)?,
    ))
}

/// A held record written before records kept their shard.
const DEAD_LETTER_FORMAT_UNSHARDED: u8 = 1;
/// A held record with its shard (u32 BE) after the format byte.
const DEAD_LETTER_FORMAT: u8 = 2;

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

/// Reads what [`put_bytes`] wrote.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| format!("truncated {what}"))?;
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_be_bytes(
            bytes.try_into().map_err(|_| format!("bad {what}"))?,
        ))
    }

    fn bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>, String> {
        match self.take(1, what)? {
            [0] => Ok(None),
            [1] => {
                let len = self.u32(what)?;
                let len = usize::try_from(len).map_err(|_| format!("{what} too long"))?;
                self.take(len, what).map(Some)
            }
            _ => Err(format!("bad presence flag of {what}")),
        }
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        let bytes = self.bytes(what)?.ok_or_else(|| format!("no {what}"))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

pub(super) fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    let mut out = match letter.shard {
        Some(shard) => {
            let mut out = vec![DEAD_LETTER_FORMAT];
            out.extend_from_slice(&shard.0.to_be_bytes());
            out
        }
        None => vec![DEAD_LETTER_FORMAT_UNSHARDED],
    };
    put_bytes(&mut out, letter.key.as_deref());
    put_bytes(&mut out, letter.value.as_deref());
    let count = u32::try_from(letter.headers.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (name, value) in &letter.headers {
        put_bytes(&mut out, Some(name.as_bytes()));
        put_bytes(&mut out, value.as_deref());
    }
    let timestamp = letter.timestamp_ms.map(i64::to_be_bytes);
    put_bytes(&mut out, timestamp.as_ref().map(<[u8; 8]>::as_slice));
    put_bytes(&mut out, Some(letter.class.as_bytes()));
    put_bytes(&mut out, Some(letter.message.as_bytes()));
    out
}

pub(super) fn decode_dead_letter(key: &[u8], value: &[u8]) -> Result<DeadLetter, String> {
    decode_held_record(decode_dead_letter_key(key)?, &mut Reader(value))
}

/// The origin a dead letter's key names.
pub(super) fn decode_dead_letter_key(key: &[u8]) -> Result<Origin, String> {
    let rest = key
        .strip_prefix(DEAD_LETTER_PREFIX)
        .ok_or("not a dead-letter key")?;
    let (head, offset) = rest
        .split_at_checked(rest.len().saturating_sub(8))
        .ok_or("no offset in the key")?;
    let offset = decode_offset(offset)?;
    let head = std::str::from_utf8(head).map_err(|_| "the key is not UTF-8")?;
    let (topic, partition) = head
        .strip_suffix('/')
        .and_then(|head| head.rsplit_once('/'))
        .ok_or("no partition in the key")?;
    let partition = partition
        .parse()
        .map_err(|_| "the partition is not a number")?;
    Ok(Origin {
        topic: topic.to_owned(),
        partition,
        offset,
    })
}

/// The key prefix of `subject`'s quarantined records.
pub(super) fn quarantine_prefix(subject: &str) -> Vec<u8> {
    let len = u32::try_from(subject.len()).unwrap_or(u32::MAX);
    [QUARANTINE_PREFIX, &len.to_be_bytes(), subject.as_bytes()].concat()
}

pub(super) fn quarantine_key(subject: &str, sequence: u64) -> Vec<u8> {
    let mut key = quarantine_prefix(subject);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

pub(super) fn encode_quarantined(record: &DeadLetter) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, Some(record.origin.topic.as_bytes()));
    out.extend_from_slice(&record.origin.partition.to_be_bytes());
    out.extend_from_slice(&record.origin.offset.to_be_bytes());
    out.extend_from_slice(&encode_dead_letter(record));
    out
}

/// The subject, sequence and record of a quarantine entry.
pub(super) fn decode_quarantined(
    key: &[u8],
    value: &[u8],
) -> Result<(String, u64, DeadLetter), String> {
    let (subject, sequence) = decode_quarantine_key(key)?;
    let mut reader = Reader(value);
    let origin = decode_quarantined_origin(&mut reader)?;
    let record = decode_held_record(origin, &mut reader)?;
    Ok((subject, sequence, record))
}

/// A quarantine entry without its record's body (key, value, headers):
/// what a listing needs.
pub(super) fn decode_quarantined_summary(key: &[u8], value: &[u8]) -> Result<HeldSummary, String> {
    let (subject, sequence) = decode_quarantine_key(key)?;
    let mut reader = Reader(value);
    let origin = decode_quarantined_origin(&mut reader)?;
    held_record_shard(&mut reader)?;
    reader.bytes("key")?;
    reader.bytes("value")?;
    let count = reader.u32("header count")?;
    for _ in 0..count {
        reader.bytes("header name")?;
        reader.bytes("header value")?;
    }
    reader.bytes("timestamp")?;
    let class = reader.text("class")?;
    let message = reader.text("message")?;
    Ok(HeldSummary {
        subject,
        sequence,
        origin,
        class,
        message,
    })
}

fn decode_quarantined_origin(reader: &mut Reader<'_>) -> Result<Origin, String> {
    let topic = reader.text("topic")?;
    let partition = i32::from_be_bytes(
        reader
            .take(4, "partition")?
            .try_into()
            .map_err(|_| "bad partition".to_owned())?,
    );
    let offset = decode_offset(reader.take(8, "offset")?)?;
    Ok(Origin {
        topic,
        partition,
        offset,
    })
}

/// The subject and sequence of a quarantine key.
fn decode_quarantine_key(key: &[u8]) -> Result<(String, u64), String> {
    let mut key_reader = Reader(
        key.strip_prefix(QUARANTINE_PREFIX)
            .ok_or("not a quarantine key")?,
    );
    let len = usize::try_from(key_reader.u32("subject length")?)
        .map_err(|_| "subject too long".to_owned())?;
    let subject = String::from_utf8(key_reader.take(len, "subject")?.to_vec())
        .map_err(|_| "the subject is not UTF-8".to_owned())?;
    let sequence = u64::from_be_bytes(
        key_reader
            .take(8, "sequence")?
            .try_into()
            .map_err(|_| "bad sequence".to_owned())?,
    );
    if !key_reader.0.is_empty() {
        return Err("trailing bytes in the key".to_owned());
    }
    Ok((subject, sequence))
}

/// A held record's format byte and, from format 2 on, its shard.
fn held_record_shard(reader: &mut Reader<'_>) -> Result<Option<ShardId>, String> {
    match reader.take(1, "format")? {
        [DEAD_LETTER_FORMAT_UNSHARDED] => Ok(None),
        [DEAD_LETTER_FORMAT] => {
            let shard = reader.take(4, "shard")?;
            Ok(Some(ShardId(u32::from_be_bytes(
                shard.try_into().map_err(|_| "bad shard")?,
            ))))
        }
        [other] => Err(format!("unknown dead-letter format {other}")),
        _ => Err("no format".to_owned()),
    }
}

/// A record held for later (a dead letter, a quarantined event) at
/// `origin`, from what [`encode_dead_letter`] wrote.
fn decode_held_record(origin: Origin, reader: &mut Reader<'_>) -> Result<DeadLetter, String> {
    let shard = held_record_shard(reader)?;
    let key_bytes = reader.bytes("key")?.map(<[u8]>::to_vec);
    let value_bytes = reader.bytes("value")?.map(<[u8]>::to_vec);
    let count = reader.u32("header count")?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = reader.text("header name")?;
        headers.push((name, reader.bytes("header value")?.map(<[u8]>::to_vec)));
    }
    let timestamp_ms = reader.bytes("timestamp")?.map(decode_offset).transpose()?;
    let class = reader.text("class")?;
    let message = reader.text("message")?;
    if !reader.0.is_empty() {
        return Err("trailing bytes".to_owned());
    }
    Ok(DeadLetter {
        origin,
        shard,
        key: key_bytes,
        value: value_bytes,
        headers,
        timestamp_ms,
        class,
        message,
    })
}

pub(super) fn encode_offset(offset: i64) -> [u8; 8] {
    offset.to_be_bytes()
}

pub(super) fn decode_offset(value: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("an offset is 8 bytes, found {}", value.len()))?;
    Ok(i64::from_be_bytes(bytes))
}

pub(super) fn decode_count(value: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| format!("a count is 8 bytes, found {}", value.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) fn index_prefix(index: &str, value: &str) -> Vec<u8> {
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    [
        INDEX_PREFIX,
        index.as_bytes(),
        b"/",
        &len.to_be_bytes(),
        value.as_bytes(),
    ]
    .concat()
}

pub(super) fn index_key(index: &str, value: &str, subject: &str) -> Vec<u8> {
    [index_prefix(index, value).as_slice(), subject.as_bytes()].concat()
}

pub(super) fn encode_row(row: &StoredRow) -> Vec<u8> {
    let id_len = u32::try_from(row.last_event_id.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(1 + 8 + 4 + row.last_event_id.len() + row.json.len());
    bytes.push(ROW_FORMAT);
    bytes.extend_from_slice(&row.version.to_be_bytes());
    bytes.extend_from_slice(&id_len.to_be_bytes());
    bytes.extend_from_slice(row.last_event_id.as_bytes());
    bytes.extend_from_slice(row.json.as_bytes());
    bytes
}

pub(super) fn decode_row(bytes: &[u8]) -> Result<StoredRow, String> {
    let (&format, rest) = bytes.split_first().ok_or("empty row entry")?;
    if format != ROW_FORMAT {
        return Err(format!("unknown row format {format}"));
    }
    let (version, rest) = rest.split_at_checked(8).ok_or("truncated version")?;
    let (id_len, rest) = rest
        .split_at_checked(4)
        .ok_or("truncated event id length")?;
    let id_len = u32::from_be_bytes(id_len.try_into().map_err(|_| "bad event id length")?);
    let (id, json) = rest
        .split_at_checked(usize::try_from(id_len).map_err(|_| "event id too long")?)
        .ok_or("truncated event id")?;
    Ok(StoredRow {
        version: u64::from_be_bytes(version.try_into().map_err(|_| "bad version")?),
        last_event_id: String::from_utf8(id.to_vec()).map_err(|_| "the event id is not UTF-8")?,
        json: String::from_utf8(json.to_vec()).map_err(|_| "the row is not UTF-8")?,
    })
}

/// The index entries of `json`: for each index whose pointer finds a
/// string, number or boolean, `(index name, value as text)`. Strings index
/// by their text, numbers and booleans by their JSON text; other values
/// (absent, null, objects, arrays) are not indexed.
pub(super) fn index_values(json: &str, indexes: &[IndexConfig]) -> Vec<(String, String)> {
    if indexes.is_empty() {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    indexes
        .iter()
        .filter_map(|index| {
            let text = match value.pointer(&index.pointer)? {
                serde_json::Value::String(text) => text.clone(),
                number @ serde_json::Value::Number(_) => number.to_string(),
                serde_json::Value::Bool(flag) => flag.to_string(),
                _ => return None,
            };
            Some((index.name.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_corruption_is_reported() {
        let row = StoredRow {
            json: r#"{"a":"é"}"#.to_owned(),
            version: 7,
            last_event_id: "evt/9".to_owned(),
        };
        let bytes = encode_row(&row);
        assert_eq!(decode_row(&bytes).unwrap(), row);
        for cut in 0..14 {
            assert!(
                decode_row(&bytes[..cut]).is_err(),
                "a row cut at {cut} must not decode"
            );
        }
        let mut wrong = bytes;
        wrong[0] = 9;
        assert!(decode_row(&wrong).unwrap_err().contains("format"));
    }

    #[test]
    fn dead_letters_round_trip_and_corruption_is_reported() {
        let letter = DeadLetter {
            shard: Some(ShardId(3)),
            origin: Origin {
                topic: "orders.eu".to_owned(),
                partition: 3,
                // An offset whose bytes hold a '/'.
                offset: i64::from(b'/') << 8,
            },
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![
                ("ce_id".to_owned(), Some(b"1".to_vec())),
                ("empty".to_owned(), None),
            ],
            timestamp_ms: Some(1_700_000_000_000),
            class: "invalid-event".to_owned(),
            message: "no id".to_owned(),
        };
        let key = dead_letter_key(&letter.origin);
        let bytes = encode_dead_letter(&letter);
        assert_eq!(decode_dead_letter(&key, &bytes).unwrap(), letter);
        for cut in 0..bytes.len() {
            assert!(
                decode_dead_letter(&key, &bytes[..cut]).is_err(),
                "a dead letter cut at {cut} must not decode"
            );
        }
        // The same record quarantined under a subject.
        let key = quarantine_key("a/b", 7);
        assert!(key.starts_with(&quarantine_prefix("a/b")));
        assert!(!key.starts_with(&quarantine_prefix("a")));
        let bytes = encode_quarantined(&letter);
        assert_eq!(
            decode_quarantined(&key, &bytes).unwrap(),
            ("a/b".to_owned(), 7, letter)
        );
        for cut in 0..bytes.len() {
            assert!(
                decode_quarantined(&key, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(decode_quarantined(&key[..key.len() - 1], &bytes).is_err());
        // Sequences order a subject's records.
        assert!(quarantine_key("s", 2) < quarantine_key("s", 10));
        let position = dead_letter_position_key("dlq", 2);
        assert_eq!(
            parse_dead_letter_position(&position, &encode_offset(7)).unwrap(),
            (("dlq".to_owned(), 2), 7)
        );
    }

    #[test]
    fn checkpoints_round_trip() {
        let key = checkpoint_key("orders.eu", 12);
        assert_eq!(
            parse_checkpoint(&key, &encode_offset(99)).unwrap(),
            ("orders.eu".to_owned(), 12, 99)
        );
        assert!(parse_checkpoint(&key, b"123").is_err());
    }

    #[test]
    fn index_keys_do_not_confuse_values_and_subjects() {
        // Value "a/b" + subject "c" must not collide with value "a" + subject "b/c".
        assert_ne!(index_key("i", "a/b", "c"), index_key("i", "a", "b/c"));
        assert!(index_key("i", "a", "s").starts_with(&index_prefix("i", "a")));
        assert!(!index_key("i", "ab", "s").starts_with(&index_prefix("i", "a")));
    }

    #[test]
    fn index_values_take_scalars_only() {
        let indexes = [
            IndexConfig {
                name: "email".into(),
                pointer: "/email".into(),
            },
            IndexConfig {
                name: "age".into(),
                pointer: "/age".into(),
            },
            IndexConfig {
                name: "tags".into(),
                pointer: "/tags".into(),
            },
            IndexConfig {
                name: "city".into(),
                pointer: "/address/city".into(),
            },
        ];
        let values = index_values(
            r#"{"email":"a@x","age":42,"tags":["t"],"address":{"city":"Oslo"}}"#,
            &indexes,
        );
        assert_eq!(
            values,
            vec![
                ("email".to_owned(), "a@x".to_owned()),
                ("age".to_owned(), "42".to_owned()),
                ("city".to_owned(), "Oslo".to_owned()),
            ]
        );
    }
}
