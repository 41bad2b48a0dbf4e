//! Plans built from an inventory and recipes in a temporary folder: no host is ever reached.

use super::*;
use crate::host_count::HostCount;
use crate::run::Locks;

const INVENTORY: &str = r#"
[env.staging]
hosts = ["web-1", "web-2", "db-1"]
roles = { web = ["web-1", "web-2"], db = ["db-1"] }
vars = { batch = 2, tier = "stg" }

[env.production]
hosts = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
vars = { batch = "25%" }

[env.broken]
hosts = ["b1"]
vars = { batch = "lots" }
"#;

const RECIPES: &str = r#"
/// Deploy a tag.
/// @lock
fn deploy(tag) {}

/// Say something.
fn say(text) {}

/// How it runs.
fn status() {}
"#;

/// A folder with the inventory and a recipe file, plus more recipe files.
fn project(more: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), INVENTORY).unwrap();
    std::fs::create_dir(dir.path().join("recipes")).unwrap();
    std::fs::write(dir.path().join("recipes/main.rhai"), RECIPES).unwrap();
    for (name, text) in more {
        std::fs::write(dir.path().join("recipes").join(name), text).unwrap();
    }
    dir
}

/// The plan of the words in `dir`, with `change` made to the request first (the flags).
fn plan_in(
    dir: &tempfile::TempDir,
    words: &[&str],
    change: impl FnOnce(&mut Request),
) -> Result<Plan> {
    let mut request = Request {
        inventory: Some(dir.path().join("inventory.toml")),
        recipes: Some(dir.path().join("recipes")),
        ssh_config: Some("/dev/null".into()),
        calls: words.iter().map(|w| TaskCall::parse(w).unwrap()).collect(),
        ..Request::default()
    };
    change(&mut request);
    Plan::load(request, Cancel::default())
}

fn plan_with(words: &[&str], change: impl FnOnce(&mut Request)) -> Result<Plan> {
    plan_in(&project(&[]), words, change)
}

fn plan(words: &[&str]) -> Result<Plan> {
    plan_with(words, |_| {})
}

fn error_with(words: &[&str], change: impl FnOnce(&mut Request)) -> String {
    match plan_with(words, change) {
        Ok(_) => panic!("{words:?} planned"),
        Err(e) => e.to_string(),
    }
}

fn error(words: &[&str]) -> String {
    error_with(words, |_| {})
}

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn names(step: &Step) -> Vec<&str> {
    step.hosts.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn each_task_runs_on_the_hosts_of_the_environment_before_it() {
    let p = plan(&[
        "env:staging",
        "deploy:1.2.3",
        "say:hi",
        "env:production",
        "status",
    ])
    .unwrap();
    let labels: Vec<&str> = p.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["deploy:1.2.3", "say:hi", "status"]);
    assert_eq!(names(&p.steps[0]), ["web-1", "web-2", "db-1"]);
    assert_eq!(names(&p.steps[1]), names(&p.steps[0]));
    assert_eq!(
        names(&p.steps[2]),
        ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    );
    assert_eq!(p.steps[0].env.as_deref(), Some("staging"));
    assert_eq!(p.steps[2].env.as_deref(), Some("production"));
    assert_eq!(p.steps[0].env_vars["tier"].to_string(), "stg");
    let Work::Task { task, args } = &p.steps[0].work else {
        panic!("deploy is a task")
    };
    assert_eq!(task.name, "deploy");
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].to_string(), "1.2.3");
    assert_eq!(p.hosts().count(), 13);
}

#[test]
fn host_flags_narrow_and_extend_the_environment() {
    let p = plan_with(&["env:staging", "status"], |r| {
        r.overrides.roles = list(&["web"]);
        r.overrides.exclude = list(&["web-2"]);
    })
    .unwrap();
    assert_eq!(names(&p.steps[0]), ["web-1"]);
    let p = plan_with(&["env:staging", "status"], |r| {
        r.overrides.hosts = list(&["extra"])
    })
    .unwrap();
    assert_eq!(names(&p.steps[0]), ["web-1", "web-2", "db-1", "extra"]);
    let p = plan_with(&["status"], |r| r.overrides.hosts = list(&["a", "b"])).unwrap();
    assert_eq!(names(&p.steps[0]), ["a", "b"]);
    assert_eq!(p.steps[0].env, None);
}

#[test]
fn a_task_without_hosts_says_how_to_choose_them() {
    assert_eq!(
        error(&["status"]),
        "error: no hosts selected for task `status`\n  hint: put env:NAME before it \
         (`rigs --list-hosts` shows them) or pass -H HOST"
    );
    assert_eq!(
        error_with(&["env:staging", "status"], |r| r.overrides.limit =
            Some("zz*".into())),
        "error: no hosts selected for task `status`\n  hint: the host filters (-R, -x, --limit) \
         left no host"
    );
}

