//! The few lvm.conf settings that change what lvm2 loads into the kernel,
//! read from /etc/lvm/lvm.conf and /etc/lvm/lvmlocal.conf (which wins), in
//! the same libdm-config syntax as the metadata. cairn must load what lvm2
//! would, or lvm2 and cairn would keep reloading each other's tables.

use std::path::Path;

use crate::meta::text::{self, Section, Value};

/// Where lvm2's configuration lives.
pub const LVM_CONF_DIR: &str = "/etc/lvm";

/// The settings cairn honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LvmConfig {
    /// activation/thin_pool_autoextend_threshold (percent; 100 = off).
    pub thin_pool_autoextend_threshold: u64,
    /// activation/thin_pool_autoextend_percent.
    pub thin_pool_autoextend_percent: u64,
}

impl Default for LvmConfig {
    fn default() -> Self {
        LvmConfig {
            thin_pool_autoextend_threshold: 100,
            thin_pool_autoextend_percent: 20,
        }
    }
}

/// lvm.conf (or lvmlocal.conf) cannot be read or does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}: fix the file (lvmconfig --validate shows lvm2's view of it)")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong, and where.
    pub message: String,
}

impl LvmConfig {
    /// Reads the files under `dir` (normally /etc/lvm); missing files are
    /// fine, unreadable or garbled ones are errors.
    pub fn load(dir: &Path) -> Result<LvmConfig, ConfigError> {
        let mut config = LvmConfig::default();
        for file in ["lvm.conf", "lvmlocal.conf"] {
            let path = dir.join(file);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ConfigError {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })
                }
            };
            let root = text::parse(&text).map_err(|e| ConfigError {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            config.apply(&root);
        }
        Ok(config)
    }

    fn apply(&mut self, root: &Section) {
        let Some(activation) = root.section("activation") else {
            return;
        };
        let int = |key: &str| match activation.value(key) {
            Some(Value::Int(n)) if *n >= 0 => Some(*n as u64),
            _ => None,
        };
        if let Some(t) = int("thin_pool_autoextend_threshold") {
            self.thin_pool_autoextend_threshold = t;
        }
        if let Some(p) = int("thin_pool_autoextend_percent") {
            self.thin_pool_autoextend_percent = p;
        }
    }

    /// The settings a VG's tables depend on: read from `dir` (lvm2's
    /// configuration directory, normally [`LVM_CONF_DIR`]) only when the VG
    /// has a thin pool (the only tables they change), defaults otherwise.
    pub fn for_vg(
        dir: &Path,
        vg: &crate::meta::model::VolumeGroup,
    ) -> Result<LvmConfig, ConfigError> {
        let has_pool = vg.lvs.iter().any(|lv| {
            matches!(
                lv.segments.first().map(|s| &s.kind),
                Some(crate::meta::model::SegmentKind::ThinPool { .. })
            )
        });
        if !has_pool {
            return Ok(LvmConfig::default());
        }
        LvmConfig::load(dir)
    }

    /// lvm.conf's `devices/scan_lvs` (lvm.conf, then lvmlocal.conf, which
    /// wins; 0 when neither sets it, lvm2 2.03's default): whether a scan of
    /// the whole host reads LVs for PV labels. Read by a line scan rather
    /// than a parse of the ~100 KiB lvm.conf, since every command that scans
    /// needs it: the key exists only in the devices section, and a line
    /// `scan_lvs = N` outside a comment is it. Unreadable files count as unset.
    pub fn scan_lvs(dir: &Path) -> bool {
        let mut setting = false;
        for file in ["lvm.conf", "lvmlocal.conf"] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("").trim();
                if let Some(value) = line
                    .strip_prefix("scan_lvs")
                    .and_then(|r| r.trim_start().strip_prefix('='))
                {
                    setting = value.trim().parse::<i64>().is_ok_and(|n| n != 0);
                }
            }
        }
        setting
    }

    /// The thin-pool target's low-water mark, in pool blocks, as lvm2
    /// computes it (thin.c): none at a threshold of 100 % or more; below,
    /// the share of blocks above the threshold (at least 50 %).
    pub fn low_water_mark(&self, pool_sectors: u64, chunk_sectors: u64) -> u64 {
        let threshold = self.thin_pool_autoextend_threshold.max(50);
        if threshold >= 100 || chunk_sectors == 0 {
            return 0;
        }
        pool_sectors / chunk_sectors * (100 - threshold) / 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvmlocal_wins_and_the_mark_is_lvm2s() {
        let dir = std::env::temp_dir().join(format!("cairn-lvmconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("lvm.conf"),
            "# comment\nactivation {\n\tthin_pool_autoextend_threshold = 80\n\tudev_sync = 1\n}\n",
        )
        .unwrap();
        assert_eq!(
            LvmConfig::load(&dir)
                .unwrap()
                .thin_pool_autoextend_threshold,
            80
        );
        std::fs::write(
            dir.join("lvmlocal.conf"),
            "activation {\n    thin_pool_autoextend_threshold = 50\n    thin_pool_autoextend_percent = 10\n}\n",
        )
        .unwrap();
        let c = LvmConfig::load(&dir).unwrap();
        assert_eq!(
            (
                c.thin_pool_autoextend_threshold,
                c.thin_pool_autoextend_percent
            ),
            (50, 10)
        );
        // The lab's bench pool: 512 MiB, 64 KiB blocks, threshold 50 -> 4096
        // (the kernel showed `thin-pool ... 128 4096 0` after lvm2's lvcreate).
        assert_eq!(c.low_water_mark(1048576, 128), 4096);
        let thirty = LvmConfig {
            thin_pool_autoextend_threshold: 30,
            ..c
        };
        assert_eq!(thirty.low_water_mark(1048576, 128), 4096, "clamped to 50");
        assert_eq!(LvmConfig::default().low_water_mark(1048576, 128), 0);
        assert!(!LvmConfig::scan_lvs(&dir), "unset means 0");
        std::fs::write(
            dir.join("lvm.conf"),
            "devices {\n\t# scan_lvs = 1\n\tscan_lvs = 1  # ours\n}\n",
        )
        .unwrap();
        assert!(LvmConfig::scan_lvs(&dir));
        std::fs::write(dir.join("lvmlocal.conf"), "devices {\n scan_lvs=0\n}\n").unwrap();
        assert!(!LvmConfig::scan_lvs(&dir), "lvmlocal.conf wins");
        std::fs::write(dir.join("lvmlocal.conf"), "activation {").unwrap();
        let e = LvmConfig::load(&dir).unwrap_err();
        assert!(e.to_string().contains("lvmlocal.conf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
