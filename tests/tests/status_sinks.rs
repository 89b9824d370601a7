//! The status pipeline's sinks against the real services (`scripts/services up`) and the
//! local fakes of the third-party APIs:
//!
//! - the order store on the CQL server: orders driven through the real state machine
//!   round-trip field for field, re-saves are idempotent, loads racing saves see one save,
//!   the active-order index follows the status per partition (and heals after a crash),
//!   timers, ETA and prep-time observations; a batch's index and timer writes and its
//!   prep-time observations cost one request per partition (the driver's counters);
//! - driver state in Redis (single node and cluster): occupy, release, stale release;
//! - command outcomes in Redis (single node and cluster): recorded with a TTL, announced on
//!   the order's command channel, read back one at a time and many orders at once;
//! - the push client against the fake FCM, with the Redis sent-ledger;
//! - the refund client against the fake Stripe, with its idempotency semantics.
//!
//! Every test uses its own keyspace or key prefix. A service that is down fails the test
//! with a message naming it; nothing is skipped.

use anyhow::{Context, Result, ensure};
use doorstep_connectors::config::Service;
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::order_store::{OrderStore, PartitionWrite, PrepTimeObservation};
use doorstep_connectors::payments::{self, PaymentsClient, PaymentsConfig, RefundStatus};
use doorstep_connectors::push::{self, Delivery, PushClient, PushConfig, PushMessage, SentLedger};
use doorstep_connectors::redis::{Redis, RedisOptions, RedisTarget};
use doorstep_connectors::retry::RetryPolicy;
use doorstep_connectors::scylla::{self, Replication, ScyllaConfig};
use doorstep_devservices::fakes::fcm::{FakeFcm, FcmFault};
use doorstep_devservices::fakes::stripe::{FakeStripe, StripeFault};
use doorstep_operators::order::{Decision, OrderPolicy, OrderState, decide};
use doorstep_schemas::events::{Notification, OrderCommand, OrderEvent, PlaceOrder, RecipientKind};
use doorstep_schemas::model::{
    Actor, DriverId, DriverStatus, EventId, GeoPoint, OrderId, OrderItem, OrderStatus,
    RestaurantId, StatusHistoryEntry, Timestamp,
};
use doorstep_tests::{OrServiceDown, endpoints, unique, unique_ident};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Short connect timeouts: a service that is down must fail the test in seconds.
const CONNECT: Duration = Duration::from_secs(3);
const T0: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------- helpers

async fn store() -> Result<OrderStore> {
    let e = endpoints();
    let cfg = ScyllaConfig::new(e.cql_nodes.clone()).with_connect_timeout(CONNECT);
    let session = scylla::connect(&cfg)
        .await
        .or_service_down(Service::Cql, &e)?;
    let ks = unique_ident("sinks");
    scylla::create_keyspace(&session, &ks, &Replication::Simple(1)).await?;
    OrderStore::ensure_schema(&session, &ks).await?;
    OrderStore::ensure_schema(&session, &ks)
        .await
        .context("ensure_schema must be idempotent")?;
    Ok(OrderStore::new(Arc::new(session), &ks).await?)
}

async fn redis_single() -> Result<Redis> {
    let e = endpoints();
    let options = RedisOptions::default().with_connect_timeout(CONNECT);
    Ok(
        Redis::connect(RedisTarget::Single(e.redis_url.clone()), options)
            .await
            .or_service_down(Service::Redis, &e)?,
    )
}

async fn redis_cluster() -> Result<Redis> {
    let e = endpoints();
    let options = RedisOptions::default().with_connect_timeout(CONNECT);
    let redis = Redis::connect(RedisTarget::Cluster(e.redis_cluster_urls.clone()), options)
        .await
        .or_service_down(Service::RedisCluster, &e)?;
    ensure!(redis.is_cluster());
    Ok(redis)
}

/// Drives one order through the real state machine, keeping what each accepted event
/// appended (what the pipeline hands to `OrderStore::save`).
struct Driver {
    order_id: OrderId,
    state: Option<OrderState>,
    n: u32,
    at: i64,
}

impl Driver {
    fn new() -> Self {
        Self {
            order_id: OrderId::new(unique("order")),
            state: None,
            n: 0,
            at: T0,
        }
    }

    fn customer(&self) -> Actor {
        Actor::customer(format!("c-{}", self.order_id))
    }

    fn restaurant(&self) -> Actor {
        Actor::restaurant("r-1")
    }

    /// Applies `command` by `actor`; returns the entries it appended.
    fn apply(&mut self, actor: Actor, command: OrderCommand) -> Result<Vec<StatusHistoryEntry>> {
        self.n += 1;
        self.at += 60_000;
        let event = OrderEvent {
            event_id: EventId::new(format!("{}-e{}", self.order_id, self.n)),
            order_id: self.order_id.clone(),
            occurred_at: Timestamp::from_millis(self.at),
            actor,
            command,
        };
        match decide(self.state.as_ref(), &event, &OrderPolicy::default()) {
            Decision::Accepted(a) => {
                self.state = Some(a.state);
                Ok(a.entries)
            }
            other => anyhow::bail!("event {event:?} was not accepted: {other:?}"),
        }
    }

