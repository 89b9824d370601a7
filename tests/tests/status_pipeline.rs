//! The status and notify pipelines end to end on the real broker, CQL server and Redis,
//! with local stand-ins for the push and payment providers. Accepted changes go to
//! `orders.status.v1` and, as `STATUS_CHANGE` tracking updates, to `orders.tracking.v1`.

use doorstep_connectors::driver_state::DriverState;
use doorstep_schemas::events::{RejectedRecord, StatusChange, topics};
use doorstep_schemas::model::{
    Actor, DriverStatus, HistoryEntryKind, OrderId, OrderStatus, Timestamp, TrackingEventType,
    TrackingUpdate,
};
use doorstep_tests::order_events::{OrderScript, TOTAL_CENTS};
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::{read_all, read_topic};
use std::time::Duration;

/// Generous: a loaded 2-core machine can stall the broker for seconds; a broken pipeline
/// never gets there.
const WAIT: Duration = Duration::from_secs(60);

/// Status pipeline options without side effects (no frames, pushes or refunds), taking at
/// most `batch_max` records per batch.
fn quiet_options(batch_max: usize) -> doorstep_pipelines::assemble::StatusOptions {
    use doorstep_pipelines::runtime::{Batcher, RuntimeConfig};
    doorstep_pipelines::assemble::StatusOptions {
        side_effects: false,
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            batch: Batcher {
                max: batch_max,
                linger: Duration::from_millis(5),
            },
            ..RuntimeConfig::default()
        },
    }
}

/// What a first attempt leaves behind when its offsets are not committed (a kill -9 after
/// phase 2, or an aborted transaction): the status pipeline runs without side effects in a
/// consumer group of its own (`<prefix>-<group_suffix>`) until `order` is saved at PREPARING,
/// and stops. Returns the saved order.
async fn saved_by_a_first_attempt(
    scope: &Scope,
    order: &OrderId,
    group_suffix: &str,
) -> anyhow::Result<doorstep_operators::order::OrderState> {
    let mut saving = scope.config.clone();
    saving.group_prefix = format!("{}-{group_suffix}", saving.group_prefix);
    let registry = prometheus::Registry::new();
    let (rt, stage) =
        doorstep_pipelines::assemble::status_pipeline(&saving, quiet_options(2_000), &registry)
            .await?;
    let (trigger, signal) = doorstep_pipelines::shutdown::channel();
    let task = tokio::spawn(async move { rt.run(stage, signal).await });
    let store = scope.store().await?;
    let saved = Scope::eventually(WAIT, || async {
        store
            .load(order)
            .await
            .ok()
            .flatten()
            .filter(|s| s.order.status == OrderStatus::Preparing)
    })
    .await;
    let _ = trigger.send(true);
    task.await??;
    saved.ok_or_else(|| anyhow::anyhow!("the order was not saved at PREPARING"))
}

fn now_ms() -> i64 {
    Timestamp::now().as_millis()
}

