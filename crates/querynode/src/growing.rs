//! Growing rows of a shard: appended in timestamp order as mutations arrive,
//! searched exactly.

use quiver_common::{
    ElementType, PrimaryKey, RowBatch, ScalarValue, Timestamp, VectorSlice, Vectors,
};

/// Row-aligned columns of the rows not yet sealed.
#[derive(Debug, Default)]
pub(crate) struct Growing {
    pub pks: Vec<PrimaryKey>,
    pub timestamps: Vec<Timestamp>,
    pub vectors: Vectors,
    /// One column per scalar field of the schema, in schema order.
    pub columns: Vec<Vec<ScalarValue>>,
    pub deleted: Vec<bool>,
    pub live: usize,
    /// Digest hashes of the first rows (`quiver_api::row_hash`), filled in
    /// by the first digest that needs them: rows never change once pushed,
    /// so a digest hashes each row once, and writes never pay for it.
    pub hashes: parking_lot::Mutex<Vec<u64>>,
}

impl Growing {
    /// No rows yet (element types Quiver cannot store never get this far:
    /// their schemas are refused).
    pub fn new(element: ElementType, dim: usize, scalar_fields: usize) -> Self {
        Self {
            vectors: Vectors::with_capacity(element, dim, 0)
                .unwrap_or_else(|| Vectors::f32(dim, Vec::new())),
            columns: vec![Vec::new(); scalar_fields],
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.pks.len()
    }

    /// Appends row `r` of `batch`; `names` are the schema's scalar fields.
    pub fn push(&mut self, ts: Timestamp, batch: &RowBatch, r: usize, names: &[String]) -> u32 {
        let row = self.pks.len() as u32;
        self.pks.push(batch.pks[r].clone());
        self.timestamps.push(ts);
        self.vectors.push_row(batch.vector(r));
        for (col, name) in self.columns.iter_mut().zip(names) {
            let v = batch
                .columns
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.values.get(r).cloned())
                .unwrap_or(ScalarValue::Null);
            col.push(v);
        }
        self.deleted.push(false);
        self.live += 1;
        row
    }

    pub fn delete(&mut self, row: u32) {
        if let Some(d) = self.deleted.get_mut(row as usize)
            && !*d
        {
            *d = true;
            self.live -= 1;
        }
    }

    pub fn vector(&self, row: usize) -> VectorSlice<'_> {
        self.vectors.row(row)
    }

    /// Drops the first `n` rows (now held by a sealed segment).
    pub fn drop_prefix(&mut self, n: usize) {
        let n = n.min(self.len());
        let dropped_live = self.deleted[..n].iter().filter(|d| !**d).count();
        self.pks.drain(..n);
        self.timestamps.drain(..n);
        self.vectors.drain_front(n);
        for c in &mut self.columns {
            c.drain(..n);
        }
        self.deleted.drain(..n);
        let mut hashes = self.hashes.lock();
        let cached = n.min(hashes.len());
        hashes.drain(..cached);
        self.live -= dropped_live;
    }
}