    fn place(&mut self) -> Result<Vec<StatusHistoryEntry>> {
        let customer = self.customer();
        self.apply(
            customer.clone(),
            OrderCommand::Place(PlaceOrder {
                customer_id: customer.id.as_str().into(),
                restaurant_id: RestaurantId::from("r-1"),
                items: vec![
                    OrderItem {
                        item_id: "pizza".into(),
                        name: "Pizza \"Margherita\" ★".into(),
                        quantity: 1,
                        unit_price_cents: 1_400,
                    },
                    OrderItem {
                        item_id: "cola".into(),
                        name: "Cola".into(),
                        quantity: 2,
                        unit_price_cents: 300,
                    },
                ],
                total_cents: 2_000,
                restaurant_location: GeoPoint {
                    lat: 60.169_912_345_678,
                    lng: 24.938_456_789_012,
                },
                delivery_location: GeoPoint {
                    lat: 60.171_8,
                    lng: 24.945_8,
                },
            }),
        )
    }

    fn to(&mut self, actor: Actor, to: OrderStatus) -> Result<Vec<StatusHistoryEntry>> {
        self.apply(actor, OrderCommand::Transition { to })
    }

    fn state(&self) -> Result<&OrderState> {
        self.state.as_ref().context("no order placed")
    }
}

// ---------------------------------------------------------------- order store

/// One step of an order's life: applies an event, returns the entries it appended.
type Step = dyn Fn(&mut Driver) -> Result<Vec<StatusHistoryEntry>>;
/// A [`Step`] that captures nothing.
type StepFn = fn(&mut Driver) -> Result<Vec<StatusHistoryEntry>>;

#[tokio::test]
async fn order_store_round_trips_an_order_through_every_state() -> Result<()> {
    let store = store().await?;
    let mut d = Driver::new();
    let partition = 3;
    ensure!(store.load(&d.order_id).await?.is_none());

    let driver = Actor::driver("d-7");
    let steps: Vec<Box<Step>> = vec![
        Box::new(|d| d.place()),
        Box::new(|d| {
            d.apply(
                Actor::system("dispatch"),
                OrderCommand::AssignDriver {
                    driver_id: DriverId::from("d-7"),
                },
            )
        }),
        Box::new(|d| d.to(d.restaurant(), OrderStatus::Confirmed)),
        Box::new(|d| d.to(d.restaurant(), OrderStatus::Preparing)),
        Box::new(|d| d.to(d.restaurant(), OrderStatus::ReadyForPickup)),
        // PICKED_UP and EN_ROUTE in one event: two entries in one save.
        Box::new(move |d| d.to(driver.clone(), OrderStatus::EnRoute)),
        Box::new(|d| d.to(Actor::driver("d-7"), OrderStatus::Delivered)),
    ];
    for (i, step) in steps.iter().enumerate() {
        let entries = step(&mut d)?;
        let state = d.state()?.clone();
        store.save(&state, &entries, partition).await?;
        let loaded = store
            .load(&d.order_id)
            .await?
            .context("saved order not found")?;
        ensure!(
            loaded == state,
            "step {i}: loaded {loaded:#?}\n!= saved {state:#?}"
        );
        let active = store.active_order_ids(partition).await?;
        ensure!(
            active.contains(&d.order_id) == state.order.status.is_active(),
            "step {i}: status {} but active index {active:?}",
            state.order.status
        );
    }
    let last = d.state()?;
    ensure!(last.order.status == OrderStatus::Delivered);
    ensure!(last.order.preparing_since.is_some());
    ensure!(last.history.len() == 8, "{:#?}", last.history);
    Ok(())
}