#[tokio::test]
async fn an_order_through_every_status_is_stored_published_and_notified() -> anyhow::Result<()> {
    let scope = Scope::new("status_full", &[]).await?;
    let running = scope.start().await?;
    let mut script = OrderScript::new("full-1", now_ms());
    scope.produce(&script.full_life()).await?;

    let brokers = &scope.config.endpoints.kafka_brokers;
    let changes =
        read_topic::<StatusChange>(brokers, &scope.topic(topics::ORDER_STATUS), 8, WAIT).await?;
    let steps: Vec<_> = changes.iter().map(|c| (c.value.seq, c.value.to)).collect();
    use OrderStatus::*;
    assert_eq!(
        steps,
        vec![
            (0, Placed),
            (1, Placed),
            (2, Confirmed),
            (3, Preparing),
            (4, ReadyForPickup),
            (5, PickedUp),
            (6, EnRoute),
            (7, Delivered)
        ]
    );
    assert_eq!(changes[1].value.kind, HistoryEntryKind::DriverAssigned);
    assert!(changes.iter().all(|c| c.key == "full-1"));

    // The same changes as STATUS_CHANGE tracking updates on orders.tracking.v1.
    let tracking =
        read_topic::<TrackingUpdate>(brokers, &scope.topic(topics::ORDER_TRACKING), 8, WAIT)
            .await?;
    let updates: Vec<_> = tracking
        .iter()
        .map(|t| (t.value.event_type, t.value.status_seq, t.value.status))
        .collect();
    let expected: Vec<_> = steps
        .iter()
        .map(|(seq, to)| (TrackingEventType::StatusChange, Some(*seq), Some(*to)))
        .collect();
    assert_eq!(updates, expected);
    assert!(tracking.iter().all(|t| t.key == "full-1"));
    assert_eq!(
        tracking[5].value.driver_id,
        Some(script.driver.clone().into())
    );

    let store = scope.store().await?;
    let state = Scope::eventually(WAIT, || async {
        store
            .load(&OrderId::from("full-1"))
            .await
            .ok()
            .flatten()
            .filter(|s| s.order.status == Delivered)
    })
    .await
    .expect("the order reaches DELIVERED in ScyllaDB");
    assert_eq!(state.history.len(), 8);
    assert_eq!(
        state.history.iter().map(|h| h.seq).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );

    // One push per status message of the seed's table, in order.
    let bodies = Scope::eventually(WAIT, || async {
        let m = scope.fcm.messages();
        (m.len() >= 5).then_some(m)
    })
    .await
    .expect("five pushes");
    let texts: Vec<_> = bodies.iter().filter_map(|m| m.body.clone()).collect();
    assert_eq!(
        texts,
        vec![
            "Your order has been confirmed!",
            "Restaurant is preparing your food",
            "Driver is picking up your order",
            "Your food is on the way!",
            "Your order has been delivered. Enjoy!"
        ]
    );
    assert!(bodies.iter().all(|m| m.target == script.customer));

    let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
    let drivers = DriverState::new(redis, scope.config.redis_key_prefix.clone());
    let d = drivers
        .get(&script.driver.clone().into())
        .await?
        .expect("driver known");
    assert_eq!(d.status, DriverStatus::Available);

    running.stop().await?;
    // Nothing was rejected.
    let rejects = read_topic::<RejectedRecord>(
        brokers,
        &scope.topic(topics::ORDER_REJECTED),
        1,
        Duration::from_secs(3),
    )
    .await?;
    assert!(rejects.is_empty(), "{rejects:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_requests_are_rejected_with_reasons_and_change_nothing() -> anyhow::Result<()> {
    let scope = Scope::new(
        "status_rejects",
        &[("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "600000")],
    )
    .await?;
    let running = scope.start().await?;
    let mut s = OrderScript::new("rej-1", now_ms());
    let events = vec![
        s.place(),
        s.driver(OrderStatus::Delivered), // no such transition
        s.event(
            Actor::customer(s.customer.clone()),
            doorstep_schemas::events::OrderCommand::Transition {
                to: OrderStatus::Confirmed,
            },
        ), // wrong actor
        s.event(
            Actor::restaurant("r-other"),
            doorstep_schemas::events::OrderCommand::Transition {
                to: OrderStatus::Confirmed,
            },
        ), // a stranger
        s.cancel(Actor::customer(s.customer.clone()), "   "), // no reason
    ];
    scope.produce(&events).await?;
    scope
        .produce_raw("rej-2", b"\x00\x00\x00\x00\x65garbage")
        .await?;
    scope.produce_raw("rej-3", b"not avro at all").await?;

    let brokers = &scope.config.endpoints.kafka_brokers;
    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 6, WAIT)
            .await?;
    let mut codes: Vec<_> = rejects
        .iter()
        .map(|r| r.value.reason_code.clone())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            "actor_not_allowed",
            "invalid_transition",
            "missing_reason",
            "not_order_party",
            "undecodable",
            "undecodable"
        ]
    );
    let garbage = rejects
        .iter()
        .find(|r| r.key == "rej-3")
        .expect("garbage rejected");
    assert_eq!(garbage.value.original_value, b"not avro at all".to_vec());
    assert!(!garbage.value.message.is_empty());

    let store = scope.store().await?;
    let state = store.load(&OrderId::from("rej-1")).await?.expect("placed");
    assert_eq!(state.order.status, OrderStatus::Placed);
    assert_eq!(state.history.len(), 1);
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn cancellations_refund_release_and_notify_per_the_rules() -> anyhow::Result<()> {
    let scope = Scope::new(
        "status_cancel",
        &[("DOORSTEP_CANCELLATION_FEE_CENTS", "500")],
    )
    .await?;
    let running = scope.start().await?;
    use OrderStatus::*;
    let t = now_ms();
    // Customer cancels while the food is being prepared: refund minus the fee.
    let mut a = OrderScript::new("cx-customer", t);
    let mut ev = vec![
        a.place(),
        a.assign(),
        a.restaurant(Confirmed),
        a.restaurant(Preparing),
    ];
    ev.push(a.cancel(Actor::customer(a.customer.clone()), "too slow"));
    // Restaurant cancels before pickup: full refund.
    let mut b = OrderScript::new("cx-restaurant", t);
    ev.extend([b.place(), b.assign(), b.restaurant(Confirmed)]);
    ev.push(b.cancel(Actor::restaurant(b.restaurant.clone()), "out of salmon"));
    // Driver gives the order back: not cancelled, driver released, no refund.
    let mut c = OrderScript::new("cx-driver", t);
    ev.extend([c.place(), c.assign(), c.restaurant(Confirmed)]);
    ev.push(c.cancel(Actor::driver(c.driver.clone()), "flat tyre"));
    // Customer tries after pickup: refused.
    let mut d = OrderScript::new("cx-late", t);
    ev.extend([
        d.place(),
        d.assign(),
        d.restaurant(Confirmed),
        d.restaurant(Preparing),
        d.restaurant(ReadyForPickup),
        d.driver(PickedUp),
    ]);
    ev.push(d.cancel(Actor::customer(d.customer.clone()), "changed my mind"));
    scope.produce(&ev).await?;

    let refunds = Scope::eventually(WAIT, || async {
        let r = scope.stripe.refunds();
        (r.len() >= 2).then_some(r)
    })
    .await
    .expect("two refunds");
    let mut got: Vec<_> = refunds
        .iter()
        .map(|r| (r.payment_intent.clone(), r.amount))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("pi_cx-customer".to_owned(), TOTAL_CENTS - 500),
            ("pi_cx-restaurant".to_owned(), TOTAL_CENTS)
        ]
    );

    let store = scope.store().await?;
    let load = |id: &'static str| {
        let store = &store;
        async move { store.load(&OrderId::from(id)).await.ok().flatten() }
    };
    let wait_for = |id: &'static str, st: OrderStatus| {
        Scope::eventually(WAIT, move || async move {
            load(id).await.filter(|s| s.order.status == st)
        })
    };
    let a_state = wait_for("cx-customer", Cancelled)
        .await
        .expect("customer cancellation stored");
    let cancellation = a_state.order.cancellation.expect("cancellation recorded");
    assert_eq!(cancellation.reason, "too slow");
    assert_eq!(
        cancellation.cancelled_by,
        Actor::customer(a.customer.clone())
    );
    assert_eq!(cancellation.refund_cents, TOTAL_CENTS - 500);
    wait_for("cx-restaurant", Cancelled)
        .await
        .expect("restaurant cancellation stored");
    let c_state = Scope::eventually(WAIT, || async {
        load("cx-driver").await.filter(|s| s.history.len() == 4)
    })
    .await
    .expect("driver hand-back stored");
    assert_eq!(c_state.order.status, Confirmed);
    assert_eq!(c_state.order.driver_id, None);
    assert_eq!(c_state.history[3].kind, HistoryEntryKind::DriverUnassigned);
    let d_state = wait_for("cx-late", PickedUp)
        .await
        .expect("late order still picked up");
    assert!(d_state.order.cancellation.is_none());

    let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
    let drivers = DriverState::new(redis, scope.config.redis_key_prefix.clone());
    for (who, want) in [
        (&a.driver, DriverStatus::Available),
        (&b.driver, DriverStatus::Available),
        (&c.driver, DriverStatus::Available),
        (&d.driver, DriverStatus::OnDelivery),
    ] {
        let got = Scope::eventually(WAIT, || async {
            drivers
                .get(&who.clone().into())
                .await
                .ok()
                .flatten()
                .filter(|x| x.status == want)
        })
        .await;
        assert!(got.is_some(), "{who} should be {want:?}");
    }

    // The customer hears of both cancellations, the restaurant of the customer's, the driver of both.
    let pushes = Scope::eventually(WAIT, || async {
        let m = scope.fcm.messages();
        let n = m
            .iter()
            .filter(|m| m.body.as_deref().is_some_and(|b| b.contains("cancelled")))
            .count();
        (n >= 5).then_some(m)
    })
    .await
    .expect("cancellation pushes");
    let cancelled_to: Vec<_> = pushes
        .iter()
        .filter(|m| m.body.as_deref().is_some_and(|b| b.contains("cancelled")))
        .map(|m| m.target.clone())
        .collect();
    for who in [
        &a.customer,
        &a.restaurant,
        &a.driver,
        &b.customer,
        &b.driver,
    ] {
        assert!(
            cancelled_to.contains(who),
            "{who} not told: {cancelled_to:?}"
        );
    }

    let brokers = &scope.config.endpoints.kafka_brokers;
    let rejects =
        read_topic::<RejectedRecord>(brokers, &scope.topic(topics::ORDER_REJECTED), 1, WAIT)
            .await?;
    assert_eq!(rejects[0].value.reason_code, "cancellation_refused");
    assert_eq!(rejects[0].key, "cx-late");
    running.stop().await?;
    // Each refund was requested once per order (idempotency key = order).
    assert_eq!(scope.stripe.refunds().len(), 2);
    Ok(())
}

