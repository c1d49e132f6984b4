//! Who may call what: every RPC handler (`rpc.rs`) names the privilege it
//! needs and the collection it touches; the caller the front door's gate
//! authenticated (a request extension) is checked against the users and
//! roles coord holds. A request without a caller is refused (fail closed):
//! it did not come through the gate.

use quiver_auth::{Caller, Need};
use tonic::{Request, Status};

use super::MilvusFront;

impl MilvusFront {
    /// The caller the gate put on the request.
    pub(crate) fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            Status::permission_denied("the request carries no caller identity (not authenticated)")
        })
    }

    /// Checks what the request needs (every need must be met) and returns
    /// its message.
    pub(crate) fn allow<T>(
        &self,
        req: Request<T>,
        needs: impl FnOnce(&T) -> Vec<Need>,
    ) -> Result<T, Status> {
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        for need in needs(&r) {
            self.guard
                .authorize(&caller, &need)
                .map_err(|denied| Status::permission_denied(denied.to_string()))?;
        }
        Ok(r)
    }

    /// A privilege on a collection named by name or alias: a grant on
    /// either name counts.
    pub(crate) fn on(&self, privilege: &'static str, name: &str) -> Vec<Need> {
        let resolved = self.catalog.collection(name).map(|c| c.schema.name);
        vec![Need::on(
            privilege,
            std::iter::once(name.to_string()).chain(resolved),
        )]
    }

    /// A privilege on each of several collections.
    /// None named means every collection (`*`).
    pub(crate) fn on_all(&self, privilege: &'static str, names: &[String]) -> Vec<Need> {
        if names.is_empty() {
            return vec![Need::global(privilege)];
        }
        names.iter().flat_map(|n| self.on(privilege, n)).collect()
    }

    /// A privilege on a collection named by id (or, failing that, name).
    pub(crate) fn on_id(&self, privilege: &'static str, id: i64, name: &str) -> Vec<Need> {
        let by_id = self
            .catalog
            .collections()
            .into_iter()
            .find(|c| c.id as i64 == id)
            .map(|c| c.schema.name);
        self.on(privilege, by_id.as_deref().unwrap_or(name))
    }
}
