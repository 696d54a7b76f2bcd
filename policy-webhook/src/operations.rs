//! `--operation`: which parts of regard-webhook this process runs, as Gatekeeper's flag of the
//! same name, so that audit can run as its own Deployment.
//!
//! `webhook` serves `/v1/admit` (with TLS and, with `--cert-secret`, the certificates);
//! `audit` runs the audit loop (under the audit Lease, see [`crate::leader`]); `status` writes
//! policy status to the cluster. Omitted means all three.

use clap::ValueEnum;

/// One value of `--operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Operation {
    /// The validating admission webhook.
    Webhook,
    /// The audit loop.
    Audit,
    /// Status written to policy resources.
    Status,
}

/// The set of operations a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operations {
    /// `webhook` assigned.
    pub webhook: bool,
    /// `audit` assigned.
    pub audit: bool,
    /// `status` assigned.
    pub status: bool,
}

impl Default for Operations {
    fn default() -> Self {
        Operations::ALL
    }
}

impl Operations {
    /// Every operation (the default).
    pub const ALL: Operations = Operations {
        webhook: true,
        audit: true,
        status: true,
    };

    /// From the flag's values; none given means all.
    pub fn from_flags(values: &[Operation]) -> Operations {
        if values.is_empty() {
            return Operations::ALL;
        }
        Operations {
            webhook: values.contains(&Operation::Webhook),
            audit: values.contains(&Operation::Audit),
            status: values.contains(&Operation::Status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_means_all_and_values_select() {
        assert_eq!(Operations::from_flags(&[]), Operations::ALL);
        assert_eq!(
            Operations::from_flags(&[Operation::Audit, Operation::Status]),
            Operations {
                webhook: false,
                audit: true,
                status: true
            }
        );
    }
}
