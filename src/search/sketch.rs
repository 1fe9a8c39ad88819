//! Numeric stats in a wire form of our own: what one backend contributes to the stats of a
//! cluster-wide query ([`StatsPart`]), and the percentile sketch inside it ([`Sketch`]).
//!
//! The sketch is a DDSketch (relative-error buckets on a log scale): bucket `k` holds values in
//! `[γ^k, γ^(k+1))`, and a quantile is the value of the bucket at its rank. Sketches with the
//! same `γ` merge by adding bucket counts, so the percentiles of merged parts are those of one
//! index holding all the data. tantivy's percentiles use the same sketch (`sketches-ddsketch`);
//! the embedded backend converts tantivy's partial result into this form, another backend
//! (Elasticsearch) may send only finished percentiles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::aggregate::StatsResponse;

/// The percentiles every stats answer lists.
pub const PERCENTILES: [f64; 3] = [50.0, 90.0, 99.0];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    pub gamma: f64,
    pub gamma_ln: f64,
    /// Values too close to 0 for a bucket.
    pub zero: u64,
    /// `(bucket key, count)` of positive values, by key, counts above 0.
    pub positive: Vec<(i32, u64)>,
    /// The same for the absolute values of negative values.
    pub negative: Vec<(i32, u64)>,
}

fn total(buckets: &[(i32, u64)]) -> u64 {
    buckets.iter().map(|(_, count)| count).sum()
}

fn key_at_rank(buckets: &[(i32, u64)], rank: u64) -> i32 {
    let mut seen = 0;
    for &(key, count) in buckets {
        seen += count;
        if seen > rank {
            return key;
        }
    }
    buckets.last().map_or(0, |(key, _)| *key)
}

fn add_buckets(into: &mut Vec<(i32, u64)>, from: &[(i32, u64)]) {
    let mut merged: BTreeMap<i32, u64> = into.iter().copied().collect();
    for &(key, count) in from {
        *merged.entry(key).or_default() += count;
    }
    *into = merged.into_iter().filter(|(_, c)| *c > 0).collect();
}

impl Sketch {
    fn count(&self) -> u64 {
        self.zero + total(&self.positive) + total(&self.negative)
    }

    /// The value a bucket stands for: the middle of `[γ^k, γ^(k+1))` in relative terms.
    fn value(&self, key: i32) -> f64 {
        (f64::from(key) * self.gamma_ln).exp() * (2.0 * self.gamma / (1.0 + self.gamma))
    }

    /// The `q` quantile (0..=1) as DDSketch answers it; `min`/`max` for the ends.
    pub fn quantile(&self, q: f64, min: f64, max: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        if q <= 0.0 {
            return Some(min);
        }
        if q >= 1.0 {
            return Some(max);
        }
        let rank = (q * (count as f64 - 1.0)) as u64;
        let negative = total(&self.negative);
        Some(if rank < negative {
            -self.value(key_at_rank(&self.negative, negative - rank - 1))
        } else if rank < negative + self.zero {
            0.0
        } else {
            self.value(key_at_rank(&self.positive, rank - negative - self.zero))
        })
    }

    /// Add `other` into this sketch; `false` (and nothing changed) when their scales differ.
    pub fn merge(&mut self, other: &Sketch) -> bool {
        if self.gamma != other.gamma || self.gamma_ln != other.gamma_ln {
            return false;
        }
        self.zero += other.zero;
        add_buckets(&mut self.positive, &other.positive);
        add_buckets(&mut self.negative, &other.negative);
        true
    }
}

/// One backend's numeric stats of a field over the matches of a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsPart {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Absent from a backend that cannot give one: merged with other parts, percentiles are
    /// then unknown.
    #[serde(default)]
    pub sketch: Option<Sketch>,
    /// Percentiles the backend computed itself (`"50"` → value): used when it is the only part.
    #[serde(default)]
    pub percentiles: BTreeMap<String, Option<f64>>,
}

impl StatsPart {
    fn percentiles_of(sketch: &Sketch, min: f64, max: f64) -> BTreeMap<String, Option<f64>> {
        PERCENTILES
            .iter()
            .map(|p| (format!("{p:.0}"), sketch.quantile(p / 100.0, min, max)))
            .collect()
    }

