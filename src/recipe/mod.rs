//! Recipes: Rhai files whose public top-level functions are tasks.
//!
//! Each file is compiled on its own and keeps its own AST, so every error points into the right
//! file and a task runs against the file that defines it; shared code is shared with `import`,
//! resolved relative to the recipe folder. One [`rhai::Engine`] (built with `sync`) serves all
//! hosts at once; per-host state travels in the call's tag as a [`TaskScope`].

mod api;
mod compose;
mod compose_revision;
mod compose_up;
mod describe;
mod docker;
mod docker_call;
mod docker_container;
mod docker_images;
mod engine;
pub mod error;
mod functions;
mod health;
mod health_check;
mod limits;
mod registry_module;
mod scope;
pub mod ship;
mod spec;
mod task;
mod toolkit;
mod transfer;
pub mod value;
pub mod variables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rhai::{CallFnOptions, Dynamic, Engine, Scope, AST};

pub use scope::{
    CommandOptions, CommandResult, HostOps, Level, OnceStore, OpError, SudoOptions, TaskScope,
};
pub use task::Task;

use crate::cancel::Cancel;
use crate::diagnostic::{display_path, Diagnostic};
use crate::error::{closest, Error, Result};
use crate::task_call::{Arg, TaskCall};

/// Names the command line claims for itself.
pub const BUILTIN_TASKS: &[&str] = &["env"];

struct RecipeFile {
    source: String,
    shown: String,
    ast: AST,
    /// What its `const VARIABLES` declares.
    variables: Option<variables::Variables>,
}

pub struct Recipes {
    engine: Engine,
    files: Vec<RecipeFile>,
    /// Tasks by name; a name may have several arities (`rollback` and `rollback:TAG`).
    tasks: BTreeMap<String, Vec<Task>>,
    sources: error::Sources,
    /// Where the recipes were looked for, for messages.
    origin: String,
}

/// Why a task failed on a host.
#[derive(Debug, Clone)]
pub struct TaskFailure {
    /// One line: what went wrong.
    pub message: String,
    /// The full rendering with location and snippet.
    pub detail: String,
    pub interrupted: bool,
}