#[test]
fn an_unknown_environment_is_told_at_its_word() {
    let text = error(&["env:stagign", "nope"]);
    assert!(
        text.starts_with("error: unknown environment `stagign`"),
        "{text}"
    );
    assert!(text.contains("`staging`"), "{text}");
    assert_eq!(
        error(&["env", "status"]),
        "error: `env`: env takes one environment name\n  hint: write env:NAME, e.g. env:staging"
    );
}

#[test]
fn a_bad_later_word_fails_the_whole_plan() {
    let text = error(&["env:staging", "say:first", "nope"]);
    assert!(text.starts_with("error: unknown task `nope`"), "{text}");
    let text = error(&["env:staging", "status", "env:production"]);
    assert!(
        text.starts_with("error: `env:production` is followed by no task"),
        "{text}"
    );
    let text = error(&["env:staging", "env:production", "status"]);
    assert!(
        text.starts_with("error: `env:staging` is followed by no task"),
        "{text}"
    );
}

#[test]
fn the_batch_is_the_flag_else_the_environments_variable() {
    let p = plan(&["env:staging", "status", "env:production", "status"]).unwrap();
    assert_eq!(p.steps[0].batch, Some(HostCount::Count(2)));
    assert_eq!(p.steps[1].batch, Some(HostCount::Percent(25.0)));
    let p = plan_with(&["env:staging", "status"], |r| {
        r.batch = Some(HostCount::Count(3))
    })
    .unwrap();
    assert_eq!(p.steps[0].batch, Some(HostCount::Count(3)));
    let p = plan_with(&["status"], |r| r.overrides.hosts = list(&["a"])).unwrap();
    assert_eq!(p.steps[0].batch, None);
    assert_eq!(
        error(&["env:broken", "status"]),
        "error: the environment's `batch` must be N or \"P%\", not \"lots\"\n  hint: for example \
         batch = 2 or batch = \"25%\" in [env.NAME] vars"
    );
    // The flag wins, so the environment's bad value does not matter.
    assert!(plan_with(&["env:broken", "status"], |r| r.batch =
        Some(HostCount::Count(1)))
    .is_ok());
}

#[test]
fn history_and_lock_are_built_in() {
    let words = ["env:staging", "history", "history:deploy", "lock:status"];
    let p = plan_with(&words, |r| r.all = true).unwrap();
    let Work::History(filter) = &p.steps[0].work else {
        panic!("history is built in")
    };
    assert_eq!(
        *filter,
        Filter {
            env: Some("staging".into()),
            task: None,
            all: true
        }
    );
    let Work::History(filter) = &p.steps[1].work else {
        panic!("history:TASK is built in")
    };
    assert_eq!(filter.task.as_deref(), Some("deploy"));
    assert_eq!(p.history(), Some(filter_of(&p.steps[0])));
    assert!(matches!(p.steps[2].work, Work::Lock(LockAction::Status)));
    let p = plan_with(&["lock:release"], |r| r.overrides.hosts = list(&["a"])).unwrap();
    assert!(matches!(p.steps[0].work, Work::Lock(LockAction::Release)));
    assert_eq!(p.history(), None);

    let on_a = |r: &mut Request| r.overrides.hosts = list(&["a"]);
    assert!(error_with(&["lock:open"], on_a).starts_with("error: unknown lock command `lock:open`"));
    assert!(error_with(&["history:a,b"], on_a)
        .starts_with("error: `history:a,b`: history takes at most one task name"));
}

fn filter_of(step: &Step) -> Filter {
    match &step.work {
        Work::History(filter) => filter.clone(),
        _ => panic!("{} is no history", step.label),
    }
}

#[test]
fn a_recipe_may_define_its_own_history_but_not_lock() {
    let dir = project(&[("history.rhai", "/// Ours.\nfn history() {}\n")]);
    let p = plan_in(&dir, &["history"], |r| r.overrides.hosts = list(&["a"])).unwrap();
    assert!(matches!(&p.steps[0].work, Work::Task { task, .. } if task.name == "history"));
}

#[test]
fn lock_work_does_not_roll_in_batches() {
    let by_batch = |r: &mut Request| r.batch = Some(HostCount::Count(2));
    let by_canary = |r: &mut Request| r.settings.canary = Some(1);
    for rolls in [&by_batch as &dyn Fn(&mut Request), &by_canary] {
        let text = error_with(&["lock:status"], |r| {
            r.overrides.hosts = list(&["a", "b"]);
            rolls(r);
        });
        assert_eq!(
            text,
            "error: `lock:status` does not roll in batches; leave out --batch and --canary"
        );
    }
}

