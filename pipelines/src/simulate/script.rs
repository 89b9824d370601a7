//! One simulated order's life, as its actors would live it: the customer orders, dispatch
//! sends the nearest free driver, who drives the street route to the restaurant while the
//! kitchen confirms and prepares, then picks up and drives to the customer, pinging GPS all
//! the way. Some orders are cancelled by the customer, the restaurant, or handed back by the
//! first driver.
//!
//! Every actor learns what became of each command from its outcome ([`Answer`]) and acts on
//! it: dispatch, which works while the kitchen does, learns at once when the order was
//! cancelled before its driver got there (the assignment is refused: the driver is free
//! again at once) or when the previous driver's hand-back is not applied yet (it assigns
//! again); a silent restaurant learns that the auto-confirm has not come yet and tries again;
//! any other refusal ends the order's script with its reason.

use super::drive::{DrivePace, drive};
use super::{
    Answer, ApiClient, ApiError, Driver, Fleet, RESTAURANTS, Routes, SplitMix,
    random_delivery_point,
};
use doorstep_schemas::model::{ActorKind, GeoPoint, OrderItem, OrderStatus};
use std::time::Duration;

/// How often an actor tries a command again after a refusal that time will fix.
const ATTEMPTS: u32 = 20;

/// Tuning of the simulation.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Orders to place (0 = until stopped).
    pub orders: u64,
    /// Orders placed per second.
    pub orders_per_second: f64,
    /// Speed-up of everything but driving: 60 makes a minute of waiting last a second.
    pub speedup: f64,
    /// Speed-up of driving and of the 5 s ping period (see [`DrivePace`]).
    pub drive_speedup: f64,
    /// Cap on the speed pings imply in real time, m/s (see [`DrivePace::max_apparent_mps`]).
    pub max_apparent_mps: f64,
    /// Simulated seconds between two GPS pings of a driving driver.
    pub ping_interval_s: f64,
    /// Drivers in the fleet.
    pub drivers: u32,
    /// Run id, part of every order, customer and driver id so runs never collide.
    pub run_id: String,
    /// Seed for the deterministic pseudo-random choices.
    pub seed: u64,
}

impl SimulationConfig {
    /// The pace of driving.
    pub fn pace(&self) -> DrivePace {
        DrivePace {
            ping_interval_s: self.ping_interval_s,
            speedup: self.drive_speedup,
            max_apparent_mps: self.max_apparent_mps,
        }
    }
}

/// How the order ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered to the customer.
    Delivered,
    /// Cancelled by someone.
    Cancelled,
}

/// The plan for one order, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Restaurant index.
    pub restaurant: usize,
    /// Restaurant lets auto-confirm happen instead of confirming.
    pub restaurant_silent: bool,
    /// Minutes the restaurant takes to confirm (auto-confirm comes at 2).
    pub confirm_minutes: f64,
    /// Customer cancels after confirmation.
    pub customer_cancels: bool,
    /// Restaurant cancels while preparing.
    pub restaurant_cancels: bool,
    /// First driver gives the order back.
    pub driver_gives_back: bool,
    /// Minutes of preparation.
    pub prep_minutes: f64,
    /// Minutes the hand-over at the restaurant takes.
    pub handover_minutes: f64,
}

