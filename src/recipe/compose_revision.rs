//! Revision folders of a compose project on the host: made, pinned, released, listed, pruned.
//!
//! Each is one or two round trips whatever the project's size: the folder and its subfolders are
//! made by one script that also picks the next number, the images of every service are resolved
//! by one loop on the host, and pruning asks the host once what every container and every other
//! project still uses. The host's Compose interpolates; rigs never does, so what `up` runs is
//! exactly what these queries saw.

use std::collections::{BTreeMap, BTreeSet};

use rhai::{Array, Dynamic};

use super::compose::{base_dir, default_project, valid_project, Pin, Revision, META, PINS};
use super::docker_call::{last_line, DockerCall, Shown};
use super::scope::Level;
use super::spec::Options;
use super::toolkit::Fallible;
use super::transfer::{upload, TransferOptions, Upload};
use crate::compose::{env_file, plugin, project_files};
use crate::quote::quote;

/// The Compose plugin's version on the host, or the host's failure saying what to install.
pub fn check(d: &DockerCall) -> Fallible<String> {
    let r = d.script(plugin::PROBE, None, None, Shown::Query, true)?;
    if d.dry_run()? {
        return Ok(String::new());
    }
    plugin::judge(r.code, &r.stdout, &r.stderr).map_err(|m| d.failure(m))
}

pub fn prepare(d: &DockerCall, o: &Options, files: &Dynamic) -> Fallible<Dynamic> {
    let files = file_list(d, files)?;
    let project = o.text("project").unwrap_or_else(default_project);
    if !valid_project(&project) {
        return Err(d.fail(format!(
            "`{project}` is not a Compose project name: lowercase letters, digits, `-` and `_`, starting with a letter or digit"
        )));
    }
    let root = std::env::current_dir().map_err(|e| d.fail(format!("no current folder: {e}")))?;
    let loaded = project_files::load(&root, &files).map_err(|m| d.fail(m))?;
    let services = o.texts("services").unwrap_or_default();
    for s in &services {
        if !loaded.services.contains(s) {
            return Err(d.fail(format!(
                "service `{s}` is not in {} (it has {})",
                files.join(", "),
                loaded.services.join(", ")
            )));
        }
    }
    let mut rev = Revision {
        project: project.clone(),
        version: o.get("version").map(|v| v.to_string()).unwrap_or_default(),
        created: crate::time::now(),
        compose_files: loaded.compose_names.clone(),
        services: if services.len() == loaded.services.len() {
            Vec::new()
        } else {
            services
        },
        all_services: loaded.services.clone(),
        ..Revision::default()
    };
    let (env, vars) = env_text(d, o, &rev)?;
    make_folder(d, o, &mut rev, &loaded)?;
    for f in &loaded.files {
        let sent = upload(
            d.ctx,
            PREPARE_NAME,
            Upload::File(&f.local),
            &format!("{}/{}", rev.dir, f.name),
            &TransferOptions {
                mode: Some(if f.private { "0600" } else { "0644" }.to_string()),
                owner: None,
                sudo: false,
                vars: rhai::Map::new(),
                silent: true,
            },
        )?;
        let sha = sent
            .get("sha256")
            .map(|v| v.to_string())
            .unwrap_or_default();
        rev.files.insert(f.name.clone(), sha);
    }
    d.scope()?.ops.message(
        Level::Info,
        &format!(
            "put {} into {} (each verified by SHA-256)",
            loaded
                .files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            rev.dir
        ),
    );
    write_env(d, &rev, env)?;
    if !d.dry_run()? {
        rev.references = load_on_host(d, &rev, &vars)?;
    }
    write_meta(d, &rev)?;
    Ok(rev.to_script())
}

const PREPARE_NAME: &str = "compose::prepare";
/// Ends the warnings of `config --quiet` on stderr, with its exit code.
const CONFIG_EXIT: &str = "rigs-compose-config-exit";

