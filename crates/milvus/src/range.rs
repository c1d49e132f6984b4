//! Range search bounds (`radius` / `range_filter`).

use quiver_common::{Error, Metric, Result};

/// A range search's bounds (Milvus's `radius` / `range_filter`), in the
/// collection's score: for L2 (smaller is closer) hits with
/// `range_filter <= score < radius`; for IP / COSINE (larger is closer)
/// hits with `radius < score <= range_filter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    radius: f32,
    range_filter: Option<f32>,
    smaller_is_closer: bool,
}

impl Range {
    pub(crate) fn parse(json: &serde_json::Value, metric: Metric) -> Result<Option<Self>> {
        let number = |key: &str| -> Result<Option<f32>> {
            match json.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| Some(f as f32))
                    .ok_or_else(|| {
                        Error::invalid(
                            format!("params.{key}"),
                            format!("must be a number (got {v})"),
                        )
                    }),
            }
        };
        let radius = number("radius")?;
        let range_filter = number("range_filter")?;
        let Some(radius) = radius else {
            if range_filter.is_some() {
                return Err(Error::invalid(
                    "params.range_filter",
                    "needs params.radius (range search)",
                ));
            }
            return Ok(None);
        };
        let smaller_is_closer = !metric.higher_is_closer();
        if let Some(rf) = range_filter {
            let ordered = if smaller_is_closer {
                rf < radius
            } else {
                rf > radius
            };
            if !ordered {
                return Err(Error::invalid(
                    "params.range_filter",
                    format!(
                        "must be {} radius for {} (got range_filter {rf}, radius {radius})",
                        if smaller_is_closer { "below" } else { "above" },
                        metric.as_str()
                    ),
                ));
            }
        }
        Ok(Some(Self {
            radius,
            range_filter,
            smaller_is_closer,
        }))
    }

    pub(crate) fn contains(&self, score: f32) -> bool {
        if self.smaller_is_closer {
            score < self.radius && self.range_filter.is_none_or(|rf| score >= rf)
        } else {
            score > self.radius && self.range_filter.is_none_or(|rf| score <= rf)
        }
    }

    /// Whether `score` is beyond the radius (so is every later, worse hit).
    pub(crate) fn beyond(&self, score: f32) -> bool {
        if self.smaller_is_closer {
            score >= self.radius
        } else {
            score <= self.radius
        }
    }
}
