//! The `docker save` stream reader (`ship::archive`): `scan` learns the layer names, then one
//! `pass` copies the stream to a full output and one that leaves out a layer, and another pass
//! rewrites it as an OCI layout, as shipping to a containerd image store does.
//!
//! Properties: nothing panics or allocates without bound; the full copy is the input up to the
//! end-of-archive marker, byte for byte, and stops exactly at that marker (or at the end of the
//! input); the copy without a layer is never longer than the full one.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rigs::ship::archive::{pass, scan, LayerNames, Output};

fuzz_target!(|data: &[u8]| {
    let names = scan(data).unwrap_or_else(|_| LayerNames::default());
    let skip: HashSet<String> = names.by_path.values().min().cloned().into_iter().collect();
    let none = HashSet::new();
    let (mut full, mut delta) = (Vec::new(), Vec::new());
    let mut outputs = [
        Output::new(&none, &mut full),
        Output::new(&skip, &mut delta),
    ];
    let result = pass(data, &names, &mut outputs, false);
    let full_stats = outputs[0].stats.clone();
    let delta_stats = outputs[1].stats.clone();
    if let Ok(stats) = result {
        assert_eq!(stats.read, data.len() as u64);
        assert!(data.starts_with(&full), "the full copy is not the input");
        assert_eq!(full.len() % 512, 0);
        assert_eq!(full_stats.bytes, full.len() as u64);
        let rest = &data[full.len()..];
        assert!(
            rest.is_empty() || rest[..512.min(rest.len())].iter().all(|b| *b == 0),
            "the copy stops before the end-of-archive marker"
        );
        assert!(delta.len() <= full.len());
        assert_eq!(full_stats.layers_skipped, 0);
        assert!(delta_stats.layers_skipped > 0 || delta == full);
    }

    let mut oci = Vec::new();
    let mut outputs = [Output {
        oci: true,
        ..Output::new(&none, &mut oci)
    }];
    let _ = pass(data, &names, &mut outputs, false);
});
