//! Vectors as a collection of rows: `n` vectors of dimension `dim` in one
//! contiguous buffer, typed by their element type.
//!
//! Only [`ElementType::F32`] is stored today: half floats, bfloat16 and bits
//! are widened to float32 exactly where they enter ([`ElementType::widen`])
//! and narrowed back where they leave ([`ElementType::narrow`]), so every
//! distance is the one Milvus computes; a native storage variant is added to
//! [`VectorData`] / [`VectorSlice`] when one is worth its memory. Every consumer matches the storage enum once per call (not per
//! row or per distance) and works on plain slices inside, so adding a variant
//! makes the compiler list every place that has to handle it.

use std::ops::Range;

/// The element type of a vector field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// 32-bit IEEE floats (Milvus FloatVector). The only one stored today.
    F32,
    /// IEEE half precision (Milvus Float16Vector), stored widened.
    F16,
    /// bfloat16 (Milvus BFloat16Vector), stored widened.
    BF16,
    /// Signed bytes (Milvus Int8Vector), stored widened.
    I8,
    /// Bits, `dim` a multiple of 8 (Milvus BinaryVector), stored widened to
    /// one 0.0 / 1.0 per bit.
    Binary,
}

impl ElementType {
    /// A name for messages ("float32", "binary", ...).
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "float32",
            ElementType::F16 => "float16",
            ElementType::BF16 => "bfloat16",
            ElementType::I8 => "int8",
            ElementType::Binary => "binary",
        }
    }

    /// Rows of this element type as Milvus sends them (little-endian
    /// halves, bytes of 8 bits each, most significant bit first) as float32,
    /// exactly: `dim` floats per row (one per bit for binary). Err says why
    /// the bytes are not whole rows of `dim`.
    pub fn widen(self, bytes: &[u8], dim: usize) -> Result<Vec<f32>, String> {
        let row = self.row_bytes(dim);
        if dim == 0 || !bytes.len().is_multiple_of(row) {
            return Err(format!(
                "{} bytes are not whole {self} rows of dim {dim} ({row} bytes each)",
                bytes.len()
            ));
        }
        Ok(match self {
            ElementType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            ElementType::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            ElementType::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            ElementType::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
            ElementType::Binary => bytes
                .iter()
                .flat_map(|&b| (0..8).rev().map(move |bit| f32::from((b >> bit) & 1)))
                .collect(),
        })
    }

    /// The inverse of [`ElementType::widen`]: float32 values back to this
    /// element type's bytes (exact for values that were widened from it).
    pub fn narrow(self, values: &[f32]) -> Vec<u8> {
        match self {
            ElementType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ElementType::F16 => values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            ElementType::BF16 => values
                .iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                .collect(),
            ElementType::I8 => values.iter().map(|&v| v as i8 as u8).collect(),
            ElementType::Binary => values
                .chunks(8)
                .map(|bits| {
                    bits.iter()
                        .enumerate()
                        .fold(0u8, |b, (i, &v)| b | (u8::from(v != 0.0) << (7 - i)))
                })
                .collect(),
        }
    }

    /// Bytes one row of dimension `dim` occupies.
    pub fn row_bytes(self, dim: usize) -> usize {
        match self {
            ElementType::F32 => dim * 4,
            ElementType::F16 | ElementType::BF16 => dim * 2,
            ElementType::I8 => dim,
            ElementType::Binary => dim.div_ceil(8),
        }
    }
}

impl std::fmt::Display for ElementType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The owned storage of [`Vectors`], one variant per supported element type.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorData {
    F32(Vec<f32>),
}

/// Borrowed storage: the rows of a [`VectorsRef`], or a single row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VectorSlice<'a> {
    F32(&'a [f32]),
}

impl<'a> VectorSlice<'a> {
    pub fn element_type(&self) -> ElementType {
        match self {
            VectorSlice::F32(_) => ElementType::F32,
        }
    }

    /// Number of stored elements (floats for F32).
    pub fn raw_len(&self) -> usize {
        match self {
            VectorSlice::F32(v) => v.len(),
        }
    }

    fn slice(self, r: Range<usize>) -> VectorSlice<'a> {
        match self {
            VectorSlice::F32(v) => VectorSlice::F32(&v[r]),
        }
    }
}

