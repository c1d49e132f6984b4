//! Collection schemas: fields, types, the vector field and its metric.

use serde::{Deserialize, Serialize};

use crate::batch::ScalarValue;
use crate::error::{Error, Result};
use crate::vectors::ElementType;

/// Largest vector dimension accepted (Milvus's limit).
pub const MAX_DIM: u32 = 32_768;
/// Vector fields a collection may have (Milvus's `proxy.maxVectorFieldNum`).
pub const MAX_VECTOR_FIELDS: usize = 4;
/// Largest `max_length` of a VarChar field (Milvus's limit).
pub const MAX_VARCHAR_LENGTH: u32 = 65_535;
/// Largest `max_capacity` of an Array field (Milvus's limit).
pub const MAX_ARRAY_CAPACITY: u32 = 4096;

/// Distance metric of a vector field, with Milvus's conventions: L2 is the
/// squared Euclidean distance (smaller is closer); IP and COSINE are
/// similarities (larger is closer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    L2,
    Ip,
    Cosine,
    /// Bits that differ (binary vectors; smaller is closer).
    Hamming,
    /// 1 - |a and b| / |a or b| over the set bits (binary vectors; smaller is closer).
    Jaccard,
    /// BM25 relevance of a text query to a BM25 function's output (sparse
    /// term counts; larger is closer).
    Bm25,
}

impl Metric {
    /// Parses Milvus's metric names (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "L2" => Ok(Metric::L2),
            "IP" => Ok(Metric::Ip),
            "COSINE" => Ok(Metric::Cosine),
            "HAMMING" => Ok(Metric::Hamming),
            "JACCARD" => Ok(Metric::Jaccard),
            "BM25" => Ok(Metric::Bm25),
            other => Err(Error::invalid(
                "metric_type",
                format!("must be one of L2, IP, COSINE, HAMMING, JACCARD, BM25 (got {other:?})"),
            )),
        }
    }

    /// Milvus's name of the metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "L2",
            Metric::Ip => "IP",
            Metric::Cosine => "COSINE",
            Metric::Hamming => "HAMMING",
            Metric::Jaccard => "JACCARD",
            Metric::Bm25 => "BM25",
        }
    }

    /// Whether vectors of `element` are compared with this metric (bits by
    /// HAMMING / JACCARD, numbers by L2 / IP / COSINE, as Milvus).
    pub fn fits(self, element: ElementType) -> bool {
        let binary_metric = matches!(self, Metric::Hamming | Metric::Jaccard);
        self != Metric::Bm25 && binary_metric == (element == ElementType::Binary)
    }

    /// True when a larger score is closer (IP, COSINE); false when a smaller
    /// one is (L2). Every decision about the order of scores goes through this.
    pub fn higher_is_closer(self) -> bool {
        match self {
            Metric::L2 | Metric::Hamming | Metric::Jaccard => false,
            Metric::Ip | Metric::Cosine | Metric::Bm25 => true,
        }
    }
}

/// Scalar and vector data types (the Milvus subset Quiver supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    VarChar,
    Json,
    FloatVector,
    /// Bits; `dim` counts bits (a multiple of 8).
    BinaryVector,
    Float16Vector,
    BFloat16Vector,
    /// A list of up to `max_capacity` values of the field's `element_type`.
    /// (New variants go last: the internal wire encodes the variant's index.)
    Array,
    /// Signed bytes (Milvus 2.6 / pymilvus 3.0), stored widened to float32.
    Int8Vector,
    /// (index, value) pairs of any dimension ([`crate::ScalarValue::Sparse`]),
    /// always a column, searched by inner product or BM25.
    SparseFloatVector,
}

