//! The Router actor: folds the outcomes the meter reports into live figures and republishes
//! them on an interval, for the request path to read without a round trip (the routing itself
//! runs on shared state, `router::Routing::route`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arc_swap::ArcSwap;

use crate::router::live::{LiveFigures, LiveTally, Observation};

/// The actor owning the live tally.
pub struct Router {
    tally: LiveTally,
    published: Arc<ArcSwap<LiveFigures>>,
    refresh: Duration,
}

impl Router {
    /// `published` is the handle the request path reads (`Routing::live`).
    pub fn new(published: Arc<ArcSwap<LiveFigures>>, refresh: Duration) -> Self {
        Self {
            tally: LiveTally::default(),
            published,
            refresh,
        }
    }

    fn publish(&mut self) {
        if let Some(figures) = self.tally.publish() {
            self.published.store(Arc::new(figures));
        }
    }
}

impl Actor for Router {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.refresh, |actor, _| actor.publish());
    }
}

impl Handler<Observation> for Router {
    type Result = ();

    fn handle(&mut self, observation: Observation, _: &mut Self::Context) {
        self.tally.observe(observation);
    }
}

/// Publishes the live figures now (tests and shutdown use it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishNow;

impl Handler<PublishNow> for Router {
    type Result = ();

    fn handle(&mut self, _: PublishNow, _: &mut Self::Context) {
        self.publish();
    }
}

/// Forgets a removed provider's samples.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetProvider(pub String);

impl Handler<ForgetProvider> for Router {
    type Result = ();

    fn handle(&mut self, msg: ForgetProvider, _: &mut Self::Context) {
        self.tally.forget(&msg.0);
    }
}