/// `len()` vectors of dimension `dim()`, row-major in one buffer: row `i` is
/// elements `i*dim..(i+1)*dim`. The buffer may hold a trailing partial row
/// (as received, before validation): [`len`](Self::len) counts whole rows
/// and [`is_whole_rows`](Self::is_whole_rows) tells whether there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    dim: usize,
    data: VectorData,
}

impl Default for Vectors {
    /// No rows of F32, dimension 0.
    fn default() -> Self {
        Vectors::f32(0, Vec::new())
    }
}

impl Vectors {
    /// F32 rows of dimension `dim`, row-major in `data`.
    pub fn f32(dim: usize, data: Vec<f32>) -> Self {
        Vectors {
            dim,
            data: VectorData::F32(data),
        }
    }

    /// No rows, of `element`'s storage, with room for `rows` rows. None when
    /// the element type is not supported.
    pub fn with_capacity(element: ElementType, dim: usize, rows: usize) -> Option<Self> {
        match element {
            ElementType::F32 => Some(Vectors::f32(dim, Vec::with_capacity(rows * dim))),
            ElementType::F16 | ElementType::BF16 | ElementType::I8 | ElementType::Binary => None,
        }
    }

    /// No rows, of the same element type and dimension as `self`.
    pub fn empty_like(&self) -> Self {
        let data = match &self.data {
            VectorData::F32(_) => VectorData::F32(Vec::new()),
        };
        Vectors {
            dim: self.dim,
            data,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn element_type(&self) -> ElementType {
        self.view().element_type()
    }

    /// Number of whole rows.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of stored elements (floats for F32), partial rows included.
    pub fn raw_len(&self) -> usize {
        self.view().raw_len()
    }

    /// True when the buffer holds whole rows only (dimension 0: no elements).
    pub fn is_whole_rows(&self) -> bool {
        self.view().is_whole_rows()
    }

    /// Bytes of vector data held.
    pub fn byte_size(&self) -> usize {
        self.view().byte_size()
    }

    pub fn data(&self) -> &VectorData {
        &self.data
    }

    pub fn into_data(self) -> VectorData {
        self.data
    }

    pub fn view(&self) -> VectorsRef<'_> {
        let data = match &self.data {
            VectorData::F32(v) => VectorSlice::F32(v),
        };
        VectorsRef {
            dim: self.dim,
            data,
        }
    }

    /// Row `i`. Panics if `i >= len()`.
    pub fn row(&self, i: usize) -> VectorSlice<'_> {
        self.view().row(i)
    }

    /// Appends one row (`row` must have `dim()` elements of the same type).
    pub fn push_row(&mut self, row: VectorSlice<'_>) {
        match (&mut self.data, row) {
            (VectorData::F32(v), VectorSlice::F32(r)) => v.extend_from_slice(r),
        }
    }

    /// Removes the first `n` rows (all of them when `n >= len()`).
    pub fn drain_front(&mut self, n: usize) {
        let end = n.min(self.len()) * self.dim;
        match &mut self.data {
            VectorData::F32(v) => {
                v.drain(..end);
            }
        }
    }

    /// Keeps the rows `i` with `keep[i]` (rows past `keep` are kept), in order.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let dim = self.dim;
        if dim == 0 {
            return;
        }
        fn retain<T: Copy>(v: &mut Vec<T>, dim: usize, keep: &[bool]) {
            let mut out = 0;
            for i in 0..v.len() / dim {
                if keep.get(i).copied().unwrap_or(true) {
                    v.copy_within(i * dim..(i + 1) * dim, out * dim);
                    out += 1;
                }
            }
            v.truncate(out * dim);
        }
        match &mut self.data {
            VectorData::F32(v) => retain(v, dim, keep),
        }
    }
}

/// A borrowed [`Vectors`]: rows held by someone else (a batch, a growing
/// buffer, a memory-mapped segment). Cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorsRef<'a> {
    dim: usize,
    data: VectorSlice<'a>,
}

impl<'a> VectorsRef<'a> {
    /// Rows of dimension `dim` in `data` (a trailing partial row is allowed
    /// and not counted by `len()`).
    pub fn new(dim: usize, data: VectorSlice<'a>) -> Self {
        VectorsRef { dim, data }
    }

