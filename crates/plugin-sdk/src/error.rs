//! The one error type of plugin code: what went wrong, shown to the user as the host's error text.

use l2l_plugin_api::tensor::HandleError;

/// Why a plugin call failed; becomes the error text the host shows.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component's config is wrong (unknown key, wrong type, value out of range).
    #[error("{0}")]
    Config(String),
    /// The input tensor is not what the component accepts (shape, dtype, values).
    #[error("{0}")]
    Input(String),
    /// A libtorch operation failed (shown by its first line: libtorch appends a C++ backtrace).
    #[error("libtorch: {}", first_line(.0))]
    Torch(#[from] tch::TchError),
    /// A tensor crossing the boundary was refused.
    #[error("{0}")]
    Handle(#[from] HandleError),
    /// Restoring state failed (missing, unknown or mis-shaped tensors).
    #[error("{0}")]
    State(String),
    /// A data file is missing, corrupt or inconsistent with the others (the message names it).
    #[error("{0}")]
    Data(String),
}

fn first_line(err: &tch::TchError) -> String {
    err.to_string().lines().next().unwrap_or("").to_string()
}

/// Shorthand for plugin results.
pub type PluginResult<T> = Result<T, PluginError>;

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn libtorch_errors_are_one_line() {
        let err: PluginError = Tensor::zeros([2], (Kind::Float, Device::Cpu))
            .f_view([3])
            .unwrap_err()
            .into();
        let text = err.to_string();
        assert!(
            text.starts_with("libtorch: ") && text.contains("invalid for input of size 2"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