impl DataType {
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
        )
    }

    /// The element type of a vector type (None for scalars).
    pub fn element_type(self) -> Option<ElementType> {
        match self {
            DataType::FloatVector => Some(ElementType::F32),
            DataType::Float16Vector => Some(ElementType::F16),
            DataType::BFloat16Vector => Some(ElementType::BF16),
            DataType::BinaryVector => Some(ElementType::Binary),
            DataType::Int8Vector => Some(ElementType::I8),
            _ => None,
        }
    }

    /// True for the vector types, dense and sparse.
    pub fn is_vector(self) -> bool {
        self.is_dense_vector() || self == DataType::SparseFloatVector
    }

    /// True for the vector types with a dimension and an element type.
    pub fn is_dense_vector(self) -> bool {
        self.element_type().is_some()
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    pub name: String,
    pub data_type: DataType,
    #[serde(default)]
    pub is_primary_key: bool,
    /// Primary key values are generated by Quiver (Int64 keys only).
    #[serde(default)]
    pub auto_id: bool,
    /// Dimension, for FloatVector fields.
    #[serde(default)]
    pub dim: Option<u32>,
    /// Maximum length in bytes, for VarChar fields.
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub description: String,
    /// Rows are spread over the collection's partitions by this field's
    /// value (Milvus's partition key; Int64 or VarChar, at most one).
    #[serde(default)]
    pub is_partition_key: bool,
    /// The value of rows written without one (or with null), as Milvus's
    /// `default_value`. Scalar fields other than the key and JSON only.
    #[serde(default)]
    pub default_value: Option<ScalarValue>,
    /// Field properties users set ([`MMAP_PROPERTY`]), kept and reported.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// The type of an Array field's elements (a scalar type, not JSON).
    #[serde(default)]
    pub element_type: Option<DataType>,
    /// The most elements an Array field's value holds.
    #[serde(default)]
    pub max_capacity: Option<u32>,
    /// A VarChar field whose text is analysed (Milvus's `enable_analyzer`):
    /// the input of a BM25 function, or matched by `TEXT_MATCH`.
    #[serde(default)]
    pub enable_analyzer: bool,
    /// The analyzer's parameters as given (JSON; None: the standard one).
    #[serde(default)]
    pub analyzer_params: Option<String>,
    /// `TEXT_MATCH` / `PHRASE_MATCH` may name the field (Milvus's
    /// `enable_match`; needs `enable_analyzer`).
    #[serde(default)]
    pub enable_match: bool,
}

impl FieldSchema {
    /// A field with defaults for everything but its name and type.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self {
            name: name.into(),
            data_type,
            is_primary_key: false,
            auto_id: false,
            dim: None,
            max_length: None,
            nullable: false,
            description: String::new(),
            is_partition_key: false,
            default_value: None,
            properties: Default::default(),
            element_type: None,
            max_capacity: None,
            enable_analyzer: false,
            analyzer_params: None,
            enable_match: false,
        }
    }

    /// The analyzer of a field with `enable_analyzer` (Err: its parameters
    /// are not an analyzer, naming the field).
    pub fn analyzer(&self) -> Result<quiver_text::Analyzer> {
        quiver_text::Analyzer::from_params(self.analyzer_params.as_deref().unwrap_or(""))
            .map_err(|e| Error::invalid(format!("{}.analyzer_params", self.name), e))
    }

    /// An Array field of `element` values, at most `capacity` of them.
    pub fn array(name: impl Into<String>, element: DataType, capacity: u32) -> Self {
        let mut f = Self::new(name, DataType::Array);
        f.element_type = Some(element);
        f.max_capacity = Some(capacity);
        f
    }

    pub fn primary(mut self, auto_id: bool) -> Self {
        self.is_primary_key = true;
        self.auto_id = auto_id;
        self
    }

    pub fn with_dim(mut self, dim: u32) -> Self {
        self.dim = Some(dim);
        self
    }

    pub fn with_max_length(mut self, max_length: u32) -> Self {
        self.max_length = Some(max_length);
        self
    }

    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }
}

/// The consistency level a collection's reads use when a request does not
/// name one (Milvus's `consistency_level` of CreateCollection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConsistencyLevel {
    /// Everything acknowledged before the read started. The default for
    /// collections that never chose one.
    #[default]
    Strong,
    /// The client's own writes (the guarantee timestamp it sends).
    Session,
    /// Everything older than the staleness bound.
    Bounded,
    /// Whatever has been applied.
    Eventually,
    /// The guarantee timestamp the client sends, whatever it is.
    Customized,
}

/// The schema of a collection: exactly one primary key field, exactly one
/// FloatVector field, any number of scalar fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionSchema {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub fields: Vec<FieldSchema>,
    /// Extra keys of inserted rows are kept in the `$meta` JSON field.
    #[serde(default)]
    pub enable_dynamic_field: bool,
    /// The consistency of reads that do not name one.
    #[serde(default)]
    pub consistency: ConsistencyLevel,
    /// Collection properties users set (Milvus's `properties`):
    /// [`TTL_PROPERTY`] (rows older than it expire), [`MMAP_PROPERTY`], and
    /// any other key, kept and reported as given.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Fields computed from others (Milvus's functions: BM25).
    #[serde(default)]
    pub functions: Vec<FunctionSchema>,
}

