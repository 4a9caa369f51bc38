//! Twin VGs: `vgl` built by lvm2 and `vgc` by cairn, each on a "hdd" and
//! an "ssd" loop disk of the same sizes, so that the same requests on both
//! sides can be compared field by field (PV names replaced by their role).

use crate::lab::guest::LoopDisk;
use crate::lab::{Guest, TestResult};

pub struct Twins {
    pub lvm2: [LoopDisk; 2],
    pub cairn: [LoopDisk; 2],
}

impl Twins {
    /// Fresh twins with `hdd` and `ssd` MiB disks (extent size 4 MiB).
    pub fn new(g: &Guest, hdd: u64, ssd: u64) -> Result<Twins, String> {
        g.sh(
            "umount /mnt/t 2>/dev/null || true; vgchange -q -an vgl vgc 2>/dev/null || true
            dmsetup remove_all || true; vgremove -q -ff vgl vgc 2>/dev/null || true
            rm -rf /dev/vgl /dev/vgc",
        )?;
        let t = Twins {
            lvm2: [g.loop_disk("lh", hdd)?, g.loop_disk("ls", ssd)?],
            cairn: [g.loop_disk("ch", hdd)?, g.loop_disk("cs", ssd)?],
        };
        g.sh(&format!(
            "set -e; pvcreate -q {} {} {} {}; vgcreate -q vgl {} {}; vgcreate -q vgc {} {}",
            t.lvm2[0].dev,
            t.lvm2[1].dev,
            t.cairn[0].dev,
            t.cairn[1].dev,
            t.lvm2[0].dev,
            t.lvm2[1].dev,
            t.cairn[0].dev,
            t.cairn[1].dev
        ))?;
        Ok(t)
    }

    /// The HDD and SSD of VG `vg` ("vgl" or "vgc").
    pub fn disks(&self, vg: &str) -> (&str, &str) {
        let d = if vg == "vgl" { &self.lvm2 } else { &self.cairn };
        (&d[0].dev, &d[1].dev)
    }

    /// `lvs -a` of one twin with `fields`, PVs named by role.
    pub fn lvs(&self, g: &Guest, vg: &str, fields: &str) -> Result<String, String> {
        let (hdd, ssd) = self.disks(vg);
        Ok(g.sh(&format!(
            "lvs -a --noheadings --units s -o {fields} {vg} | sort"
        ))?
        .replace(hdd, "HDD")
        .replace(ssd, "SSD"))
    }

    /// Both twins' `lvs -a` equal.
    pub fn same_lvs(&self, g: &Guest, what: &str, fields: &str) -> TestResult {
        super::diff(
            what,
            &self.lvs(g, "vgl", fields)?,
            &self.lvs(g, "vgc", fields)?,
        )
    }

    /// Both twins' kernel tables equal, up to device numbers.
    pub fn same_tables(&self, g: &Guest, what: &str) -> TestResult {
        let tables = |vg: &str| -> Result<String, String> {
            g.sh(&format!(
                "dmsetup table | grep '^{vg}-' | sed 's/^{vg}-//; s/[0-9]*:[0-9]*/D/g' | sort"
            ))
        };
        super::diff(what, &tables("vgl")?, &tables("vgc")?)
    }

    /// The dm uuid suffixes and names of both twins equal (the LVM-<vg
    /// uuid><lv uuid> part differs by construction).
    pub fn same_dm_names(&self, g: &Guest, what: &str) -> TestResult {
        let names = |vg: &str| -> Result<String, String> {
            g.sh(&format!(
                "dmsetup info -c --noheadings -o name,uuid,attr | grep '^{vg}-' \
                 | sed -E 's/^{vg}-//; s/LVM-[A-Za-z0-9]{{64}}/LVM-ID/' | sort"
            ))
        };
        super::diff(what, &names("vgl")?, &names("vgc")?)
    }

    pub fn remove(self, g: &Guest) -> TestResult {
        g.sh("vgchange -q -an vgl vgc; vgremove -q -ff vgl vgc")?;
        Ok(())
    }
}
