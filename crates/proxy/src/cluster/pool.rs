//! One network client per node address, made on first use and kept.

use std::collections::HashMap;

use parking_lot::Mutex;
use quiver_common::Result;
use quiver_rpc::ClientConfig;

pub(crate) struct Pool<C> {
    config: ClientConfig,
    make: fn(&str, ClientConfig) -> Result<C>,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> Pool<C> {
    pub(crate) fn new(config: ClientConfig, make: fn(&str, ClientConfig) -> Result<C>) -> Self {
        Self {
            config,
            make,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client of `addr` (cheap clones sharing one lazy channel).
    pub(crate) fn get(&self, addr: &str) -> Result<C> {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let c = (self.make)(addr, self.config.clone())?;
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}