#[tokio::test]
async fn order_store_round_trips_a_cancellation() -> Result<()> {
    let store = store().await?;
    let mut d = Driver::new();
    let mut all = d.place()?;
    all.extend(d.to(d.restaurant(), OrderStatus::Confirmed)?);
    all.extend(d.to(d.restaurant(), OrderStatus::Preparing)?);
    let customer = d.customer();
    all.extend(d.apply(
        customer,
        OrderCommand::Cancel {
            reason: "changed my mind: too slow".into(),
        },
    )?);
    let state = d.state()?.clone();
    let c = state.order.cancellation.clone().context("not cancelled")?;
    ensure!(
        c.refund_cents == 1_500,
        "fee applies after PREPARING: {c:?}"
    );
    // All entries in one save (a batch that placed and cancelled the order).
    store.save(&state, &all, 0).await?;
    let loaded = store.load(&d.order_id).await?.context("not found")?;
    ensure!(loaded == state, "{loaded:#?}\n!= {state:#?}");
    ensure!(store.active_order_ids(0).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn order_store_saves_are_idempotent() -> Result<()> {
    let store = store().await?;
    let mut d = Driver::new();
    let placed = d.place()?;
    store.save(d.state()?, &placed, 1).await?;
    let confirmed = d.to(d.restaurant(), OrderStatus::Confirmed)?;
    let state = d.state()?.clone();
    // The same call three times, and once more with the whole history.
    for _ in 0..3 {
        store.save(&state, &confirmed, 1).await?;
    }
    store.save(&state, &state.history, 1).await?;
    let loaded = store.load(&d.order_id).await?.context("not found")?;
    ensure!(loaded == state, "{loaded:#?}\n!= {state:#?}");
    ensure!(loaded.history.len() == 2);
    ensure!(store.active_order_ids(1).await? == vec![d.order_id.clone()]);
    Ok(())
}

#[tokio::test]
async fn active_orders_are_per_partition_and_leave_when_final() -> Result<()> {
    let store = store().await?;
    let mut orders = Vec::new();
    for partition in [0, 0, 1] {
        let mut d = Driver::new();
        let e = d.place()?;
        store.save(d.state()?, &e, partition).await?;
        orders.push((d, partition));
    }
    let ids = |p: i32| -> Vec<OrderId> {
        let mut v: Vec<OrderId> = orders
            .iter()
            .filter(|(_, q)| *q == p)
            .map(|(d, _)| d.order_id.clone())
            .collect();
        v.sort();
        v
    };
    let p0 = store.active_orders(0).await?;
    let got: Vec<OrderId> = p0.iter().map(|s| s.order.order_id.clone()).collect();
    ensure!(got == ids(0), "partition 0: {got:?}");
    for s in &p0 {
        let (d, _) = orders
            .iter()
            .find(|(d, _)| d.order_id == s.order.order_id)
            .context("unknown order")?;
        ensure!(
            Some(s) == d.state.as_ref(),
            "active_orders must return the full state"
        );
    }
    let p1: Vec<OrderId> = store
        .active_orders(1)
        .await?
        .into_iter()
        .map(|s| s.order.order_id)
        .collect();
    ensure!(p1 == ids(1), "partition 1: {p1:?}");
    ensure!(store.active_orders(2).await?.is_empty());

    // The restaurant cancels the first order of partition 0: it leaves the index.
    let (d, p) = &mut orders[0];
    let restaurant = d.restaurant();
    let e = d.apply(
        restaurant,
        OrderCommand::Cancel {
            reason: "closed".into(),
        },
    )?;
    store.save(d.state()?, &e, *p).await?;
    let cancelled = d.order_id.clone();
    let left: Vec<OrderId> = store
        .active_orders(0)
        .await?
        .into_iter()
        .map(|s| s.order.order_id)
        .collect();
    ensure!(!left.contains(&cancelled) && left.len() == 1, "{left:?}");
    Ok(())
}

#[tokio::test]
async fn a_final_order_left_in_the_index_by_a_crash_is_skipped_and_unindexed() -> Result<()> {
    let store = store().await?;
    let mut d = Driver::new();
    let placed = d.place()?;
    store.save(d.state()?, &placed, 5).await?;
    let restaurant = d.restaurant();
    let cancelled = d.apply(
        restaurant,
        OrderCommand::Cancel {
            reason: "closed".into(),
        },
    )?;
    // Saved as final under another partition: partition 5's index entry stays behind, as
    // after a crash between saving the final order and removing its index entry.
    store.save(d.state()?, &cancelled, 6).await?;
    ensure!(store.active_order_ids(5).await? == vec![d.order_id.clone()]);
    ensure!(
        store.active_orders(5).await?.is_empty(),
        "a final order was loaded as active"
    );
    ensure!(
        store.active_order_ids(5).await?.is_empty(),
        "the leftover index entry was not removed"
    );
    Ok(())
}

/// A load racing the saves of the same orders must always see the current fields and the
/// timeline of one save: never a `last_seq` the timeline disagrees with (two tables written
/// by one logged batch and read one after the other showed exactly that under load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_racing_saves_never_see_the_order_disagree_with_its_timeline() -> Result<()> {
    let store = store().await?;
    let mut orders: Vec<Driver> = (0..16).map(|_| Driver::new()).collect();
    let ids: Vec<OrderId> = orders.iter().map(|d| d.order_id.clone()).collect();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, ids, done) = (store.clone(), ids.clone(), done.clone());
        tokio::spawn(async move {
            let mut loads = 0_u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for id in &ids {
                    store
                        .load(id)
                        .await
                        .with_context(|| format!("load {loads} of {id}"))?;
                    loads += 1;
                }
            }
            Ok::<u64, anyhow::Error>(loads)
        })
    };
    let steps: [StepFn; 6] = [
        |d| d.place(),
        |d| {
            d.apply(
                Actor::system("dispatch"),
                OrderCommand::AssignDriver {
                    driver_id: DriverId::from("d-1"),
                },
            )
        },
        |d| d.to(d.restaurant(), OrderStatus::Confirmed),
        |d| d.to(d.restaurant(), OrderStatus::Preparing),
        |d| d.to(d.restaurant(), OrderStatus::ReadyForPickup),
        |d| d.to(Actor::driver("d-1"), OrderStatus::EnRoute),
    ];
    for step in steps {
        for d in &mut orders {
            let entries = step(d)?;
            store.save(d.state()?, &entries, 0).await?;
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let loads = reader.await??;
    ensure!(loads > 0, "the reader never ran");
    Ok(())
}

#[tokio::test]
async fn a_batchs_index_and_timer_writes_are_one_request_per_partition() -> Result<()> {
    let store = store().await?;
    let at = |s: i64| Timestamp::from_millis(T0 + s * 1000);
    let id = |i: usize| OrderId::new(format!("o-{i:03}"));
    let index = |p: i32, i: usize| PartitionWrite::Index {
        source_partition: p,
        order_id: id(i),
        status: OrderStatus::Placed,
        updated_at: at(0),
    };
    let put = |p: i32, i: usize, s: i64| PartitionWrite::PutTimer {
        source_partition: p,
        order_id: id(i),
        kind: "auto_confirm".into(),
        due_at: at(s),
    };
    let delete = |p: i32, i: usize| PartitionWrite::DeleteTimer {
        source_partition: p,
        order_id: id(i),
        kind: "auto_confirm".into(),
    };
    // 150 orders placed on partition 0 (two chunks), 3 on partition 1, with their timers;
    // order 0's timer is set and cleared in the same batch, order 1's cleared and set again.
    let mut writes = Vec::new();
    for i in 0..150 {
        writes.push(index(0, i));
        writes.push(put(0, i, 120));
    }
    for i in 200..203 {
        writes.push(index(1, i));
        writes.push(put(1, i, 60));
    }
    writes.push(delete(0, 0));
    writes.push(delete(0, 1));
    writes.push(put(0, 1, 300));
    let before = store.requests();
    store.write_partitions(writes).await?;
    let sent = store.requests().requests - before.requests;
    // Partition 0: 150 index + 150 timer rows in chunks of 100 rows = 3; partition 1: 1.
    ensure!(sent == 4, "{sent} requests for the writes of 2 partitions");

    let active: Vec<OrderId> = store.active_order_ids(0).await?;
    ensure!(active == (0..150).map(id).collect::<Vec<_>>(), "{active:?}");
    ensure!(store.active_order_ids(1).await?.len() == 3);
    let timers = store.timers(0).await?;
    ensure!(timers.len() == 149, "{} timers", timers.len());
    ensure!(
        !timers.iter().any(|t| t.order_id == id(0)),
        "order 0's timer was cleared"
    );
    ensure!(
        timers
            .iter()
            .any(|t| t.order_id == id(1) && t.due_at == at(300)),
        "order 1's timer was set again"
    );

    // The orders that end leave the index, again one request per partition.
    let before = store.requests();
    store
        .write_partitions((0..150).map(|i| PartitionWrite::Unindex {
            source_partition: 0,
            order_id: id(i),
        }))
        .await?;
    let sent = store.requests().requests - before.requests;
    ensure!(
        sent == 2,
        "{sent} requests to unindex 150 orders of one partition"
    );
    ensure!(store.active_order_ids(0).await?.is_empty());

    // Prep-time observations: one request per restaurant and hour.
    let obs = |r: &str, hour: u8, o: usize| {
        PrepTimeObservation::new(RestaurantId::from(r), hour, id(o), 600, at(0))
    };
    let before = store.requests();
    store
        .record_prep_times(&[
            obs("r-1", 12, 1),
            obs("r-1", 12, 2),
            obs("r-2", 12, 3),
            obs("r-1", 13, 4),
        ])
        .await?;
    let sent = store.requests().requests - before.requests;
    ensure!(sent == 3, "{sent} requests for 3 restaurant-hours");
    ensure!(
        store
            .prep_times(&RestaurantId::from("r-1"), 12)
            .await?
            .len()
            == 2
    );
    Ok(())
}

#[tokio::test]
async fn timers_are_durable_per_partition() -> Result<()> {
    let store = store().await?;
    let (a, b, c) = (
        OrderId::from("o-a"),
        OrderId::from("o-b"),
        OrderId::from("o-c"),
    );
    let at = |s: i64| Timestamp::from_millis(T0 + s * 1000);
    // Deleting a timer nobody set, in a keyspace with no timer at all, is fine.
    store.delete_timer(0, &a, "auto_confirm").await?;
    store.put_timer(0, &b, "auto_confirm", at(120)).await?;
    store.put_timer(0, &a, "auto_confirm", at(180)).await?;
    store.put_timer(0, &a, "eta_refresh", at(30)).await?;
    store.put_timer(1, &c, "auto_confirm", at(10)).await?;

    let t0 = store.timers(0).await?;
    let seen: Vec<(&str, &str, Timestamp)> = t0
        .iter()
        .map(|t| (t.order_id.as_str(), t.kind.as_str(), t.due_at))
        .collect();
    ensure!(
        seen == vec![
            ("o-a", "eta_refresh", at(30)),
            ("o-b", "auto_confirm", at(120)),
            ("o-a", "auto_confirm", at(180)),
        ],
        "{seen:?}"
    );
    ensure!(t0.iter().all(|t| t.source_partition == 0));

    // Moving a timer replaces it; deleting one leaves the others of the order.
    store.put_timer(0, &b, "auto_confirm", at(240)).await?;
    store.delete_timer(0, &a, "auto_confirm").await?;
    store
        .delete_timer(0, &OrderId::from("o-none"), "auto_confirm")
        .await?;
    let seen: Vec<(String, String, Timestamp)> = store
        .timers(0)
        .await?
        .into_iter()
        .map(|t| (t.order_id.to_string(), t.kind, t.due_at))
        .collect();
    ensure!(
        seen == vec![
            ("o-a".into(), "eta_refresh".into(), at(30)),
            ("o-b".into(), "auto_confirm".into(), at(240)),
        ],
        "{seen:?}"
    );
    let t1 = store.timers(1).await?;
    ensure!(t1.len() == 1 && t1[0].order_id == c, "{t1:?}");
    Ok(())
}

#[tokio::test]
async fn eta_is_owned_by_set_eta_and_survives_status_saves() -> Result<()> {
    let store = store().await?;
    let mut d = Driver::new();
    let e = d.place()?;
    store.save(d.state()?, &e, 0).await?;
    let eta = Timestamp::from_millis(T0 + 45 * 60_000);
    store.set_eta(&d.order_id, eta).await?;
    let loaded = store.load(&d.order_id).await?.context("not found")?;
    ensure!(loaded.order.estimated_delivery_at == Some(eta));

    // A later status save (whose in-memory state has no ETA) leaves it alone.
    let e = d.to(d.restaurant(), OrderStatus::Confirmed)?;
    store.save(d.state()?, &e, 0).await?;
    let loaded = store.load(&d.order_id).await?.context("not found")?;
    ensure!(loaded.order.estimated_delivery_at == Some(eta));
    ensure!(loaded.order.status == OrderStatus::Confirmed);
    Ok(())
}

#[tokio::test]
async fn prep_time_observations_are_read_per_restaurant_and_hour() -> Result<()> {
    let store = store().await?;
    let r = RestaurantId::from("r-9");
    let obs = |order: &str, hour: u8, seconds: i64, at: i64| {
        PrepTimeObservation::new(
            r.clone(),
            hour,
            OrderId::from(order),
            seconds,
            Timestamp::from_millis(T0 + at),
        )
    };
    store.record_prep_time(&obs("o-2", 12, 600, 2)).await?;
    store.record_prep_time(&obs("o-1", 12, 900, 1)).await?;
    store.record_prep_time(&obs("o-3", 13, 300, 3)).await?;
    store.record_prep_time(&obs("o-1", 12, 900, 1)).await?;
    let at_noon = store.prep_times(&r, 12).await?;
    ensure!(
        at_noon == vec![obs("o-1", 12, 900, 1), obs("o-2", 12, 600, 2)],
        "{at_noon:?}"
    );
    ensure!(store.prep_times(&r, 14).await?.is_empty());
    ensure!(
        store.prep_times(&r, 24).await.is_err(),
        "hour 24 must be refused"
    );
    Ok(())
}

// ---------------------------------------------------------------- driver state

async fn exercise_driver_state(redis: Redis) -> Result<()> {
    let drivers = DriverState::new(redis, format!("{}:", unique("test")));
    let d = DriverId::from("d-1");
    let (a, b) = (OrderId::from("o-a"), OrderId::from("o-b"));
    ensure!(drivers.get(&d).await?.is_none());
    ensure!(
        !drivers.release(&d, &a).await?,
        "releasing an unknown driver does nothing"
    );

    drivers.occupy(&d, &a).await?;
    let s = drivers.get(&d).await?.context("driver missing")?;
    ensure!(s.status == DriverStatus::OnDelivery && s.current_order_id == Some(a.clone()));
    ensure!(s.updated_at.as_millis() > 0);

    // Reassigned to order b; a late release for a must not free them.
    drivers.occupy(&d, &b).await?;
    ensure!(
        !drivers.release(&d, &a).await?,
        "stale release must be refused"
    );
    let s = drivers.get(&d).await?.context("driver missing")?;
    ensure!(s.status == DriverStatus::OnDelivery && s.current_order_id == Some(b.clone()));

    ensure!(drivers.release(&d, &b).await?);
    let s = drivers.get(&d).await?.context("driver missing")?;
    ensure!(
        s.status == DriverStatus::Available && s.current_order_id.is_none(),
        "{s:?}"
    );
    ensure!(
        !drivers.release(&d, &b).await?,
        "a second release is a no-op"
    );
    Ok(())
}

#[tokio::test]
async fn driver_state_occupy_release_and_stale_release() -> Result<()> {
    exercise_driver_state(redis_single().await?).await
}

#[tokio::test]
async fn driver_state_works_on_redis_cluster() -> Result<()> {
    exercise_driver_state(redis_cluster().await?).await
}

// ---------------------------------------------------------------- command outcomes

async fn exercise_command_outcomes(redis: Redis) -> Result<()> {
    use doorstep_connectors::command_outcomes::{CommandOutcomes, OUTCOME_TTL};
    use doorstep_connectors::live_feed::LiveFeed;
    use doorstep_schemas::outcome::{CommandOutcome, Decided};
    use futures::StreamExt;

    let prefix = format!("{}:", unique("outcomes"));
    let outcomes = CommandOutcomes::new(LiveFeed::new(redis.clone(), prefix.clone()));
    // Orders whose keys land in different slots (and shards, on a cluster).
    let orders: Vec<OrderId> = (0..6).map(|i| OrderId::new(format!("o-{i}"))).collect();
    let outcome = |order: &OrderId, rejected: bool| CommandOutcome {
        order_id: order.clone(),
        event_id: EventId::new(format!("e-{order}")),
        command: "cancel".into(),
        actor: Actor::customer("c-1"),
        at: Timestamp::from_millis(T0),
        decision: if rejected {
            Decided::Rejected {
                reason: "cancellation_refused".into(),
                message: "a CUSTOMER cannot cancel an order that is PICKED_UP".into(),
                status: Some(OrderStatus::PickedUp),
            }
        } else {
            Decided::Accepted {
                status: OrderStatus::Cancelled,
                entries: Vec::new(),
            }
        },
    };
    let mut heard = redis.subscribe(&outcomes.channel(&orders[0])).await?;
    let written: Vec<_> = orders
        .iter()
        .enumerate()
        .map(|(i, o)| outcome(o, i % 2 == 0))
        .collect();
    ensure!(outcomes.record_all(&written).await? == orders.len());
    // Announced on the order's channel, the same JSON.
    let message = tokio::time::timeout(Duration::from_secs(10), heard.next())
        .await
        .context("no outcome on the command channel")?
        .context("the subscription ended")?;
    let announced: CommandOutcome = serde_json::from_slice(&message.payload)?;
    ensure!(announced == written[0], "{announced:?}");
    // Read back one by one and all at once (with a command that has none).
    for w in &written {
        ensure!(outcomes.get(&w.order_id, &w.event_id).await?.as_ref() == Some(w));
    }
    let mut asked: Vec<_> = written
        .iter()
        .map(|w| (w.order_id.clone(), w.event_id.clone()))
        .collect();
    asked.push((OrderId::new("o-none"), EventId::new("e-none")));
    let found = outcomes.get_many(asked).await?;
    ensure!(found.len() == written.len(), "{found:?}");
    for w in &written {
        ensure!(found.get(&w.event_id) == Some(w), "{found:?}");
    }
    ensure!(
        outcomes
            .get(&OrderId::new("o-none"), &EventId::new("e-none"))
            .await?
            .is_none()
    );
    // Kept for the TTL, no longer.
    let key = LiveFeed::new(redis.clone(), prefix).command_key(&orders[1], &written[1].event_id);
    let mut conn = redis.clone();
    let ttl_ms: i64 = doorstep_connectors::redis::driver::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await?;
    ensure!(
        ttl_ms > 0 && ttl_ms <= OUTCOME_TTL.as_millis() as i64,
        "{key}: {ttl_ms} ms"
    );
    Ok(())
}

#[tokio::test]
async fn command_outcomes_on_a_single_redis() -> Result<()> {
    exercise_command_outcomes(redis_single().await?).await
}

#[tokio::test]
async fn command_outcomes_on_a_redis_cluster() -> Result<()> {
    exercise_command_outcomes(redis_cluster().await?).await
}

// ---------------------------------------------------------------- push

fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .with_max_retry_after(Duration::from_secs(2))
}

