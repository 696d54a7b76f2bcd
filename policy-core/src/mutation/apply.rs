//! Applying one mutator to one object.
//!
//! The object is walked along the mutator's location as Gatekeeper walks it:
//! missing objects and keyed list elements are created on the way (and kept
//! only if the write happens), globbed lists visit every element and never
//! grow, and each `pathTests` condition is checked at its depth, turning the
//! mutation into a silent no-op when it does not hold. The write itself
//! depends on the kind: set a value, merge into or prune a set, or rewrite
//! an image reference.

use serde_json::{Map, Value as Json};

use super::location::{ListKey, PathNode};
use super::mutator::{
    Action, AssignSource, Mutator, PathTests, SetOperation, key_matches, split_domain, split_tag,
};

/// What the setter writes, resolved once per application.
struct Setter<'a> {
    action: &'a Action,
    /// The value Assign/AssignMetadata writes (constant or from metadata).
    value: Option<Json>,
}

/// The JSON type name used in messages.
pub(crate) fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "object",
    }
}

/// Applies `m` to `obj`. `Ok(true)` when the write happened (it may leave
/// the object unchanged, e.g. assigning the value already there).
pub(crate) fn apply(m: &Mutator, obj: &mut Json) -> Result<bool, String> {
    let value = match &m.action {
        Action::Assign(AssignSource::Value(v)) => Some(v.clone()),
        Action::Assign(AssignSource::FromName) => Some(Json::from(meta_str(obj, "name"))),
        Action::Assign(AssignSource::FromNamespace) => Some(Json::from(meta_str(obj, "namespace"))),
        _ => None,
    };
    let setter = Setter {
        action: &m.action,
        value,
    };
    let walk = Walk {
        nodes: m.location.nodes(),
        tests: &m.path_tests,
        setter: &setter,
        location: &m.location,
    };
    walk.step(0, obj)
}

fn meta_str(obj: &Json, field: &str) -> String {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned()
}

struct Walk<'a> {
    nodes: &'a [PathNode],
    tests: &'a PathTests,
    setter: &'a Setter<'a>,
    location: &'a super::Location,
}

impl Walk<'_> {
    fn mismatch(&self, expected: &str, got: &Json) -> String {
        format!(
            "mismatch between path entry (type: {expected}) and received object (type: {}) in location {}",
            type_name(got),
            self.location
        )
    }

    fn step(&self, depth: usize, current: &mut Json) -> Result<bool, String> {
        let Some(node) = self.nodes.get(depth) else {
            return Err("attempting to mutate an empty target location".to_owned());
        };
        let last = depth + 1 == self.nodes.len();
        match node {
            PathNode::Object(field) => {
                let Json::Object(map) = current else {
                    return Err(self.mismatch("object", current));
                };
                let exists = map.contains_key(field);
                if (exists && !self.tests.exists_ok(depth))
                    || (!exists && !self.tests.missing_ok(depth))
                {
                    return Ok(false);
                }
                if last {
                    self.setter.set(map, field)?;
                    return Ok(true);
                }
                match map.get_mut(field) {
                    Some(next) => self.step(depth + 1, next),
                    None => {
                        let mut next = self.create_missing(depth)?;
                        let mutated = self.step(depth + 1, &mut next)?;
                        if mutated {
                            map.insert(field.clone(), next);
                        }
                        Ok(mutated)
                    }
                }
            }
            PathNode::List { key_field, key } => {
                let Json::Array(list) = current else {
                    return Err(self.mismatch("list", current));
                };
                if last {
                    return self
                        .setter
                        .set_list_element(list, key_field, key, self.tests, depth);
                }
                if *key == ListKey::Glob {
                    if !self.tests.exists_ok(depth) {
                        return Ok(false);
                    }
                    let mut mutated = false;
                    for element in list.iter_mut() {
                        mutated |= self.step(depth + 1, element)?;
                    }
                    return Ok(mutated);
                }
                let mut mutated = false;
                let mut found = false;
                for element in list.iter_mut() {
                    let selected = matches!(&*element, Json::Object(o)
                        if o.get(key_field).is_some_and(|v| key_matches(key, v)));
                    if selected {
                        if !self.tests.exists_ok(depth) {
                            return Ok(false);
                        }
                        found = true;
                        mutated |= self.step(depth + 1, element)?;
                    }
                }
                if !found {
                    if !self.tests.missing_ok(depth) {
                        return Ok(false);
                    }
                    let mut next = self.create_missing(depth)?;
                    let m = self.step(depth + 1, &mut next)?;
                    if m {
                        list.push(next);
                    }
                    mutated |= m;
                }
                Ok(mutated)
            }
        }
    }

    /// The empty container for the node after `depth`, carrying the list key
    /// when the node at `depth` is a keyed list.
    fn create_missing(&self, depth: usize) -> Result<Json, String> {
        let next_is_list = self.nodes.get(depth + 1).is_some_and(PathNode::is_list);
        match self.nodes.get(depth) {
            Some(PathNode::List { key_field, key }) => {
                if next_is_list {
                    return Err(format!(
                        "two consecutive list path entries not allowed in location {}",
                        self.location
                    ));
                }
                let key_value = match key {
                    ListKey::String(s) => Json::from(s.as_str()),
                    ListKey::Int(i) => Json::from(*i),
                    ListKey::Glob => return Err("list entry has no key value".to_owned()),
                };
                let mut o = Map::new();
                o.insert(key_field.clone(), key_value);
                Ok(Json::Object(o))
            }
            _ if next_is_list => Ok(Json::Array(Vec::new())),
            _ => Ok(Json::Object(Map::new())),
        }
    }
}

