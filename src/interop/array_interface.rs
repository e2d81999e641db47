//! The CUDA Array Interface (v2/v3) and the NumPy array interface (v3): one shape of descriptor,
//! two meanings (device memory with an optional stream; host memory without one).

use crate::device::Device;
use crate::dims::Dims;
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::storage::ReleaseFn;
use crate::stream::Stream;
use crate::tensor::{Tensor, TensorDesc, element_count};

/// Which of the two interfaces a descriptor follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interface {
    /// `__cuda_array_interface__`: CUDA-accessible memory, optional stream.
    Cuda,
    /// `__array_interface__`: host memory, no stream.
    NumPy,
}

impl Interface {
    fn name(self) -> &'static str {
        match self {
            Interface::Cuda => "CUDA Array Interface",
            Interface::NumPy => "NumPy array interface",
        }
    }
}

/// The contents of an array-interface dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArrayInterface {
    /// `version`.
    pub version: i32,
    /// `data[0]`: the address of the first element (0 for zero-size arrays).
    pub data: u64,
    /// `data[1]`: read-only flag.
    pub readonly: bool,
    /// `typestr`, e.g. `"<f4"`.
    pub typestr: String,
    /// `shape`.
    pub shape: Vec<i64>,
    /// `strides` in bytes; `None` means C-contiguous.
    pub strides: Option<Vec<i64>>,
    /// `stream` (CUDA Array Interface v3 only): 1 legacy default, 2 per-thread default, other
    /// values a `cudaStream_t`; `None` when absent.
    pub stream: Option<u64>,
    /// Whether a `mask` entry was present (masked arrays are not supported).
    pub has_mask: bool,
}

impl ArrayInterface {
    /// Checks what can be checked without touching memory: version, mask, stream, dtype.
    pub(crate) fn validate(&self, interface: Interface) -> Result<DataType> {
        let name = interface.name();
        if self.version < 2 {
            return Err(Error::invalid_argument(format!(
                "{name} version {} is not supported (need version 2 or later)",
                self.version
            )));
        }
        if self.has_mask {
            return Err(Error::not_supported(format!(
                "{name}: masked arrays ('mask' present) are not supported"
            )));
        }
        match (interface, self.stream) {
            (Interface::NumPy, Some(stream)) => {
                return Err(Error::invalid_argument(format!(
                    "{name} has no 'stream' entry, but stream {stream} was given"
                )));
            }
            (Interface::Cuda, Some(0)) => {
                return Err(Error::invalid_argument(
                    "CUDA Array Interface stream 0 is disallowed by the specification (ambiguous \
                     between the legacy and per-thread default streams); use 1 or 2",
                ));
            }
            _ => {}
        }
        DataType::from_typestr(&self.typestr)
    }

    /// Imports the memory this descriptor describes as a tensor, zero-copy: validated, placed on
    /// the device the driver reports for CUDA memory (never on an assumption) or the CPU for the
    /// NumPy interface, with the producer's stream remembered as the memory's pending work.
    /// `release` runs when the last tensor over the memory goes; on failure it is dropped without
    /// running.
    pub(crate) fn import(
        &self,
        interface: Interface,
        layout: Layout,
        release: Option<ReleaseFn>,
    ) -> Result<Tensor> {
        let dtype = self.validate(interface)?;
        let device = match interface {
            Interface::Cuda => self.locate_cuda_memory()?,
            Interface::NumPy => Device::CPU,
        };
        let tensor = Tensor::adopt(self.to_desc(dtype, device, layout), release)?;
        if let Some(producer) = self.producer_stream() {
            tensor.storage().record_use(producer, true);
        }
        Ok(tensor)
    }

    /// Where CUDA memory lives, asked of the driver. A zero-size array with no pointer is placed
    /// on the current device.
    fn locate_cuda_memory(&self) -> Result<Device> {
        if self.data == 0 && element_count(&self.shape)? == 0 {
            let ordinal = crate::cuda::pointer::current_ordinal().unwrap_or(0);
            return Ok(Device::cuda(ordinal));
        }
        crate::cuda::pointer::classify(self.data)
    }

