//! The check of every host's variables against what the recipes declare, before anything
//! connects.

use crate::error::{Error, Result};
use crate::recipe::Recipes;
use crate::run::{Step, Work};

/// Checks every host's variables for every task against the declarations of the task's recipe
/// file, and fills in their defaults. `from_set` names the variables given with `--set`. A
/// problem shared by several hosts is told once, with the hosts.
pub(super) fn check(recipes: &Recipes, steps: &mut [Step], from_set: &[String]) -> Result<()> {
    let mut problems: Vec<(String, Vec<String>)> = Vec::new();
    for step in steps.iter_mut() {
        let Work::Task { task, .. } = &step.work else {
            continue;
        };
        for host in step.hosts.iter_mut() {
            for problem in recipes.check_variables(task, &mut host.vars, from_set) {
                let text = format!(
                    "{problem}\n    for {} ({})",
                    step.label,
                    recipes.file_of(task)
                );
                match problems.iter_mut().find(|(t, _)| *t == text) {
                    Some((_, hosts)) => hosts.push(host.name.clone()),
                    None => problems.push((text, vec![host.name.clone()])),
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Variables {
        problems: problems
            .into_iter()
            .map(|(text, hosts)| format!("{text} on {}", hosts.join(", ")))
            .collect(),
    })
}
