//! [`Batch`]: many single-slot commands in as few round trips as the deployment allows. On a
//! single node the whole batch is one pipeline (one round trip); on a cluster, where a
//! pipeline must stay within one slot, it is one pipeline per slot, all sent at once over the
//! multiplexed node connections. Replies come back in the order the commands were added.
//!
//! [`Batch::barrier`] orders the commands before it ahead of those after it: on a single node
//! the one pipeline keeps that order on the connection (still one round trip); on a cluster
//! the commands after it are sent once those before it were answered.
//!
//! Scripts run as `EVALSHA`; a node that does not know a script (`NOSCRIPT`: restarted,
//! flushed, never loaded) gets it with `SCRIPT LOAD` and only the commands it refused run
//! again, so a script that is not idempotent never runs twice.

use super::{Error, Redis};
use futures::future::try_join_all;
use redis::cluster_routing::Slot;
use redis::{Cmd, ServerErrorKind, Value};
use std::collections::HashMap;

/// One command of a batch.
struct Entry {
    phase: usize,
    slot: Slot,
    name: &'static str,
    cmd: Cmd,
    script: Option<redis::Script>,
}

/// Commands to run together ([`Redis::run_batch`]). Each touches keys of one slot.
#[derive(Default)]
pub struct Batch {
    entries: Vec<Entry>,
    phase: usize,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("commands", &self.entries.len())
            .finish()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `cmd` (named `name` in errors), whose keys are in `key`'s slot.
    pub fn add(&mut self, key: &str, name: &'static str, cmd: Cmd) -> &mut Self {
        self.entries.push(Entry {
            phase: self.phase,
            slot: Slot::for_key(key),
            name,
            cmd,
            script: None,
        });
        self
    }

    /// Adds a run of `script` with `keys` (all in one slot, the first routes it) and `args`.
    pub fn add_script(
        &mut self,
        script: &redis::Script,
        name: &'static str,
        keys: &[&str],
        args: Cmd,
    ) -> &mut Self {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
        for arg in args.args_iter() {
            if let redis::Arg::Simple(bytes) = arg {
                cmd.arg(bytes);
            }
        }
        self.entries.push(Entry {
            phase: self.phase,
            slot: Slot::for_key(keys.first().copied().unwrap_or_default()),
            name,
            cmd,
            script: Some(script.clone()),
        });
        self
    }

    /// Commands added from now on run after every command added before.
    pub fn barrier(&mut self) -> &mut Self {
        self.phase += 1;
        self
    }

    /// How many commands the batch holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Redis {
    /// Runs every command of `batch` (see [`Batch`]); returns their replies in the order they
    /// were added. The first command the server refused is the error (the others ran).
    pub async fn run_batch(&self, batch: &Batch) -> Result<Vec<Value>, Error> {
        let all: Vec<usize> = (0..batch.entries.len()).collect();
        let mut replies = self.run_entries(batch, &all).await?;
        let missing: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(i, v)| batch.entries[*i].script.is_some() && is_noscript(v))
            .map(|(i, _)| i)
            .collect();
        if !missing.is_empty() {
            let mut loaded: Vec<&str> = Vec::new();
            for &i in &missing {
                if let Some(script) = &batch.entries[i].script
                    && !loaded.contains(&script.get_hash())
                {
                    let mut conn = self.clone();
                    script
                        .load_async(&mut conn)
                        .await
                        .map_err(|source| Error::Command {
                            command: "SCRIPT LOAD",
                            source,
                        })?;
                    loaded.push(script.get_hash());
                }
            }
            let again = self.run_entries(batch, &missing).await?;
            for (i, reply) in missing.into_iter().zip(again) {
                replies[i] = reply;
            }
        }
        for (entry, reply) in batch.entries.iter().zip(&replies) {
            if let Value::ServerError(e) = reply {
                return Err(Error::Command {
                    command: entry.name,
                    source: e.clone().into(),
                });
            }
        }
        Ok(replies)
    }

    /// Runs the entries `which` of `batch`: one pipeline on a single node; on a cluster one
    /// per slot, phase after phase.
    async fn run_entries(&self, batch: &Batch, which: &[usize]) -> Result<Vec<Value>, Error> {
        let mut replies: HashMap<usize, Value> = HashMap::with_capacity(which.len());
        if self.is_cluster() {
            let mut phases: Vec<usize> = which.iter().map(|&i| batch.entries[i].phase).collect();
            phases.sort_unstable();
            phases.dedup();
            for phase in phases {
                let mut by_slot: HashMap<Slot, Vec<usize>> = HashMap::new();
                for &i in which.iter().filter(|&&i| batch.entries[i].phase == phase) {
                    by_slot.entry(batch.entries[i].slot).or_default().push(i);
                }
                let groups: Vec<Vec<usize>> = by_slot.into_values().collect();
                let results = try_join_all(groups.iter().map(|g| self.pipeline(batch, g))).await?;
                for (group, values) in groups.iter().zip(results) {
                    replies.extend(group.iter().copied().zip(values));
                }
            }
        } else {
            let values = self.pipeline(batch, which).await?;
            replies.extend(which.iter().copied().zip(values));
        }
        Ok(which
            .iter()
            .map(|i| replies.remove(i).unwrap_or(Value::Nil))
            .collect())
    }

    /// The entries `group` of `batch` as one pipeline.
    async fn pipeline(&self, batch: &Batch, group: &[usize]) -> Result<Vec<Value>, Error> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for &i in group {
            pipe.add_command(batch.entries[i].cmd.clone());
        }
        let mut conn = self.clone();
        pipe.query_async::<Vec<Value>>(&mut conn)
            .await
            .map_err(|source| Error::Command {
                command: group.first().map_or("pipeline", |&i| batch.entries[i].name),
                source,
            })
    }
}

fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript))
}