impl Recipes {
    /// Loads `path` (a file, or a folder whose `*.rhai` files are read in name order). `None` means
    /// `recipes/`, which may be absent when only ad-hoc commands are run.
    pub fn load(path: Option<&Path>, cancel: Cancel) -> Result<Recipes> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("recipes"), false),
        };
        let (dir, files): (PathBuf, Vec<PathBuf>) = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| Error::io(&path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "rhai") && p.is_file())
                .collect();
            files.sort();
            (path.clone(), files)
        } else if path.is_file() {
            (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                vec![path.clone()],
            )
        } else if required {
            return Err(Error::usage_hint(
                format!("recipes {} do not exist", path.display()),
                "pass a .rhai file or a folder of them to -f/--recipes",
            ));
        } else {
            (path.clone(), Vec::new())
        };
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };

        let engine = engine::build_engine(&dir, cancel);
        let mut recipes = Recipes {
            engine,
            files: Vec::new(),
            tasks: BTreeMap::new(),
            sources: error::Sources::new(&dir),
            origin: display_path(&path),
        };
        for file in &files {
            recipes.add_file(file)?;
        }
        if path.is_dir() {
            recipes.check_libraries(&dir, &files)?;
        }
        Ok(recipes)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let shown = display_path(path);
        let source = path.to_string_lossy().to_string();
        self.sources.add(&source, shown.clone(), text.clone());
        let mut ast = self
            .engine
            .compile(&text)
            .map_err(|e| Error::from(error::parse_error(&e, &source, &self.sources)))?;
        ast.set_source(source.as_str());
        let variables = variables::Variables::from_source(&self.engine, &text, &shown)?;

        let index = self.files.len();
        for f in ast.iter_functions() {
            // Closures compile to functions with generated names (`anon$...`), which are not tasks.
            if f.name.starts_with('_')
                || f.access == rhai::FnAccess::Private
                || !crate::task_call::is_identifier(f.name)
            {
                continue;
            }
            let line = find_fn_line(&text, f.name, f.params.len()).unwrap_or(0);
            if BUILTIN_TASKS.contains(&f.name) {
                return Err(Diagnostic::new(
                    format!("`{}` is a built-in task name; rename this function", f.name),
                    &shown,
                )
                .at(&text, line, 1)
                .into());
            }
            if let Some(existing) = self.tasks.get(f.name).and_then(|all| {
                all.iter()
                    .find(|t| t.file != index || t.params.len() == f.params.len())
            }) {
                let message = if existing.file == index {
                    format!(
                        "task `{}` with {} parameter(s) is defined twice in this file",
                        f.name,
                        f.params.len()
                    )
                } else {
                    let previous = &self.files[existing.file];
                    format!(
                        "task `{}` is also defined in {}:{}",
                        f.name, previous.shown, existing.line
                    )
                };
                return Err(Diagnostic::new(message, &shown)
                    .at(&text, line, 1)
                    .note(
                        "a task name belongs to one recipe file (where it may take different numbers of \
                         arguments); rename one, or prefix helpers with `_`",
                    )
                    .into());
            }
            let all = self.tasks.entry(f.name.to_string()).or_default();
            all.push(Task {
                name: f.name.to_string(),
                params: f.params.iter().map(|p| p.to_string()).collect(),
                doc: task::doc_lines(&f.comments),
                file: index,
                line,
            });
            all.sort_by_key(|t| t.params.len());
        }
        self.files.push(RecipeFile {
            source,
            shown,
            ast,
            variables,
        });
        Ok(())
    }

    /// Compiles the `.rhai` files in subfolders (the libraries that recipes `import`), so a
    /// syntax error there stops the run before anything starts instead of failing every host.
    fn check_libraries(&self, dir: &Path, loaded: &[PathBuf]) -> Result<()> {
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            let mut entries: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rhai") && !loaded.contains(&path) {
                    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    if let Err(e) = self.engine.compile(&text) {
                        let source = path.to_string_lossy().to_string();
                        self.sources.add(&source, display_path(&path), text);
                        return Err(error::parse_error(&e, &source, &self.sources).into());
                    }
                }
            }
        }
        Ok(())
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().flatten()
    }

    pub fn file_of(&self, task: &Task) -> &str {
        &self.files[task.file].shown
    }

    /// The variables `task`'s file declares, if it declares any.
    pub fn variables_of(&self, task: &Task) -> Option<&variables::Variables> {
        self.files[task.file].variables.as_ref()
    }

    /// Checks one host's variables for `task` against its file's declarations and fills in
    /// the declared defaults. `from_set` names the variables given with `--set`.
    pub fn check_variables(
        &self,
        task: &Task,
        vars: &mut toml::Table,
        from_set: &[String],
    ) -> Vec<variables::Problem> {
        let Some(declared) = self.variables_of(task) else {
            return Vec::new();
        };
        let known: Vec<&str> = self
            .files
            .iter()
            .filter_map(|f| f.variables.as_ref())
            .flat_map(|v| v.list.iter().map(|x| x.name.as_str()))
            .collect();
        declared.apply(vars, from_set, &known)
    }

    /// Every form of task `name` (one per number of parameters).
    pub fn task(&self, name: &str) -> Result<&[Task]> {
        self.tasks
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Unknown {
                kind: "task",
                name: name.to_string(),
                suggestions: closest(name, self.tasks.keys().map(String::as_str)),
                hint: if self.files.is_empty() {
                    format!(
                        "no recipes found in {}: create recipes/*.rhai or pass -f PATH",
                        self.origin
                    )
                } else {
                    "`rigs --list` shows the tasks".to_string()
                },
            })
    }

    /// The task a call means (by name, then by how many arguments it passes) and its arguments.
    pub fn resolve(&self, call: &TaskCall) -> Result<(Task, Vec<Dynamic>)> {
        let forms = self.task(&call.name)?;
        let task = match forms {
            [only] => only,
            many => many
                .iter()
                .find(|t| t.params.len() == call.args.len())
                .or_else(|| {
                    // Named arguments only: pick the form whose parameters they name.
                    many.iter().find(|t| {
                        call.args.iter().all(|a| match a {
                            Arg::Named(k, _) => t.params.contains(k),
                            Arg::Positional(_) => false,
                        }) && t.params.len() == call.args.len()
                    })
                })
                .ok_or_else(|| {
                    let usages: Vec<String> =
                        many.iter().map(|t| format!("`{}`", t.usage())).collect();
                    let mut hint = format!("call it as {}", usages.join(" or "));
                    if let Some(comma) = many
                        .iter()
                        .filter(|t| t.params.len() < call.args.len())
                        .max_by_key(|t| t.params.len())
                        .and_then(|t| comma_hint(t, call))
                    {
                        hint = format!("{comma}; or {hint}");
                    }
                    Error::usage_hint(
                        format!(
                            "task `{}` takes no {} argument(s) (in `{call}`)",
                            call.name,
                            call.args.len()
                        ),
                        hint,
                    )
                })?,
        };
        let args = self.bind(task, call)?;
        Ok((task.clone(), args))
    }

    /// Matches a call's arguments to the task's parameters, in parameter order.
    pub fn bind(&self, task: &Task, call: &TaskCall) -> Result<Vec<Dynamic>> {
        let signature = || {
            format!(
                "`{}` is defined in {}:{} as `fn {task}`; call it as `{}`",
                task.name,
                self.file_of(task),
                task.line,
                task.usage()
            )
        };
        let mut values: Vec<Option<String>> = vec![None; task.params.len()];
        let mut next = 0;
        for arg in &call.args {
            match arg {
                Arg::Positional(v) => {
                    if next >= task.params.len() && !task.params.is_empty() {
                        if let Some(mut hint) = comma_hint(task, call) {
                            if task.params.len() > 1 {
                                hint = format!("{hint}; {}", signature());
                            }
                            return Err(Error::usage_hint(
                                format!(
                                    "task `{}` takes {} argument{}, but the commas in `{call}` \
                                     split it into {}",
                                    task.name,
                                    task.params.len(),
                                    if task.params.len() == 1 { "" } else { "s" },
                                    call.args.len()
                                ),
                                hint,
                            ));
                        }
                    }
                    if next >= task.params.len() {
                        return Err(Error::usage_hint(
                            format!(
                                "task `{}` takes {} argument{}, but `{call}` passes {}",
                                task.name,
                                task.params.len(),
                                if task.params.len() == 1 { "" } else { "s" },
                                call.args.len()
                            ),
                            signature(),
                        ));
                    }
                    values[next] = Some(v.clone());
                    next += 1;
                }
                Arg::Named(k, v) => {
                    let Some(i) = task.params.iter().position(|p| p == k) else {
                        let mut hint = signature();
                        if let Some(best) =
                            closest(k, task.params.iter().map(String::as_str)).first()
                        {
                            hint = format!("did you mean `{best}`? {hint}");
                        }
                        return Err(Error::usage_hint(
                            format!("task `{}` has no parameter `{k}`", task.name),
                            hint,
                        ));
                    };
                    if values[i].is_some() {
                        return Err(Error::usage_hint(
                            format!("parameter `{k}` of `{}` is given twice", task.name),
                            signature(),
                        ));
                    }
                    values[i] = Some(v.clone());
                }
            }
        }
        let missing: Vec<&str> = task
            .params
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(p, _)| p.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::usage_hint(
                format!(
                    "task `{}` is missing argument{} {}",
                    task.name,
                    if missing.len() == 1 { "" } else { "s" },
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                signature(),
            ));
        }
        Ok(values
            .into_iter()
            .map(|v| Dynamic::from(v.unwrap_or_default()))
            .collect())
    }

    /// Runs `task` with `args` for one host. Blocks: call it from a blocking thread.
    pub fn call(
        &self,
        task: &Task,
        args: Vec<Dynamic>,
        scope: TaskScope,
    ) -> std::result::Result<(), TaskFailure> {
        let file = &self.files[task.file];
        let scope_vars = scope.vars.clone();
        engine::set_current(Some(scope.ops.clone()));
        let options = CallFnOptions::new()
            .eval_ast(true)
            .rewind_scope(true)
            .with_tag(scope);
        let mut rhai_scope = Scope::new();
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut rhai_scope,
            &file.ast,
            &task.name,
            args,
        );
        engine::set_current(None);
        result.map(|_| ()).map_err(|e| {
            let mut diagnostic = error::runtime_error(&e, &file.source, &self.sources);
            if let Some(name) = error::missing_property(&e) {
                explain_missing_property(&mut diagnostic, &name, &scope_vars);
            }
            if diagnostic.line == 0 && task.line > 0 {
                // Errors without a position (a runaway script stopped by the engine) point at the task.
                let at = rhai::Position::new(task.line.min(u16::MAX as usize) as u16, 1);
                let notes = std::mem::take(&mut diagnostic.notes);
                diagnostic = self
                    .sources
                    .diagnostic(diagnostic.message, &file.source, at);
                diagnostic.notes = notes;
            }
            let detail = diagnostic.to_string();
            let detail = detail
                .strip_prefix("error: ")
                .unwrap_or(&detail)
                .to_string();
            TaskFailure {
                message: format!("{} ({})", diagnostic.message, diagnostic.location()),
                detail,
                interrupted: error::is_interrupted(&e),
            }
        })
    }
}