fn push_client(fake: &FakeFcm) -> Result<PushClient> {
    let cfg =
        PushConfig::new(fake.url(), "doorstep-test", "ya29.test-token").with_retry(fast_retry());
    Ok(PushClient::new(&cfg)?)
}

fn notification(customer: &str, status: OrderStatus) -> Notification {
    let order_id = OrderId::new(unique("order"));
    Notification {
        notification_id: doorstep_operators::notify::notification_id(
            &order_id,
            status,
            RecipientKind::Customer,
        ),
        recipient_kind: RecipientKind::Customer,
        recipient_id: customer.to_owned(),
        order_id,
        status,
        message: doorstep_operators::notify::customer_message(status)
            .unwrap_or_default()
            .to_owned(),
        created_at: Timestamp::from_millis(T0),
    }
}

/// A ledger with a fresh prefix, the connection and the prefix (to open a second one, as a
/// restarted process would).
async fn ledger_parts() -> Result<(SentLedger, Redis, String)> {
    let redis = redis_single().await?;
    let prefix = format!("{}:", unique("test"));
    Ok((
        SentLedger::new(redis.clone(), prefix.clone()),
        redis,
        prefix,
    ))
}

async fn ledger() -> Result<SentLedger> {
    Ok(ledger_parts().await?.0)
}

