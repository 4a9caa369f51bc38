//! A VG on one image file with an inactive thin pool, a simulated kernel
//! and its device directory: the bench for host tests of thin operations.

use std::path::PathBuf;

use crate::dm::sim::SimDm;
use crate::dm::Kernel;
use crate::meta::model::{LvStatus, Segment, SegmentKind, VolumeGroup};
use crate::meta::ops::{self, Env};

use super::action::{Action, Run};
use super::engine::Dev;
use super::thin::{create_in, remove_in, thin_pool_seg, Create, Request, Result};

pub(crate) struct Lab {
    pub(crate) dir: PathBuf,
    pub(crate) env: Env,
    pub(crate) sim: SimDm,
    pub(crate) dev: Dev,
}

impl Lab {
    /// VG `vg` on one 64 MiB image with an inactive thin pool `pool`
    /// (transaction id 0, as lvm2 and cairn make it).
    pub(crate) fn new(tag: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("cairn-thin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("a.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let env = Env {
            devices: vec![disk.clone()],
            ..Env::under(&dir, &format!("test {tag}"))
        };
        let image = ops::PvCreate {
            uuid: None,
            force: false,
            allow_file: true,
        };
        ops::pv_create(&env, &disk, &image).unwrap();
        let _ = ops::vg_create(
            &env,
            "vg",
            std::slice::from_ref(&disk),
            ops::DEFAULT_EXTENT_SIZE,
        )
        .unwrap();
        let mut change = ops::begin_change(&env, "vg", &[]).unwrap();
        let vg = &mut change.metadata.vg;
        // Made under other names: the pool's are reserved to lvm2's own.
        for (n, extents) in [("pool_tdata", 4), ("pool_tmeta", 1)] {
            ops::add_linear_lv(vg, "layer", extents, None).unwrap();
            let lv = vg.lv_mut("layer").unwrap();
            lv.name = n.to_owned();
            lv.status.remove(LvStatus::VISIBLE);
        }
        let pool = ops::new_lv(
            "pool",
            vec![Segment {
                start_extent: 0,
                extent_count: 4,
                reshape_count: None,
                type_flags: vec![],
                tags: vec![],
                kind: SegmentKind::ThinPool {
                    metadata: "pool_tmeta".into(),
                    pool: "pool_tdata".into(),
                    transaction_id: 0,
                    chunk_size: 128,
                    discards: Some("passdown".into()),
                    zero_new_blocks: false,
                    crop_metadata: None,
                    messages: vec![],
                },
                extra: Default::default(),
            }],
        )
        .unwrap();
        vg.lvs.push(pool);
        let _ = change.commit(&env, &[]).unwrap();
        let sim = SimDm::new();
        sim.add_disk(&disk, 7, 0);
        let dev = Dev {
            root: dir.join("dev"),
            ..Dev::default()
        };
        Lab { dir, env, sim, dev }
    }

    pub(crate) fn vg(&self) -> VolumeGroup {
        self.env.scan(&[]).unwrap().vg("vg").unwrap().metadata.vg
    }

    /// The pool's transaction id and queued messages in the metadata.
    pub(crate) fn pool_meta(&self) -> (u64, usize) {
        let (tid, _, queued) = thin_pool_seg(&self.vg(), "pool").unwrap();
        (tid, queued)
    }

    pub(crate) fn create(&self, name: &str, what: Request, run: Run) -> Result<Vec<Action>> {
        let req = Create {
            vg: "vg".into(),
            name: name.into(),
            what,
            activate: true,
        };
        create_in(Kernel::Given(&self.sim), &self.env, &self.dev, &req, run)
    }

    pub(crate) fn thin(&self, name: &str, run: Run) -> Result<Vec<Action>> {
        let what = Request::Volume {
            pool: "pool".into(),
            size_bytes: crate::units::Bytes(8 << 20),
        };
        self.create(name, what, run)
    }

    pub(crate) fn remove(&self, name: &str) -> Result<Vec<Action>> {
        let kernel = Kernel::Given(&self.sim);
        remove_in(kernel, &self.env, &self.dev, "vg", name, Run::Apply)
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        self.sim
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("message "))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
