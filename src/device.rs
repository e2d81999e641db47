//! Where a tensor's memory lives, in DLPack's device-type codes plus an ordinal.

use crate::error::{Error, Result};

/// Memory kinds, with DLPack's `DLDeviceType` values.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TbDeviceType {
    /// Ordinary (pageable) host memory. Ordinal must be 0.
    TB_DEVICE_CPU = 1,
    /// Device memory of the CUDA GPU with the given ordinal.
    TB_DEVICE_CUDA = 2,
    /// Page-locked host memory (`cudaMallocHost`), readable by the host and by every GPU.
    TB_DEVICE_CUDA_HOST = 3,
    /// CUDA managed (unified) memory (`cudaMallocManaged`); the ordinal names its home GPU.
    TB_DEVICE_CUDA_MANAGED = 13,
}

/// A device: a `TbDeviceType` value and an ordinal (the CUDA device index; 0 for the CPU).
/// Layout-compatible with DLPack's `DLDevice`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TbDevice {
    /// A `TbDeviceType` value.
    pub device_type: i32,
    /// Device ordinal: the CUDA device index for CUDA kinds, 0 for `TB_DEVICE_CPU`.
    pub device_id: i32,
}

/// The device type of the safe core (always a valid kind).
pub(crate) type DeviceType = TbDeviceType;

/// A validated device: a known kind and a non-negative ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Device {
    /// The memory kind.
    pub kind: DeviceType,
    /// The ordinal (0 for the CPU).
    pub ordinal: i32,
}

impl DeviceType {
    /// Converts a raw device-type code, rejecting unknown ones.
    pub(crate) fn from_code(code: i32) -> Result<Self> {
        Ok(match code {
            1 => TbDeviceType::TB_DEVICE_CPU,
            2 => TbDeviceType::TB_DEVICE_CUDA,
            3 => TbDeviceType::TB_DEVICE_CUDA_HOST,
            13 => TbDeviceType::TB_DEVICE_CUDA_MANAGED,
            4 | 7 | 8 | 9 | 10 | 12 | 14 | 15 | 16 | 17 => {
                return Err(Error::not_supported(format!(
                    "device type {code} ({}) is not supported; use CPU (1), CUDA (2), \
                     CUDA host (3) or CUDA managed (13)",
                    dlpack_device_name(code)
                )));
            }
            _ => {
                return Err(Error::invalid_argument(format!(
                    "device type {code} is not a known device type"
                )));
            }
        })
    }

    /// A short name: `"cpu"`, `"cuda"`, `"cuda_host"`, `"cuda_managed"`.
    pub(crate) fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or_default()
    }

    /// `Self::name` as a static C string.
    pub(crate) fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            TbDeviceType::TB_DEVICE_CPU => c"cpu",
            TbDeviceType::TB_DEVICE_CUDA => c"cuda",
            TbDeviceType::TB_DEVICE_CUDA_HOST => c"cuda_host",
            TbDeviceType::TB_DEVICE_CUDA_MANAGED => c"cuda_managed",
        }
    }

    /// Whether the host can read and write this memory directly.
    pub(crate) fn is_host_accessible(self) -> bool {
        !matches!(self, TbDeviceType::TB_DEVICE_CUDA)
    }
}

fn dlpack_device_name(code: i32) -> &'static str {
    match code {
        4 => "OpenCL",
        7 => "Vulkan",
        8 => "Metal",
        9 => "VPI",
        10 => "ROCm",
        12 => "ExtDev",
        14 => "oneAPI",
        15 => "WebGPU",
        16 => "Hexagon",
        17 => "MAIA",
        _ => "unknown",
    }
}

impl Device {
    /// The host (pageable memory).
    pub(crate) const CPU: Device = Device { kind: TbDeviceType::TB_DEVICE_CPU, ordinal: 0 };

    /// A CUDA device by ordinal.
    pub(crate) fn cuda(ordinal: i32) -> Device {
        Device { kind: TbDeviceType::TB_DEVICE_CUDA, ordinal }
    }

    /// Validates a C-side device description.
    pub(crate) fn from_raw(raw: TbDevice) -> Result<Device> {
        let kind = DeviceType::from_code(raw.device_type)?;
        if raw.device_id < 0 {
            return Err(Error::invalid_argument(format!(
                "device ordinal {} is negative",
                raw.device_id
            )));
        }
        if kind == TbDeviceType::TB_DEVICE_CPU && raw.device_id != 0 {
            return Err(Error::invalid_argument(format!(
                "device ordinal {} for the CPU: the CPU has ordinal 0",
                raw.device_id
            )));
        }
        Ok(Device { kind, ordinal: raw.device_id })
    }

    /// The C-side description.
    pub(crate) fn to_raw(self) -> TbDevice {
        TbDevice { device_type: self.kind as i32, device_id: self.ordinal }
    }

    /// Whether the memory is on (or managed by) a CUDA device rather than ordinary host memory.
    pub(crate) fn is_cuda(self) -> bool {
        self.kind != TbDeviceType::TB_DEVICE_CPU
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.ordinal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_four_cuda_family_kinds() {
        for code in [1, 2, 3, 13] {
            let dev = Device::from_raw(TbDevice { device_type: code, device_id: 0 }).unwrap();
            assert_eq!(dev.to_raw().device_type, code);
        }
    }

    #[test]
    fn rejects_other_kinds_and_bad_ordinals() {
        let opencl = Device::from_raw(TbDevice { device_type: 4, device_id: 0 }).unwrap_err();
        assert!(opencl.message.contains("OpenCL"));
        let unknown = Device::from_raw(TbDevice { device_type: 99, device_id: 0 }).unwrap_err();
        assert!(unknown.message.contains("99"));
        let negative = Device::from_raw(TbDevice { device_type: 2, device_id: -1 }).unwrap_err();
        assert!(negative.message.contains("-1"));
        let cpu1 = Device::from_raw(TbDevice { device_type: 1, device_id: 1 }).unwrap_err();
        assert!(cpu1.message.contains("ordinal 0"));
    }
}
