//! The Docker lab itself, for the image-shipping tests that build on it: an offline host really
//! cannot reach the registry while an online one can, and the test images share their base
//! layer, so a host holding one version already has all but the top layer of the next.

use std::time::Instant;

use crate::harness::{process_running, DockerLab, LabOptions};

#[test]
fn lab_offline_host_and_shared_base_layers() {
    let started = Instant::now();
    let lab = DockerLab::start_with(2, &LabOptions { offline: vec![1] });
    eprintln!("a 2-host lab started in {:.1?}", started.elapsed());
    let v1 = format!("{}:v1", lab.image());
    let v2 = format!("{}:v2", lab.image());

    lab.assert_offline(1);
    assert!(lab.app_tags(0).is_empty() && lab.app_tags(1).is_empty());
    assert!(lab.docker_login(0).status.success());
    lab.docker_ok(0, &["pull", &v1]);
    assert_eq!(lab.image_id(0, &v1), lab.controller_image_id(&v1));
    assert_eq!(lab.image_id(1, &v1), "");

    let (one, two) = (lab.diff_ids(None, &v1), lab.diff_ids(None, &v2));
    assert_eq!((one.len(), two.len()), (2, 2), "{one:?} {two:?}");
    assert_eq!(one[0], two[0], "v1 and v2 share the base layer");
    assert_ne!(one[1], two[1]);
    assert_eq!(lab.diff_ids(Some(0), &v1), one);

    let big = lab.big_image("big", 5);
    let layers = lab.diff_ids(None, &big);
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(layers[0], one[0]);
    let size: u64 = lab
        .controller_docker_ok(&["image", "inspect", "--format", "{{.Size}}", &big])
        .parse()
        .unwrap();
    assert!(size > 5 * 1024 * 1024, "{size} bytes");

    let sockets = [lab.docker_host(1), lab.controller_docker_host()];
    drop(lab);
    for socket in sockets {
        let socket = socket.trim_start_matches("unix://");
        assert!(!process_running(socket), "dockerd for {socket} still runs");
    }
}
