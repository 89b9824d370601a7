//! Retry with exponential backoff and jitter: the one retry loop every client (push,
//! payments, routing) and the pipelines' runtime use, with a bounded mode ([`retry`],
//! [`retry_with`]) and an until-stopped mode ([`retry_until`]) for work that must not be
//! given up. Its decisions and pauses are [`Retries`], which a caller that cannot wrap its
//! attempt in a closure (the runtime's unit of work) drives itself.
//!
//! The caller says how to classify an error, either by implementing [`Retryable`] on its
//! error type ([`retry`]) or with a closure ([`retry_with`]):
//!
//! - [`RetryClass::Permanent`]: stop at once and return the error (a 4xx, a bad request).
//! - [`RetryClass::Retriable`]: try again after a backoff, unless the attempts are used up.
//!   An optional `after` hint (an HTTP `Retry-After`) replaces the computed backoff when it is
//!   longer; a hint longer than [`RetryPolicy::max_retry_after`] ends the loop at once, so a
//!   provider asking for an hour's pause does not hold a pipeline batch for an hour (the
//!   caller still gets the retriable error and can park the work).
//!
//! The backoff of retry `n` (from 1) is `initial × multiplier^(n−1)`, capped at
//! `max_backoff`, with "equal jitter": half of it fixed, the other half uniformly random, so
//! that many clients failing together do not retry in lockstep and no delay collapses to 0.
//!
//! Sleeping uses `tokio::time`, so tests with a paused clock run instantly.

use std::future::Future;
use std::time::Duration;

/// How an error should be treated by the retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryClass {
    /// Retrying cannot help (a refused request): give up now.
    Permanent,
    /// Retrying later can succeed (overload, outage, timeout).
    Retriable {
        /// The server's hint for how long to wait (`Retry-After`), if it gave one.
        after: Option<Duration>,
    },
}

impl RetryClass {
    /// Retriable without a hint.
    pub const RETRIABLE: RetryClass = RetryClass::Retriable { after: None };

    /// Retriable after `after` if given.
    pub const fn retriable_after(after: Option<Duration>) -> Self {
        RetryClass::Retriable { after }
    }

    /// The class of an error that knows whether it is retriable and, maybe, when.
    pub const fn of(retriable: bool, after: Option<Duration>) -> Self {
        if retriable {
            RetryClass::Retriable { after }
        } else {
            RetryClass::Permanent
        }
    }

    /// Whether this class allows another attempt.
    pub const fn is_retriable(self) -> bool {
        matches!(self, RetryClass::Retriable { .. })
    }
}

/// An error that knows whether retrying can help.
pub trait Retryable {
    /// How the retry loop should treat this error.
    fn retry_class(&self) -> RetryClass;
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry). 0 is treated as 1.
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Growth factor of the backoff per retry (≥ 1).
    pub multiplier: f64,
    /// Upper bound of the computed backoff.
    pub max_backoff: Duration,
    /// The longest server-requested pause (`Retry-After`) honoured; a longer one stops the
    /// loop and returns the error.
    pub max_retry_after: Duration,
    /// Whether to randomise half of each backoff (on by default; off for exact tests).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    /// 4 attempts, 200 ms doubling up to 5 s, `Retry-After` honoured up to 30 s, jitter on.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn no_retry() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the total number of attempts (first included).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the first backoff and the cap.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the growth factor (values below 1 are treated as 1).
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets the longest honoured `Retry-After`.
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Turns jitter on or off.
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The backoff before retry `retry` (1 = the first retry), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * multiplier.powi(exponent);
        let cap = self.max_backoff.as_secs_f64();
        Duration::from_secs_f64(if secs.is_finite() { secs.min(cap) } else { cap })
    }

    /// The pause before retry `retry` given the server's hint: the jittered backoff, or the
    /// hint when it is longer. `None` when the hint exceeds [`max_retry_after`](Self::max_retry_after).
    pub fn delay(&self, retry: u32, hint: Option<Duration>) -> Option<Duration> {
        let base = self.backoff(retry);
        let computed = if self.jitter {
            let half = base / 2;
            half + half.mul_f64(fastrand::f64())
        } else {
            base
        };
        match hint {
            Some(h) if h > self.max_retry_after => None,
            Some(h) => Some(h.max(computed)),
            None => Some(computed),
        }
    }
}

/// Runs `op` until it succeeds, fails permanently, or the attempts are used up, classifying
/// errors through [`Retryable`]. `op` receives the attempt number (1-based). Returns the
/// last error on failure.
pub async fn retry<T, E, Op, Fut>(policy: &RetryPolicy, op: Op) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_with(policy, E::retry_class, op).await
}

/// Like [`retry`], classifying errors with `classify`.
pub async fn retry_with<T, E, C, Op, Fut>(policy: &RetryPolicy, classify: C, op: Op) -> Result<T, E>
where
    E: std::fmt::Display,
    C: Fn(&E) -> RetryClass,
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let limit: Limit<std::future::Pending<()>> = Limit::Attempts(policy.max_attempts.max(1));
    match run(policy, limit, classify, op, |_, _, _| {}).await {
        Ok(value) => Ok(value),
        Err(stopped) => Err(stopped.into_error()),
    }
}