#[tokio::test]
async fn auto_confirm_fires_after_the_delay_even_across_a_restart() -> anyhow::Result<()> {
    let scope = Scope::new(
        "status_autoconfirm",
        &[("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "3000")],
    )
    .await?;
    let running = scope.start().await?;
    let mut s = OrderScript::new("auto-1", now_ms());
    scope.produce(&[s.place()]).await?;
    let store = scope.store().await?;
    let placed = Scope::eventually(WAIT, || async {
        store.load(&OrderId::from("auto-1")).await.ok().flatten()
    })
    .await;
    assert!(placed.is_some(), "placed order stored");
    // Stop before the timer is due; the next process must fire it.
    running.stop().await?;
    let running = scope.start().await?;
    let confirmed = Scope::eventually(WAIT, || async {
        store
            .load(&OrderId::from("auto-1"))
            .await
            .ok()
            .flatten()
            .filter(|s| s.order.status == OrderStatus::Confirmed)
    })
    .await
    .expect("auto-confirmed after the restart");
    let last = confirmed.history.last().expect("history");
    assert_eq!(last.actor, Actor::system("auto-confirm"));
    assert!(last.at.millis_since(confirmed.order.placed_at) >= 3_000);
    let pushes = Scope::eventually(WAIT, || async {
        let m = scope.fcm.messages();
        (!m.is_empty()).then_some(m)
    })
    .await
    .expect("confirmation push");
    assert_eq!(
        pushes[0].body.as_deref(),
        Some("Your order has been confirmed!")
    );
    running.stop().await?;
    Ok(())
}

#[tokio::test]
async fn status_frames_a_crash_kept_from_customers_are_published_when_the_events_are_reread()
-> anyhow::Result<()> {
    use doorstep_connectors::live_feed::LiveFeed;
    use doorstep_pipelines::assemble;
    use doorstep_schemas::live::LiveEvent;
    use futures::StreamExt;

    let scope = Scope::new("status_republish", &[]).await?;
    let order = OrderId::from("rp-1");
    let mut script = OrderScript::new(order.as_str(), now_ms());
    let life = script.full_life();
    scope.produce(&life[..4]).await?;

    // What a kill -9 between saving the rows (phase 2) and publishing the frames (phase 3)
    // leaves behind: the order saved with the events' offsets, no frame published, and the
    // live group's offsets not committed. A run without side effects (no frames) in another
    // consumer group makes exactly that state.
    let saved = saved_by_a_first_attempt(&scope, &order, "before-crash").await?;
    let store = scope.store().await?;

    let redis = assemble::redis(&scope.config).await?;
    let live = LiveFeed::new(redis.clone(), scope.config.redis_key_prefix.clone());
    let mut channel = redis.subscribe(&live.channel(&order)).await?;
    assert_eq!(live.current_seq(&order).await?, 0, "nothing published yet");

    // The restarted pipeline re-reads the four events: it changes nothing, and the
    // customers get the frames they missed.
    let running = scope.start().await?;
    let mut frames = Vec::new();
    while frames.len() < saved.history.len() {
        let m = tokio::time::timeout(WAIT, channel.next())
            .await?
            .expect("subscription open");
        match serde_json::from_slice::<LiveEvent>(&m.payload)? {
            LiveEvent::Status(s) => frames.push((s.entry.seq, s.status)),
            other => panic!("not a status frame: {other:?}"),
        }
    }
    let expected: Vec<_> = saved.history.iter().map(|h| (h.seq, h.to)).collect();
    assert_eq!(frames, expected);
    running.stop().await?;
    let after = store.load(&order).await?.expect("still saved");
    assert_eq!(after.history, saved.history, "the re-read changed nothing");
    // Every accepted change is on the topic. A real re-read means the first transaction did
    // not commit, so the saved outbox (the last batch's records) is produced again in the new
    // one; here the other group's transaction did commit, so those records show twice, as
    // identical copies, and nothing else does.
    let changes = read_topic::<StatusChange>(
        &scope.config.endpoints.kafka_brokers,
        &scope.topic(topics::ORDER_STATUS),
        2 * saved.history.len() + 1,
        Duration::from_secs(3),
    )
    .await?;
    let mut distinct: std::collections::BTreeMap<u32, StatusChange> = Default::default();
    for c in &changes {
        if let Some(first) = distinct.insert(c.value.seq, c.value.clone()) {
            assert_eq!(first, c.value, "a second copy differs from the first");
        }
    }
    assert_eq!(distinct.len(), saved.history.len(), "{changes:?}");
    assert!(changes.len() < 2 * saved.history.len() + 1);
    Ok(())
}

/// A batch whose transaction did not commit is read again, here one event per batch: the
/// re-read of the earlier events finds them in the order's history (duplicates) and keeps the
/// order in memory, and the re-read of the last one must still produce the batch's saved
/// outbox, although the order's state no longer comes from ScyllaDB by then.
#[tokio::test]
async fn the_outbox_of_a_batch_read_again_over_several_batches_is_produced_again()
-> anyhow::Result<()> {
    use doorstep_pipelines::assemble;
    use doorstep_pipelines::shutdown;

    let scope = Scope::new("status_outbox_split", &[]).await?;
    let order = OrderId::from("ob-1");
    let mut script = OrderScript::new(order.as_str(), now_ms());
    let life = script.full_life();
    scope.produce(&life[..4]).await?;

    // The first attempt: another consumer group (its offsets are not the live group's, as
    // an aborted transaction's are not committed) saves the order with its outbox.
    let saved = saved_by_a_first_attempt(&scope, &order, "aborted").await?;
    let store = scope.store().await?;
    let first = read_topic::<StatusChange>(
        &scope.config.endpoints.kafka_brokers,
        &scope.topic(topics::ORDER_STATUS),
        saved.history.len(),
        WAIT,
    )
    .await?;
    assert_eq!(first.len(), saved.history.len(), "{first:?}");

    // The re-read, one event per batch.
    let registry = prometheus::Registry::new();
    let (rt, stage) = assemble::status_pipeline(&scope.config, quiet_options(1), &registry).await?;
    let (trigger, signal) = shutdown::channel();
    let task = tokio::spawn(async move { rt.run(stage, signal).await });
    let last = saved.history.last().expect("history").seq;
    let brokers = &scope.config.endpoints.kafka_brokers;
    let topic = scope.topic(topics::ORDER_STATUS);
    // Wait for a copy (or the deadline), then take everything there is.
    let copied = read_topic::<StatusChange>(brokers, &topic, first.len() + 1, WAIT).await;
    let changes = read_all::<StatusChange>(brokers, &topic, Duration::from_secs(2)).await;
    let _ = trigger.send(true);
    task.await??;
    copied?;
    let changes = changes?;
    let copies = |seq: u32| changes.iter().filter(|c| c.value.seq == seq).count();
    assert_eq!(
        copies(last),
        2,
        "the last change is produced again from the outbox: {changes:?}"
    );
    for c in &changes {
        assert!(copies(c.value.seq) <= 2, "{c:?} more than twice");
        assert!(
            first.iter().any(|f| f.value == c.value),
            "a copy differs from the first: {c:?}"
        );
    }
    let after = store.load(&order).await?.expect("still saved");
    assert_eq!(after.history, saved.history, "the re-read changed nothing");
    Ok(())
}

/// The CQL cost of live traffic, counted by the driver (`doorstep_pipeline_cql_requests_total`,
/// not computed): many orders in flight, so no batch holds two events of one order and every
/// event is its own save, with every effect on. At most 1.5 requests per transition (the order's
/// save, a share of its first read and of the per-partition index and timer batches), and at
/// least 1 (each save is a request: the counter counts).
#[tokio::test]
async fn live_traffic_costs_at_most_one_and_a_half_cql_requests_per_transition()
-> anyhow::Result<()> {
    use doorstep_pipelines::assemble::{self, StatusOptions};
    use doorstep_pipelines::runtime::{Batcher, RuntimeConfig};
    use doorstep_tests::bench_kit::{counter, pipeline_caught_up};

    // No auto-confirm fires during the run (the timer rows are still written and cleared).
    let scope = Scope::new(
        "status_cql_cost",
        &[("DOORSTEP_AUTO_CONFIRM_AFTER_MS", "3600000")],
    )
    .await?;
    let start = Timestamp::now().as_millis();
    let lives: Vec<_> = (0..240)
        .map(|i| OrderScript::new(&format!("cost-{i:04}"), start).full_life())
        .collect();
    let events: usize = lives.iter().map(Vec::len).sum();
    // Event k of every order, then event k + 1: ~80 orders per partition, batches of 40.
    doorstep_tests::crash_kit::produce(scope.config.clone(), lives).await?;

    let registry = prometheus::Registry::new();
    let defaults = RuntimeConfig::default();
    let runtime = RuntimeConfig {
        batch: Batcher {
            max: 40,
            ..defaults.batch
        },
        ..defaults
    };
    let options = StatusOptions {
        side_effects: true,
        runtime,
    };
    let (rt, stage) = assemble::status_pipeline(&scope.config, options, &registry).await?;
    let (trigger, signal) = doorstep_pipelines::shutdown::channel();
    let task = tokio::spawn(rt.run(stage, signal));
    let caught_up = Scope::eventually(Duration::from_secs(120), || async {
        pipeline_caught_up(&registry, events).then_some(())
    })
    .await;
    let _ = trigger.send(true);
    task.await??;
    anyhow::ensure!(
        caught_up.is_some(),
        "the pipeline did not process the backlog"
    );

    let status_topic = scope.topic(topics::ORDER_STATUS);
    let transitions = counter(
        &registry,
        "doorstep_pipeline_records_out_total",
        Some(("topic", status_topic.as_str())),
    );
    let requests = counter(&registry, "doorstep_pipeline_cql_requests_total", None);
    anyhow::ensure!(
        transitions == events as f64,
        "{transitions} status changes of {events} events"
    );
    let per_transition = requests / transitions;
    anyhow::ensure!(
        (1.0..=1.5).contains(&per_transition),
        "{requests} CQL requests for {transitions} transitions: {per_transition:.3} each"
    );
    Ok(())
}