#[tokio::test]
async fn push_sends_the_fcm_v1_message() -> Result<()> {
    let fake = FakeFcm::start().await?;
    let client = push_client(&fake)?;
    let ledger = ledger().await?;
    let n = notification("c-1", OrderStatus::Confirmed);
    let message = client.message_for(&n);
    let Delivery::Sent(sent) = client.send_once(&ledger, &message).await? else {
        anyhow::bail!("expected a send");
    };
    ensure!(
        sent.name.starts_with("projects/doorstep-test/messages/"),
        "{}",
        sent.name
    );
    let got = fake.messages();
    ensure!(got.len() == 1, "{got:?}");
    let m = &got[0];
    ensure!(m.name == sent.name && m.target == "c-1");
    ensure!(m.title.as_deref() == Some("Doorstep"));
    ensure!(m.body.as_deref() == Some("Your order has been confirmed!"));
    ensure!(m.data.get("order_id").map(String::as_str) == Some(n.order_id.as_str()));
    ensure!(m.data.get("status").map(String::as_str) == Some("CONFIRMED"));
    ensure!(m.data.get("notification_id") == Some(&n.notification_id));
    ensure!(m.android_collapse_key.as_deref() == Some(n.order_id.as_str()));
    ensure!(m.apns_collapse_id.as_deref() == Some(n.order_id.as_str()));
    let requests = fake.requests();
    ensure!(requests[0].authorization.as_deref() == Some("Bearer ya29.test-token"));
    Ok(())
}

