//! What the scan reads a device through: an open block device, or a device
//! image held in memory (host tests, the fuzz targets). The scan's readers
//! take either, so the code that meets bytes written by anybody is the same
//! code the fuzzer feeds.

use std::path::{Path, PathBuf};

use super::device::{Device, DeviceError};

/// Reading a device by byte ranges. Reads past its end fail
/// ([`DeviceError::PastEnd`]), never return short.
pub trait DeviceRead {
    /// Its name, for errors.
    fn path(&self) -> &Path;
    /// Its size in bytes: the bound of every area read from it.
    fn size(&self) -> u64;
    /// `len` bytes at `offset`.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DeviceError>;
}

impl DeviceRead for Device {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        Device::read_at(self, offset, len)
    }
}

/// A whole device image in memory.
#[derive(Debug, Clone)]
pub struct ImageDevice<'a> {
    /// The name errors give it.
    pub path: PathBuf,
    /// The image, from byte 0 of the device.
    pub bytes: &'a [u8],
}

impl<'a> ImageDevice<'a> {
    /// The image `bytes`, called `path` in errors.
    pub fn new(path: impl Into<PathBuf>, bytes: &'a [u8]) -> ImageDevice<'a> {
        ImageDevice {
            path: path.into(),
            bytes,
        }
    }
}

impl DeviceRead for ImageDevice<'_> {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, DeviceError> {
        let past_end = || DeviceError::PastEnd {
            path: self.path.clone(),
            offset,
            len,
            size: self.size(),
        };
        let from = usize::try_from(offset).map_err(|_| past_end())?;
        let to = from.checked_add(len).ok_or_else(past_end)?;
        self.bytes
            .get(from..to)
            .map(<[u8]>::to_vec)
            .ok_or_else(past_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_reads_like_a_device_and_refuses_past_its_end() {
        let bytes = [1u8, 2, 3, 4];
        let image = ImageDevice::new("/dev/image", &bytes);
        assert_eq!(image.size(), 4);
        assert_eq!(image.read_at(1, 3).unwrap(), [2, 3, 4]);
        assert_eq!(image.read_at(4, 0).unwrap(), [] as [u8; 0]);
        for (offset, len) in [(2, 3), (5, 0), (u64::MAX, 1), (1, usize::MAX)] {
            let e = image.read_at(offset, len).unwrap_err();
            assert!(matches!(e, DeviceError::PastEnd { .. }), "{e}");
            assert!(e.to_string().starts_with("/dev/image: "), "{e}");
        }
    }
}
