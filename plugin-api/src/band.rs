//! Where a band of rows sits in its image: what export tells a module it runs on a band.

/// Where a band sits in the full image: its first row, and the full image's height (its width is the
/// band's). The whole image is the band `{ first_row: 0, full_height: H }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// The full image's row of the band's first row.
    pub first_row: i64,
    /// The full image's height.
    pub full_height: i64,
}
