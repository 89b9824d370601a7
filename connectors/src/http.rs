//! Small helpers shared by the HTTP clients (push, payments).

/// The start of a response body (200 characters), for error messages.
pub(crate) fn body_snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn snippets_are_bounded() {
        assert_eq!(super::body_snippet(b"<html>"), "<html>");
        let long = "x".repeat(300);
        assert_eq!(super::body_snippet(long.as_bytes()).chars().count(), 201);
    }
}