    /// F32 rows of dimension `dim`.
    pub fn f32(dim: usize, data: &'a [f32]) -> Self {
        VectorsRef::new(dim, VectorSlice::F32(data))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    /// Number of whole rows.
    pub fn len(&self) -> usize {
        self.raw_len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn raw_len(&self) -> usize {
        self.data.raw_len()
    }

    pub fn is_whole_rows(&self) -> bool {
        match self.dim {
            0 => self.raw_len() == 0,
            d => self.raw_len().is_multiple_of(d),
        }
    }

    pub fn byte_size(&self) -> usize {
        match self.data {
            VectorSlice::F32(v) => std::mem::size_of_val(v),
        }
    }

    pub fn data(&self) -> VectorSlice<'a> {
        self.data
    }

    /// Row `i`. Panics if `i >= len()`.
    pub fn row(&self, i: usize) -> VectorSlice<'a> {
        self.data.slice(i * self.dim..(i + 1) * self.dim)
    }

    /// Rows `r` as vectors of their own.
    pub fn rows(&self, r: Range<usize>) -> VectorsRef<'a> {
        VectorsRef::new(
            self.dim,
            self.data.slice(r.start * self.dim..r.end * self.dim),
        )
    }

    pub fn to_vectors(&self) -> Vectors {
        let data = match self.data {
            VectorSlice::F32(v) => VectorData::F32(v.to_vec()),
        };
        Vectors {
            dim: self.dim,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_views_and_edits() {
        let mut v = Vectors::f32(2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            (v.len(), v.dim(), v.raw_len(), v.byte_size()),
            (3, 2, 6, 24)
        );
        assert_eq!(v.element_type(), ElementType::F32);
        assert_eq!(v.row(1), VectorSlice::F32(&[3.0, 4.0]));
        assert_eq!(
            v.view().rows(1..3).to_vectors(),
            Vectors::f32(2, vec![3.0, 4.0, 5.0, 6.0])
        );
        v.retain_rows(&[true, false]);
        assert_eq!(v, Vectors::f32(2, vec![1.0, 2.0, 5.0, 6.0]));
        v.push_row(VectorSlice::F32(&[7.0, 8.0]));
        v.drain_front(2);
        assert_eq!(v, Vectors::f32(2, vec![7.0, 8.0]));
        v.drain_front(5);
        assert!(v.is_empty() && v.is_whole_rows());
    }

    #[test]
    fn partial_rows_and_dim_zero() {
        let v = Vectors::f32(2, vec![1.0, 2.0, 3.0]);
        assert_eq!((v.len(), v.is_whole_rows()), (1, false));
        let z = Vectors::f32(0, vec![1.0]);
        assert_eq!((z.len(), z.is_whole_rows()), (0, false));
        assert!(Vectors::default().is_whole_rows());
    }

    #[test]
    fn element_types() {
        assert_eq!(ElementType::Binary.row_bytes(9), 2);
        assert_eq!(ElementType::F16.row_bytes(3), 6);
        assert!(Vectors::with_capacity(ElementType::BF16, 4, 1).is_none());
        assert_eq!(ElementType::F16.to_string(), "float16");
    }
}

#[cfg(test)]
mod widen_tests {
    use super::ElementType;

    #[test]
    fn widening_is_exact_and_narrowing_inverts_it() {
        let bits = [0b1010_0000u8, 0xff];
        let w = ElementType::Binary.widen(&bits, 16).expect("bits");
        assert_eq!(&w[..4], &[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(w.iter().sum::<f32>(), 10.0);
        assert_eq!(ElementType::Binary.narrow(&w), bits);
        for t in [ElementType::F16, ElementType::BF16] {
            let bytes: Vec<u8> = (0u8..16).map(|b| b.wrapping_mul(37)).collect();
            let w = t.widen(&bytes, 4).expect("halves");
            assert_eq!(w.len(), 8);
            let finite: Vec<u8> = t.narrow(&w);
            // NaN payloads aside (none here), the round trip gives the bytes back.
            assert_eq!(finite, bytes, "{t}");
        }
        let e = ElementType::F16
            .widen(&[0; 6], 4)
            .expect_err("not whole rows");
        assert!(e.contains("dim 4"), "{e}");
    }
}
