//! Bundle files: `verify`, reading the verified archive, and `extract`.
//!
//! The first input byte chooses the form: even, the rest is the file as is; odd, the rest lays
//! out a bundle through `rigs_fuzz::arbitrary_bundle`, whose digests are mostly right so that
//! the checks after the tar walk, and `extract`, are reached at all.
//!
//! Properties: nothing panics; `extract` succeeds exactly when `verify` does; it writes only the
//! three entries, inside the directory it is given, with the verified content; a failed
//! `extract` leaves nothing behind.
#![no_main]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use rigs::ship::bundle::{extract, verify};

fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir"))
        .path()
}

fn listing(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.expect("a dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match rigs_fuzz::arbitrary_bundle(&mut Unstructured::new(rest)) {
            Ok(file) => file,
            Err(_) => return,
        }
    };
    let root = dir();
    let path = root.join("bundle.tar");
    let out = root.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::write(&path, &file).expect("writing the bundle");

    let verified = verify(&path);
    if let Ok(v) = &verified {
        let (offset, len) = (v.archive_offset as usize, v.archive_len as usize);
        let archive = &file[offset..offset + len];
        assert_eq!(v.manifest.archive.bytes, len as u64);
        let mut read = Vec::new();
        v.open_archive(v.archive_len)
            .expect("the whole archive")
            .read_to_end(&mut read)
            .expect("reading the verified archive");
        assert!(read == archive, "the archive reads back differently");
        let body = v.manifest.archive.body_bytes;
        let mut read = Vec::new();
        v.open_archive(body)
            .expect("the body")
            .read_to_end(&mut read)
            .expect("reading the verified body");
        assert!(
            read == archive[..body as usize],
            "the body reads back differently"
        );
        assert!(v.open_archive(v.archive_len + 1).is_err());
    }

    let extracted = extract(&path, &out);
    assert_eq!(
        extracted.is_ok(),
        verified.is_ok(),
        "verify: {:?}\nextract: {:?}",
        verified.as_ref().err().map(ToString::to_string),
        extracted.as_ref().err().map(ToString::to_string)
    );
    let mut expected_root: BTreeSet<String> = ["bundle.tar".to_string()].into();
    match (&extracted, &verified) {
        (Ok(manifest), Ok(v)) => {
            expected_root.insert("out".into());
            assert_eq!(manifest, &v.manifest);
            let names: BTreeSet<String> = [
                manifest.archive.name.clone(),
                "manifest.json".into(),
                "SHA256SUMS".into(),
            ]
            .into();
            assert_eq!(listing(&out), names);
            let archive = std::fs::read(out.join(&manifest.archive.name)).expect("the archive");
            let (offset, len) = (v.archive_offset as usize, v.archive_len as usize);
            assert!(
                archive == file[offset..offset + len],
                "extracted archive differs"
            );
        }
        (Err(e), _) => {
            let _ = e.to_string();
            assert!(
                listing(&out).is_empty(),
                "a failed extract left {:?}",
                listing(&out)
            );
        }
        _ => unreachable!(),
    }
    assert_eq!(
        listing(root),
        expected_root,
        "extract wrote outside its directory"
    );
});
