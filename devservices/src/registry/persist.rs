//! Optional persistence of the registry to one JSON file (`--data FILE`).

use std::io::ErrorKind;
use std::path::Path;

use anyhow::Context;

use super::store::Registry;

/// Loads the registry from `path`, or an empty one when the file does not exist yet.
pub fn load(path: &Path) -> anyhow::Result<Registry> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a registry data file", path.display())),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(Registry::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the registry to `path` atomically (temporary file, then rename).
pub fn save(path: &Path, registry: &Registry) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(registry).context("cannot serialise the registry")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::api::SchemaRequest;

    #[test]
    fn save_then_load_keeps_ids() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("doorstep-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("registry.json");
        assert_eq!(load(&path)?.subjects().len(), 0);

        let mut reg = Registry::new();
        let req = SchemaRequest {
            schema: r#""string""#.to_owned(),
            schema_type: None,
            references: vec![],
        };
        let id = reg
            .register("s", &req)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        save(&path, &reg)?;
        let back = load(&path)?;
        assert_eq!(back.subjects(), vec!["s"]);
        assert_eq!(
            back.schema_by_id(id).map(|s| s.schema),
            Ok("\"string\"".to_owned())
        );

        std::fs::write(&path, b"garbage")?;
        assert!(load(&path).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
