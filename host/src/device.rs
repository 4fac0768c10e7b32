//! Which device a config or a command asks for, and whether this process can compute on it.

use anyhow::{anyhow, Result};
use tch::Device;

/// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`; whether this machine has that device is
/// [`compute_device`]'s question.
pub fn parse_device(text: &str) -> Result<Device> {
    let text = text.trim();
    match text {
        "auto" => {
            crate::cuda::ensure_loaded();
            Ok(Device::cuda_if_available())
        }
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
            .map(Device::Cuda)
            .ok_or_else(|| anyhow!("expected auto, cpu, cuda or cuda:N, found `{text}`")),
    }
}

/// The device `text` names ([`parse_device`]), if this process can compute on it.
pub fn compute_device(text: &str) -> Result<Device> {
    crate::cuda::usable(parse_device(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_parsed_or_refused() {
        assert_eq!(compute_device("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        assert!(parse_device("tpu")
            .unwrap_err()
            .to_string()
            .contains("expected auto, cpu"));
    }
}