/// `files` as a list of paths: a string or an array of strings.
fn file_list(d: &DockerCall, files: &Dynamic) -> Fallible<Vec<String>> {
    let list: Vec<String> = if let Some(a) = files.read_lock::<Array>() {
        a.iter()
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|_| d.fail("`files` must hold paths (strings)"))
            })
            .collect::<Fallible<_>>()?
    } else if files.is_string() {
        vec![files.to_string()]
    } else {
        return Err(d.fail(
            "`files` must be the compose file's path, or an array of paths (the first is the base)",
        ));
    };
    if list.is_empty() {
        return Err(d.fail("`files` is empty: name the compose file"));
    }
    Ok(list)
}

/// The `.env` of the revision: the script's variables, plus what makes a person's
/// `docker compose` inside the folder see the same project.
fn env_text(
    d: &DockerCall,
    o: &Options,
    rev: &Revision,
) -> Fallible<(String, BTreeMap<String, String>)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (k, v) in o.map("env").unwrap_or_default() {
        if v.is_map() || v.is_array() || v.is_unit() {
            return Err(d.fail(format!(
                "env: the value of `{k}` must be a string or a number, not {}",
                v.type_name()
            )));
        }
        vars.push((k.to_string(), v.to_string()));
    }
    for (k, v) in [
        ("COMPOSE_PROJECT_NAME", rev.project.clone()),
        (
            "COMPOSE_FILE",
            rev.compose_files
                .iter()
                .map(String::as_str)
                .chain([PINS])
                .collect::<Vec<_>>()
                .join(":"),
        ),
    ] {
        if !vars.iter().any(|(key, _)| key == k) {
            vars.push((k.to_string(), v));
        }
    }
    let text = env_file::encode(&vars).map_err(|m| d.fail(format!("env: {m}")))?;
    Ok((text, vars.into_iter().collect()))
}

/// Has the host's Compose load the revision, in one round trip: `config --quiet` (a variable
/// the files use that nothing set is an error here, where Compose only warns and uses ""), then
/// the merged model *uninterpolated*, so that it prints no value. Returns service => the image
/// it runs, the model's `image` strings filled in from the variables of the `.env`.
fn load_on_host(
    d: &DockerCall,
    rev: &Revision,
    vars: &BTreeMap<String, String>,
) -> Fallible<BTreeMap<String, String>> {
    let flags = rev
        .flags()
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let line = format!(
        "docker {flags} config --quiet; rc=$?; echo \"{CONFIG_EXIT} $rc\" >&2; [ $rc = 0 ] || exit $rc; \
         docker {flags} config --no-interpolate --no-path-resolution --format json"
    );
    let r = d.script(&line, None, None, Shown::Query, true)?;
    let (warnings, _) = r.stderr.split_once(CONFIG_EXIT).unwrap_or((&r.stderr, ""));
    if !r.ok() {
        let reason = last_line(warnings);
        return Err(d.failure(format!(
            "the host's Compose does not accept revision {} of {}: {reason}",
            rev.revision, rev.project
        )));
    }
    let unset = unset_variables(warnings);
    if !unset.is_empty() {
        return Err(d.failure(format!(
            "the compose file uses {} but nothing sets {}: add {} to compose_env (or compose_secrets) in the inventory",
            unset.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", "),
            if unset.len() == 1 { "it" } else { "them" },
            if unset.len() == 1 { "it" } else { "them" },
        )));
    }
    let model: serde_json::Value = serde_json::from_str(&r.stdout)
        .map_err(|e| d.fail(format!("unexpected output from docker compose config: {e}")))?;
    for (service, config) in model["services"].as_object().into_iter().flatten() {
        for v in config["volumes"].as_array().into_iter().flatten() {
            let source = v["source"].as_str().unwrap_or("");
            if v["type"] == "bind" && !source.starts_with(['/', '$', '~']) {
                return Err(d.failure(format!(
                    "service {service} mounts `{source}`, a path inside the project folder, and every deploy gets a new revision folder: use a named volume, or an absolute path on the host, for data that must outlive a release"
                )));
            }
        }
    }
    let mut out = BTreeMap::new();
    for s in rev.own_services() {
        let raw = model["services"][s]["image"].as_str().ok_or_else(|| {
            d.failure(format!(
                "service {s} names no image on the host's Compose; rigs deploys images (build and push it, then name it with `image:`)"
            ))
        })?;
        let image = crate::compose::interpolate::interpolate(raw, vars)
            .map_err(|m| d.failure(format!("service {s}: {m}")))?;
        out.insert(s.clone(), image);
    }
    Ok(out)
}

