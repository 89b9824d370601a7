//! Helpers to report panics caught with `catch_unwind`.

use std::any::Any;

/// Extracts the human-readable message of a panic payload (`&str` or `String`), or a
/// placeholder for other payload types.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Installs a process-wide panic hook that reports panics through `tracing` (with location)
/// instead of printing to stderr, so caught panics still appear in the structured log.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = message(info.payload());
        tracing::error!(%location, panic = %msg, "panic");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_str_and_string_payloads() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(message(s.as_ref()), "static");
        let s: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(message(s.as_ref()), "owned");
        let s: Box<dyn Any + Send> = Box::new(42_u8);
        assert_eq!(message(s.as_ref()), "panic with a non-string payload");
    }
}