/// What a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FunctionKind {
    /// A VarChar field's analysed terms and their counts, as a sparse vector
    /// searched by BM25 relevance.
    Bm25,
}

/// A field computed from another one at insert time (Milvus's
/// `FunctionSchema`): rows never carry the output, the door computes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSchema {
    pub name: String,
    pub kind: FunctionKind,
    pub input: String,
    pub output: String,
    #[serde(default)]
    pub description: String,
    /// Parameters as given (kept and reported).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
}

/// Seconds after which a collection's rows expire (Milvus's key).
pub const TTL_PROPERTY: &str = "collection.ttl.seconds";
/// Whether a collection's data is memory-mapped (Milvus's key; Quiver maps
/// sealed segments always, the setting is kept and reported).
pub const MMAP_PROPERTY: &str = "mmap.enabled";

/// Name of the hidden JSON field holding dynamic keys.
pub const DYNAMIC_FIELD: &str = "$meta";

impl CollectionSchema {
    /// The time to live of rows, if the collection sets one (0: none).
    pub fn ttl_ms(&self) -> Option<u64> {
        self.properties
            .get(TTL_PROPERTY)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(|s| s.saturating_mul(1000))
    }

    /// Checks the properties Quiver acts on.
    pub fn validate_properties(&self) -> Result<()> {
        if let Some(v) = self.properties.get(TTL_PROPERTY)
            && v.trim().parse::<u64>().is_err()
        {
            return Err(Error::invalid(
                format!("properties.{TTL_PROPERTY}"),
                format!("must be a whole number of seconds >= 0 (got {v:?})"),
            ));
        }
        if let Some(v) = self.properties.get(MMAP_PROPERTY)
            && !matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "false")
        {
            return Err(Error::invalid(
                format!("properties.{MMAP_PROPERTY}"),
                format!("must be true or false (got {v:?})"),
            ));
        }
        Ok(())
    }

    /// Checks every rule of a schema; the error names the field and the rule.
    pub fn validate(&self) -> Result<()> {
        self.validate_properties()?;
        crate::validate_qualified("collection_name", &self.name)?;
        let mut pk = 0;
        let mut vectors = 0;
        for (i, f) in self.fields.iter().enumerate() {
            validate_name(&format!("fields[{i}].name"), &f.name)?;
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(Error::invalid(
                    format!("fields[{i}].name"),
                    format!("duplicate field name {:?}", f.name),
                ));
            }
            if f.is_primary_key {
                pk += 1;
                if !matches!(f.data_type, DataType::Int64 | DataType::VarChar) {
                    return Err(Error::invalid(
                        &f.name,
                        "the primary key must be Int64 or VarChar",
                    ));
                }
                if f.nullable {
                    return Err(Error::invalid(
                        &f.name,
                        "the primary key cannot be nullable",
                    ));
                }
            } else if f.is_partition_key
                && (!matches!(f.data_type, DataType::Int64 | DataType::VarChar) || f.nullable)
            {
                return Err(Error::invalid(
                    &f.name,
                    "a partition key must be a non-nullable Int64 or VarChar field",
                ));
            } else if f.auto_id {
                return Err(Error::invalid(
                    &f.name,
                    "auto_id is only for the primary key",
                ));
            }
            match f.data_type {
                DataType::BinaryVector if f.dim.is_some_and(|d| !d.is_multiple_of(8)) => {
                    return Err(Error::invalid(
                        format!("{}.dim", f.name),
                        format!(
                            "a BinaryVector's dim counts bits and must be a multiple of 8 (got {})",
                            f.dim.unwrap_or(0)
                        ),
                    ));
                }
                DataType::SparseFloatVector => {
                    vectors += 1;
                    if f.nullable || f.is_partition_key {
                        return Err(Error::invalid(
                            &f.name,
                            "a sparse vector field cannot be nullable or a partition key",
                        ));
                    }
                }
                t if t.is_vector() => {
                    vectors += 1;
                    match f.dim {
                        Some(d) if (1..=MAX_DIM).contains(&d) => {}
                        Some(d) => {
                            return Err(Error::invalid(
                                format!("{}.dim", f.name),
                                format!("must be between 1 and {MAX_DIM} (got {d})"),
                            ));
                        }
                        None => {
                            return Err(Error::invalid(
                                format!("{}.dim", f.name),
                                "a vector field needs a dim",
                            ));
                        }
                    }
                    if f.nullable {
                        return Err(Error::invalid(&f.name, "a vector field cannot be nullable"));
                    }
                }
                DataType::Array => {
                    let ok_element = f.element_type.is_some_and(|t| {
                        !t.is_vector() && !matches!(t, DataType::Json | DataType::Array)
                    });
                    if !ok_element {
                        return Err(Error::invalid(
                            format!("{}.element_type", f.name),
                            format!(
                                "an Array holds Bool, Int8-64, Float, Double or VarChar elements (got {:?})",
                                f.element_type
                            ),
                        ));
                    }
                    match f.max_capacity {
                        Some(c) if (1..=MAX_ARRAY_CAPACITY).contains(&c) => {}
                        c => {
                            return Err(Error::invalid(
                                format!("{}.max_capacity", f.name),
                                format!("must be between 1 and {MAX_ARRAY_CAPACITY} (got {c:?})"),
                            ));
                        }
                    }
                    if f.element_type == Some(DataType::VarChar)
                        && !f
                            .max_length
                            .is_some_and(|l| (1..=MAX_VARCHAR_LENGTH).contains(&l))
                    {
                        return Err(Error::invalid(
                            format!("{}.max_length", f.name),
                            format!(
                                "an Array of VarChar needs a max_length between 1 and {MAX_VARCHAR_LENGTH}"
                            ),
                        ));
                    }
                    if f.is_partition_key {
                        return Err(Error::invalid(
                            &f.name,
                            "an Array cannot be a partition key",
                        ));
                    }
                }
                DataType::VarChar => match f.max_length {
                    Some(l) if (1..=MAX_VARCHAR_LENGTH).contains(&l) => {}
                    Some(l) => {
                        return Err(Error::invalid(
                            format!("{}.max_length", f.name),
                            format!("must be between 1 and {MAX_VARCHAR_LENGTH} (got {l})"),
                        ));
                    }
                    None => {
                        return Err(Error::invalid(
                            format!("{}.max_length", f.name),
                            "a VarChar field needs a max_length",
                        ));
                    }
                },
                _ => {}
            }
        }
        for f in &self.fields {
            if let Some(v) = &f.default_value {
                check_default(f, v)?;
            }
            check_analysis(f)?;
        }
        self.validate_functions()?;
        if self.fields.iter().filter(|f| f.is_partition_key).count() > 1 {
            return Err(Error::invalid(
                "fields",
                "there can be only one partition key field",
            ));
        }
        if pk != 1 {
            return Err(Error::invalid(
                "fields",
                format!("exactly one primary key field is required (found {pk})"),
            ));
        }
        if !(1..=MAX_VECTOR_FIELDS).contains(&vectors) {
            return Err(Error::invalid(
                "fields",
                format!(
                    "a collection needs between 1 and {MAX_VECTOR_FIELDS} vector fields (found {vectors})"
                ),
            ));
        }
        Ok(())
    }

    /// Every function's rules: a BM25 function reads one VarChar field with
    /// an analyzer and writes one sparse vector field no other writes.
    fn validate_functions(&self) -> Result<()> {
        for (i, func) in self.functions.iter().enumerate() {
            let at = format!("functions[{i}]");
            validate_name(&format!("{at}.name"), &func.name)?;
            if self.functions[..i].iter().any(|g| g.name == func.name) {
                return Err(Error::invalid(
                    format!("{at}.name"),
                    format!("duplicate function name {:?}", func.name),
                ));
            }
            let input = self.field(&func.input).ok_or_else(|| {
                Error::invalid(
                    format!("{at}.input_field_names"),
                    format!("no field {:?} in the collection", func.input),
                )
            })?;
            if input.data_type != DataType::VarChar || !input.enable_analyzer {
                return Err(Error::invalid(
                    format!("{at}.input_field_names"),
                    format!(
                        "BM25 function input field must be a VARCHAR field with enable_analyzer=True ({:?} is not)",
                        input.name
                    ),
                ));
            }
            let output = self.field(&func.output).ok_or_else(|| {
                Error::invalid(
                    format!("{at}.output_field_names"),
                    format!("no field {:?} in the collection", func.output),
                )
            })?;
            if output.data_type != DataType::SparseFloatVector {
                return Err(Error::invalid(
                    format!("{at}.output_field_names"),
                    format!(
                        "BM25 function output field must be a SPARSE_FLOAT_VECTOR field ({:?} is {:?})",
                        output.name, output.data_type
                    ),
                ));
            }
            if self.functions[..i].iter().any(|g| g.output == func.output) {
                return Err(Error::invalid(
                    format!("{at}.output_field_names"),
                    format!("field {:?} is the output of two functions", func.output),
                ));
            }
        }
        Ok(())
    }

    /// The function computing field `name`, if one does.
    pub fn function_output(&self, name: &str) -> Option<&FunctionSchema> {
        self.functions.iter().find(|f| f.output == name)
    }

    /// The primary key field. Valid schemas always have one.
    pub fn primary_field(&self) -> &FieldSchema {
        self.fields
            .iter()
            .find(|f| f.is_primary_key)
            .unwrap_or(&self.fields[0])
    }

    /// The collection's main vector field: the first dense one (its
    /// vectors are a batch's `vectors`, a segment's vector block and its
    /// HNSW; see [`Self::dense_field`]), or, in a collection of sparse
    /// vectors only, the first sparse one. Its index and metric are the
    /// collection's; every other vector field is a column (see
    /// [`Self::column_fields`]). Valid schemas always have one.
    pub fn vector_field(&self) -> &FieldSchema {
        self.dense_field()
            .or_else(|| self.fields.iter().find(|f| f.data_type.is_vector()))
            .unwrap_or(&self.fields[0])
    }

    /// The first dense vector field, whose vectors are a batch's `vectors`
    /// (None in a collection of sparse vectors only: batches carry vectors
    /// of dimension 0).
    pub fn dense_field(&self) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.data_type.is_dense_vector())
    }

    /// Element type of the vector field as declared (what clients send and
    /// read back).
    pub fn declared_element_type(&self) -> ElementType {
        self.vector_field()
            .data_type
            .element_type()
            .unwrap_or(ElementType::F32)
    }

    /// Element type of the vector field as stored, indexed and searched:
    /// float32 for every vector type today (half floats, bfloat16 and bits
    /// widen to float32 exactly at the front door, `ElementType::widen`, and
    /// narrow back on the way out).
    pub fn element_type(&self) -> ElementType {
        ElementType::F32
    }

    /// Dimension of the first dense vector field (0: none).
    pub fn dim(&self) -> usize {
        self.dense_field().and_then(|f| f.dim).unwrap_or(0) as usize
    }

    /// The fields stored as columns, in schema order: every field but the
    /// primary key and the first dense vector field (scalars, the vectors
    /// of further dense vector fields as [`crate::ScalarValue::Vector`],
    /// sparse vectors as [`crate::ScalarValue::Sparse`]).
    pub fn column_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        let first = self.dense_field().map(|f| f.name.as_str());
        self.fields
            .iter()
            .filter(move |f| !f.is_primary_key && Some(f.name.as_str()) != first)
    }

    /// Every vector field, the first one first.
    pub fn vector_fields(&self) -> impl Iterator<Item = &FieldSchema> {
        self.fields.iter().filter(|f| f.data_type.is_vector())
    }

    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A schema with an Int64 primary key `id`, a vector `vector` of `dim`
    /// dimensions and nothing else (Milvus's quick-setup shape).
    pub fn simple(name: impl Into<String>, dim: u32) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            fields: vec![
                FieldSchema::new("id", DataType::Int64).primary(false),
                FieldSchema::new("vector", DataType::FloatVector).with_dim(dim),
            ],
            enable_dynamic_field: false,
            consistency: ConsistencyLevel::Strong,
            properties: Default::default(),
            functions: Vec::new(),
        }
    }
}