#[test]
fn lock_release_asks_unless_told_yes_or_dry() {
    let p = plan(&["env:production", "lock:release"]).unwrap();
    assert_eq!(
        p.question().as_deref(),
        Some("Remove the deploy lock of 7 host(s) (p1, p2, p3, p4, p5, ...), whoever holds it?")
    );
    assert!(p.confirm(|_| Some(true)).is_ok());
    assert_eq!(
        p.confirm(|_| Some(false)).unwrap_err().to_string(),
        "error: lock:release: not confirmed; nothing done"
    );
    assert_eq!(
        p.confirm(|_| None).unwrap_err().to_string(),
        "error: lock:release removes another run's lock and needs a confirmation\n  hint: run it \
         on a terminal, or add --yes"
    );
    let p = plan_with(&["env:production", "lock:release"], |r| r.confirmed = true).unwrap();
    assert_eq!(p.question(), None);
    assert!(p.confirm(|_| panic!("asked")).is_ok());
    assert_eq!(
        plan(&["env:staging", "lock:status"]).unwrap().question(),
        None
    );
}

#[test]
fn the_locks_cover_the_hosts_of_every_locking_task() {
    let p = plan(&[
        "env:staging",
        "deploy:1",
        "status",
        "env:production",
        "deploy:2",
    ])
    .unwrap();
    let locks = Locks::of(&p.steps).expect("deploy takes the lock");
    let hosts: Vec<&str> = locks.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        hosts,
        ["web-1", "web-2", "db-1", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    );
    assert_eq!(locks.env.as_deref(), Some("staging production"));
    assert_eq!(locks.tasks, "deploy:1 deploy:2");
    assert!(Locks::of(&plan(&["env:staging", "status"]).unwrap().steps).is_none());
}

#[test]
fn bundle_load_and_the_command_run_after_the_tasks() {
    let bundle = |r: &mut Request| r.bundle_load = Some("app.rigs".into());
    let p = plan_with(&[], bundle).unwrap();
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.steps[0].label, "bundle load app.rigs");
    assert_eq!(names(&p.steps[0]), ["localhost"]);
    assert_eq!(p.bundle, Some(PathBuf::from("app.rigs")));
    let p = plan_with(&["env:staging"], bundle).unwrap();
    assert_eq!(names(&p.steps[0]), ["web-1", "web-2", "db-1"]);

    let p = plan_with(&["env:staging", "status"], |r| {
        r.command = Some("uptime -p".into())
    })
    .unwrap();
    assert_eq!(p.steps.len(), 2);
    assert_eq!(p.steps[1].label, "-- uptime -p");
    assert!(matches!(&p.steps[1].work, Work::Command(c) if c == "uptime -p"));
    assert_eq!(names(&p.steps[1]), ["web-1", "web-2", "db-1"]);
    // The command is the task that follows the last env:NAME.
    let words = ["env:staging", "status", "env:production"];
    let p = plan_with(&words, |r| r.command = Some("uptime".into())).unwrap();
    assert_eq!(
        names(&p.steps[1]),
        ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    );
}

#[test]
fn declared_variables_are_checked_on_every_host_and_defaults_filled_in() {
    let dir = project(&[(
        "app.rhai",
        "const VARIABLES = #{\n    image: #{ type: \"string\", required: true, doc: \"the image\" },\n    \
         keep: #{ type: \"int\", default_value: 2, doc: \"kept\" },\n};\n\n/// Ship it.\nfn ship_it() {}\n",
    )]);
    let text = match plan_in(&dir, &["env:staging", "ship_it"], |_| {}) {
        Ok(_) => panic!("planned without the image"),
        Err(e) => e.to_string(),
    };
    assert!(text.contains("image"), "{text}");
    assert!(
        text.contains("on web-1, web-2, db-1"),
        "told once for all hosts: {text}"
    );
    let set = |r: &mut Request| r.overrides.set = vec![("image".into(), "app".into())];
    let p = plan_in(&dir, &["env:staging", "ship_it"], set).unwrap();
    for host in &p.steps[0].hosts {
        assert_eq!(host.vars["keep"].as_integer(), Some(2), "{}", host.name);
        assert_eq!(host.vars["image"].as_str(), Some("app"));
    }
}

#[test]
fn the_settings_and_ssh_options_pass_through_to_the_scheduler() {
    let p = plan_with(&["status"], |r| {
        r.overrides.hosts = list(&["a"]);
        r.settings.canary = Some(1);
        r.settings.max_fail = Some(HostCount::Percent(10.0));
        r.ssh.accept_new = Some(true);
    })
    .unwrap();
    assert_eq!(p.settings.canary, Some(1));
    assert_eq!(p.settings.max_fail, Some(HostCount::Percent(10.0)));
    assert!(p.settings.sudo_password.is_none());
    assert_eq!(p.ssh.accept_new, Some(true));
}
