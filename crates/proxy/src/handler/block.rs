//! Phase 0, block: clients the ConfigMap refuses whatever they ask for (`block-cidrs`,
//! `block-user-agents`): 403, before routing, as nginx's http-level `deny` and `map` do.

use super::{Connection, Reject};
use crate::table::Block;
use http::{header, Request};

pub fn check<B>(block: &Block, req: &Request<B>, conn: &Connection) -> Result<(), Reject> {
    if block.is_empty() {
        return Ok(());
    }
    if block.cidrs.iter().any(|net| net.contains(conn.remote)) {
        return Err(Reject::Blocked);
    }
    if let Some(agent) = req.headers().get(header::USER_AGENT) {
        if block.user_agents.iter().any(|a| a == agent)
            || block
                .user_agent_patterns
                .as_ref()
                .is_some_and(|set| set.is_match(agent.as_bytes()))
        {
            return Err(Reject::Blocked);
        }
    }
    Ok(())
}