impl Lifecycle {
    /// The plan of order `n` under `seed`.
    pub fn draw(seed: u64, n: u64) -> Self {
        let mut r = SplitMix(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Preparation: mostly 8–14 minutes with a long tail (busy kitchens) up to ~25.
        let prep = 8.0 + 6.0 * r.unit() + 11.0 * r.unit().powi(4);
        Self {
            restaurant: (r.next_u64() % RESTAURANTS.len() as u64) as usize,
            restaurant_silent: r.chance(0.05),
            confirm_minutes: r.fraction(0.3, 1.5),
            customer_cancels: r.chance(0.04),
            restaurant_cancels: r.chance(0.02),
            driver_gives_back: r.chance(0.03),
            prep_minutes: prep,
            handover_minutes: r.fraction(0.5, 2.0),
        }
    }
}

/// What one order's actors share: the API, the fleet, the routes, the settings.
#[derive(Debug)]
pub struct World {
    /// The gateway's producer API.
    pub api: ApiClient,
    /// The drivers.
    pub fleet: Fleet,
    /// Where paths come from.
    pub routes: Routes,
    /// The settings.
    pub config: SimulationConfig,
}

impl World {
    fn pause(&self, minutes: f64) -> tokio::time::Sleep {
        tokio::time::sleep(Duration::from_secs_f64(
            (minutes * 60.0 / self.config.speedup.max(0.001)).max(0.0),
        ))
    }
}

/// Drives order `n` from placement to its end through the API.
pub async fn run_order(world: &World, n: u64) -> Result<Outcome, ApiError> {
    let cfg = &world.config;
    let api = &world.api;
    let plan = Lifecycle::draw(cfg.seed, n);
    let (restaurant, restaurant_at) = RESTAURANTS[plan.restaurant];
    let order_id = format!("{}-o{n}", cfg.run_id);
    let customer = format!("{}-c{n}", cfg.run_id);
    let items = vec![
        OrderItem {
            item_id: "main".into(),
            name: "Salmon soup".into(),
            quantity: 1,
            unit_price_cents: 1_450,
        },
        OrderItem {
            item_id: "bread".into(),
            name: "Rye bread".into(),
            quantity: 2,
            unit_price_cents: 250,
        },
    ];
    let mut r = SplitMix(cfg.seed ^ n);
    let to = random_delivery_point(r.unit());
    api.place(
        &customer,
        &order_id,
        restaurant,
        &items,
        1_950,
        restaurant_at,
        to,
    )
    .await?
    .expect_accepted("place")?;
    world.pause(0.3).await;

    // Dispatch works while the kitchen does.
    let (dispatched, kitchen) = tokio::join!(
        dispatch(world, &plan, &order_id, restaurant_at),
        kitchen(world, &plan, &order_id, &customer)
    );
    let mut driver = match (dispatched, kitchen) {
        (Ok(Some(driver)), Ok(Outcome::Delivered)) => driver,
        (Ok(driver), Ok(Outcome::Cancelled)) => {
            if let Some(d) = driver {
                world.fleet.release(d);
            }
            return Ok(Outcome::Cancelled);
        }
        (Ok(None), Ok(Outcome::Delivered)) => {
            return Err(ApiError::Rejected {
                command: "assign_driver".into(),
                reason: "no_driver".into(),
                message: "dispatch found the order gone while the kitchen finished it".into(),
            });
        }
        (Ok(driver), Err(e)) => {
            if let Some(d) = driver {
                world.fleet.release(d);
            }
            return Err(e);
        }
        (Err(e), _) => return Err(e),
    };
    let result = async {
        world.pause(plan.handover_minutes).await;
        api.status(ActorKind::Driver, &driver.id, &order_id, "PICKED_UP")
            .await?
            .expect_accepted("PICKED_UP")?;
        world.pause(0.2).await;
        api.status(ActorKind::Driver, &driver.id, &order_id, "EN_ROUTE")
            .await?
            .expect_accepted("EN_ROUTE")?;
        let path = world.routes.path(restaurant_at, to).await;
        driver.at = drive(api, &driver.id, &path, cfg.pace()).await?;
        api.status(ActorKind::Driver, &driver.id, &order_id, "DELIVERED")
            .await?
            .expect_accepted("DELIVERED")?;
        Ok(Outcome::Delivered)
    }
    .await;
    world.fleet.release(driver);
    result
}

/// Dispatch's part: the nearest free driver, assigned (and another one after a hand-back),
/// driving to the restaurant. `Ok(None)` when the order was cancelled before: the refused
/// assignment says so at once, and the driver is free again.
async fn dispatch(
    world: &World,
    plan: &Lifecycle,
    order_id: &str,
    restaurant_at: GeoPoint,
) -> Result<Option<Driver>, ApiError> {
    let api = &world.api;
    let mut driver = world.fleet.acquire(restaurant_at).await;
    if !assign(world, order_id, &driver).await? {
        world.fleet.release(driver);
        return Ok(None);
    }
    let result = async {
        if plan.driver_gives_back {
            world.pause(1.0).await;
            let answer = api
                .cancel(ActorKind::Driver, &driver.id, order_id, "flat tyre")
                .await?;
            if answer.rejection() == Some("final_state") {
                return Ok(false); // cancelled meanwhile: nothing to hand back
            }
            answer.expect_accepted("hand back")?;
            let next = world.fleet.acquire(restaurant_at).await;
            world.fleet.release(std::mem::replace(&mut driver, next));
            world.pause(0.3).await;
            if !assign(world, order_id, &driver).await? {
                return Ok(false);
            }
        }
        // The driver heads to the restaurant while the kitchen works.
        let path = world.routes.path(driver.at, restaurant_at).await;
        driver.at = drive(api, &driver.id, &path, world.config.pace()).await?;
        Ok(true)
    }
    .await;
    match result {
        Ok(true) => Ok(Some(driver)),
        Ok(false) => {
            world.fleet.release(driver);
            Ok(None)
        }
        Err(e) => {
            world.fleet.release(driver);
            Err(e)
        }
    }
}

/// Assigns `driver`: `Ok(false)` when the order can no longer take one (cancelled, or picked
/// up); while the previous driver's hand-back is not applied yet, assigns again.
async fn assign(world: &World, order_id: &str, driver: &Driver) -> Result<bool, ApiError> {
    for _ in 0..ATTEMPTS {
        match world.api.assign(order_id, &driver.id).await? {
            Answer::Accepted(_) | Answer::Pending => return Ok(true),
            Answer::Rejected { reason, .. }
                if reason == "final_state" || reason == "assignment_not_allowed" =>
            {
                tracing::debug!(order_id, driver = %driver.id, %reason, "dispatch lost the race: the driver is free again");
                return Ok(false);
            }
            Answer::Rejected { reason, .. } if reason == "driver_already_assigned" => {
                world.pause(0.1).await;
            }
            refused => refused.expect_accepted("assign_driver")?,
        }
    }
    Err(ApiError::Rejected {
        command: "assign_driver".into(),
        reason: "driver_already_assigned".into(),
        message: format!("the previous driver still held the order after {ATTEMPTS} attempts"),
    })
}

/// The restaurant's part (and the customer's change of mind): confirm, prepare, ready.
async fn kitchen(
    world: &World,
    plan: &Lifecycle,
    order_id: &str,
    customer: &str,
) -> Result<Outcome, ApiError> {
    let api = &world.api;
    let (restaurant, _) = RESTAURANTS[plan.restaurant];
    if plan.restaurant_silent {
        // Auto-confirm fires after the configured delay (2 minutes); give it time.
        world.pause(2.5).await;
    } else {
        world.pause(plan.confirm_minutes).await;
        let answer = api
            .status(ActorKind::Restaurant, restaurant, order_id, "CONFIRMED")
            .await?;
        // A slow kitchen finds the order auto-confirmed already: fine, it goes on.
        if answer.refused_in() != Some(OrderStatus::Confirmed) {
            answer.expect_accepted("CONFIRMED")?;
        }
    }
    if plan.customer_cancels {
        world.pause(0.5).await;
        let answer = api
            .cancel(
                ActorKind::Customer,
                customer,
                order_id,
                "ordered by mistake",
            )
            .await?;
        // A refused cancellation (too late) and the order goes on.
        if answer.rejection().is_none() {
            return Ok(Outcome::Cancelled);
        }
    }
    world.pause(0.5).await;
    // A silent restaurant may start before the auto-confirm came: it learns so, and waits.
    let mut attempts = 0;
    loop {
        let answer = api
            .status(ActorKind::Restaurant, restaurant, order_id, "PREPARING")
            .await?;
        attempts += 1;
        if answer.refused_in() == Some(OrderStatus::Placed) && attempts < ATTEMPTS {
            world.pause(0.5).await;
            continue;
        }
        answer.expect_accepted("PREPARING")?;
        break;
    }
    if plan.restaurant_cancels {
        world.pause(2.0).await;
        api.cancel(
            ActorKind::Restaurant,
            restaurant,
            order_id,
            "ran out of salmon",
        )
        .await?
        .expect_accepted("restaurant cancel")?;
        return Ok(Outcome::Cancelled);
    }
    world.pause(plan.prep_minutes).await;
    api.status(
        ActorKind::Restaurant,
        restaurant,
        order_id,
        "READY_FOR_PICKUP",
    )
    .await?
    .expect_accepted("READY_FOR_PICKUP")?;
    Ok(Outcome::Delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_deterministic_and_varied() {
        assert_eq!(
            format!("{:?}", Lifecycle::draw(7, 3)),
            format!("{:?}", Lifecycle::draw(7, 3))
        );
        let plans: Vec<_> = (0..2_000).map(|n| Lifecycle::draw(7, n)).collect();
        let cancels = plans.iter().filter(|p| p.customer_cancels).count();
        assert!((40..130).contains(&cancels), "{cancels}");
        assert!(plans.iter().any(|p| p.restaurant_cancels));
        assert!(plans.iter().any(|p| p.driver_gives_back));
        assert!(plans.iter().all(|p| (8.0..25.0).contains(&p.prep_minutes)));
        let long = plans.iter().filter(|p| p.prep_minutes > 15.0).count();
        assert!(
            (200..700).contains(&long),
            "a tail of slow kitchens: {long}"
        );
        assert!(plans.iter().any(|p| p.restaurant != plans[0].restaurant));
    }
}
