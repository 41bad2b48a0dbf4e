use super::super::tests::{fixture, load};
use super::super::{import, Imported, Kind};

fn ansible(text: &str) -> Imported {
    match import(Kind::Ansible, text, "hosts") {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

fn warned(i: &Imported, needle: &str) -> bool {
    i.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn the_three_forms_give_the_expected_file() {
    let expected = fixture("ansible/expected.toml");
    for file in ["hosts.ini", "hosts.yml", "inventory.json"] {
        let imported = match import(Kind::Ansible, &fixture(&format!("ansible/{file}")), file) {
            Ok(i) => i,
            Err(e) => panic!("{file}: {e}"),
        };
        assert_eq!(imported.toml, expected, "{file}\n{}", imported.toml);
    }
}

#[test]
fn fixture_maps_groups_hosts_and_settings() {
    let imported = ansible(&fixture("ansible/hosts.ini"));
    let inv = load(&imported.toml);
    let prod = &inv.envs["production"];
    assert_eq!(
        prod.hosts,
        ["db1.example.com", "web1.example.com", "web2.example.com"]
    );
    assert_eq!(prod.roles["web"], ["web1.example.com", "web2.example.com"]);
    assert_eq!(prod.role_vars["web"]["http_port"].as_integer(), Some(80));
    assert_eq!(prod.vars["app_env"].as_str(), Some("production"));
    assert_eq!(inv.envs["web"].hosts.len(), 2);
    assert_eq!(inv.defaults.user.as_deref(), Some("deploy"));
    assert_eq!(inv.vars["ntp_server"].as_str(), Some("ntp.example.com"));
    let db = &inv.hosts["db1.example.com"];
    assert_eq!(db.address.as_deref(), Some("10.0.0.21"));
    assert_eq!(db.settings.port, Some(2222));
    assert_eq!(db.settings.user.as_deref(), Some("dbadmin"));
    assert_eq!(db.vars["sudo"].as_bool(), Some(true));
    assert_eq!(
        inv.envs["staging"].settings.jump,
        Some(vec!["bastion.example.com".to_string()])
    );
    assert!(inv.hosts.contains_key("bastion.example.com"));
    assert!(!imported.toml.contains("hunter2"));
    assert!(!imported.toml.contains("ANSIBLE_VAULT"));
    assert!(!imported.toml.contains("db_password"));
    for needle in [
        "host `db1.example.com`: `ansible_become_password` is a password",
        "--ask-sudo-pass",
        "became the variable `sudo = true`",
        "group `staging`: `db_password` is encrypted with ansible-vault",
        "`app_url` uses Jinja",
        "host `bastion.example.com`: in no group",
    ] {
        assert!(
            warned(&imported, needle),
            "{needle}: {:#?}",
            imported.warnings
        );
    }
}

#[test]
fn ini_values_and_sections() {
    let i = ansible(
        "[g]\nh1 a=1 b=true c=1.10 d=007 e=\"two words\" f=-3\n\n[g:vars]\nx = \"quoted\"\ny=False\n",
    );
    let inv = load(&i.toml);
    let v = &inv.hosts["h1"].vars;
    assert_eq!(v["a"].as_integer(), Some(1));
    assert_eq!(v["b"].as_bool(), Some(true));
    assert_eq!(v["c"].as_str(), Some("1.10"));
    assert_eq!(v["d"].as_str(), Some("007"));
    assert_eq!(v["e"].as_str(), Some("two words"));
    assert_eq!(v["f"].as_integer(), Some(-3));
    assert_eq!(inv.envs["g"].vars["x"].as_str(), Some("quoted"));
    assert_eq!(inv.envs["g"].vars["y"].as_bool(), Some(false));
}

#[test]
fn ranges_expand_like_ansible() {
    let i = ansible("[g]\nweb[08:10].x\ndb-[a:c]\nn[1:5:2]\n");
    let inv = load(&i.toml);
    assert_eq!(
        inv.envs["g"].hosts,
        ["db-a", "db-b", "db-c", "n1", "n3", "n5", "web08", "web09", "web10"].map(|h| {
            if h.starts_with("web") {
                format!("{h}.x")
            } else {
                h.to_string()
            }
        })
    );
    let bad = ansible("[g]\nok\nweb[9:1]\n");
    assert!(
        warned(&bad, "`web[9:1]` cannot be expanded"),
        "{:?}",
        bad.warnings
    );
}

#[test]
fn host_port_suffix_becomes_port() {
    let i = ansible("[g]\nweb1:2222\n");
    let inv = load(&i.toml);
    assert_eq!(inv.envs["g"].hosts, ["web1"]);
    assert_eq!(inv.hosts["web1"].settings.port, Some(2222));
}

#[test]
fn connection_keys() {
    let i = ansible(
        "[g]\nlocal ansible_connection=local\nw ansible_connection=winrm ansible_python_interpreter=/usr/bin/python3\n\
         j ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -q ops@gate\"'\n\
         k ansible_ssh_extra_args='-o StrictHostKeyChecking=no'\n",
    );
    let inv = load(&i.toml);
    assert_eq!(
        inv.hosts["local"].settings.connection,
        Some(crate::inventory::Connection::Local)
    );
    assert_eq!(
        inv.hosts["j"].settings.jump,
        Some(vec!["ops@gate".to_string()])
    );
    assert!(
        warned(&i, "`ansible_connection` = \"winrm\""),
        "{:?}",
        i.warnings
    );
    assert!(warned(
        &i,
        "`ansible_python_interpreter` is an Ansible setting"
    ));
    assert!(warned(&i, "host `k`: `ansible_ssh_extra_args`"));
}

#[test]
fn passwords_are_never_copied() {
    let i = ansible(
        "all:\n  vars:\n    ansible_password: s3cret\n  children:\n    g:\n      hosts:\n        h:\n          ansible_ssh_pass: s3cret2\n          ansible_become_pass: s3cret3\n",
    );
    assert!(!i.toml.contains("s3cret"), "{}", i.toml);
    assert!(warned(&i, "group `all`: `ansible_password` is a password"));
    assert!(warned(&i, "host `h`: `ansible_ssh_pass`"));
    assert!(warned(&i, "host `h`: `ansible_become_pass`"));
}

#[test]
fn nested_groups_and_child_settings() {
    let i = ansible(
        "[app:children]\nweb\n[web:children]\nweb_eu\n[web_eu]\ne1\n[web]\nw1\n[web:vars]\nansible_user=www\ncolor=blue\n",
    );
    let inv = load(&i.toml);
    assert_eq!(inv.envs["app"].hosts, ["e1", "w1"]);
    assert_eq!(inv.envs["app"].roles["web"], ["e1", "w1"]);
    assert_eq!(inv.envs["web"].roles["web_eu"], ["e1"]);
    assert_eq!(inv.envs["web"].settings.user.as_deref(), Some("www"));
    assert_eq!(inv.hosts["e1"].settings.user.as_deref(), Some("www"));
    assert_eq!(
        inv.envs["app"].role_vars["web"]["color"].as_str(),
        Some("blue")
    );
}

#[test]
fn odd_names_and_values() {
    let i = ansible(
        "all:\n  children:\n    web.eu:\n      hosts:\n        h:\n          \"my.var\": 1\n          nothing:\n          list: [1, null, 2]\n          nested: {a: {b: [x]}}\n",
    );
    let inv = load(&i.toml);
    assert!(inv.envs.contains_key("web_eu"), "{}", i.toml);
    assert!(warned(&i, "is the environment `web_eu`"));
    assert!(warned(&i, "`my.var` is not a plain name"));
    assert!(warned(&i, "`nothing` is null"));
    assert!(warned(&i, "`list[1]` is null"));
    let v = &inv.hosts["h"].vars;
    assert_eq!(v["my.var"].as_integer(), Some(1));
    assert_eq!(v["list"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["nested"]["a"]["b"][0].as_str(), Some("x"));
}

#[test]
fn role_clashes_are_warned() {
    let i = ansible("[p:children]\na\nb\n[a]\nh\n[b]\nh\n[a:vars]\nx=1\n[b:vars]\nx=2\n");
    assert!(warned(
        &i,
        "host `h`: in roles `a` and `b` of env:p, which give `x` different"
    ));
}

#[test]
fn scripts_plugins_and_vaulted_files_are_refused() {
    for (text, needle) in [
        (
            "#!/usr/bin/env python\nprint('{}')\n",
            "dynamic inventory script",
        ),
        (
            "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
            "inventory plugin",
        ),
        ("$ANSIBLE_VAULT;1.1;AES256\n6162\n", "ansible-vault"),
        ("{\"all\": ", "not valid JSON"),
        ("all:\n  hosts: [\n", "not valid YAML"),
        ("[g:nope]\nh\n", "line 1"),
        ("[g]\nh x\n", "not KEY=VALUE"),
    ] {
        match import(Kind::Ansible, text, "inv.ini") {
            Ok(i) => panic!("{text:?} was accepted:\n{}", i.toml),
            Err(e) => {
                assert!(e.starts_with("inv.ini: "), "{e}");
                assert!(e.contains(needle), "{needle}: {e}");
            }
        }
    }
}

#[test]
fn empty_groups_are_warned() {
    let i = ansible("[g]\nh\n[empty]\n[empty:vars]\nx=1\n");
    assert!(warned(&i, "group `empty` has no hosts"), "{:?}", i.warnings);
}

#[test]
fn other_yaml_documents_are_refused_and_empty_ones_warned() {
    let e = import(Kind::Ansible, "- a\n- b\n", "inv.yml").unwrap_err();
    assert!(e.contains("expected an Ansible inventory"), "{e}");
    let i = ansible("all:\n  vars:\n    x: 1\n");
    assert!(warned(&i, "found no hosts"), "{:?}", i.warnings);
    assert_eq!(load(&i.toml).vars["x"].as_integer(), Some(1));
}

#[test]
fn many_places_make_one_warning() {
    let mut text = String::from("[g]\n");
    for n in 0..30 {
        text.push_str(&format!("h{n} ansible_become=yes\n"));
    }
    let i = ansible(&text);
    let sudo: Vec<&String> = i
        .warnings
        .iter()
        .filter(|w| w.contains("sudo = true"))
        .collect();
    assert_eq!(sudo.len(), 1, "{sudo:?}");
    assert!(
        sudo[0].starts_with("hosts: host `h0`, host `h1`, "),
        "{}",
        sudo[0]
    );
    assert!(sudo[0].contains(" and 10 more: "), "{}", sudo[0]);
}