/// Why [`retry_until`] gave up.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stopped<E> {
    /// The operation failed permanently (or a `Retry-After` hint was longer than the
    /// policy allows): its error.
    Failed(E),
    /// `stop` completed while waiting to retry: the last error.
    Interrupted(E),
}

impl<E> Stopped<E> {
    /// The last error, however the loop ended.
    pub fn into_error(self) -> E {
        match self {
            Stopped::Failed(e) | Stopped::Interrupted(e) => e,
        }
    }
}

/// Runs `op` until it succeeds or fails permanently, however many attempts that takes, or
/// until `stop` completes during a pause (a shutdown): the mode for work that must not be
/// given up, such as a pipeline's transaction steps. The policy's attempt limit does not
/// apply; its backoff does. `on_retry(attempt, pause, &error)` runs before each pause (to
/// log and count).
pub async fn retry_until<T, E, C, Op, Fut, N, S>(
    policy: &RetryPolicy,
    classify: C,
    op: Op,
    on_retry: N,
    stop: S,
) -> Result<T, Stopped<E>>
where
    E: std::fmt::Display,
    C: Fn(&E) -> RetryClass,
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    N: FnMut(u32, Duration, &E),
    S: Future<Output = ()>,
{
    run(policy, Limit::Until(stop), classify, op, on_retry).await
}

/// When the loop stops asking again.
enum Limit<S> {
    /// After this many attempts in total.
    Attempts(u32),
    /// When this future completes during a pause.
    Until(S),
}

/// The retry loop's decisions and pauses, for a caller that drives the attempts itself (the
/// pipelines' runtime, whose attempt borrows its stage mutably, which a closure cannot hand
/// back in a future). [`retry`], [`retry_with`] and [`retry_until`] drive it the same way:
///
/// ```text
/// let mut retries = Retries::until(&policy, stop);
/// loop {
///     match attempt(retries.attempt()).await {
///         Ok(v) => break Ok(v),
///         Err(e) => retries.after(e, class, on_retry).await?,
///     }
/// }
/// ```
pub struct Retries<'p, S> {
    /// Backoff and limits.
    policy: &'p RetryPolicy,
    /// The most attempts, when bounded.
    max_attempts: Option<u32>,
    /// Ends the loop when it completes during a pause, when not bounded.
    stop: std::pin::Pin<Box<Option<S>>>,
    /// The number of the attempt being made (from 1).
    attempt: u32,
}

impl<'p, S: Future<Output = ()>> Retries<'p, S> {
    /// Retries however many attempts it takes, until `stop` completes during a pause (the
    /// mode of [`retry_until`]).
    pub fn until(policy: &'p RetryPolicy, stop: S) -> Self {
        Self::new(policy, Limit::Until(stop))
    }

    fn new(policy: &'p RetryPolicy, limit: Limit<S>) -> Self {
        let (max_attempts, stop) = match limit {
            Limit::Attempts(n) => (Some(n), None),
            Limit::Until(stop) => (None, Some(stop)),
        };
        Self {
            policy,
            max_attempts,
            stop: Box::pin(stop),
            attempt: 1,
        }
    }

    /// The number of the attempt being made, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After the current attempt failed with `error` of `class`: `Ok` once the policy's pause
    /// is over (try again), else why the loop ends, with `error`. `on_retry(attempt, pause,
    /// &error)` runs before the pause (to log and count).
    pub async fn after<E: std::fmt::Display>(
        &mut self,
        error: E,
        class: RetryClass,
        on_retry: impl FnOnce(u32, Duration, &E),
    ) -> Result<(), Stopped<E>> {
        let attempt = self.attempt;
        let RetryClass::Retriable { after } = class else {
            tracing::debug!(attempt, %error, "permanent failure, not retrying");
            return Err(Stopped::Failed(error));
        };
        if self.max_attempts.is_some_and(|max| attempt >= max) {
            tracing::warn!(attempt, %error, "giving up after the last attempt");
            return Err(Stopped::Failed(error));
        }
        let Some(delay) = self.policy.delay(attempt, after) else {
            tracing::warn!(attempt, ?after, %error, "server asks to wait longer than allowed; giving up");
            return Err(Stopped::Failed(error));
        };
        tracing::debug!(attempt, ?delay, %error, "retrying");
        on_retry(attempt, delay, &error);
        match self.stop.as_mut().as_pin_mut() {
            Some(stop) => {
                tokio::select! {
                    () = stop => return Err(Stopped::Interrupted(error)),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            None => tokio::time::sleep(delay).await,
        }
        self.attempt += 1;
        Ok(())
    }
}

/// The one retry loop behind [`retry`], [`retry_with`] and [`retry_until`].
async fn run<T, E, C, Op, Fut, N, S>(
    policy: &RetryPolicy,
    limit: Limit<S>,
    classify: C,
    mut op: Op,
    mut on_retry: N,
) -> Result<T, Stopped<E>>
where
    E: std::fmt::Display,
    C: Fn(&E) -> RetryClass,
    Op: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    N: FnMut(u32, Duration, &E),
    S: Future<Output = ()>,
{
    let mut retries = Retries::new(policy, limit);
    loop {
        match op(retries.attempt()).await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let class = classify(&error);
                retries.after(error, class, &mut on_retry).await?;
            }
        }
    }
}

