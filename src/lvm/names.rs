//! Every device-mapper name and uuid cairn gives an LV, made here and only
//! here, as lvm2 makes them: name `vg-lv[-layer]` with each '-' inside the
//! VG and LV names doubled; uuid `LVM-<vg id><lv id>[-layer]` with the ids'
//! dashes removed. (lvm2's dm_build_dm_name / build_dm_uuid.)

fn escape(part: &str) -> String {
    part.replace('-', "--")
}

/// The dm name of an LV (or of one of its layers: "tpool", "real", "cow", ...).
pub fn dm_name(vg: &str, lv: &str, layer: Option<&str>) -> String {
    match layer {
        Some(layer) => format!("{}-{}-{layer}", escape(vg), escape(lv)),
        None => format!("{}-{}", escape(vg), escape(lv)),
    }
}

/// The dm uuid of an LV or layer.
pub fn dm_uuid(vg_id: &str, lv_id: &str, layer: Option<&str>) -> String {
    let bare = |id: &str| id.chars().filter(|c| *c != '-').collect::<String>();
    let base = format!("LVM-{}{}", bare(vg_id), bare(lv_id));
    match layer {
        Some(layer) => format!("{base}-{layer}"),
        None => base,
    }
}

/// The path lvm2 gives an active, visible LV.
pub fn lv_path(vg: &str, lv: &str) -> String {
    format!("/dev/{vg}/{lv}")
}

/// The VG and LV of a `/dev/VG/LV` path (the inverse of [`lv_path`]);
/// None for other paths (`/dev/mapper/...` included).
pub fn split_lv_path(path: &std::path::Path) -> Option<(String, String)> {
    let rest = path.strip_prefix("/dev").ok()?;
    let mut parts = rest.components();
    let vg = parts.next()?.as_os_str().to_str()?.to_owned();
    let lv = parts.next()?.as_os_str().to_str()?.to_owned();
    (parts.next().is_none() && vg != "mapper").then_some((vg, lv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lv_paths_split_back() {
        use std::path::Path;
        assert_eq!(
            split_lv_path(Path::new("/dev/DRBDVG2/my-container")),
            Some(("DRBDVG2".into(), "my-container".into()))
        );
        assert_eq!(split_lv_path(Path::new("/dev/mapper/VG-lv")), None);
        assert_eq!(split_lv_path(Path::new("/dev/VG/lv/x")), None);
        assert_eq!(split_lv_path(Path::new("/dev/sda")), None);
        assert_eq!(split_lv_path(Path::new("/tmp/VG/lv")), None);
    }

    #[test]
    fn names_as_lvm2_makes_them() {
        // From dmsetup ls in the lab after the reference scenario.
        assert_eq!(
            dm_name("DRBDVG2", "my-container", None),
            "DRBDVG2-my--container"
        );
        assert_eq!(
            dm_name("VG1", "cachedata_cpool_cdata", None),
            "VG1-cachedata_cpool_cdata"
        );
        assert_eq!(
            dm_name("DRBDVG2", "VPSthinpool", Some("tpool")),
            "DRBDVG2-VPSthinpool-tpool"
        );
        assert_eq!(dm_name("a-b", "c-d", Some("real")), "a--b-c--d-real");
        assert_eq!(
            dm_uuid(
                "MJPU2T-zvjl-MR84-5Znu-Bwop-kHJf-zlic1p",
                "6SkmF6-lP7k-65c6-FiTJ-t4vN-wVMU-VL44Tc",
                Some("real")
            ),
            "LVM-MJPU2Tzvjl\
MR845ZnuBwopkHJfzlic1p6SkmF6lP7k65c6FiTJt4vNwVMUVL44Tc-real"
        );
        assert_eq!(
            lv_path("DRBDVG2", "my-container"),
            "/dev/DRBDVG2/my-container"
        );
    }
}
