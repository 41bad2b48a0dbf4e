//! Inventory files: up to three files (the input split at NUL, which TOML text cannot hold)
//! merged as `load` merges a folder, then every environment and role resolved to hosts.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use rigs::inventory::selection::{select, Overrides};
use rigs::inventory::ssh_config::SshConfig;
use rigs::inventory::{merge_file, Inventory};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut inventory = Inventory::default();
    for (i, file) in text.split('\0').take(3).enumerate() {
        let path = PathBuf::from(format!("inventory/{i}.toml"));
        if let Err(e) = merge_file(&mut inventory, &path, file) {
            let _ = e.to_string();
            return;
        }
    }
    let ssh_config = SshConfig::default();
    for env in inventory.envs.values() {
        assert!(!env.hosts.is_empty(), "{} has no hosts", env.name);
        match select(
            &inventory,
            Some(&env.name),
            &Overrides::default(),
            &ssh_config,
        ) {
            Ok(hosts) => {
                let names: Vec<&String> = hosts.iter().map(|h| &h.name).collect();
                assert_eq!(names, env.hosts.iter().collect::<Vec<_>>());
                for h in &hosts {
                    assert!(h.endpoint.port > 0, "{h:?}");
                    let _ = h.destination();
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        for (role, members) in &env.roles {
            let overrides = Overrides {
                roles: vec![role.clone()],
                ..Overrides::default()
            };
            if let Ok(hosts) = select(&inventory, Some(&env.name), &overrides, &ssh_config) {
                for h in &hosts {
                    assert!(members.contains(&h.name), "{role}: {}", h.name);
                    assert!(h.roles.contains(role), "{role}: {h:?}");
                }
            }
        }
        let overrides = Overrides {
            limit: env.hosts.first().cloned(),
            exclude: env.hosts.iter().skip(1).take(1).cloned().collect(),
            ..Overrides::default()
        };
        if let Err(e) = select(&inventory, Some(&env.name), &overrides, &ssh_config) {
            let _ = e.to_string();
        }
    }
    let overrides = Overrides {
        hosts: inventory.hosts.keys().cloned().collect(),
        ..Overrides::default()
    };
    if let Err(e) = select(&inventory, None, &overrides, &ssh_config) {
        let _ = e.to_string();
    }
});