#[tokio::test]
async fn push_retries_503_then_succeeds() -> Result<()> {
    let fake = FakeFcm::start().await?;
    fake.fail_next(
        2,
        FcmFault::Unavailable {
            retry_after_secs: None,
        },
    );
    let client = push_client(&fake)?;
    let message = client.message_for(&notification("c-2", OrderStatus::Preparing));
    client.send(&message).await?;
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    ensure!(statuses == vec![503, 503, 200], "{statuses:?}");
    ensure!(fake.messages().len() == 1);
    Ok(())
}

#[tokio::test]
async fn push_honours_retry_after_on_quota_exceeded() -> Result<()> {
    let fake = FakeFcm::start().await?;
    fake.fail_next(
        1,
        FcmFault::QuotaExceeded {
            retry_after_secs: Some(1),
        },
    );
    let client = push_client(&fake)?;
    let message = client.message_for(&notification("c-3", OrderStatus::PickedUp));
    let started = Instant::now();
    client.send(&message).await?;
    ensure!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    ensure!(fake.requests().len() == 2);
    Ok(())
}

#[tokio::test]
async fn push_does_not_retry_unregistered_tokens() -> Result<()> {
    let fake = FakeFcm::start().await?;
    fake.unregister("c-gone");
    let client = push_client(&fake)?;
    let ledger = ledger().await?;
    let message = client.message_for(&notification("c-gone", OrderStatus::Delivered));
    let err = client
        .send_once(&ledger, &message)
        .await
        .err()
        .context("an unregistered token must fail")?;
    ensure!(err.is_unregistered() && !err.is_retriable(), "{err}");
    ensure!(
        matches!(
            &err,
            push::Error::Rejected {
                http_status: 404,
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(
        fake.requests().len() == 1,
        "a permanent failure is not retried"
    );
    // The claim was released: a later attempt (say, once the token is re-registered) may send.
    ensure!(matches!(
        ledger.claim(&message.notification_id).await?,
        push::Claim::Claimed
    ));
    Ok(())
}

#[tokio::test]
async fn push_ledger_prevents_a_second_send() -> Result<()> {
    let fake = FakeFcm::start().await?;
    let client = push_client(&fake)?;
    let (ledger, redis, prefix) = ledger_parts().await?;
    let message = client.message_for(&notification("c-4", OrderStatus::Cancelled));
    let first = client.send_once(&ledger, &message).await?;
    let Delivery::Sent(sent) = first else {
        anyhow::bail!("expected a send, got {first:?}");
    };
    // A replay in the same process, and a restarted process (a new ledger identity on the
    // same keys), both find it sent.
    let again = client.send_once(&ledger, &message).await?;
    ensure!(
        again
            == Delivery::AlreadySent {
                message_name: sent.name.clone()
            },
        "{again:?}"
    );
    let restarted = SentLedger::new(redis, prefix);
    ensure!(matches!(
        client.send_once(&restarted, &message).await?,
        Delivery::AlreadySent { .. }
    ));
    ensure!(
        fake.messages().len() == 1,
        "sent twice: {:?}",
        fake.messages()
    );
    Ok(())
}

#[tokio::test]
async fn push_claim_held_by_another_worker_is_retriable_and_expires() -> Result<()> {
    let fake = FakeFcm::start().await?;
    let client = push_client(&fake)?;
    let redis = redis_single().await?;
    let prefix = format!("{}:", unique("test"));
    let crashed =
        SentLedger::new(redis.clone(), prefix.clone()).with_claim_ttl(Duration::from_millis(300));
    let other = SentLedger::new(redis, prefix);
    let message = client.message_for(&notification("c-5", OrderStatus::Confirmed));
    // A worker claimed and crashed before sending.
    ensure!(crashed.claim(&message.notification_id).await? == push::Claim::Claimed);
    let err = client
        .send_once(&other, &message)
        .await
        .err()
        .context("a held claim must not send")?;
    ensure!(
        matches!(err, push::Error::ClaimHeld { .. }) && err.is_retriable(),
        "{err:?}"
    );
    ensure!(
        !other.release_claim(&message.notification_id).await?,
        "a worker cannot release another's claim"
    );
    ensure!(fake.requests().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    ensure!(matches!(
        client.send_once(&other, &message).await?,
        Delivery::Sent(_)
    ));
    ensure!(fake.messages().len() == 1);
    Ok(())
}

#[tokio::test]
async fn push_ledger_works_on_redis_cluster() -> Result<()> {
    let ledger = SentLedger::new(redis_cluster().await?, format!("{}:", unique("test")));
    let id = format!("{}:CONFIRMED:customer", unique("order"));
    ensure!(ledger.claim(&id).await? == push::Claim::Claimed);
    ensure!(matches!(
        ledger.claim(&id).await?,
        push::Claim::HeldElsewhere {
            expires_in: Some(_)
        }
    ));
    ensure!(ledger.release_claim(&id).await?);
    ensure!(ledger.claim(&id).await? == push::Claim::Claimed);
    ledger.mark_sent(&id, "projects/p/messages/1").await?;
    ensure!(
        ledger.claim(&id).await?
            == push::Claim::AlreadySent {
                message_name: "projects/p/messages/1".into()
            }
    );
    Ok(())
}

#[tokio::test]
async fn push_message_is_built_from_the_outbox_record() -> Result<()> {
    let n = notification("c-6", OrderStatus::ReadyForPickup);
    let m = PushMessage::from_notification(&n, "Doorstep");
    ensure!(m.token == "c-6" && m.notification_id == n.notification_id);
    ensure!(m.body == "Driver is picking up your order");
    Ok(())
}

// ---------------------------------------------------------------- payments

fn payments_client(fake: &FakeStripe) -> Result<PaymentsClient> {
    let cfg = PaymentsConfig::new(fake.url(), "sk_test_doorstep").with_retry(fast_retry());
    Ok(PaymentsClient::new(&cfg)?)
}

#[tokio::test]
async fn refund_is_sent_in_stripes_shape() -> Result<()> {
    let fake = FakeStripe::start().await?;
    let client = payments_client(&fake)?;
    let order = OrderId::new(unique("order"));
    let refund = client.refund(&order, 1_500).await?;
    ensure!(refund.id.starts_with("re_") && refund.amount_cents == 1_500);
    ensure!(refund.status == RefundStatus::Succeeded && !refund.replayed);
    ensure!(refund.payment_intent.as_deref() == Some(format!("pi_{order}").as_str()));
    let requests = fake.requests();
    ensure!(requests.len() == 1);
    let r = &requests[0];
    ensure!(r.idempotency_key.as_deref() == Some(format!("refund:{order}").as_str()));
    ensure!(r.authorization.as_deref() == Some("Bearer sk_test_doorstep"));
    let param = |k: &str| {
        r.params
            .iter()
            .find(|(p, _)| p == k)
            .map(|(_, v)| v.as_str())
    };
    ensure!(param("payment_intent") == Some(format!("pi_{order}").as_str()));
    ensure!(param("amount") == Some("1500"));
    ensure!(param("reason") == Some("requested_by_customer"));
    ensure!(param("metadata[order_id]") == Some(order.as_str()));
    ensure!(fake.refunds()[0].id == refund.id);
    Ok(())
}

#[tokio::test]
async fn refund_retry_returns_the_same_refund() -> Result<()> {
    let fake = FakeStripe::start().await?;
    let client = payments_client(&fake)?;
    let order = OrderId::new(unique("order"));
    let first = client.refund(&order, 2_000).await?;
    // A replayed batch or a restarted pipeline asks again.
    let second = client.refund(&order, 2_000).await?;
    ensure!(
        second.id == first.id && second.replayed,
        "{first:?} / {second:?}"
    );
    ensure!(fake.refunds().len() == 1);
    // A different amount under the same order key is Stripe's idempotency_error: permanent.
    let err = client
        .refund(&order, 1_000)
        .await
        .err()
        .context("same key, other amount must fail")?;
    ensure!(
        matches!(
            &err,
            payments::Error::Api {
                http_status: 400,
                error_type: payments::StripeErrorType::IdempotencyError,
                ..
            }
        ),
        "{err:?}"
    );
    ensure!(!err.is_retriable());
    Ok(())
}

#[tokio::test]
async fn refund_retries_500_429_and_503() -> Result<()> {
    let fake = FakeStripe::start().await?;
    let client = payments_client(&fake)?;
    fake.fail_next(1, StripeFault::ServerError);
    fake.fail_next(1, StripeFault::RateLimited);
    fake.fail_next(1, StripeFault::Unavailable);
    let refund = client.refund(&OrderId::new(unique("order")), 700).await?;
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    ensure!(statuses == vec![500, 429, 503, 200], "{statuses:?}");
    ensure!(!refund.replayed && fake.refunds().len() == 1);
    Ok(())
}

#[tokio::test]
async fn refund_saved_server_error_is_not_retried_forever() -> Result<()> {
    let fake = FakeStripe::start().await?;
    let client = payments_client(&fake)?;
    fake.fail_next(1, StripeFault::ServerErrorSaved);
    let err = client
        .refund(&OrderId::new(unique("order")), 700)
        .await
        .err()
        .context("a saved 500 replays")?;
    // The first 500 is retried; the replay says Stripe-Should-Retry: false.
    ensure!(!err.is_retriable(), "{err:?}");
    let statuses: Vec<(u16, bool)> = fake
        .requests()
        .iter()
        .map(|r| (r.status, r.replayed))
        .collect();
    ensure!(statuses == vec![(500, false), (500, true)], "{statuses:?}");
    ensure!(fake.refunds().is_empty());
    Ok(())
}

#[tokio::test]
async fn refund_refusals_are_permanent() -> Result<()> {
    let fake = FakeStripe::start().await?;
    let client = payments_client(&fake)?;
    let order = OrderId::new(unique("order"));
    fake.state()
        .set_payment_intent(PaymentsClient::payment_intent_id(&order), 1_000, "eur");
    let err = client
        .refund(&order, 1_500)
        .await
        .err()
        .context("more than was paid must fail")?;
    ensure!(!err.is_retriable(), "{err:?}");
    ensure!(
        matches!(&err, payments::Error::Api { code: Some(c), .. } if c == "amount_too_large"),
        "{err:?}"
    );
    ensure!(fake.requests().len() == 1);

    fake.state().next_refund_status("failed");
    let err = client
        .refund(&OrderId::new(unique("order")), 100)
        .await
        .err()
        .context("a failed refund must be an error")?;
    ensure!(
        matches!(err, payments::Error::RefundFailed { .. }) && !err.is_retriable(),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_claim_racing_this_workers_mark_sent_never_sends_again() -> Result<()> {
    // The claim's script may read our own `pending` before the mark lands and look at this
    // worker's in-flight sends after it finished: that is not a leftover to send again.
    let ledger = ledger().await?;
    for i in 0..50 {
        let id = format!("race-{i}");
        ensure!(matches!(ledger.claim(&id).await?, push::Claim::Claimed));
        let (again, marked) = tokio::join!(ledger.claim(&id), ledger.mark_sent(&id, "m"));
        marked?;
        let again = again?;
        ensure!(
            !matches!(again, push::Claim::Claimed),
            "notification {id} claimed a second time while its mark was in flight"
        );
        ensure!(matches!(
            ledger.claim(&id).await?,
            push::Claim::AlreadySent { .. }
        ));
    }
    Ok(())
}
