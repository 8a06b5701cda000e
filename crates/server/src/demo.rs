//! The demo event: what `--demo` and the app's host mode start with, so a
//! director can try the clock the moment Pitboss opens.

use pitboss_core::ops::{Actor, Op, Role};
use pitboss_core::structure::deepstack_template;
use pitboss_core::EventDetails;

use crate::writer::{OpOutcome, WriterHandle};

pub const DEMO_EVENT_NAME: &str = "Saturday Deepstack (demo)";

/// Creates the demo event unless the store already has events; returns the
/// id of the demo event (or of the first event when one exists).
pub async fn ensure_demo_event(writer: &WriterHandle) -> anyhow::Result<String> {
    let events = writer
        .list_events()
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    if let Some(first) = events
        .iter()
        .find(|e| e.name == DEMO_EVENT_NAME)
        .or(events.first())
    {
        return Ok(first.id.clone());
    }
    let details = EventDetails {
        name: DEMO_EVENT_NAME.into(),
        starting_stack: 20_000,
        buy_in: 100,
        rebuy_chips: 20_000,
        rebuy_price: 100,
        addon_chips: 10_000,
        addon_price: 50,
    };
    let ev = writer
        .create_event(details, deepstack_template())
        .await
        .map_err(|e| anyhow::anyhow!(e.body.message))?;
    // Seeded through real ops, so the change log tells the same story as the
    // state: 48 entries, then the clock started.
    let system = Actor {
        operator_id: "system".into(),
        name: "Pitboss".into(),
        device: "server".into(),
        role: Role::Coordinator,
    };
    for (n, op) in [Op::StatsEntry { count: 48 }, Op::ClockStart]
        .into_iter()
        .enumerate()
    {
        let op_id = format!("demo-{}-{n}", ev.id);
        match writer
            .op(ev.id.clone(), op_id, op, system.clone(), "server".into())
            .await
        {
            Ok(OpOutcome::Accepted(_)) => {}
            Ok(OpOutcome::Rejected { body, .. }) => {
                anyhow::bail!("demo seed rejected: {}", body.message)
            }
            Err(e) => anyhow::bail!("demo seed failed: {}", e.body.message),
        }
    }
    Ok(ev.id)
}