    /// The stats of all `parts` together (a field no part has a value of: count 0).
    pub fn merge(field: &str, parts: Vec<StatsPart>) -> StatsResponse {
        let empty = || -> BTreeMap<String, Option<f64>> {
            PERCENTILES
                .iter()
                .map(|p| (format!("{p:.0}"), None))
                .collect()
        };
        let mut parts: Vec<StatsPart> = parts.into_iter().filter(|p| p.count > 0).collect();
        let (count, sum, min, max, percentiles) = match parts.len() {
            0 => (0, None, None, None, empty()),
            1 => {
                let part = parts.remove(0);
                let percentiles = match &part.sketch {
                    Some(sketch) => Self::percentiles_of(sketch, part.min, part.max),
                    None => part.percentiles.clone(),
                };
                (
                    part.count,
                    Some(part.sum),
                    Some(part.min),
                    Some(part.max),
                    percentiles,
                )
            }
            _ => {
                let count = parts.iter().map(|p| p.count).sum();
                let sum = parts.iter().map(|p| p.sum).sum();
                let min = parts.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
                let max = parts
                    .iter()
                    .map(|p| p.max)
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut sketches = parts.iter().map(|p| p.sketch.clone());
                let mut merged = sketches.next().flatten();
                for sketch in sketches {
                    merged = match (merged, sketch) {
                        (Some(mut into), Some(other)) => into.merge(&other).then_some(into),
                        _ => None,
                    };
                }
                let percentiles = match merged {
                    Some(sketch) => Self::percentiles_of(&sketch, min, max),
                    None => empty(),
                };
                (count, Some(sum), Some(min), Some(max), percentiles)
            }
        };
        StatsResponse {
            field: field.to_string(),
            count,
            min,
            max,
            avg: sum.filter(|_| count > 0).map(|sum| sum / count as f64),
            sum,
            percentiles,
            took_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(values: &[f64]) -> Sketch {
        // The scale tantivy uses: relative accuracy 1%.
        let alpha: f64 = 0.01;
        let gamma = 1.0 + 2.0 * alpha / (1.0 - alpha);
        let gamma_ln = (2.0 * alpha / (1.0 - alpha)).ln_1p();
        let mut sketch = Sketch {
            gamma,
            gamma_ln,
            zero: 0,
            positive: Vec::new(),
            negative: Vec::new(),
        };
        for &v in values {
            let key = |v: f64| (v.ln() / gamma_ln).floor() as i32;
            if v > 1e-9 {
                add_buckets(&mut sketch.positive, &[(key(v), 1)]);
            } else if v < -1e-9 {
                add_buckets(&mut sketch.negative, &[(key(-v), 1)]);
            } else {
                sketch.zero += 1;
            }
        }
        sketch
    }

    fn part(values: &[f64]) -> StatsPart {
        StatsPart {
            count: values.len() as u64,
            sum: values.iter().sum(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            sketch: Some(sketch_of(values)),
            percentiles: BTreeMap::new(),
        }
    }

    #[test]
    fn merged_parts_answer_as_one_part_holding_everything() {
        let all: Vec<f64> = (0..1000).map(|i| (i as f64 - 100.0) * 1.5).collect();
        let one = StatsPart::merge("f", vec![part(&all)]);
        let split = StatsPart::merge(
            "f",
            vec![part(&all[..300]), part(&all[300..310]), part(&all[310..])],
        );
        assert_eq!(one, split);
        assert_eq!(one.count, 1000);
        let p50 = one.percentiles["50"].unwrap();
        assert!((p50 - 598.5).abs() / 598.5 < 0.02, "{p50}");
        let p99 = one.percentiles["99"].unwrap();
        assert!((p99 - 1333.5).abs() / 1333.5 < 0.02, "{p99}");
    }

    #[test]
    fn parts_of_another_scale_or_without_a_sketch_give_no_percentiles() {
        let mut other = part(&[1.0, 2.0]);
        other.sketch.as_mut().unwrap().gamma = 1.1;
        let merged = StatsPart::merge("f", vec![part(&[3.0, 4.0]), other]);
        assert_eq!(merged.count, 4);
        assert_eq!(merged.percentiles["50"], None);
        let alone = StatsPart {
            sketch: None,
            percentiles: [("50".to_string(), Some(7.0))].into(),
            ..part(&[7.0])
        };
        assert_eq!(
            StatsPart::merge("f", vec![alone]).percentiles["50"],
            Some(7.0)
        );
        let nothing = StatsPart::merge("f", Vec::new());
        assert_eq!((nothing.count, nothing.avg), (0, None));
    }
}
