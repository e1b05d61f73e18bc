//! What mi-assess's HTTP clients (Microsoft Graph and Azure Resource Manager) share: the
//! `reqwest` client settings, and retry timing: which statuses are transient, how long to wait
//! when the service gives no hint, and how to read the hints it does give (`Retry-After`,
//! Resource Graph's `x-ms-user-quota-resets-after`). No I/O happens here.

use std::time::Duration;

/// The HTTP client both API clients use: bounded connect and request timeouts, no redirects
/// (a token must never follow one), and mi-assess's user agent.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mi-assess/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// True for statuses worth retrying: throttling (429) and transient server errors.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Exponential backoff with full jitter: a random wait in `[base·2^attempt / 2, base·2^attempt]`.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16));
    let random = fastrand::u32(0..1000);
    ceiling / 2 + ceiling / 2 * random / 1000
}

/// Parses a `Retry-After` value in seconds (Graph and ARM send seconds, sometimes fractional).
/// Negative, non-finite and non-numeric values (including HTTP dates) give `None`.
pub fn parse_seconds(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Parses an `hh:mm:ss` duration (`x-ms-user-quota-resets-after`), seconds may be fractional.
pub fn parse_hms(value: &str) -> Option<Duration> {
    let mut parts = value.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let hours: u64 = h.trim().parse().ok()?;
    let minutes: u64 = m.trim().parse().ok()?;
    let seconds = parse_seconds(s)?;
    Some(Duration::from_secs(hours * 3600 + minutes * 60) + seconds)
}

/// An error and all its sources, joined with `: ` (reqwest hides the useful part in sources).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let base = Duration::from_millis(100);
        for attempt in 0..5 {
            let d = backoff(base, attempt);
            let ceiling = base * (1 << attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_hints_parse() {
        assert_eq!(parse_seconds("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_hms("00:00:03"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_hms("01:02:03.5"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_hms("3"), None);
        assert_eq!(parse_hms("00:00:00:01"), None);
        assert!(is_retryable(429) && is_retryable(503) && !is_retryable(403));
    }
}
