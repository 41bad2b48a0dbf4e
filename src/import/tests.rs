use std::path::Path;

use super::*;

/// Loads `toml` with rigs' own loader.
pub(super) fn load(toml: &str) -> crate::inventory::Inventory {
    let mut inv = crate::inventory::Inventory::default();
    if let Err(e) = crate::inventory::merge_file(&mut inv, Path::new("out.toml"), toml) {
        panic!("{e}\n--- toml ---\n{toml}");
    }
    inv
}

pub(super) fn fixture(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn natural_order_counts() {
    let mut hosts: Vec<String> = ["web10", "web2", "web1", "db", "web02"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    sort_hosts(&mut hosts);
    assert_eq!(hosts, ["db", "web1", "web2", "web02", "web10"]);
}

#[test]
fn env_names_are_made_valid() {
    assert_eq!(env_name("web-eu"), "web-eu");
    assert_eq!(env_name("web.eu"), "web_eu");
    assert_eq!(env_name("1st"), "_1st");
}

#[test]
fn keys_and_strings_are_quoted_when_needed() {
    let mut out = Output::default();
    out.vars
        .insert("a.b".into(), toml::Value::String("say \"hi\"\n".into()));
    out.envs.push(Env {
        name: "p".into(),
        hosts: vec!["h.example.com".into()],
        ..Env::default()
    });
    out.hosts.push(HostEntry {
        name: "h.example.com".into(),
        ..HostEntry::default()
    });
    let text = render::render(&out);
    let inv = load(&text);
    assert_eq!(inv.vars["a.b"].as_str(), Some("say \"hi\"\n"), "{text}");
    assert!(inv.hosts.contains_key("h.example.com"), "{text}");
}

#[test]
fn never_panics_on_odd_input() {
    let inputs = [
        "",
        " ",
        "[",
        "]",
        "[a:b]",
        "{",
        "{}",
        "[]",
        "- a",
        "a:",
        "a: [",
        "a: 1",
        "all: 3",
        "all:\n  hosts: 3",
        "all:\n  children: [1]",
        "[g]\nh x",
        "[g]\nh x='",
        "[g:vars]\nx",
        "h[1:",
        "h[a:1]",
        "h[3:1]",
        "h[1:99999999999]",
        "#!/bin/sh",
        "plugin: aws_ec2",
        "$ANSIBLE_VAULT;1.1",
        "\u{0}",
        "[g]\n@",
        "[g]\nh:0",
        "[g]\n[::1]:22",
        "{\"_meta\": 1}",
        "{\"g\": [1, \"h\"]}",
        "{\"g\": {\"hosts\": {\"h\": 1}}}",
    ];
    for kind in [Kind::Ansible, Kind::Kamal] {
        for input in inputs {
            if let Ok(imported) = import(kind, input, "in") {
                load(&imported.toml);
            }
        }
    }
}

#[test]
fn every_prefix_of_the_fixtures_is_handled() {
    for (kind, file) in [
        (Kind::Ansible, "ansible/hosts.ini"),
        (Kind::Ansible, "ansible/hosts.yml"),
        (Kind::Ansible, "ansible/inventory.json"),
        (Kind::Kamal, "kamal/deploy.yml"),
    ] {
        let text = fixture(file);
        for (end, _) in text.char_indices() {
            if let Ok(imported) = import(kind, &text[..end], file) {
                load(&imported.toml);
            }
        }
    }
}