/// An analyzer only on VarChar fields, with parameters that make one;
/// matching only with an analyzer.
fn check_analysis(f: &FieldSchema) -> Result<()> {
    if f.enable_analyzer || f.enable_match || f.analyzer_params.is_some() {
        if f.data_type != DataType::VarChar {
            return Err(Error::invalid(
                format!("{}.enable_analyzer", f.name),
                "only VARCHAR fields are analysed",
            ));
        }
        if !f.enable_analyzer {
            return Err(Error::invalid(
                format!("{}.enable_analyzer", f.name),
                "enable_match and analyzer_params need enable_analyzer=True",
            ));
        }
        f.analyzer()?;
    }
    Ok(())
}

/// A default value must be a non-null value of the field's type, on a
/// scalar field that is neither the primary key nor JSON.
fn check_default(f: &FieldSchema, v: &ScalarValue) -> Result<()> {
    let field = format!("{}.default_value", f.name);
    if f.is_primary_key
        || f.data_type.is_vector()
        || matches!(f.data_type, DataType::Json | DataType::Array)
    {
        return Err(Error::invalid(
            field,
            "only scalar fields other than the primary key, JSON and Array take a default value",
        ));
    }
    let fits = match (f.data_type, v) {
        (DataType::Bool, ScalarValue::Bool(_)) => true,
        (DataType::Int8, ScalarValue::Int(i)) => i8::try_from(*i).is_ok(),
        (DataType::Int16, ScalarValue::Int(i)) => i16::try_from(*i).is_ok(),
        (DataType::Int32, ScalarValue::Int(i)) => i32::try_from(*i).is_ok(),
        (DataType::Int64, ScalarValue::Int(_)) => true,
        (DataType::Float | DataType::Double, ScalarValue::Float(_)) => true,
        (DataType::VarChar, ScalarValue::Str(s)) => {
            f.max_length.is_none_or(|l| s.len() <= l as usize)
        }
        _ => false,
    };
    if !fits {
        return Err(Error::invalid(
            field,
            format!(
                "{} does not fit a {:?} field{}",
                v.kind(),
                f.data_type,
                f.max_length
                    .map(|l| format!(" of max_length {l}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Milvus's naming rule: a letter or underscore, then letters, digits and
/// underscores, at most 255 characters.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok_first || !ok_rest || name.len() > 255 {
        return Err(Error::invalid(
            field,
            format!(
                "must start with a letter or '_' and hold only letters, digits and '_' (at most 255), got {name:?}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_schema_is_valid() {
        let s = CollectionSchema::simple("c", 8);
        s.validate().expect("valid");
        assert_eq!(s.dim(), 8);
        assert_eq!(s.primary_field().name, "id");
    }

    #[test]
    fn rejects_bad_schemas_naming_the_field() {
        let mut s = CollectionSchema::simple("c", 0);
        let e = s.validate().expect_err("dim 0");
        assert!(e.to_string().contains("vector.dim"), "{e}");
        s = CollectionSchema::simple("1bad", 4);
        assert!(
            s.validate()
                .expect_err("name")
                .to_string()
                .contains("collection_name")
        );
        s = CollectionSchema::simple("c", 4);
        s.fields.push(FieldSchema::new("t", DataType::VarChar));
        assert!(
            s.validate()
                .expect_err("len")
                .to_string()
                .contains("t.max_length")
        );
        s = CollectionSchema::simple("c", 4);
        s.fields[0].is_primary_key = false;
        assert!(
            s.validate()
                .expect_err("pk")
                .to_string()
                .contains("primary key")
        );
    }

    #[test]
    fn metric_parse() {
        assert_eq!(Metric::parse("cosine").expect("ok"), Metric::Cosine);
        assert_eq!(Metric::parse("HAMMING").expect("ok"), Metric::Hamming);
        assert!(Metric::parse("MANHATTAN").is_err());
        assert!(Metric::Jaccard.fits(ElementType::Binary));
        assert!(!Metric::L2.fits(ElementType::Binary));
        assert!(!Metric::Hamming.fits(ElementType::F16));
    }

    #[test]
    fn schemas_stored_before_consistency_levels_read_as_strong() {
        let mut schema = CollectionSchema::simple("c", 4);
        schema.consistency = ConsistencyLevel::Bounded;
        let mut json = serde_json::to_value(&schema).expect("encodes");
        let back: CollectionSchema = serde_json::from_value(json.clone()).expect("decodes");
        assert_eq!(back.consistency, ConsistencyLevel::Bounded);
        json.as_object_mut().expect("object").remove("consistency");
        let old: CollectionSchema = serde_json::from_value(json).expect("decodes");
        assert_eq!(old.consistency, ConsistencyLevel::Strong);
    }
}
