//! ProjectTracker: the projects (`x-project`) that send requests, with their usage; answered from
//! the database, so that every instance sharing a ledger gives the same answer.

use actix::prelude::*;
use entities::{projects, requests};
use sea_orm::{DatabaseConnection, DbErr};

use crate::ledger::store::{self, GroupSums, RecordFilter, Window};

/// The project tracker actor.
pub struct ProjectTracker {
    db: DatabaseConnection,
}

impl ProjectTracker {
    /// A tracker reading from `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for ProjectTracker {
    type Context = Context<Self>;
}

/// Projects (seen since a time, when given) with their usage sums by group.
#[derive(Message)]
#[rtype(result = "Result<(Vec<projects::Model>, Vec<GroupSums>), DbErr>")]
pub struct ListProjects {
    pub active_since_ms: Option<i64>,
}

impl Handler<ListProjects> for ProjectTracker {
    type Result = ResponseFuture<Result<(Vec<projects::Model>, Vec<GroupSums>), DbErr>>;

    fn handle(&mut self, msg: ListProjects, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let projects = store::projects(&db, msg.active_since_ms).await?;
            let sums = store::group_sums(&db, Window::default()).await?;
            Ok((projects, sums))
        })
    }
}

/// A project's records, most recent first; None when the project has never been seen.
#[derive(Message)]
#[rtype(result = "Result<Option<Vec<requests::Model>>, DbErr>")]
pub struct ProjectRecords(pub RecordFilter);

impl Handler<ProjectRecords> for ProjectTracker {
    type Result = ResponseFuture<Result<Option<Vec<requests::Model>>, DbErr>>;

    fn handle(&mut self, msg: ProjectRecords, _: &mut Self::Context) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let project = msg.0.project.clone().unwrap_or_default();
            if !store::project_exists(&db, &project).await? {
                return Ok(None);
            }
            store::records(&db, &msg.0).await.map(Some)
        })
    }
}
