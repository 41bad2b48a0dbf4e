//! `rigs --list-hosts`: every environment of the inventory with its hosts and their roles.

use crate::inventory::Inventory;

/// The listing, one environment after another, each host indented under it.
pub fn listing(inventory: &Inventory) -> String {
    if inventory.envs.is_empty() {
        return "No environments defined.\n".to_string();
    }
    let mut out = String::new();
    for env in inventory.envs.values() {
        out.push_str(&format!("env:{}  ({})\n", env.name, env.file));
        for h in &env.hosts {
            let roles: Vec<&str> = env
                .roles
                .iter()
                .filter(|(_, m)| m.contains(h))
                .map(|(r, _)| r.as_str())
                .collect();
            if roles.is_empty() {
                out.push_str(&format!("    {h}\n"));
            } else {
                out.push_str(&format!("    {h}  [{}]\n", roles.join(", ")));
            }
        }
    }
    out
}
