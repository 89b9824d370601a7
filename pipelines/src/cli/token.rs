//! `doorstep token`: mint a bearer token for an actor, signed with `gateway.auth_secret`
//! (for the demo, the simulator and curl).

use crate::auth::{Claims, TokenKeys, unix_now};
use crate::config::Config;
use anyhow::Context;
use clap::{Args, ValueEnum};
use doorstep_operators::order::validate_id;
use doorstep_schemas::model::ActorKind;
use std::time::Duration;

/// Who the token is for.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Kind of actor.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// The actor's id (customer, restaurant or driver id; `dispatch` for the system).
    #[arg(long)]
    pub id: String,
    /// Restrict the token to this order.
    #[arg(long)]
    pub order: Option<String>,
    /// How long the token is valid: `90s`, `30m`, `1h`, `7d` (a bare number is seconds; at
    /// most gateway.token_max_ttl_s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// What the token may do: `act` (everything its kind may) or `read` (read the order and
    /// follow it live, nothing else).
    #[arg(long, value_enum, default_value_t = ScopeArg::Act)]
    pub scope: ScopeArg,
}

/// Token scopes as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Everything its kind may do.
    Act,
    /// Read only.
    Read,
}

/// Actor kinds as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A customer.
    Customer,
    /// A restaurant.
    Restaurant,
    /// A driver.
    Driver,
    /// Doorstep itself or dispatch.
    System,
}

impl From<Kind> for ActorKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Customer => ActorKind::Customer,
            Kind::Restaurant => ActorKind::Restaurant,
            Kind::Driver => ActorKind::Driver,
            Kind::System => ActorKind::System,
        }
    }
}

/// Prints the token on stdout.
pub fn run(config: &Config, args: &TokenArgs) -> anyhow::Result<()> {
    println!("{}", mint(config, args, unix_now())?);
    Ok(())
}

/// The token `args` ask for, valid from `now` (Unix seconds).
pub fn mint(config: &Config, args: &TokenArgs, now: i64) -> anyhow::Result<String> {
    let key = TokenKeys::from_config(config)?.context(
        "no token secret: set gateway.auth_secret (DOORSTEP_AUTH_SECRET), the one the gateway uses",
    )?;
    validate_id("--id", &args.id)?;
    let ttl = i64::try_from(args.ttl.as_secs()).unwrap_or(i64::MAX);
    anyhow::ensure!(
        ttl <= key.max_ttl_s(),
        "--ttl {}s is longer than gateway.token_max_ttl_s ({}s): the gateway would refuse the token",
        ttl,
        key.max_ttl_s()
    );
    let mut claims = Claims::new(args.kind.into(), &args.id, now.saturating_add(ttl));
    if args.scope == ScopeArg::Read {
        claims = claims.read_only();
    }
    if let Some(order) = &args.order {
        validate_id("--order", order)?;
        claims = claims.for_order(order);
    }
    Ok(key.sign(&claims)?)
}

/// Parses `500ms`, `90s`, `30m`, `1h`, `7d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 90s, 30m, 1h or 7d"))?;
    let unit_secs = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}; use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use std::collections::BTreeMap;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn minted_tokens_verify_with_the_configured_secret() {
        let secret = "0f3a9c1e7b2d4f6a8c0e1b3d5f7a9c2e";
        let env = BTreeMap::from([("DOORSTEP_AUTH_SECRET".to_owned(), secret.to_owned())]);
        let config = Config::from_source(&Source::from_parts(None, env).unwrap()).unwrap();
        let args = TokenArgs {
            kind: Kind::Driver,
            id: "d-7".into(),
            order: Some("o-1".into()),
            ttl: Duration::from_secs(60),
            scope: ScopeArg::Act,
        };
        let token = mint(&config, &args, 1_000).unwrap();
        let claims = crate::auth::TokenKey::new(secret.as_bytes())
            .unwrap()
            .verify(&token, 1_059)
            .unwrap();
        assert_eq!(
            claims,
            Claims::new(ActorKind::Driver, "d-7", 1_060).for_order("o-1")
        );
        let bad = TokenArgs {
            id: "d 7".into(),
            ..args
        };
        assert!(mint(&config, &bad, 1_000).is_err());
        let read = TokenArgs {
            id: "d-7".into(),
            scope: ScopeArg::Read,
            ttl: Duration::from_secs(60),
            order: None,
            kind: Kind::Customer,
        };
        let token = mint(&config, &read, 1_000).unwrap();
        let key = crate::auth::TokenKey::new(secret.as_bytes()).unwrap();
        assert_eq!(
            key.verify(&token, 1_001).unwrap().scope,
            crate::auth::Scope::Read
        );
        let forever = TokenArgs {
            ttl: Duration::from_secs(400 * 86_400),
            ..read
        };
        assert!(
            mint(&config, &forever, 1_000)
                .unwrap_err()
                .to_string()
                .contains("token_max_ttl_s")
        );
        let no_secret =
            Config::from_source(&Source::from_parts(None, BTreeMap::new()).unwrap()).unwrap();
        let args = TokenArgs {
            id: "d-7".into(),
            ..bad
        };
        assert!(
            mint(&no_secret, &args, 1_000)
                .unwrap_err()
                .to_string()
                .contains("DOORSTEP_AUTH_SECRET")
        );
    }
}
