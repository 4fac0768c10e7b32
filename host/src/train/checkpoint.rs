//! Checkpoints: named tensors in a safetensors file, written atomically (temporary file, then rename),
//! so an interrupted write leaves the previous checkpoint whole.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Serialises `tensors` (float32, float64 or int64; any device) as safetensors into `out`.
pub fn write_tensors(out: &mut dyn Write, tensors: &[(String, Tensor)]) -> Result<()> {
    write_tensors_with_metadata(out, tensors, &[])
}

/// [`write_tensors`] with text metadata in the file's header.
pub fn write_tensors_with_metadata(
    out: &mut dyn Write,
    tensors: &[(String, Tensor)],
    metadata: &[(&str, &str)],
) -> Result<()> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let t = tensor.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Double => Dtype::F64,
            Kind::Int64 => Dtype::I64,
            other => bail!("checkpoint tensor `{name}`: cannot store {other:?}"),
        };
        // safetensors is little-endian, as every platform libtorch runs on here
        let bytes = Vec::<u8>::try_from(t.f_flatten(0, -1)?.f_view_dtype(Kind::Uint8)?)?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((name.clone(), dtype, shape, bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, dtype, shape, bytes)| Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow!("checkpoint: {e:?}"))?;
    let metadata: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let bytes = safetensors::tensor::serialize(views, &metadata).map_err(|e| anyhow!("checkpoint: {e:?}"))?;
    out.write_all(&bytes)?;
    Ok(())
}

/// Writes `tensors` to `path` atomically.
pub fn save(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    crate::imageio::write_atomically(path, |out| write_tensors(out, tensors))
}

/// Reads a checkpoint (CPU tensors).
pub fn load(path: &Path) -> Result<Vec<(String, Tensor)>> {
    Tensor::read_safetensors(path)
        .map_err(|e| anyhow!("{}", e.to_string().lines().next().unwrap_or_default()))
        .with_context(|| format!("reading checkpoint {}", path.display()))
}

/// Tensors with their names, as a checkpoint holds them.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Reads a checkpoint's tensors (CPU) and its header metadata.
pub fn read_with_metadata(path: &Path) -> Result<(NamedTensors, HashMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let bad = |e: safetensors::SafeTensorError| anyhow!("{}: not a readable safetensors file ({e:?})", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let file = SafeTensors::deserialize(&bytes).map_err(bad)?;
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            other => bail!("{}: tensor `{name}` has unsupported type {other:?}", path.display()),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::f_from_data_size(view.data(), &shape, kind)?));
    }
    Ok((tensors, metadata))
}

/// The tensors whose names start with `prefix.`, the prefix removed.
pub fn section(tensors: &[(String, Tensor)], prefix: &str) -> Vec<(String, Tensor)> {
    let prefix = format!("{prefix}.");
    tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix(&prefix).map(|n| (n.to_string(), t.shallow_clone())))
        .collect()
}

/// A pipeline's state from a checkpoint file: a training run's (its `processor` section) or one that
/// holds only a pipeline's state (`stage.parameter` names, as `l2l.Pipeline.save` writes it).
pub fn pipeline_state(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let tensors = load(path)?;
    let processor = section(&tensors, "processor");
    Ok(if processor.is_empty() { tensors } else { processor })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails after `left` bytes, like a disk that fills up mid-write.
    struct FailingWriter<'a> {
        inner: &'a mut dyn Write,
        left: usize,
    }

    impl Write for FailingWriter<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.left {
                return Err(std::io::Error::other("simulated disk full"));
            }
            self.left -= buf.len();
            self.inner.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_pipeline_state_is_a_training_checkpoints_processing_half_or_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("fold0.safetensors");
        let w = Tensor::from_slice(&[2.0f32, 1.0, 1.5]);
        save(
            &run,
            &[
                ("processor.wb.gains".into(), w.shallow_clone()),
                ("task_model.fc.weight".into(), w.shallow_clone()),
            ],
        )
        .unwrap();
        let names: Vec<String> = pipeline_state(&run).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["wb.gains"]);
        let saved = dir.path().join("pipeline.safetensors");
        save(&saved, &[("wb.gains".into(), w)]).unwrap();
        let names: Vec<String> = pipeline_state(&saved).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["wb.gains"]);
    }

    #[test]
    fn a_failed_write_leaves_the_previous_checkpoint_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fold0.safetensors");
        let first = vec![
            ("model.w".to_string(), Tensor::from_slice(&[1.0f32, 2.0, 3.0])),
            ("optimizer.step".to_string(), Tensor::from(7i64)),
        ];
        save(&path, &first).unwrap();
        let second = vec![("model.w".to_string(), Tensor::zeros([1000], (Kind::Float, Device::Cpu)))];
        let err = crate::imageio::write_atomically(&path, |out| {
            write_tensors(&mut FailingWriter { inner: out, left: 100 }, &second)
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("simulated disk full"), "{err:#}");
        let read = load(&path).unwrap();
        assert_eq!(read.len(), 2);
        let w = &section(&read, "model")[0].1;
        assert_eq!(Vec::<f32>::try_from(w).unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(section(&read, "optimizer")[0].1.int64_value(&[]), 7);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file was left behind"
        );
    }
}