/// Makes the next revision folder (and the subfolders its files need), fills in where it is.
fn make_folder(
    d: &DockerCall,
    o: &Options,
    rev: &mut Revision,
    loaded: &project_files::ComposeProject,
) -> Fallible<()> {
    let base = base_dir(o);
    let root = format!("{base}/{}", rev.project);
    let parents: BTreeSet<&str> = loaded
        .files
        .iter()
        .filter_map(|f| f.name.rsplit_once('/').map(|(p, _)| p))
        .collect();
    let subfolders = if parents.is_empty() {
        String::new()
    } else {
        format!(
            " && mkdir -p -- {}",
            parents
                .iter()
                .map(|p| quote(p))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    // Numbers are read without leading zeros: `$((0008 + 1))` is an octal error in sh.
    let line = format!(
        "cd \"$HOME\" && umask 077 && mkdir -p -- {r}/revisions && cd -- {r} && printf '%s\\n' \"$PWD\" && cd revisions && \
         n=$(ls | grep -E '^[0-9]+$' | sed 's/^0*//' | sort -n | tail -n 1) && n=$((${{n:-0}} + 1)) && \
         r=$(printf %04d \"$n\") && mkdir -- \"$r\" && cd -- \"$r\"{subfolders} && printf '%s\\n' \"$r\"",
        r = quote(&root)
    );
    let display = format!("mkdir {}", quote(&format!("{root}/revisions/<next>")));
    let r = d.script(&line, None, Some(display), Shown::Change, false)?;
    if d.dry_run()? {
        rev.root = root.clone();
        rev.revision = "<next>".into();
        rev.dir = format!("{root}/revisions/<next>");
        return Ok(());
    }
    let mut lines = r.stdout.lines();
    match (r.ok(), lines.next(), lines.next()) {
        (true, Some(abs), Some(n)) => {
            rev.root = abs.trim().to_string();
            rev.revision = n.trim().to_string();
            rev.dir = format!("{}/revisions/{}", rev.root, rev.revision);
            Ok(())
        }
        _ => Err(d.script_failed(&format!("making a revision folder in {root}"), &r)),
    }
}

/// Writes the `.env` through stdin: its values are on no command line and in no output.
fn write_env(d: &DockerCall, rev: &Revision, text: String) -> Fallible<()> {
    let dir = quote(&rev.dir);
    let count = text.lines().count();
    let line = format!("umask 077 && cat > {dir}/.env.tmp && mv -f {dir}/.env.tmp {dir}/.env");
    let display = format!("umask 077 && cat > {dir}/.env  # {count} variables, values not shown");
    let r = d.script(&line, Some(text), Some(display), Shown::Change, false)?;
    if !r.ok() {
        return Err(d.script_failed("writing the revision's .env", &r));
    }
    Ok(())
}

/// Writes a file of the revision that holds no secret (revision.json, pins.yaml).
fn write_file(
    d: &DockerCall,
    rev: &Revision,
    name: &str,
    text: String,
    shown: Shown,
) -> Fallible<()> {
    let dir = quote(&rev.dir);
    let line =
        format!("umask 077 && cat > {dir}/{name}.tmp && mv -f {dir}/{name}.tmp {dir}/{name}");
    let display = format!("cat > {dir}/{name}");
    let r = d.script(&line, Some(text), Some(display), shown, false)?;
    if !r.ok() {
        return Err(d.script_failed(&format!("writing {name}"), &r));
    }
    Ok(())
}

fn write_meta(d: &DockerCall, rev: &Revision) -> Fallible<()> {
    write_file(d, rev, META, rev.json() + "\n", Shown::Query)
}

/// The names in Compose's `The "X" variable is not set` warnings.
fn unset_variables(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines().filter(|l| l.contains("variable is not set")) {
        let Some(at) = line.find("The ") else {
            continue;
        };
        let name: String = line[at + 4..]
            .trim_start_matches(['\\', '"'])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Service => (the image its compose file names, its ID on the host when there).
pub fn images(
    d: &DockerCall,
    rev: &Revision,
) -> Fallible<BTreeMap<String, (String, Option<String>)>> {
    let mut out = BTreeMap::new();
    if rev.references.is_empty() {
        if d.dry_run()? {
            // Nothing was asked of the host: name what would be looked at.
            for s in rev.own_services() {
                out.insert(s.clone(), (format!("<the image of {s}>"), None));
            }
        }
        return Ok(out);
    }
    let wanted: Vec<String> = rev.references.values().map(|r| quote(r)).collect();
    let line = format!(
        "for r in {}; do printf '%s\\t' \"$r\"; docker image inspect --format '{{{{.Id}}}}' -- \"$r\" 2>/dev/null || echo -; done",
        wanted.join(" ")
    );
    let r = d.script(&line, None, None, Shown::Query, true)?;
    let ids: BTreeMap<&str, &str> = r
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    for (s, image) in &rev.references {
        let id = ids
            .get(image.as_str())
            .filter(|id| id.starts_with("sha256:"))
            .map(|id| id.to_string());
        out.insert(s.clone(), (image.clone(), id));
    }
    Ok(out)
}

pub fn pin(d: &DockerCall, o: &Options, mut rev: Revision) -> Fallible<Revision> {
    rev.images.clear();
    if o.flag("pull") {
        let mut args = rev.flags();
        args.extend(["pull".into(), "--quiet".into()]);
        if rev.partial() {
            args.extend(rev.own_services().iter().cloned());
        }
        d.run(&args, None, Shown::Change, false)?;
    }
    let found = images(d, &rev)?;
    if d.dry_run()? {
        for s in rev.own_services().to_vec() {
            rev.images.insert(s, Pin::default());
        }
        write_file(d, &rev, PINS, String::new(), Shown::Change)?;
        return Ok(rev);
    }
    for s in rev.own_services().to_vec() {
        match found.get(&s) {
            Some((image, Some(id))) => {
                rev.images.insert(
                    s.clone(),
                    Pin {
                        image: image.clone(),
                        id: id.clone(),
                    },
                );
            }
            Some((image, None)) => {
                return Err(d.failure(format!(
                    "service {s}: image {image} is not on the host (pull it with `pull: true`, or ship it from the controller)"
                )))
            }
            None => {
                return Err(d.failure(format!(
                    "service {s}: the host's Compose names no image for it"
                )))
            }
        }
    }
    let pins: serde_json::Map<String, serde_json::Value> = rev
        .images
        .iter()
        .map(|(s, p)| (s.clone(), serde_json::json!({ "image": p.id })))
        .collect();
    let text =
        serde_json::to_string_pretty(&serde_json::json!({ "services": pins })).unwrap_or_default();
    // One round trip: the pins (image IDs, nothing secret) on the line, the record on stdin.
    let dir = quote(&rev.dir);
    let line = format!(
        "umask 077 && printf '%s\\n' {pins} > {dir}/{PINS}.tmp && mv -f {dir}/{PINS}.tmp {dir}/{PINS} && \
         cat > {dir}/{META}.tmp && mv -f {dir}/{META}.tmp {dir}/{META}",
        pins = quote(&text)
    );
    let display = format!(
        "cat > {dir}/{PINS}  # {} services pinned by image ID",
        rev.images.len()
    );
    let r = d.script(
        &line,
        Some(rev.json() + "\n"),
        Some(display),
        Shown::Query,
        false,
    )?;
    if !r.ok() {
        return Err(d.script_failed("writing the revision's pins", &r));
    }
    Ok(rev)
}

pub fn activate(d: &DockerCall, mut rev: Revision) -> Fallible<()> {
    rev.activated = true;
    let link = format!("revisions/{}", rev.revision);
    let dir = quote(&rev.dir);
    // The record first, then the link: `current` never points at a revision not marked released.
    let line = format!(
        "umask 077 && cat > {dir}/{META}.tmp && mv -f {dir}/{META}.tmp {dir}/{META} && \
         cd -- {root} && ln -sfn {link} .current.rigs && \
         {{ mv -f -T .current.rigs current 2>/dev/null || {{ rm -f .current.rigs && ln -sfn {link} current; }}; }}",
        root = quote(&rev.root),
        link = quote(&link)
    );
    let display = format!("ln -sfn {} {}/current", quote(&link), quote(&rev.root));
    let r = d.script(
        &line,
        Some(rev.json() + "\n"),
        Some(display),
        Shown::Change,
        false,
    )?;
    if !r.ok() {
        return Err(d.script_failed("pointing `current` at the new revision", &r));
    }
    Ok(())
}

/// `cd` into the project folder from the home folder; fails when there is none.
fn into_project(o: &Options, project: &str) -> String {
    format!(
        "cd \"$HOME\" && cd -- {} 2>/dev/null",
        quote(&format!("{}/{project}", base_dir(o)))
    )
}

pub fn current(d: &DockerCall, o: &Options, project: &str) -> Fallible<Option<Revision>> {
    let line = format!(
        "{} && [ -f current/{META} ] && cat current/{META}",
        into_project(o, project)
    );
    let r = d.script(&line, None, None, Shown::Query, false)?;
    if !r.ok() || r.stdout.trim().is_empty() {
        return Ok(None);
    }
    let mut rev: Revision = serde_json::from_str(r.stdout.trim()).map_err(|e| {
        d.fail(format!(
            "the current revision of {project} is unreadable: {e}"
        ))
    })?;
    rev.current = true;
    Ok(Some(rev))
}

pub fn revisions(d: &DockerCall, o: &Options, project: &str) -> Fallible<Vec<Revision>> {
    let line = format!(
        "{} || exit 0; printf 'root\\t%s\\n' \"$PWD\"; printf 'current\\t%s\\n' \"$(readlink current 2>/dev/null)\"; \
         for r in revisions/*/; do [ -d \"$r\" ] || continue; n=${{r#revisions/}}; n=${{n%/}}; \
         if [ -f \"${{r}}{META}\" ]; then printf 'rev\\t%s\\t' \"$n\"; tr -d '\\n' < \"${{r}}{META}\"; echo; \
         else printf 'bare\\t%s\\n' \"$n\"; fi; done",
        into_project(o, project)
    );
    let r = d.script(&line, None, None, Shown::Query, false)?;
    if !r.ok() {
        return Err(d.script_failed(&format!("listing the revisions of {project}"), &r));
    }
    Ok(parse_revisions(project, &r.stdout))
}

fn parse_revisions(project: &str, listing: &str) -> Vec<Revision> {
    let mut root = String::new();
    let mut current = String::new();
    let mut out: Vec<Revision> = Vec::new();
    for l in listing.lines() {
        let mut parts = l.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("root"), Some(r), None) => root = r.to_string(),
            (Some("current"), Some(c), None) => {
                current = c.trim_start_matches("revisions/").to_string()
            }
            (Some("rev"), Some(n), Some(json)) => {
                let rev = serde_json::from_str::<Revision>(json).unwrap_or_else(|_| Revision {
                    project: project.to_string(),
                    revision: n.to_string(),
                    ..Revision::default()
                });
                out.push(Revision {
                    revision: n.to_string(),
                    dir: format!("{root}/revisions/{n}"),
                    root: root.clone(),
                    ..rev
                });
            }
            (Some("bare"), Some(n), None) => out.push(Revision {
                project: project.to_string(),
                root: root.clone(),
                dir: format!("{root}/revisions/{n}"),
                revision: n.to_string(),
                ..Revision::default()
            }),
            _ => {}
        }
    }
    for r in &mut out {
        r.current = !current.is_empty() && r.revision == current;
    }
    out.sort_by_key(|r| r.revision.parse::<u64>().unwrap_or(0));
    out
}

pub fn prune(d: &DockerCall, o: &Options, project: &str) -> Fallible<Array> {
    let keep = match o.get("keep") {
        None => 2,
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => n as usize,
            _ => return Err(d.fail(o.bad("keep"))),
        },
    };
    let all = revisions(d, o, project)?;
    if d.dry_run()? {
        return Ok(Array::new());
    }
    let released = all.iter().filter(|r| r.activated || r.current).count();
    if released <= keep && released == all.len() {
        // Nothing to drop: no need to ask what containers use.
        return Ok(Array::new());
    }
    let usage = in_use(d, o, project)?;
    let mut kept: Vec<&Revision> = Vec::new();
    if let Some(c) = all.iter().find(|r| r.current) {
        kept.push(c);
    }
    for r in all.iter().rev().filter(|r| r.activated && !r.current) {
        if kept.len() >= keep {
            break;
        }
        kept.push(r);
    }
    for r in &all {
        if usage.mounts_from(&r.dir) && !kept.iter().any(|k| k.revision == r.revision) {
            kept.push(r);
        }
    }
    let dropped: Vec<&Revision> = all
        .iter()
        .filter(|r| !kept.iter().any(|k| k.revision == r.revision))
        .collect();
    let spared: BTreeSet<&str> = kept
        .iter()
        .flat_map(|r| r.images.values().map(|p| p.id.as_str()))
        .chain(usage.ids.iter().map(String::as_str))
        .collect();
    let mut candidates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &dropped {
        for p in r.images.values() {
            if !p.id.is_empty() && !spared.contains(p.id.as_str()) {
                candidates
                    .entry(p.id.clone())
                    .or_default()
                    .insert(p.image.clone());
            }
        }
    }
    let mut removed = Array::new();
    for (id, tags) in remove_images(d, &candidates)? {
        removed.extend(tags.into_iter().map(Dynamic::from));
        removed.push(id.into());
    }
    if !dropped.is_empty() {
        let names: Vec<String> = dropped.iter().map(|r| quote(&r.revision)).collect();
        let line = format!(
            "cd -- {} && rm -rf -- {}",
            quote(&format!("{}/revisions", dropped[0].root)),
            names.join(" ")
        );
        let r = d.script(&line, None, None, Shown::Change, false)?;
        if r.ok() {
            removed.extend(
                dropped
                    .iter()
                    .map(|r| format!("revision {}", r.revision).into()),
            );
        } else {
            d.scope()?.ops.message(
                Level::Warn,
                &format!(
                    "compose::prune: could not remove every old revision folder of {project}: {}",
                    r.stderr.lines().last().unwrap_or("").trim()
                ),
            );
        }
    }
    Ok(removed)
}

/// What must stay: the images every container uses, the files containers mount (a revision
/// whose config file a container mounts cannot go), and the images other projects' revisions
/// pin. Compose leaves a service whose configuration did not change running from the revision
/// that started it, so the folder a container was started from alone says nothing.
struct InUse {
    ids: BTreeSet<String>,
    mounts: BTreeSet<String>,
}

impl InUse {
    fn mounts_from(&self, dir: &str) -> bool {
        let inside = format!("{dir}/");
        self.mounts.iter().any(|m| m.starts_with(&inside))
    }
}

fn in_use(d: &DockerCall, o: &Options, project: &str) -> Fallible<InUse> {
    let line = format!(
        "docker ps -aq | xargs -r docker inspect --format 'use {{{{.Image}}}}{{{{range .Mounts}}}} {{{{.Source}}}}{{{{end}}}}' || exit 3; \
         cd \"$HOME\" && cd -- {base} 2>/dev/null || exit 0; for f in */revisions/*/{META}; do [ -f \"$f\" ] || continue; \
         case \"$f\" in {own}/*) continue;; esac; printf 'other\\t'; tr -d '\\n' < \"$f\"; echo; done",
        base = quote(&base_dir(o)),
        own = quote(project),
    );
    let r = d.script(&line, None, None, Shown::Query, true)?;
    if !r.ok() {
        return Err(d.script_failed("asking the host what its containers use", &r));
    }
    let mut usage = InUse {
        ids: BTreeSet::new(),
        mounts: BTreeSet::new(),
    };
    for l in r.stdout.lines() {
        if let Some(rest) = l.strip_prefix("use ") {
            let mut parts = rest.split(' ');
            if let Some(id) = parts.next() {
                usage.ids.insert(id.to_string());
            }
            usage
                .mounts
                .extend(parts.filter(|m| !m.is_empty()).map(str::to_string));
        } else if let Some(json) = l.strip_prefix("other\t") {
            if let Ok(other) = serde_json::from_str::<Revision>(json) {
                usage.ids.extend(other.images.into_values().map(|p| p.id));
            }
        }
    }
    Ok(usage)
}

/// Removes each candidate image's tags that this project's revisions named, then the image
/// when no other tag names it. Returns what went, by image.
fn remove_images(
    d: &DockerCall,
    candidates: &BTreeMap<String, BTreeSet<String>>,
) -> Fallible<Vec<(String, Vec<String>)>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = candidates.keys().map(|i| quote(i)).collect();
    let line = format!(
        "for i in {}; do printf '%s\\t' \"$i\"; docker image inspect --format '{{{{json .RepoTags}}}}' -- \"$i\" 2>/dev/null || echo gone; done",
        ids.join(" ")
    );
    let r = d.script(&line, None, None, Shown::Query, true)?;
    let mut out = Vec::new();
    for l in r.stdout.lines() {
        let Some((id, tags)) = l.split_once('\t') else {
            continue;
        };
        let Some(ours) = candidates.get(id) else {
            continue;
        };
        let Ok(tags) = serde_json::from_str::<Vec<String>>(tags) else {
            continue;
        };
        let mut gone = Vec::new();
        for t in tags.iter().filter(|t| ours.contains(*t)) {
            if d.run(
                &["rmi".into(), "--".into(), t.clone()],
                None,
                Shown::Change,
                true,
            )?
            .ok()
            {
                gone.push(t.clone());
            }
        }
        if tags.iter().all(|t| ours.contains(t)) {
            // Gone with its last tag, or untagged already: removing it by ID settles both.
            let _ = d.run(
                &["rmi".into(), "--".into(), id.to_string()],
                None,
                Shown::Query,
                true,
            )?;
            out.push((id.to_string(), gone));
        } else if !gone.is_empty() {
            out.push((String::new(), gone));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_from_compose_warnings() {
        let stderr = "time=\"2026-12-03T10:00:00Z\" level=warning msg=\"The \\\"TAG\\\" variable is not set. Defaulting to a blank string.\"\n\
                      WARN[0000] The \"WEB_PORT\" variable is not set. Defaulting to a blank string.\n";
        assert_eq!(unset_variables(stderr), vec!["TAG", "WEB_PORT"]);
        assert!(unset_variables("all good\n").is_empty());
    }

    #[test]
    fn revisions_listing() {
        let listing = "root\t/h/.rigs/compose/shop\ncurrent\trevisions/0002\n\
                       rev\t0001\t{\"project\":\"shop\",\"root\":\"x\",\"dir\":\"x\",\"revision\":\"0001\",\"compose_files\":[\"compose.yaml\"],\"services\":[],\"all_services\":[\"web\"],\"activated\":true}\n\
                       bare\t0003\n\
                       rev\t0002\t{\"project\":\"shop\",\"root\":\"x\",\"dir\":\"x\",\"revision\":\"0002\",\"compose_files\":[\"compose.yaml\"],\"services\":[],\"all_services\":[\"web\"],\"activated\":true}\n";
        let revs = parse_revisions("shop", listing);
        assert_eq!(
            revs.iter().map(|r| r.revision.as_str()).collect::<Vec<_>>(),
            ["0001", "0002", "0003"]
        );
        assert!(revs[1].current && !revs[0].current && !revs[2].current);
        assert_eq!(revs[2].dir, "/h/.rigs/compose/shop/revisions/0003");
        assert_eq!(revs[0].root, "/h/.rigs/compose/shop");
        assert!(!revs[2].activated);
    }
}