/// The usual HTTP rule: 429 (too many requests) and 5xx are worth retrying, other statuses
/// are not.
pub fn retriable_http_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Parses an HTTP `Retry-After` value: delay-seconds or an HTTP date (relative to now).
/// A date in the past gives zero; anything unparsable gives `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `Retry-After` of a response's headers, if present and parsable.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct E(RetryClass);

    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl Retryable for E {
        fn retry_class(&self) -> RetryClass {
            self.0
        }
    }

    fn exact() -> RetryPolicy {
        RetryPolicy::default()
            .with_jitter(false)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(350))
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = exact();
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(350));
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let p = exact().with_jitter(true);
        for _ in 0..200 {
            let d = p.delay(2, None).unwrap();
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_hint_wins_when_longer_and_is_bounded() {
        let p = exact().with_max_retry_after(Duration::from_secs(10));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_millis(1))),
            Some(Duration::from_millis(100))
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(11))), None);
    }

    #[test]
    fn retry_after_values_parse() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<u32, E> = retry(&exact(), |attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt < 3 {
                    Err(E(RetryClass::RETRIABLE))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_stop_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), E> = retry(&exact(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(E(RetryClass::Permanent)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_hints_honoured() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let policy = exact().with_max_attempts(3);
        let result: Result<(), E> = retry(&policy, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(E(RetryClass::retriable_after(Some(Duration::from_secs(2))))) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_closure_can_classify() {
        let calls = AtomicU32::new(0);
        let result: Result<(), String> = retry_with(
            &exact(),
            |e: &String| {
                if e == "busy" {
                    RetryClass::RETRIABLE
                } else {
                    RetryClass::Permanent
                }
            },
            |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Err(if attempt == 1 { "busy" } else { "refused" }.to_owned()) }
            },
        )
        .await;
        assert_eq!(result.unwrap_err(), "refused");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_can_drive_the_loop_itself_with_state_it_borrows_mutably() {
        // What the runtime does: the attempt borrows `state` mutably between pauses.
        let mut state: Vec<u32> = Vec::new();
        let started = tokio::time::Instant::now();
        let policy = exact();
        let mut retries = Retries::until(&policy, std::future::pending());
        let mut pauses = Vec::new();
        let value = loop {
            state.push(retries.attempt());
            if state.len() == 4 {
                break state.len();
            }
            retries
                .after(
                    E(RetryClass::RETRIABLE),
                    RetryClass::RETRIABLE,
                    |a, p, _| {
                        pauses.push((a, p));
                    },
                )
                .await
                .unwrap();
        };
        assert_eq!(value, 4);
        assert_eq!(state, vec![1, 2, 3, 4], "attempts are numbered from 1");
        let ms = |n| Duration::from_millis(n);
        assert_eq!(pauses, vec![(1, ms(100)), (2, ms(200)), (3, ms(350))]);
        assert_eq!(started.elapsed(), ms(650), "it paused the policy's backoff");
        // A permanent error ends it with that error.
        let stopped = retries
            .after(
                E(RetryClass::Permanent),
                RetryClass::Permanent,
                |_, _, _| {},
            )
            .await;
        assert!(matches!(
            stopped,
            Err(Stopped::Failed(E(RetryClass::Permanent)))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn until_stopped_ignores_the_attempt_limit_and_ends_on_stop() {
        let calls = AtomicU32::new(0);
        let retried = AtomicU32::new(0);
        // exact(): 3 attempts; retry_until goes on past them until it succeeds.
        let result: Result<u32, Stopped<E>> = retry_until(
            &exact(),
            E::retry_class,
            |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 6 {
                        Err(E(RetryClass::RETRIABLE))
                    } else {
                        Ok(attempt)
                    }
                }
            },
            |_, _, _| {
                retried.fetch_add(1, Ordering::SeqCst);
            },
            std::future::pending(),
        )
        .await;
        assert_eq!(result.unwrap(), 6);
        assert_eq!(retried.load(Ordering::SeqCst), 5);

        // A stop that completes during a pause ends the loop with the last error.
        let started = tokio::time::Instant::now();
        let result: Result<(), Stopped<E>> = retry_until(
            &exact(),
            E::retry_class,
            |_| async { Err(E(RetryClass::RETRIABLE)) },
            |_, _, _| {},
            tokio::time::sleep(Duration::from_millis(2500)),
        )
        .await;
        assert!(matches!(result, Err(Stopped::Interrupted(_))));
        assert_eq!(started.elapsed(), Duration::from_millis(2500));

        // A permanent failure still ends it at once.
        let result: Result<(), Stopped<E>> = retry_until(
            &exact(),
            E::retry_class,
            |_| async { Err(E(RetryClass::Permanent)) },
            |_, _, _| {},
            std::future::pending(),
        )
        .await;
        assert!(matches!(result, Err(Stopped::Failed(_))));
    }
}
