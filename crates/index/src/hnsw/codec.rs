//! Versioned, checksummed byte format of [`HnswIndex`].
//!
//! Layout (little-endian): magic `QVHNSW\0\0`, version u32, metric u32, dim,
//! n, m, ef_construction, entry, max_level (u32 each), then the arrays
//! `level0` (u32), `levels` (u8), `upper_start` (u32), `upper` (u32), each
//! prefixed by its u64 length, and finally a u64 checksum of all prior bytes.
//! Version 1 graphs are over F32 rows; a graph over another element type
//! needs a version of its own that records it.
//!
//! Version 2 (`HNSW_SQ`) is version 1 plus, before the checksum, the 8-bit
//! quantizer and codes: `lo` (f32), `step` (f32), `dim` values each, and
//! `codes` (u8, `n * dim`, row-major), each prefixed by its u64 length.
//! Version 1 is still written for graphs without codes, and read as before.
//!
//! Version 3 (`HNSW_SQ` coded along principal axes, `sq/pca.rs`) is version
//! 2 with `HEAD + dim` values in `lo` and `step` and as many codes a row,
//! plus, after the codes, the projection: `mean` (f32, `dim`) and `axes`
//! (f32, `AXES * dim`, one axis a row), each prefixed by its u64 length.
//! Version 2 is still written for codes without a projection, and for
//! COSINE and IP codes with one (their plain codes: the previous release
//! reads version 3 for L2 only); this release reads version 3 for COSINE
//! and IP too.

use quiver_common::Metric;

use super::links0::Links0;
use super::{Graph, HnswIndex};
use crate::error::{IndexError, Result};
use crate::sq::{Projection, SqCodes};

const MAGIC: &[u8; 8] = b"QVHNSW\0\0";
/// A graph over F32 rows.
const VERSION: u32 = 1;
/// A graph over 8-bit codes of F32 rows, with the quantizer and the codes.
const VERSION_SQ8: u32 = 2;
/// [`VERSION_SQ8`] with codes along the rows' principal axes.
const VERSION_SQ8_PROJECTED: u32 = 3;

/// 64-bit checksum: every step is a bijection of the state, so any change
/// confined to one 8-byte word is always detected.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut mix = |w: u64| {
        h = (h ^ w).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 32;
    };
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        mix(u64::from_le_bytes(w));
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix(u64::from_le_bytes(w));
    h = (h ^ (h >> 29)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 32)
}

