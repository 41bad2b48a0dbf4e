//! The command line as the layers below it need it: a [`Request`] for the plan, what the
//! credentials [`Ask`] for. `Config` stays what the user typed; these are built from it once.

use super::{Config, HostKeyPolicy, Run};
use crate::credentials::Ask;
use crate::inventory::selection::Overrides;
use crate::plan::Request;
use crate::run::Settings;
use crate::ssh::SshOverrides;

impl Config {
    /// Which passwords the credentials ask for.
    pub fn ask(&self) -> Ask {
        Ask {
            password: self.ask_pass,
            sudo_password: self.ask_sudo_pass,
            dry_run: self.dry_run,
        }
    }

    /// What the plan of `run` needs from the command line.
    pub fn plan_request(&self, run: &Run) -> Request {
        Request {
            inventory: self.inventory.clone(),
            recipes: self.recipes.clone(),
            ssh_config: self.ssh_config.clone(),
            calls: run.calls.clone(),
            command: run.command.clone(),
            bundle_load: run.bundle_load.clone(),
            overrides: Overrides {
                hosts: self.hosts.clone(),
                roles: self.roles.clone(),
                exclude: self.exclude_hosts.clone(),
                limit: self.limit.clone(),
                user: self.user.clone(),
                port: self.port,
                identities: self.identities.clone(),
                set: self.set.clone(),
            },
            batch: self.batch,
            all: self.all,
            confirmed: self.yes || self.dry_run,
            settings: Settings {
                pool_size: self.pool_size,
                max_fail: self.max_fail,
                sudo_password: None,
                sudo_adhoc: self.sudo,
                dry_run: self.dry_run,
                command_timeout: self.command_timeout,
                lock_wait: self.lock_wait,
                canary: self.canary,
                canary_wait: self.canary_wait,
            },
            ssh: SshOverrides {
                known_hosts: self.known_hosts.clone(),
                global_known_hosts: self.global_known_hosts.clone(),
                accept_new: self.host_key_policy.map(|p| p == HostKeyPolicy::AcceptNew),
                connect_timeout: self.connect_timeout,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::cli::tests::parse;
    use crate::cli::Action;
    use crate::host_count::HostCount;

    #[test]
    fn a_plan_request_carries_the_flags() {
        let c = parse(&[
            "--max-fail",
            "10%",
            "--serial",
            "--canary",
            "1",
            "--lock-wait",
            "3",
            "--yes",
            "--host-key-policy",
            "accept-new",
            "--connect-timeout",
            "4",
            "-H",
            "a,b",
            "-x",
            "b",
            "--batch",
            "2",
            "--all",
            "--set",
            "k=v",
            "env:lab",
            "status",
            "--",
            "uptime",
        ])
        .unwrap();
        let Action::Run(run) = &c.action else {
            panic!("{:?}", c.action)
        };
        let r = c.plan_request(run);
        assert_eq!(r.calls.len(), 2);
        assert_eq!(r.command.as_deref(), Some("uptime"));
        assert_eq!(r.overrides.hosts, ["a", "b"]);
        assert_eq!(r.overrides.exclude, ["b"]);
        assert_eq!(r.overrides.set, [("k".to_string(), "v".to_string())]);
        assert_eq!(r.batch, Some(HostCount::Count(2)));
        assert!(r.all && r.confirmed);
        assert_eq!(r.settings.max_fail, Some(HostCount::Percent(10.0)));
        assert_eq!(r.settings.pool_size, Some(1));
        assert_eq!(r.settings.canary, Some(1));
        assert_eq!(r.settings.lock_wait, Some(Duration::from_secs(3)));
        assert_eq!(r.ssh.accept_new, Some(true));
        assert_eq!(r.ssh.connect_timeout, Some(Duration::from_secs(4)));
        let c = parse(&["--dry-run", "-H", "a", "t"]).unwrap();
        let Action::Run(run) = &c.action else {
            panic!("{:?}", c.action)
        };
        assert!(c.plan_request(run).confirmed, "a dry run asks nothing");
    }
}
