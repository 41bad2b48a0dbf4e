//! Rolling a step through its hosts: the canary hosts first, alone, then batches of the step's
//! batch size (`--batch` or the environment's `batch`), a share of the hosts still in the run.

use super::Step;

/// The hosts of `step` still in the run (indices, leaving out `failed`), batch by batch: the
/// `canary` hosts first when there is more than one host, then batches of the step's batch size,
/// or one batch with all when it has none. Always at least one batch, maybe empty.
pub(super) fn batches(step: &Step, failed: &[String], canary: Option<usize>) -> Vec<Vec<usize>> {
    let hosts: Vec<usize> = (0..step.hosts.len())
        .filter(|&i| !failed.contains(&step.hosts[i].name))
        .collect();
    let mut out = Vec::new();
    let mut rest: &[usize] = &hosts;
    if let Some(n) = canary.filter(|_| hosts.len() > 1) {
        let n = n.min(hosts.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    let size = step
        .batch
        .map(|b| b.of(hosts.len()))
        .unwrap_or(usize::MAX)
        .max(1);
    for chunk in rest.chunks(size.min(rest.len().max(1))) {
        out.push(chunk.to_vec());
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_count::HostCount;
    use crate::inventory::Host;
    use crate::run::Work;

    fn step(hosts: usize, batch: Option<HostCount>) -> Step {
        Step {
            label: "t".into(),
            work: Work::Command("true".into()),
            hosts: (0..hosts)
                .map(|i| Host {
                    name: format!("h{i}"),
                    ..Host::this_machine()
                })
                .collect(),
            env: None,
            env_vars: Default::default(),
            running: Default::default(),
            batch,
        }
    }

    #[test]
    fn without_a_batch_size_or_canary_all_hosts_go_at_once() {
        assert_eq!(batches(&step(4, None), &[], None), [vec![0, 1, 2, 3]]);
        assert_eq!(batches(&step(1, None), &[], None), [vec![0]]);
    }

    #[test]
    fn a_batch_size_cuts_the_hosts_in_order() {
        let count = Some(HostCount::Count(2));
        assert_eq!(
            batches(&step(5, count), &[], None),
            [vec![0, 1], vec![2, 3], vec![4]]
        );
        // 25% of 7 hosts is 2 (rounded up).
        let share = Some(HostCount::Percent(25.0));
        assert_eq!(
            batches(&step(7, share), &[], None),
            [vec![0, 1], vec![2, 3], vec![4, 5], vec![6]]
        );
        assert_eq!(
            batches(&step(3, Some(HostCount::Count(10))), &[], None),
            [vec![0, 1, 2]]
        );
    }

    #[test]
    fn the_canary_hosts_go_first_and_alone() {
        assert_eq!(
            batches(&step(4, None), &[], Some(1)),
            [vec![0], vec![1, 2, 3]]
        );
        assert_eq!(
            batches(&step(5, Some(HostCount::Count(2))), &[], Some(2)),
            [vec![0, 1], vec![2, 3], vec![4]]
        );
        // More canaries than hosts: they are all the canary.
        assert_eq!(batches(&step(3, None), &[], Some(5)), [vec![0, 1, 2]]);
        // A single host is no canary for anything.
        assert_eq!(batches(&step(1, None), &[], Some(1)), [vec![0]]);
    }

    #[test]
    fn failed_hosts_are_left_out_and_shares_count_the_rest() {
        let failed = ["h1".to_string(), "h3".to_string()];
        assert_eq!(batches(&step(5, None), &failed, None), [vec![0, 2, 4]]);
        // 50% of the 3 hosts left is 2.
        assert_eq!(
            batches(&step(5, Some(HostCount::Percent(50.0))), &failed, Some(1)),
            [vec![0], vec![2, 4]]
        );
        let all: Vec<String> = (0..3).map(|i| format!("h{i}")).collect();
        assert_eq!(
            batches(&step(3, None), &all, Some(1)),
            [Vec::<usize>::new()]
        );
    }
}
