//! A number of hosts, or a share of them: `N` or `P%`.
//!
//! Two options are written this way and mean a number of hosts only once the hosts are known:
//! `--max-fail` (how many failed hosts stop new ones from starting) and `--batch` or the
//! environment's `batch` (how many hosts roll at once). One type serves both, so both parse and
//! round the same way. It sits at the bottom of the crate: the command line parses it, the plan
//! and the scheduler apply it.

/// `N` hosts, or `P%` of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HostCount {
    Count(usize),
    Percent(f64),
}

impl HostCount {
    /// `N` (at least 1) or `P%` (above 0, at most 100); `None` for anything else.
    pub fn parse(text: &str) -> Option<HostCount> {
        match text.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .map(HostCount::Percent),
            None => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(HostCount::Count),
        }
    }

    /// How many hosts this is out of `total`: a count whatever the total, a share rounded up
    /// and at least 1.
    pub fn of(self, total: usize) -> usize {
        match self {
            HostCount::Count(n) => n,
            HostCount::Percent(p) => {
                let share = total as f64 * p / 100.0;
                // 16.1% of 1000 is 161, though in floating point it comes out a hair above:
                // a share within rounding error of a whole number is that number.
                let whole = share.round();
                let hosts = if (share - whole).abs() <= 1e-9 * whole.max(1.0) {
                    whole
                } else {
                    share.ceil()
                };
                (hosts as usize).max(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostCount;

    #[test]
    fn a_count_is_that_many_hosts_whatever_the_total() {
        assert_eq!(HostCount::parse("2"), Some(HostCount::Count(2)));
        assert_eq!(HostCount::parse(" 7 "), Some(HostCount::Count(7)));
        for total in [0, 1, 5, 1000] {
            assert_eq!(HostCount::Count(2).of(total), 2);
        }
    }

    #[test]
    fn a_percentage_is_rounded_up_and_at_least_one() {
        let cases = [
            ("50%", 5, 3),
            ("50%", 4, 2),
            ("40%", 5, 2),
            ("20%", 5, 1),
            ("1%", 5, 1),
            ("1%", 0, 1),
            ("100%", 5, 5),
            ("33%", 3, 1),
            ("34%", 3, 2),
            ("10%", 1000, 100),
            ("1.1%", 1000, 11),
            ("0.7%", 1000, 7),
            ("2.3%", 100, 3),
            ("0.5%", 3, 1),
            ("14.3%", 7, 2),
            ("99.9%", 1000, 999),
            ("64.4%", 250, 161),
            ("16.1%", 1000, 161),
            ("32.2%", 1000, 322),
        ];
        for (text, total, expected) in cases {
            let parsed = HostCount::parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(parsed.of(total), expected, "{text} of {total}");
        }
    }

    #[test]
    fn only_positive_counts_and_shares_up_to_100_percent_parse() {
        for bad in [
            "0", "0%", "-1", "-5%", "100.1%", "nan%", "inf%", "zero", "", "%", "5 %x", "2.5",
        ] {
            assert_eq!(HostCount::parse(bad), None, "{bad}");
        }
        assert_eq!(HostCount::parse("12.5%"), Some(HostCount::Percent(12.5)));
        assert_eq!(HostCount::parse("100%"), Some(HostCount::Percent(100.0)));
    }
}
