//! go-akka's substitution resolution, run once the whole document is parsed:
//! each `${path}`, in the order written, is looked up from the root (so a
//! later assignment of the key is what it sees), then as an environment
//! variable of exactly that name; an optional one found nowhere stays
//! unresolved (and reads as the key's previous value, or as nothing), a
//! required one is an error (go-akka panics, so conftest crashes).

use super::Failure;
use super::tree::{Elem, Tree, ValueId, go_lossy};

pub(super) fn resolve(
    tree: &mut Tree,
    root: ValueId,
    subs: &[usize],
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<(), Failure> {
    for &id in subs {
        let sub = tree.sub(id)?;
        let (path, original, optional, offset) = (
            sub.path.clone(),
            sub.original.clone(),
            sub.optional,
            sub.offset,
        );
        if let Some(found) = tree.get_node(root, &path)? {
            tree.sub_mut(id)?.resolved = Some(found);
            continue;
        }
        match lookup(env, &original) {
            Some(text) => {
                let value = tree.new_value();
                tree.append(value, Elem::Literal(text.into_bytes()))?;
                tree.sub_mut(id)?.resolved = Some(value);
            }
            // An optional one keeps what an earlier resolution (in an
            // included file) found, as go-akka does.
            None if optional => {}
            None => {
                return Err(Failure::at(
                    offset,
                    format!("unresolved substitution ${{{}}}", go_lossy(&path)),
                ));
            }
        }
    }
    Ok(())
}

/// Go's `os.LookupEnv`: a name that cannot be in the environment (empty,
/// with `=` or NUL, not UTF-8 here) is simply not found.
fn lookup(env: &(dyn Fn(&str) -> Option<String> + Sync), name: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(name).ok()?;
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    env(name)
}