/// When a call passes more positional arguments than `task` takes, they were most likely one
/// value with a comma in it (`exec:ls -l,/tmp`): the call that passes it whole, as a hint.
fn comma_hint(task: &Task, call: &TaskCall) -> Option<String> {
    let keep = task.params.len().checked_sub(1)?;
    let values: Vec<&str> = call
        .args
        .iter()
        .map(|a| match a {
            Arg::Positional(v) => Some(v.as_str()),
            Arg::Named(..) => None,
        })
        .collect::<Option<_>>()?;
    let mut args: Vec<Arg> = values[..keep]
        .iter()
        .map(|v| Arg::Positional(v.to_string()))
        .collect();
    let joined = values[keep..].join(",");
    args.push(Arg::Positional(joined.clone()));
    let fixed = TaskCall {
        name: call.name.clone(),
        args,
    };
    Some(format!(
        "`,` separates arguments; to pass `{joined}` as one, escape each comma as `\\,` and \
         quote the word so the shell keeps the backslash: {}",
        crate::quote::quote(&fixed.to_string())
    ))
}

/// Rewords Rhai's "Property not found" for a missing variable: which one, and what to do.
fn explain_missing_property(diagnostic: &mut Diagnostic, name: &str, vars: &Dynamic) {
    let before = diagnostic
        .source_line
        .as_deref()
        .map(|l| {
            let at = l
                .char_indices()
                .nth(diagnostic.column.saturating_sub(1))
                .map_or(l.len(), |(i, _)| i);
            &l[..at]
        })
        .unwrap_or("");
    let keys: Vec<String> = vars
        .read_lock::<rhai::Map>()
        .map(|m| m.keys().map(|k| k.to_string()).collect())
        .unwrap_or_default();
    if before.trim_end().ends_with("vars.") || before.trim_end().ends_with("vars") {
        diagnostic.message = format!("variable `{name}` is not set for this host");
        if let Some(best) = closest(name, keys.iter().map(String::as_str)).first() {
            diagnostic.notes.push(format!("did you mean `{best}`?"));
        }
        diagnostic.notes.push(format!(
            "set it in the inventory or with --set {name}=VALUE; a recipe can test for it with \
             `\"{name}\" in vars`, or declare it with a default in `const VARIABLES`"
        ));
    } else {
        diagnostic.message = format!("the map has no property `{name}`");
        diagnostic.notes.push(format!(
            "test for it with `\"{name}\" in MAP` before reading it"
        ));
    }
}

/// The 1-based line of `fn name(` with `arity` parameters.
fn find_fn_line(text: &str, name: &str, arity: usize) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let Some(rest) = l
                .strip_prefix("fn ")
                .or_else(|| l.strip_prefix("private fn "))
            else {
                return false;
            };
            let Some(args) = rest.trim_start().strip_prefix(name).map(str::trim_start) else {
                return false;
            };
            let Some(inner) = args.strip_prefix('(').and_then(|a| a.split(')').next()) else {
                return false;
            };
            let count = inner.split(',').filter(|p| !p.trim().is_empty()).count();
            count == arity
        })
        .map(|i| i + 1)
}
