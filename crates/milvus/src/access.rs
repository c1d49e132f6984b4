//! Who may call what: every RPC handler (`rpc.rs`) names the privilege it
//! needs and the collection it touches; the caller the front door's gate
//! authenticated (a request extension) is checked against the users and
//! roles coord holds. A request without a caller is refused (fail closed):
//! it did not come through the gate.

use quiver_auth::{Caller, Need, ROOT};
use tonic::{Request, Status};

use super::MilvusFront;
use super::database::{Scoped, header_db, scope};

impl MilvusFront {
    /// The caller the gate put on the request.
    pub(crate) fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            Status::permission_denied("the request carries no caller identity (not authenticated)")
        })
    }

    /// Checks what the request needs (every need must be met) and returns
    /// its message, its names qualified by its database
    /// ([`super::database::scope`]: needs name collections as every layer
    /// behind the front door does). Callers that may do anything (auth
    /// off, root) skip the work of naming the needs.
    pub(crate) fn allow<T: Scoped>(
        &self,
        req: Request<T>,
        needs: impl FnOnce(&T) -> Vec<Need>,
    ) -> Result<T, Status> {
        let caller = self.caller(&req)?;
        let header = header_db(&req);
        let mut r = req.into_inner();
        scope(&mut r, header.as_deref()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if matches!(&caller, Caller::Anyone) || caller.user() == Some(ROOT) {
            return Ok(r);
        }
        for need in needs(&r) {
            if self.guard.authorize(&caller, &need).is_ok() {
                continue;
            }
            // A grant on the collection an alias names counts too (looked
            // up only when the name itself was not enough).
            let resolved: Vec<String> = need
                .objects
                .iter()
                .filter_map(|o| self.catalog.collection(o).map(|c| c.schema.name))
                .filter(|n| !need.objects.contains(n))
                .collect();
            let widened = Need::on(need.privilege, need.objects.iter().cloned().chain(resolved));
            self.guard
                .authorize(&caller, &widened)
                .map_err(|denied| Status::permission_denied(denied.to_string()))?;
        }
        Ok(r)
    }

    /// A privilege on a collection named by name or alias (a grant on
    /// either counts: see [`MilvusFront::allow`]).
    pub(crate) fn on(&self, privilege: &'static str, name: &str) -> Vec<Need> {
        vec![Need::on(privilege, [name])]
    }

    /// A privilege on each of several collections; none named means every
    /// collection (`*`).
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