impl Setter<'_> {
    fn set(&self, obj: &mut Map<String, Json>, key: &str) -> Result<(), String> {
        match self.action {
            Action::Assign(_) => {
                obj.insert(key.to_owned(), self.value.clone().unwrap_or(Json::Null));
                Ok(())
            }
            Action::ModifySet { operation, values } => {
                let current = obj.get_mut(key);
                match (operation, current) {
                    (SetOperation::Merge, None) => {
                        obj.insert(key.to_owned(), Json::Array(values.clone()));
                    }
                    (SetOperation::Prune, None) => {}
                    (op, Some(Json::Array(list))) => {
                        if *op == SetOperation::Merge {
                            for v in values {
                                if !list.contains(v) {
                                    list.push(v.clone());
                                }
                            }
                        } else {
                            list.retain(|x| !values.contains(x));
                        }
                    }
                    (_, Some(other)) => {
                        return Err(format!(
                            "{other} is not a list of values, cannot treat it as a set"
                        ));
                    }
                }
                Ok(())
            }
            Action::AssignImage { domain, path, tag } => {
                let current = match obj.get(key) {
                    None => "",
                    Some(Json::String(s)) => s.as_str(),
                    Some(other) => {
                        return Err(format!(
                            "expected value at AssignImage location to be a string, got {other} of type {}",
                            type_name(other)
                        ));
                    }
                };
                let image = mutate_image(domain, path, tag, current);
                obj.insert(key.to_owned(), Json::String(image));
                Ok(())
            }
        }
    }

    /// Assign at a location ending in a keyed list: replace the element with
    /// the same key in place, or append.
    fn set_list_element(
        &self,
        list: &mut Vec<Json>,
        key_field: &str,
        key: &ListKey,
        tests: &PathTests,
        depth: usize,
    ) -> Result<bool, String> {
        let (Action::Assign(_), Some(value)) = (self.action, &self.value) else {
            return Err("only Assign can set a keyed list element".to_owned());
        };
        if *key == ListKey::Glob {
            return Err("last path entry can not be globbed".to_owned());
        }
        for element in list.iter_mut() {
            let Json::Object(o) = &*element else {
                return Err(format!(
                    "cannot look up key {key_field:?} in a list element of type {}",
                    type_name(element)
                ));
            };
            if o.get(key_field).is_some_and(|v| key_matches(key, v)) {
                if !tests.exists_ok(depth) {
                    return Ok(false);
                }
                *element = value.clone();
                return Ok(true);
            }
        }
        if !tests.missing_ok(depth) {
            return Ok(false);
        }
        list.push(value.clone());
        Ok(true)
    }
}

/// Replaces the parts of `image` that are set (domain, path, tag).
pub(crate) fn mutate_image(domain: &str, path: &str, tag: &str, image: &str) -> String {
    let (old_domain, remainder) = split_domain(image);
    let (old_path, old_tag) = split_tag(remainder);
    let pick = |old: &'_ str, new: &'_ str| {
        if new.is_empty() {
            old.to_owned()
        } else {
            new.to_owned()
        }
    };
    let domain = pick(old_domain, domain);
    let path = pick(old_path, path);
    let tag = pick(old_tag, tag);
    if domain.is_empty() {
        format!("{path}{tag}")
    } else {
        format!("{domain}/{path}{tag}")
    }
}
