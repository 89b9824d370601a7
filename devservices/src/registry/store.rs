//! Registry state and operations, independent of HTTP.
//!
//! Schema ids are global: the same schema (same canonical text and references) registered
//! under several subjects gets one id. Versions are per subject, from 1.

use std::collections::BTreeMap;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use super::api::{Reference, SchemaRequest, SchemaString, SubjectVersion};
use super::avro::{self, Parsed};
use super::error::ApiError;
use super::level::Level;

/// References deeper than this are refused (they cannot be cyclic, this only bounds work).
const MAX_REFERENCE_DEPTH: usize = 32;

/// One registered schema, stored once per id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSchema {
    /// Canonical schema text.
    schema: String,
    /// Key-order-independent identity of `schema`.
    identity: String,
    references: Vec<Reference>,
}

/// Which version of a subject a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    /// `latest` (or `-1`).
    Latest,
    /// An explicit version number (from 1).
    Number(u32),
}

impl VersionSel {
    /// Parses a path segment: `latest`, `-1`, or a version in `[1, 2^31-1]`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text == "latest" || text == "-1" {
            return Ok(Self::Latest);
        }
        match text.parse::<u32>() {
            Ok(n) if n >= 1 && n <= i32::MAX as u32 => Ok(Self::Number(n)),
            _ => Err(ApiError::invalid_version(text)),
        }
    }
}

/// The whole registry state (serialisable for `--data` persistence).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Registry {
    /// Schema id `n` is `schemas[n - 1]`.
    schemas: Vec<StoredSchema>,
    /// Subject → schema ids; version `v` is `ids[v - 1]`.
    subjects: BTreeMap<String, Vec<u32>>,
    /// Global compatibility level.
    #[serde(default)]
    global: Level,
    /// Subject-level overrides.
    #[serde(default)]
    levels: BTreeMap<String, Level>,
}

impl Registry {
    /// An empty registry with the default (`BACKWARD`) global level.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `req` under `subject` (`POST /subjects/{subject}/versions`) and returns its
    /// global id. Registering a schema the subject already has returns the existing id;
    /// a schema failing the subject's compatibility level is refused with 409.
    pub fn register(&mut self, subject: &str, req: &SchemaRequest) -> Result<u32, ApiError> {
        let parsed = self.prepare(req)?;
        if let Some(found) = self.find_in_subject(subject, &parsed, &req.references) {
            return Ok(found.id);
        }
        let level = self.effective_level(subject);
        let against = self.versions_to_check(subject, level);
        let problems = self.incompatibilities_in(subject, &parsed.schema, &against, level)?;
        if !problems.is_empty() {
            return Err(ApiError::incompatible(subject, &problems));
        }
        let id = match self.find_id(&parsed, &req.references) {
            Some(id) => id,
            None => {
                self.schemas.push(StoredSchema {
                    schema: parsed.canonical,
                    identity: parsed.identity,
                    references: req.references.clone(),
                });
                u32::try_from(self.schemas.len())
                    .map_err(|_| ApiError::store("schema id space exhausted"))?
            }
        };
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .push(id);
        Ok(id)
    }

    /// Finds `req` under `subject` (`POST /subjects/{subject}`).
    pub fn lookup(&self, subject: &str, req: &SchemaRequest) -> Result<SubjectVersion, ApiError> {
        if !self.subjects.contains_key(subject) {
            return Err(ApiError::subject_not_found(subject));
        }
        let parsed = self.prepare(req)?;
        self.find_in_subject(subject, &parsed, &req.references)
            .ok_or_else(|| ApiError::schema_not_found("Schema not found"))
    }

    /// The schema with a global id (`GET /schemas/ids/{id}`).
    pub fn schema_by_id(&self, id: u32) -> Result<SchemaString, ApiError> {
        let stored = self
            .stored(id)
            .ok_or_else(|| ApiError::schema_not_found(format!("Schema {id} not found")))?;
        Ok(SchemaString {
            schema: stored.schema.clone(),
            references: stored.references.clone(),
        })
    }

