//! Border modes: how an image is extended beyond its edge, shared by the tensor ops and the CPU loops.

/// How an image is extended beyond its border, named as scipy.ndimage names the modes (the published
/// pipelines were written against scipy), so configs read the same as the reference code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, l2l_plugin_sdk::Choices)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Zeros (`constant` with 0; scipy.signal's `fill`).
    Zero,
    /// `d c b | a b c d`: reflection about the edge pixel (scipy `mirror`, torch `reflect`); keeps
    /// the CFA phase of every padded pixel.
    Mirror,
    /// `c b a | a b c d`: reflection about the edge (scipy `reflect`, numpy `symmetric`).
    Symmetric,
    /// `a a a | a b c d`: the edge pixel repeated (scipy `nearest`, torch `replicate`).
    Nearest,
}

/// Source indices along an axis of length `n` padded by `before`/`after`, for the index-based modes.
pub(crate) fn padded_indices(n: i64, before: i64, after: i64, mode: Padding) -> Vec<i64> {
    (-before..n + after)
        .map(|i| {
            let period = match mode {
                Padding::Mirror => 2 * (n - 1).max(1),
                _ => 2 * n,
            };
            let mut j = i.rem_euclid(period);
            match mode {
                Padding::Mirror if j >= n => j = period - j,
                Padding::Symmetric if j >= n => j = period - 1 - j,
                Padding::Nearest => j = i.clamp(0, n - 1),
                _ => {}
            }
            j
        })
        .collect()
}
