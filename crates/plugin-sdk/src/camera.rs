//! Camera parameters taken from the data: what a stage whose config says `from_metadata = true`
//! reads per sample instead of its configured values.

use crate::error::{PluginError, PluginResult};
use l2l_plugin_api::{CfaPattern, RawMetadata};
use plugin_sdk_derive::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The keys of every stage that reads a Bayer mosaic: its CFA layout, or the metadata's. Flattened
/// into each such stage's config (`#[serde(flatten)] pub cfa: CfaKeys`), so that they all read the
/// same keys with the same docs and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct CfaKeys {
    /// CFA layout of the mosaic's top-left 2×2 block.
    #[config(choices, default = CfaPattern::Rggb)]
    pub cfa_pattern: CfaPattern,
    /// Take the CFA pattern from each batch's camera metadata instead of cfa_pattern.
    #[config(default = false)]
    pub cfa_from_metadata: bool,
}

impl CfaKeys {
    /// The camera source these keys ask for: reading the metadata's pattern or not.
    pub fn camera(&self) -> CameraSource {
        CameraSource::new(self.cfa_from_metadata)
    }
}

/// The camera metadata a stage last received, for stages whose config says `from_metadata = true`.
#[derive(Default)]
pub struct CameraSource {
    from_metadata: bool,
    cameras: Vec<RawMetadata>,
}

impl CameraSource {
    /// A source that reads metadata when `from_metadata`, and ignores it otherwise.
    pub fn new(from_metadata: bool) -> Self {
        Self {
            from_metadata,
            cameras: Vec::new(),
        }
    }

    /// Whether the stage takes its camera parameters from the data.
    pub fn from_metadata(&self) -> bool {
        self.from_metadata
    }

    /// Keeps `cameras` when reading from metadata.
    pub fn set(&mut self, cameras: &[RawMetadata]) {
        if self.from_metadata {
            self.cameras = cameras.to_vec();
        }
    }

    /// One row per sample of a batch of `batch`, built from each sample's metadata by `values`, as a
    /// `[batch, N]` tensor in `like`'s kind and device; an error when no metadata (or metadata for
    /// another batch size) was given.
    pub fn per_sample(
        &self,
        stage: &str,
        batch: i64,
        like: &Tensor,
        values: impl Fn(&RawMetadata) -> Vec<f32>,
    ) -> PluginResult<Tensor> {
        if self.cameras.len() as i64 != batch {
            return Err(PluginError::Input(format!(
                "{stage}: from_metadata is set, so every sample needs camera metadata: expected {batch}, found {} (inputs without metadata, such as .npy mosaics, need the values in the config)",
                self.cameras.len()
            )));
        }
        let rows: Vec<f32> = self.cameras.iter().flat_map(&values).collect();
        let width = rows.len() as i64 / batch.max(1);
        Ok(Tensor::from_slice(&rows)
            .f_view([batch, width])?
            .f_to_kind(like.kind())?
            .f_to_device(like.device())?)
    }

    /// `configured`, or the batch's one CFA pattern when reading from metadata.
    pub fn cfa_pattern_or(&self, stage: &str, configured: CfaPattern) -> PluginResult<CfaPattern> {
        if self.from_metadata {
            self.cfa_pattern(stage)
        } else {
            Ok(configured)
        }
    }

    /// The one CFA pattern of the batch's samples, or an error if they differ or none was given.
    pub fn cfa_pattern(&self, stage: &str) -> PluginResult<CfaPattern> {
        let first = self.cameras.first().ok_or_else(|| {
            PluginError::Input(format!(
                "{stage}: the CFA pattern comes from the metadata, but none was given"
            ))
        })?;
        if let Some(other) = self.cameras.iter().find(|c| c.cfa_pattern != first.cfa_pattern) {
            return Err(PluginError::Input(format!(
                "{stage}: one batch mixes CFA patterns ({:?} and {:?}); batch samples of one pattern",
                first.cfa_pattern, other.cfa_pattern
            )));
        }
        Ok(first.cfa_pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn camera_values_are_refused_without_metadata_and_mixed_patterns_are_refused() {
        let like = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let mut camera = CameraSource::new(true);
        let err = camera
            .per_sample("white_balance", 2, &like, |c| c.white_balance.to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 2, found 0"), "{err}");
        let metadata = RawMetadata {
            cfa_pattern: CfaPattern::Rggb,
            black_level: [0.0; 4],
            white_balance: [2.0, 1.0, 1.5],
            colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            intensity: 100.0,
        };
        camera.set(&[
            metadata,
            RawMetadata {
                cfa_pattern: CfaPattern::Bggr,
                ..metadata
            },
        ]);
        let gains = camera
            .per_sample("white_balance", 2, &like, |c| c.white_balance.to_vec())
            .unwrap();
        assert_eq!(gains.size(), [2, 3]);
        assert!(camera
            .cfa_pattern("demosaic")
            .unwrap_err()
            .to_string()
            .contains("mixes CFA patterns"));
        // a source not reading metadata ignores it
        let mut fixed = CameraSource::new(false);
        fixed.set(&[metadata]);
        assert_eq!(
            fixed.cfa_pattern_or("demosaic", CfaPattern::Gbrg).unwrap(),
            CfaPattern::Gbrg
        );
    }
}
