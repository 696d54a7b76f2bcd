//! `regard policies`: the built-in policy library — list its bundles and
//! policies, export them for a cluster or the webhook, print its README.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use policy_core::library;

/// `regard policies` flags.
#[derive(Debug, Args)]
pub(crate) struct PoliciesArgs {
    #[command(subcommand)]
    command: PoliciesCommand,
}

#[derive(Debug, Subcommand)]
enum PoliciesCommand {
    /// List the built-in bundles and their policies.
    List {
        /// Only the policies of these bundles (repeatable).
        #[arg(long = "bundle", value_delimiter = ',')]
        bundle: Vec<String>,
    },
    /// Write templates and default Constraints to DIR/templates and DIR/constraints.
    Export {
        /// Directory to write (created if missing).
        dir: PathBuf,
        /// Bundles to export (repeatable) [default: the default bundles].
        #[arg(long = "bundle", value_delimiter = ',')]
        bundle: Vec<String>,
    },
    /// Print the library's README (policies/README.md) generated from the templates.
    Doc,
}

pub(crate) fn run(args: &PoliciesArgs, out: &mut dyn std::io::Write) -> Result<u8> {
    match &args.command {
        PoliciesCommand::List { bundle } => out.write_all(list(bundle)?.as_bytes())?,
        PoliciesCommand::Export { dir, bundle } => {
            let names = if bundle.is_empty() {
                library::default_bundles()?
            } else {
                bundle.clone()
            };
            let (count, syncsets) = export(dir, &names)?;
            let syncsets = match syncsets {
                0 => String::new(),
                n => format!(" and {n} SyncSets to {}/syncsets", dir.display()),
            };
            writeln!(
                out,
                "wrote {count} templates to {0}/templates, {count} constraints to {0}/constraints{syncsets} (bundles: {1})",
                dir.display(),
                names.join(", ")
            )?;
        }
        PoliciesCommand::Doc => out.write_all(library::readme()?.as_bytes())?,
    }
    Ok(0)
}

fn list(selected: &[String]) -> Result<String> {
    let bundles = library::bundles()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}{:<9}{:<10}DESCRIPTION",
        "BUNDLE", "DEFAULT", "POLICIES"
    );
    for b in &bundles {
        if selected.is_empty() || selected.contains(&b.name) {
            let default = if b.default { "yes" } else { "no" };
            let _ = writeln!(
                out,
                "{:<16}{default:<9}{:<10}{}",
                b.name,
                b.policies.len(),
                b.description
            );
        }
    }
    let paths = if selected.is_empty() {
        library::select(&bundles.iter().map(|b| b.name.as_str()).collect::<Vec<_>>())?
    } else {
        library::select(selected)?
    };
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<25}{:<16}{:<8}{:<33}TITLE",
        "POLICY", "LEVEL", "ACTION", "KIND"
    );
    for p in library::policies()?
        .into_iter()
        .filter(|p| paths.contains(&p.path))
    {
        let _ = writeln!(
            out,
            "{:<25}{:<16}{:<8}{:<33}{}",
            p.id, p.level, p.enforcement_action, p.kind, p.title
        );
    }
    Ok(out)
}

/// Writes `templates/<id>.yaml` and `constraints/<id>.yaml` for every policy
/// of the bundles, `syncsets/<id>.yaml` for the referential ones and
/// `mutators/<id>.yaml` for mutation bundles; returns
/// how many policies and SyncSets were written.
fn export(dir: &std::path::Path, names: &[String]) -> Result<(usize, usize)> {
    let (mut count, mut syncsets) = (0, 0);
    for (path, text) in library::files(names)? {
        let (policy, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        let id = policy.rsplit('/').next().unwrap_or(policy);
        let sub = match file {
            "template.yaml" => {
                count += 1;
                "templates"
            }
            "syncset.yaml" => {
                syncsets += 1;
                "syncsets"
            }
            "mutators.yaml" => "mutators",
            _ => "constraints",
        };
        let target = dir.join(sub).join(format!("{id}.yaml"));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok((count, syncsets))
}