    /// The tensor this descriptor describes, with the `dtype` that [`Self::validate`] returned,
    /// on `device` (which the caller has established: from pointer attributes for CUDA memory,
    /// the CPU for the NumPy interface).
    pub(crate) fn to_desc(&self, dtype: DataType, device: Device, layout: Layout) -> TensorDesc {
        TensorDesc {
            data: self.data,
            device,
            dtype,
            shape: self.shape.as_slice().into(),
            strides: self.strides.as_deref().map(Dims::from),
            layout,
            readonly: self.readonly,
        }
    }

    /// The producer's stream, if it named one.
    pub(crate) fn producer_stream(&self) -> Option<Stream> {
        self.stream.map(Stream)
    }

    /// Describes `tensor` for `interface`: version 3, `strides` absent exactly when the tensor is
    /// C-contiguous (as CuPy does), and for the CUDA interface the stream on which its pending
    /// work was last enqueued.
    pub(crate) fn describe(tensor: &Tensor, interface: Interface) -> Result<ArrayInterface> {
        let device = tensor.device();
        match interface {
            Interface::Cuda if !device.is_cuda() => {
                return Err(Error::device_mismatch(format!(
                    "tensor is in host memory ({device}); export it with the NumPy array \
                     interface, or copy it to a GPU first"
                )));
            }
            Interface::NumPy if !tensor.is_host_accessible() => {
                return Err(Error::device_mismatch(format!(
                    "tensor is in GPU memory ({device}); export it with the CUDA Array \
                     Interface, or copy it to the host first"
                )));
            }
            _ => {}
        }
        let stream = match interface {
            Interface::Cuda => tensor.storage().pending_stream().map(|s| s.0),
            Interface::NumPy => None,
        };
        Ok(ArrayInterface {
            version: 3,
            data: tensor.data(),
            readonly: tensor.is_readonly(),
            typestr: tensor.dtype().to_typestr()?.to_string(),
            shape: tensor.shape().to_vec(),
            strides: (!tensor.is_contiguous()).then(|| tensor.strides().to_vec()),
            stream,
            has_mask: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn cai(typestr: &str) -> ArrayInterface {
        ArrayInterface {
            version: 3,
            data: 0x10000,
            readonly: false,
            typestr: typestr.to_string(),
            shape: vec![2, 3],
            strides: None,
            stream: None,
            has_mask: false,
        }
    }

    #[test]
    fn numpy_descriptor_round_trips() {
        let d = cai("<f4");
        let desc = d.to_desc(d.validate(Interface::NumPy).unwrap(), Device::CPU, Layout::NONE);
        let t = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        assert_eq!(ArrayInterface::describe(&t, Interface::NumPy).unwrap(), d);
        let err = ArrayInterface::describe(&t, Interface::Cuda).unwrap_err();
        assert!(err.message.contains("host memory"));
    }

    #[test]
    fn strides_are_given_exactly_when_not_contiguous() {
        let d = ArrayInterface { strides: Some(vec![4, 8]), ..cai("<f4") };
        let desc = d.to_desc(d.validate(Interface::NumPy).unwrap(), Device::CPU, Layout::NONE);
        let t = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        let back = ArrayInterface::describe(&t, Interface::NumPy).unwrap();
        assert_eq!(back.strides, Some(vec![4, 8]));
    }

    #[test]
    fn rejects_what_the_specification_forbids() {
        let cases = [
            (ArrayInterface { version: 1, ..cai("<f4") }, Interface::Cuda, "version 1"),
            (ArrayInterface { has_mask: true, ..cai("<f4") }, Interface::Cuda, "mask"),
            (ArrayInterface { stream: Some(0), ..cai("<f4") }, Interface::Cuda, "stream 0"),
            (ArrayInterface { stream: Some(1), ..cai("<f4") }, Interface::NumPy, "no 'stream'"),
            (cai(">f4"), Interface::NumPy, "big-endian"),
        ];
        for (d, interface, fragment) in cases {
            let err = d.validate(interface).unwrap_err();
            assert!(err.message.contains(fragment), "{fragment}: {}", err.message);
        }
    }
}