    /// All subjects, sorted (`GET /subjects`).
    pub fn subjects(&self) -> Vec<String> {
        self.subjects.keys().cloned().collect()
    }

    /// Version numbers of a subject (`GET /subjects/{subject}/versions`).
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        let ids = self
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        Ok((1..=ids.len() as u32).collect())
    }

    /// One version of a subject (`GET /subjects/{subject}/versions/{version}`).
    pub fn version(&self, subject: &str, sel: VersionSel) -> Result<SubjectVersion, ApiError> {
        let ids = self
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let version = match sel {
            VersionSel::Latest => ids.len() as u32,
            VersionSel::Number(n) => n,
        };
        let id = version
            .checked_sub(1)
            .and_then(|i| ids.get(i as usize))
            .copied()
            .ok_or_else(|| ApiError::version_not_found(version, subject))?;
        self.subject_version(subject, version, id)
    }

    /// Checks `req` against a subject under its compatibility level
    /// (`POST /compatibility/subjects/{subject}/versions[/{version}]`) and returns the
    /// problems found (empty: compatible).
    ///
    /// With a version, only that version is checked (in the level's direction); without,
    /// the versions the level names (latest, or all for `*_TRANSITIVE`). A subject with no
    /// versions accepts anything when no version is named.
    pub fn check(
        &self,
        subject: &str,
        sel: Option<VersionSel>,
        req: &SchemaRequest,
    ) -> Result<Vec<String>, ApiError> {
        let level = self.effective_level(subject);
        let against = match sel {
            Some(sel) => vec![self.version(subject, sel)?.version],
            None => self.versions_to_check(subject, level),
        };
        let parsed = self.prepare(req)?;
        self.incompatibilities_in(subject, &parsed.schema, &against, level)
    }

    /// The compatibility level of a subject, or the global one when `subject` is `None`.
    ///
    /// A subject without its own level is a 40408 unless `default_to_global`.
    pub fn level(&self, subject: Option<&str>, default_to_global: bool) -> Result<Level, ApiError> {
        match subject {
            None => Ok(self.global),
            Some(s) => match self.levels.get(s) {
                Some(level) => Ok(*level),
                None if default_to_global => Ok(self.global),
                None => Err(ApiError::subject_level_not_configured(s)),
            },
        }
    }

    /// Sets the level of a subject, or the global one when `subject` is `None`.
    pub fn set_level(&mut self, subject: Option<&str>, level: Level) {
        match subject {
            None => self.global = level,
            Some(s) => {
                self.levels.insert(s.to_owned(), level);
            }
        }
    }

    /// Removes a subject's own level (it falls back to the global one) and returns it.
    pub fn delete_level(&mut self, subject: &str) -> Result<Level, ApiError> {
        self.levels
            .remove(subject)
            .ok_or_else(|| ApiError::subject_level_not_configured(subject))
    }

    fn effective_level(&self, subject: &str) -> Level {
        self.levels.get(subject).copied().unwrap_or(self.global)
    }

    /// Versions a new schema must be checked against under `level`.
    fn versions_to_check(&self, subject: &str, level: Level) -> Vec<u32> {
        let count = self.subjects.get(subject).map_or(0, Vec::len) as u32;
        if count == 0 || level == Level::None {
            Vec::new()
        } else if level.is_transitive() {
            (1..=count).collect()
        } else {
            vec![count]
        }
    }

    /// Problems of `new` against versions of `subject` (resolved to schema ids).
    fn incompatibilities_in(
        &self,
        subject: &str,
        new: &Schema,
        versions: &[u32],
        level: Level,
    ) -> Result<Vec<String>, ApiError> {
        let mut against = Vec::with_capacity(versions.len());
        for &v in versions {
            against.push(self.version(subject, VersionSel::Number(v))?);
        }
        self.incompatibilities(new, &against_ids(&against), level)
    }

    /// Problems of `new` against the schemas `(version, id)` under `level`.
    fn incompatibilities(
        &self,
        new: &Schema,
        against: &[(u32, u32)],
        level: Level,
    ) -> Result<Vec<String>, ApiError> {
        let mut problems = Vec::new();
        for &(version, id) in against {
            let old = self.parse_stored(id)?;
            if level.checks_backward()
                && let Err(err) = avro::can_read(&old.schema, new)
            {
                problems.push(format!(
                    "the new schema cannot read data written with version {version}: {err}"
                ));
            }
            if level.checks_forward()
                && let Err(err) = avro::can_read(new, &old.schema)
            {
                problems.push(format!(
                    "version {version} cannot read data written with the new schema: {err}"
                ));
            }
        }
        Ok(problems)
    }

    /// Validates a request's schema type, resolves its references and parses it.
    fn prepare(&self, req: &SchemaRequest) -> Result<Parsed, ApiError> {
        if let Some(kind) = &req.schema_type
            && !kind.eq_ignore_ascii_case("AVRO")
        {
            return Err(ApiError::invalid_schema(format!(
                "Invalid schema: schema type {kind} is not supported by this registry (AVRO only)"
            )));
        }
        let mut dependencies = Vec::new();
        self.collect_dependencies(&req.references, &mut dependencies, 0)?;
        avro::parse(&req.schema, &dependencies).map_err(ApiError::invalid_schema)
    }

    /// Appends the texts of `refs` and their own references, dependencies first.
    fn collect_dependencies(
        &self,
        refs: &[Reference],
        out: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), ApiError> {
        if depth > MAX_REFERENCE_DEPTH {
            return Err(ApiError::invalid_schema(
                "Invalid schema: references nested too deeply",
            ));
        }
        for r in refs {
            let target = self
                .version(&r.subject, VersionSel::Number(r.version))
                .map_err(|err| {
                    ApiError::invalid_schema(format!(
                        "Invalid schema: reference {} to {} version {}: {}",
                        r.name, r.subject, r.version, err.message
                    ))
                })?;
            self.collect_dependencies(&target.references, out, depth + 1)?;
            if !out.contains(&target.schema) {
                out.push(target.schema);
            }
        }
        Ok(())
    }

    fn parse_stored(&self, id: u32) -> Result<Parsed, ApiError> {
        let stored = self
            .stored(id)
            .ok_or_else(|| ApiError::store(format!("dangling schema id {id}")))?;
        let mut dependencies = Vec::new();
        self.collect_dependencies(&stored.references, &mut dependencies, 0)?;
        avro::parse(&stored.schema, &dependencies)
            .map_err(|err| ApiError::store(format!("stored schema {id} no longer parses: {err}")))
    }

    fn stored(&self, id: u32) -> Option<&StoredSchema> {
        id.checked_sub(1).and_then(|i| self.schemas.get(i as usize))
    }

    fn find_id(&self, parsed: &Parsed, refs: &[Reference]) -> Option<u32> {
        self.schemas
            .iter()
            .position(|s| s.identity == parsed.identity && s.references == refs)
            .map(|i| i as u32 + 1)
    }

    fn find_in_subject(
        &self,
        subject: &str,
        parsed: &Parsed,
        refs: &[Reference],
    ) -> Option<SubjectVersion> {
        let id = self.find_id(parsed, refs)?;
        let ids = self.subjects.get(subject)?;
        let index = ids.iter().position(|&i| i == id)?;
        self.subject_version(subject, index as u32 + 1, id).ok()
    }

    fn subject_version(
        &self,
        subject: &str,
        version: u32,
        id: u32,
    ) -> Result<SubjectVersion, ApiError> {
        let stored = self
            .stored(id)
            .ok_or_else(|| ApiError::store(format!("dangling schema id {id}")))?;
        Ok(SubjectVersion {
            subject: subject.to_owned(),
            id,
            version,
            schema: stored.schema.clone(),
            references: stored.references.clone(),
        })
    }
}

fn against_ids(versions: &[SubjectVersion]) -> Vec<(u32, u32)> {
    versions.iter().map(|v| (v.version, v.id)).collect()
}

#[cfg(test)]
mod tests;
