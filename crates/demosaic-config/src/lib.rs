//! The config every linear demosaicing plugin (bilinear, Malvar2004) reads, declared once so that they
//! accept the same keys with the same docs. A plugin's config, so it lives apart from the tensor
//! helpers of `l2l-ops`.
//!
//! Not a plugin: it registers nothing.

use l2l_ops::Padding;
use l2l_plugin_api::{CfaPattern, ComponentConfig};

/// The config of a linear demosaicer (bilinear, Malvar2004): its CFA layout, or the metadata's, and its
/// border. One type, so that every demosaicer reads the same keys.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct DemosaicConfig {
    /// CFA layout of the mosaic's top-left 2×2 block: RGGB, BGGR, GRBG or GBRG.
    pub cfa_pattern: CfaPattern,
    /// Take the CFA pattern from each batch's camera metadata instead of cfa_pattern.
    pub cfa_from_metadata: bool,
    /// Border: mirror (keeps the CFA phase) or symmetric (as colour-demosaicing, which shifts it).
    pub padding: Padding,
}

impl Default for DemosaicConfig {
    fn default() -> Self {
        Self {
            cfa_pattern: CfaPattern::Rggb,
            cfa_from_metadata: false,
            padding: Padding::Mirror,
        }
    }
}