fn corrupt(msg: impl Into<String>) -> IndexError {
    IndexError::Corrupt(msg.into())
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() < n {
            return Err(corrupt("truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn len(&mut self, elem: usize) -> Result<usize> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        let n = usize::try_from(u64::from_le_bytes(a)).map_err(|_| corrupt("length overflow"))?;
        match n.checked_mul(elem) {
            Some(bytes) if bytes <= self.b.len() => Ok(n),
            _ => Err(corrupt("array longer than the input")),
        }
    }
    fn u32s(&mut self) -> Result<Vec<u32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn f32s(&mut self) -> Result<Vec<f32>> {
        let n = self.len(4)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let n = self.len(1)?;
        Ok(self.take(n)?.to_vec())
    }
}

fn put_u32s(out: &mut Vec<u8>, v: &[u32]) {
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

impl HnswIndex {
    /// Serialises the graph (not the vectors). Codes along principal axes
    /// are stored as they are (version 3), for every metric: the previous
    /// release (a2fe35c) reads version 3 for L2, COSINE and IP.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(true)
    }

    /// [`HnswIndex::to_bytes`], storing projected codes as they are
    /// (`keep_projection`) or as their plain codes (format version 2, as
    /// the release before projected codes stored every graph).
    pub fn to_bytes_with(&self, keep_projection: bool) -> Vec<u8> {
        let g = &self.graph;
        let mut out = Vec::with_capacity(self.memory_bytes() + 128);
        out.extend_from_slice(MAGIC);
        let metric = match self.metric {
            Metric::L2 => 0u32,
            Metric::Ip | Metric::Bm25 => 1,
            Metric::Cosine => 2,
            Metric::Hamming => 3,
            Metric::Jaccard => 4,
        };
        let proj = self
            .sq
            .as_ref()
            .and_then(SqCodes::projection)
            .filter(|_| keep_projection);
        let version = match &self.sq {
            Some(_) if proj.is_some() => VERSION_SQ8_PROJECTED,
            Some(_) => VERSION_SQ8,
            None => VERSION,
        };
        let header = [
            version,
            metric,
            self.dim as u32,
            self.n as u32,
            self.m as u32,
        ];
        let header2 = [self.ef_construction as u32, g.entry, g.max_level];
        for x in header.iter().chain(&header2) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        put_u32s(&mut out, &g.level0.to_counted());
        out.extend_from_slice(&(g.levels.len() as u64).to_le_bytes());
        out.extend_from_slice(&g.levels);
        put_u32s(&mut out, &g.upper_start);
        put_u32s(&mut out, &g.upper);
        if let Some(sq) = &self.sq {
            let (lo, step, codes) = sq.stored_parts(proj.is_some());
            for v in [lo, step] {
                out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                for x in v {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            out.extend_from_slice(&(codes.len() as u64).to_le_bytes());
            out.extend_from_slice(&codes);
            if let Some(proj) = proj {
                for v in [proj.mean(), proj.axes()] {
                    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
                    for x in v {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parses bytes from [`HnswIndex::to_bytes`]; any truncation, corruption,
    /// unknown version or inconsistent structure is an error.
    pub fn from_bytes(b: &[u8]) -> Result<HnswIndex> {
        if b.len() < MAGIC.len() + 8 || &b[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not an HNSW index (bad magic or too short)"));
        }
        let (body, tail) = b.split_at(b.len() - 8);
        let mut sum = [0u8; 8];
        sum.copy_from_slice(tail);
        if checksum(body) != u64::from_le_bytes(sum) {
            return Err(corrupt("checksum mismatch"));
        }
        let mut r = Reader {
            b: &body[MAGIC.len()..],
        };
        let version = r.u32()?;
        if !(VERSION..=VERSION_SQ8_PROJECTED).contains(&version) {
            return Err(corrupt(format!("unsupported version {version}")));
        }
        let metric = match r.u32()? {
            0 => Metric::L2,
            1 => Metric::Ip,
            2 => Metric::Cosine,
            3 => Metric::Hamming,
            4 => Metric::Jaccard,
            x => return Err(corrupt(format!("unknown metric {x}"))),
        };
        let [dim, n, m, efc, entry, max_level] = [(); 6].map(|_| r.u32());
        let (dim, n, m, efc) = (dim? as usize, n? as usize, m? as usize, efc? as usize);
        let (entry, max_level) = (entry?, max_level?);
        let level0 = r.u32s()?;
        let mut graph = Graph {
            entry,
            max_level,
            level0: Links0::default(),
            levels: r.bytes()?,
            upper_start: r.u32s()?,
            upper: r.u32s()?,
        };
        let sq = if version >= VERSION_SQ8 {
            let (lo, step, codes) = (r.f32s()?, r.f32s()?, r.bytes()?);
            let proj = if version == VERSION_SQ8_PROJECTED {
                let (mean, axes) = (r.f32s()?, r.f32s()?);
                Some(
                    Projection::from_parts(mean, axes)
                        .filter(|p| p.dim() == dim)
                        .ok_or_else(|| corrupt("projection does not match dim"))?,
                )
            } else {
                None
            };
            let coded = proj.as_ref().map_or(dim, Projection::coded_dim);
            if lo.len() != coded || codes.len() != n.saturating_mul(coded) {
                return Err(corrupt("quantizer does not match dim and n"));
            }
            let sq = SqCodes::from_ranges(metric, lo, step, codes, proj)
                .map_err(|e| corrupt(format!("quantizer: {e}")))?;
            Some(sq)
        } else {
            None
        };
        if !r.b.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        validate(&graph, &level0, dim, n, m)?;
        graph.level0 = Links0::from_counted(&level0, m);
        Ok(HnswIndex::from_parts(metric, dim, n, m, efc, graph, sq))
    }
}

/// Checks every invariant search relies on, so that search never panics
/// (`level0` in the file's layout, count first).
fn validate(g: &Graph, level0: &[u32], dim: usize, n: usize, m: usize) -> Result<()> {
    if dim == 0 || !(2..=2048).contains(&m) {
        return Err(corrupt("bad dim or m"));
    }
    if n >= super::beam::MAX_NODES {
        return Err(corrupt("too many nodes"));
    }
    let stride0 = 2 * m + 1;
    if level0.len() != n * stride0 || g.levels.len() != n || g.upper_start.len() != n {
        return Err(corrupt("array sizes do not match n"));
    }
    if n > 0 && (g.entry as usize >= n || g.levels[g.entry as usize] as u32 != g.max_level) {
        return Err(corrupt("bad entry point"));
    }
    let ids_ok = |row: &[u32], cap: usize| {
        let cnt = row[0] as usize;
        cnt <= cap && row[1..=cnt].iter().all(|&x| (x as usize) < n)
    };
    if !level0.chunks_exact(stride0).all(|row| ids_ok(row, 2 * m)) {
        return Err(corrupt("bad level-0 adjacency"));
    }
    let mut next = 0usize;
    for (i, &start) in g.upper_start.iter().enumerate() {
        let levels = g.levels[i] as usize;
        if levels == 0 {
            if start != u32::MAX {
                return Err(corrupt("level-0 node with upper links"));
            }
            continue;
        }
        let len = levels * (m + 1);
        if start as usize != next || next + len > g.upper.len() {
            return Err(corrupt("bad upper-level offsets"));
        }
        if !g.upper[next..next + len]
            .chunks_exact(m + 1)
            .all(|row| ids_ok(row, m))
        {
            return Err(corrupt("bad upper-level adjacency"));
        }
        next += len;
    }
    if next != g.upper.len() {
        return Err(corrupt("bad upper-level size"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hnsw::HnswParams;
    use quiver_common::VectorsRef;

    fn small() -> (Vec<f32>, HnswIndex) {
        let v: Vec<f32> = (0..400)
            .map(|i| ((i * 7919) % 101) as f32 / 101.0)
            .collect();
        let idx = HnswIndex::build(
            VectorsRef::f32(4, &v),
            Metric::L2,
            &HnswParams::default(),
            1,
            &|_| {},
        )
        .expect("build");
        (v, idx)
    }

    /// Re-seals `body` (all bytes before the checksum) with a valid checksum.
    fn reseal(mut body: Vec<u8>) -> Vec<u8> {
        let sum = checksum(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        body
    }

    #[test]
    fn structurally_invalid_but_checksummed_input_is_rejected() {
        let (_, idx) = small();
        let bytes = idx.to_bytes();
        let body = bytes[..bytes.len() - 8].to_vec();
        assert!(HnswIndex::from_bytes(&reseal(body.clone())).is_ok());
        // Header: 8 magic + 8 u32 = 40 bytes, then level0's u64 length, then row 0.
        let first_neighbor = 40 + 8 + 4;
        let mut b = body.clone();
        b[first_neighbor..first_neighbor + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert!(matches!(
            HnswIndex::from_bytes(&reseal(b)),
            Err(IndexError::Corrupt(_))
        ));
        let mut b = body.clone();
        b[40 + 8..40 + 12].copy_from_slice(&999u32.to_le_bytes()); // neighbour count
        assert!(HnswIndex::from_bytes(&reseal(b)).is_err());
        let mut b = body.clone();
        b[40..48].copy_from_slice(&u64::MAX.to_le_bytes()); // absurd array length
        assert!(HnswIndex::from_bytes(&reseal(b)).is_err());
        let mut b = body;
        b[8..12].copy_from_slice(&4u32.to_le_bytes()); // future version
        assert!(HnswIndex::from_bytes(&reseal(b)).is_err());
    }

    #[test]
    fn huge_ef_and_k_do_not_overflow() {
        let (v, idx) = small();
        let all = idx.search(
            VectorsRef::f32(4, &v),
            &v[..4],
            usize::MAX,
            usize::MAX,
            None,
        );
        assert_eq!(all.len(), 100);
        let flat = crate::flat_search(
            VectorsRef::f32(4, &v),
            Metric::L2,
            &v[..4],
            usize::MAX,
            None,
        );
        assert_eq!(flat.len(), 100);
    }
}
