//! `doorstep check`: can this process reach every service it needs, the schema registry
//! included?

use crate::config::Config;
use doorstep_connectors::kafka::{KafkaConfig, Producer};
use doorstep_connectors::redis::{Redis, RedisOptions, RedisTarget};
use doorstep_connectors::routing::{LngLat, OsrmClient, OsrmConfig};
use doorstep_connectors::scylla::{self as cql, ScyllaConfig};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::avro::registry::RegistryError;

/// Probes Kafka, Redis, CQL, OSRM and the schema registry; prints one line per service with
/// what it answered (the brokers Kafka advertises, the Redis and Cassandra/ScyllaDB versions,
/// whether the registry holds this build's schemas).
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let e = &config.endpoints;
    let mut failed = 0;
    let mut report = |name: &str, at: &str, r: Result<String, String>| match &r {
        Ok(what) if what.is_empty() => println!("{name:<10} {at:<40} ok"),
        Ok(what) => println!("{name:<10} {at:<40} ok ({what})"),
        Err(err) => {
            failed += 1;
            println!("{name:<10} {at:<40} DOWN: {err}");
        }
    };
    let kafka = async {
        let p = Producer::new(&KafkaConfig::new(&e.kafka_brokers, "doorstep-check"))
            .map_err(|e| e.to_string())?;
        let brokers = p.brokers().await.map_err(|e| e.to_string())?;
        Ok(format!("brokers {}", brokers.join(", ")))
    };
    report("kafka", &e.kafka_brokers, kafka.await);
    let redis = async {
        let target = RedisTarget::Single(e.redis_url.clone());
        let mut r = Redis::connect(target, RedisOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        r.server_version().await.map_err(|e| e.to_string())
    };
    report("redis", &e.redis_url, redis.await);
    let cql = async {
        let cfg = ScyllaConfig::new(e.cql_nodes.clone());
        let session = cql::connect(&cfg).await.map_err(|e| e.to_string())?;
        let version = cql::release_version(&session)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!("release {version}"))
    };
    report("cql", &e.cql_nodes.join(","), cql.await);
    let osrm = async {
        let c = OsrmClient::new(&OsrmConfig::new(&e.osrm_url)).map_err(|e| e.to_string())?;
        // Any routable pair answers; two points in central Helsinki.
        let (a, b) = (LngLat::new(24.9384, 60.1699), LngLat::new(24.9458, 60.1718));
        c.route(a, b)
            .await
            .map(|_| String::new())
            .map_err(|e| e.to_string())
    };
    report("osrm", &e.osrm_url, osrm.await);
    let registry = async {
        let lookup = crate::assemble::registry_config(config).with_register(false);
        match Catalog::connect(&lookup).await {
            Ok(_) => Ok("this build's schemas are registered".to_owned()),
            Err(RegistryError::NotRegistered { subject }) => Ok(format!(
                "{subject} lacks this build's schema; `doorstep topics ensure` registers it"
            )),
            Err(e) => Err(e.to_string()),
        }
    };
    report("registry", &e.schema_registry_url, registry.await);
    if failed > 0 {
        anyhow::bail!("{failed} service(s) unreachable; start them with `scripts/services up`");
    }
    Ok(())
}
