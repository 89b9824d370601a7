//! One simulated order's life, as its actors would live it.

use super::{ApiClient, ApiError, RESTAURANTS, SplitMix, random_delivery_point};
use doorstep_schemas::model::{ActorKind, OrderItem};
use std::time::Duration;

/// Tuning of the simulation.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Orders to place (0 = until stopped).
    pub orders: u64,
    /// Orders placed per second.
    pub orders_per_second: f64,
    /// Real-time speed-up: 60 makes a minute of the script last a second.
    pub speedup: f64,
    /// Drivers in the fleet.
    pub drivers: u32,
    /// Run id, part of every order id so runs never collide.
    pub run_id: String,
    /// Seed for the deterministic pseudo-random choices.
    pub seed: u64,
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
    /// Driver number.
    pub driver: u32,
    /// Restaurant lets auto-confirm happen instead of confirming.
    pub restaurant_silent: bool,
    /// Customer cancels after confirmation.
    pub customer_cancels: bool,
    /// Restaurant cancels while preparing.
    pub restaurant_cancels: bool,
    /// First driver gives the order back.
    pub driver_gives_back: bool,
    /// Minutes of preparation.
    pub prep_minutes: f64,
}

impl Lifecycle {
    /// The plan of order `n` under `seed`.
    pub fn draw(seed: u64, n: u64, drivers: u32) -> Self {
        let mut r = SplitMix(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Self {
            restaurant: (r.next_u64() % RESTAURANTS.len() as u64) as usize,
            driver: (r.next_u64() % u64::from(drivers.max(1))) as u32,
            restaurant_silent: r.chance(0.05),
            customer_cancels: r.chance(0.04),
            restaurant_cancels: r.chance(0.02),
            driver_gives_back: r.chance(0.03),
            prep_minutes: 8.0 + 10.0 * r.unit(),
        }
    }
}

/// Drives order `n` from placement to its end through the API.
pub async fn run_order(
    api: &ApiClient,
    cfg: &SimulationConfig,
    n: u64,
) -> Result<Outcome, ApiError> {
    let plan = Lifecycle::draw(cfg.seed, n, cfg.drivers);
    let pause = |minutes: f64| {
        tokio::time::sleep(Duration::from_secs_f64(
            (minutes * 60.0 / cfg.speedup).max(0.0),
        ))
    };
    let (restaurant, restaurant_at) = RESTAURANTS[plan.restaurant];
    let order_id = format!("{}-o{n}", cfg.run_id);
    let customer = format!("{}-c{n}", cfg.run_id);
    let driver = format!("d-{}", plan.driver);
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
    let to = random_delivery_point(r.unit(), r.unit());
    api.place(
        &customer,
        &order_id,
        restaurant,
        &items,
        1_950,
        restaurant_at,
        to,
    )
    .await?;
    pause(0.5).await;
    api.assign(&order_id, &driver).await?;
    if plan.restaurant_silent {
        // Auto-confirm fires after the configured delay; give it time.
        pause(2.5).await;
    } else {
        pause(1.0).await;
        api.status(ActorKind::Restaurant, restaurant, &order_id, "CONFIRMED")
            .await?;
    }
    if plan.customer_cancels {
        pause(0.5).await;
        api.cancel(
            ActorKind::Customer,
            &customer,
            &order_id,
            "ordered by mistake",
        )
        .await?;
        return Ok(Outcome::Cancelled);
    }
    pause(1.0).await;
    api.status(ActorKind::Restaurant, restaurant, &order_id, "PREPARING")
        .await?;
    if plan.restaurant_cancels {
        pause(2.0).await;
        api.cancel(
            ActorKind::Restaurant,
            restaurant,
            &order_id,
            "ran out of salmon",
        )
        .await?;
        return Ok(Outcome::Cancelled);
    }
    let mut driver = driver;
    if plan.driver_gives_back {
        pause(1.0).await;
        api.cancel(ActorKind::Driver, &driver, &order_id, "flat tyre")
            .await?;
        driver = format!("d-{}", (plan.driver + 1) % cfg.drivers.max(1));
        pause(0.5).await;
        api.assign(&order_id, &driver).await?;
    }
    pause(plan.prep_minutes).await;
    api.status(
        ActorKind::Restaurant,
        restaurant,
        &order_id,
        "READY_FOR_PICKUP",
    )
    .await?;
    pause(2.0).await;
    api.status(ActorKind::Driver, &driver, &order_id, "PICKED_UP")
        .await?;
    pause(0.5).await;
    api.status(ActorKind::Driver, &driver, &order_id, "EN_ROUTE")
        .await?;
    pause(8.0).await;
    api.status(ActorKind::Driver, &driver, &order_id, "DELIVERED")
        .await?;
    Ok(Outcome::Delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_deterministic_and_varied() {
        assert_eq!(
            format!("{:?}", Lifecycle::draw(7, 3, 10)),
            format!("{:?}", Lifecycle::draw(7, 3, 10))
        );
        let plans: Vec<_> = (0..2_000).map(|n| Lifecycle::draw(7, n, 10)).collect();
        let cancels = plans.iter().filter(|p| p.customer_cancels).count();
        assert!((40..130).contains(&cancels), "{cancels}");
        assert!(
            plans
                .iter()
                .all(|p| (8.0..18.0).contains(&p.prep_minutes) && p.driver < 10)
        );
        assert!(plans.iter().any(|p| p.restaurant != plans[0].restaurant));
    }
}
