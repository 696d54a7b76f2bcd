//! go-akka's value model in an arena: a value is a list of elements
//! (literals, objects, arrays, substitutions) concatenated when read, plus a
//! link to the value its key held before a re-assignment. Reads go through
//! go-akka's rules, ported one function for one function: a substitution
//! that did not resolve reads as the key's previous value, one that
//! resolved to a re-assigned key reads as that key's *previous* value (which
//! is how `+=` appends), and a cycle is reported when following the first
//! resolved substitution of each value comes back to a value already seen.
//!
//! Every read is bounded in depth and in total work: go-akka recurses
//! without limit (and crashes or hangs on some cycles it does not detect).

use std::cell::Cell;
use std::collections::HashMap;

use super::Failure;
use super::tokenizer::trim_space;

pub(super) type ValueId = usize;
pub(super) type ObjectId = usize;
pub(super) type SubId = usize;

/// Deepest recursion of reads and merges before giving up.
const MAX_DEPTH: usize = 1000;
/// Total work units (calls and bytes produced) per document.
const MAX_STEPS: u64 = 2_000_000;

/// go-akka's `HoconValue`.
#[derive(Debug, Default)]
pub(super) struct Value {
    pub(super) elems: Vec<Elem>,
    /// What the key held before this assignment.
    pub(super) old: Option<ValueId>,
}

/// go-akka's `HoconElement`s.
#[derive(Debug)]
pub(super) enum Elem {
    Literal(Vec<u8>),
    Object(ObjectId),
    Array(Vec<ValueId>),
    Sub(SubId),
}

/// go-akka's `HoconObject`: items plus first-assignment key order.
#[derive(Debug, Default)]
pub(super) struct Object {
    pub(super) items: HashMap<Vec<u8>, ValueId>,
    pub(super) keys: Vec<Vec<u8>>,
}

/// go-akka's `HoconSubstitution`.
#[derive(Debug)]
pub(super) struct Substitution {
    /// Root-relative path (prefixed when it came from an included file).
    pub(super) path: Vec<u8>,
    /// The path as written: the environment variable's name.
    pub(super) original: Vec<u8>,
    pub(super) optional: bool,
    pub(super) resolved: Option<ValueId>,
    /// Where it was written, for errors.
    pub(super) offset: usize,
}

/// What go-akka's `topValueOfSub` returns: an element or a whole value.
#[derive(Clone, Copy)]
enum Node<'t> {
    Elem(&'t Elem),
    Value(ValueId),
}

/// All values, objects and substitutions of one document (and its includes).
#[derive(Debug, Default)]
pub(super) struct Tree {
    values: Vec<Value>,
    objects: Vec<Object>,
    subs: Vec<Substitution>,
    depth: Cell<usize>,
    steps: Cell<u64>,
}

/// Leaves one level of recursion when dropped.
struct Level<'a>(&'a Cell<usize>);

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

fn dangling() -> Failure {
    Failure::new("internal error: dangling HOCON node")
}

impl Tree {
    fn enter(&self) -> Result<Level<'_>, Failure> {
        let depth = self.depth.get() + 1;
        if depth > MAX_DEPTH {
            return Err(Failure::new(format!(
                "substitutions or nesting deeper than {MAX_DEPTH} levels"
            )));
        }
        self.tick(1)?;
        self.depth.set(depth);
        Ok(Level(&self.depth))
    }

    #[cfg(test)]
    pub(super) fn steps(&self) -> u64 {
        self.steps.get()
    }

    pub(super) fn tick(&self, n: usize) -> Result<(), Failure> {
        let steps = self.steps.get().saturating_add(n as u64);
        self.steps.set(steps);
        if steps > MAX_STEPS {
            return Err(Failure::new(
                "the document expands to too much work (substitutions repeated too often?)",
            ));
        }
        Ok(())
    }

    // --- building (the parser) ---

    pub(super) fn new_value(&mut self) -> ValueId {
        self.values.push(Value::default());
        self.values.len() - 1
    }

    pub(super) fn new_object(&mut self) -> ObjectId {
        self.objects.push(Object::default());
        self.objects.len() - 1
    }

    pub(super) fn new_sub(&mut self, path: Vec<u8>, optional: bool, offset: usize) -> SubId {
        self.subs.push(Substitution {
            original: path.clone(),
            path,
            optional,
            resolved: None,
            offset,
        });
        self.subs.len() - 1
    }

    pub(super) fn value(&self, id: ValueId) -> Result<&Value, Failure> {
        self.values.get(id).ok_or_else(dangling)
    }

    fn value_mut(&mut self, id: ValueId) -> Result<&mut Value, Failure> {
        self.values.get_mut(id).ok_or_else(dangling)
    }

    pub(super) fn object(&self, id: ObjectId) -> Result<&Object, Failure> {
        self.objects.get(id).ok_or_else(dangling)
    }

    fn object_mut(&mut self, id: ObjectId) -> Result<&mut Object, Failure> {
        self.objects.get_mut(id).ok_or_else(dangling)
    }

    pub(super) fn sub(&self, id: SubId) -> Result<&Substitution, Failure> {
        self.subs.get(id).ok_or_else(dangling)
    }

    pub(super) fn sub_mut(&mut self, id: SubId) -> Result<&mut Substitution, Failure> {
        self.subs.get_mut(id).ok_or_else(dangling)
    }

    pub(super) fn append(&mut self, id: ValueId, elem: Elem) -> Result<(), Failure> {
        self.value_mut(id)?.elems.push(elem);
        Ok(())
    }

    pub(super) fn clear(&mut self, id: ValueId) -> Result<(), Failure> {
        self.value_mut(id)?.elems.clear();
        Ok(())
    }

    /// go-akka's `GetOrCreateKey`: a key seen before gets a fresh value
    /// that remembers the previous one.
    pub(super) fn get_or_create_key(
        &mut self,
        object: ObjectId,
        key: &[u8],
    ) -> Result<ValueId, Failure> {
        let old = self.object(object)?.items.get(key).copied();
        let child = self.new_value();
        self.value_mut(child)?.old = old;
        let obj = self.object_mut(object)?;
        if old.is_none() {
            obj.keys.push(key.to_vec());
        }
        obj.items.insert(key.to_vec(), child);
        Ok(child)
    }

    /// go-akka's `HoconObject.Merge`: keys missing here are taken from
    /// `other`; where both hold objects, those merge.
    pub(super) fn merge(&mut self, this: ObjectId, other: ObjectId) -> Result<(), Failure> {
        let other_obj = self.object(other)?;
        let keys = other_obj.keys.clone();
        let items: Vec<Option<ValueId>> = keys
            .iter()
            .map(|k| other_obj.items.get(k).copied())
            .collect();
        self.tick(keys.len())?;
        let level = self.depth.get() + 1;
        if level > MAX_DEPTH {
            return Err(Failure::new(format!(
                "objects nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.depth.set(level);
        let result = self.merge_keys(this, keys, items);
        self.depth.set(level - 1);
        result
    }

    fn merge_keys(
        &mut self,
        this: ObjectId,
        keys: Vec<Vec<u8>>,
        items: Vec<Option<ValueId>>,
    ) -> Result<(), Failure> {
        for (key, other_value) in keys.into_iter().zip(items) {
            let other_value = other_value.ok_or_else(dangling)?;
            match self.object(this)?.items.get(&key).copied() {
                Some(this_value) => {
                    if self.is_object(this_value)? && self.is_object(other_value)? {
                        let (Some(a), Some(b)) =
                            (self.get_object(this_value)?, self.get_object(other_value)?)
                        else {
                            continue;
                        };
                        self.merge(a, b)?;
                    }
                }
                None => {
                    let obj = self.object_mut(this)?;
                    obj.items.insert(key.clone(), other_value);
                    obj.keys.push(key);
                }
            }
        }
        Ok(())
    }

    // --- reading (go-akka's HoconValue / HoconSubstitution methods) ---

    fn top<'t>(&'t self, owner: ValueId, elem: &'t Elem) -> Result<Node<'t>, Failure> {
        if let Elem::Sub(s) = elem {
            match self.sub(*s)?.resolved {
                Some(r) => {
                    if let Some(old) = self.value(r)?.old {
                        return Ok(Node::Value(old));
                    }
                }
                None => {
                    if let Some(old) = self.value(owner)?.old {
                        return Ok(Node::Value(old));
                    }
                }
            }
        }
        Ok(Node::Elem(elem))
    }

    /// go-akka's `checkCycleRef`.
    fn check_cycle(&self, sub: SubId) -> Result<(), Failure> {
        let s = self.sub(sub)?;
        let mut seen: HashMap<ValueId, usize> = HashMap::new();
        let mut level = 1;
        let mut current = s.resolved;
        while let Some(v) = current {
            self.tick(1)?;
            if seen.get(&v).is_some_and(|l| *l != level) {
                return Err(Failure {
                    message: format!("cycle reference in path of {}", go_lossy(&s.path)),
                    offset: Some(s.offset),
                });
            }
            seen.insert(v, level);
            current = None;
            for e in &self.value(v)?.elems {
                if let Elem::Sub(x) = e
                    && let Some(r) = self.sub(*x)?.resolved
                {
                    current = Some(r);
                    level += 1;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The value a resolved substitution reads, after the cycle check.
    fn resolved_checked(&self, sub: SubId) -> Result<Option<ValueId>, Failure> {
        let Some(r) = self.sub(sub)?.resolved else {
            return Ok(None);
        };
        self.check_cycle(sub)?;
        Ok(Some(r))
    }

    pub(super) fn is_string(&self, id: ValueId) -> Result<bool, Failure> {
        let _level = self.enter()?;
        let value = self.value(id)?;
        let mut count = 0;
        // No short cut: go-akka reads every element (and fails on any).
        for e in &value.elems {
            if self.node_is_string(self.top(id, e)?)? {
                count += 1;
            }
        }
        Ok(count > 0 && count == value.elems.len())
    }

    fn node_is_string(&self, node: Node<'_>) -> Result<bool, Failure> {
        match node {
            Node::Value(v) => self.is_string(v),
            Node::Elem(Elem::Literal(_)) => Ok(true),
            Node::Elem(Elem::Object(_) | Elem::Array(_)) => Ok(false),
            Node::Elem(Elem::Sub(s)) => match self.resolved_checked(*s)? {
                Some(r) => self.is_string(r),
                None => Ok(false),
            },
        }
    }

    /// go-akka's `GetString`: the trimmed concatenation, `null` read as
    /// empty; empty for a value that is not all strings.
    pub(super) fn get_string(&self, id: ValueId) -> Result<Vec<u8>, Failure> {
        if !self.is_string(id)? {
            return Ok(Vec::new());
        }
        let _level = self.enter()?;
        let mut concat = Vec::new();
        for e in &self.value(id)?.elems {
            let part = self.node_get_string(self.top(id, e)?)?;
            self.tick(part.len())?;
            concat.extend(part);
        }
        if concat == b"null" {
            concat.clear();
        }
        Ok(trim_space(&concat).to_vec())
    }

    fn node_get_string(&self, node: Node<'_>) -> Result<Vec<u8>, Failure> {
        match node {
            Node::Value(v) => self.get_string(v),
            Node::Elem(Elem::Literal(s)) => Ok(s.clone()),
            Node::Elem(Elem::Object(_)) => {
                Err(Failure::new("This element is an object and not a string."))
            }
            Node::Elem(Elem::Array(_)) => {
                Err(Failure::new("This element is an array and not a string."))
            }
            Node::Elem(Elem::Sub(s)) => match self.resolved_checked(*s)? {
                Some(r) => self.get_string(r),
                None => Ok(Vec::new()),
            },
        }
    }

    /// go-akka's `GetObject`: the value's first element, read through a
    /// substitution if it is one.
    pub(super) fn get_object(&self, id: ValueId) -> Result<Option<ObjectId>, Failure> {
        let _level = self.enter()?;
        let Some(first) = self.value(id)?.elems.first() else {
            return Ok(None);
        };
        if let Elem::Object(o) = first {
            return Ok(Some(*o));
        }
        match self.top(id, first)? {
            Node::Value(v) => self.get_object(v),
            Node::Elem(Elem::Sub(s)) => match self.resolved_checked(*s)? {
                Some(r) => self.get_object(r),
                None => Ok(None),
            },
            Node::Elem(_) => Ok(None),
        }
    }

    pub(super) fn is_object(&self, id: ValueId) -> Result<bool, Failure> {
        Ok(self.get_object(id)?.is_some())
    }

    /// go-akka's `GetArray`: the items of every array element, concatenated;
    /// `None` (Go's nil) when there are none, so `[]` is not an array.
    pub(super) fn get_array(&self, id: ValueId) -> Result<Option<Vec<ValueId>>, Failure> {
        let _level = self.enter()?;
        let mut items: Option<Vec<ValueId>> = None;
        for e in &self.value(id)?.elems {
            let node = self.top(id, e)?;
            if self.node_is_array(node)?
                && let Some(more) = self.node_get_array(node)?
            {
                self.tick(more.len())?;
                items.get_or_insert_with(Vec::new).extend(more);
            }
        }
        Ok(items)
    }

    fn node_is_array(&self, node: Node<'_>) -> Result<bool, Failure> {
        match node {
            Node::Value(v) => Ok(self.get_array(v)?.is_some()),
            Node::Elem(Elem::Array(_)) => Ok(true),
            Node::Elem(Elem::Literal(_) | Elem::Object(_)) => Ok(false),
            Node::Elem(Elem::Sub(s)) => match self.resolved_checked(*s)? {
                Some(r) => Ok(self.get_array(r)?.is_some()),
                None => Ok(false),
            },
        }
    }

    fn node_get_array(&self, node: Node<'_>) -> Result<Option<Vec<ValueId>>, Failure> {
        match node {
            Node::Value(v) => self.get_array(v),
            Node::Elem(Elem::Array(items)) => Ok((!items.is_empty()).then(|| items.clone())),
            Node::Elem(Elem::Literal(_) | Elem::Object(_)) => Ok(None),
            // go-akka does not check for cycles here.
            Node::Elem(Elem::Sub(s)) => match self.sub(*s)?.resolved {
                Some(r) => self.get_array(r),
                None => Ok(None),
            },
        }
    }

    /// go-akka's `GetChildObject`.
    fn child(&self, id: ValueId, key: &[u8]) -> Result<Option<ValueId>, Failure> {
        let Some(obj) = self.get_object(id)? else {
            return Ok(None);
        };
        Ok(self.object(obj)?.items.get(key).copied())
    }

    /// go-akka's `getNode`: a path from `root`, split at every `.` with
    /// every `"` dropped (so quoting does not protect a dot).
    pub(super) fn get_node(&self, root: ValueId, path: &[u8]) -> Result<Option<ValueId>, Failure> {
        let mut current = root;
        for key in path
            .split(|b| *b == b'"')
            .flat_map(|part| part.split(|b| *b == b'.'))
            .filter(|k| !k.is_empty())
        {
            match self.child(current, key)? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// go-akka's `HoconValue.ToString(indent)`: the string form conftest
    /// types afterwards.
    pub(super) fn to_go_string(&self, id: ValueId, indent: usize) -> Result<Vec<u8>, Failure> {
        let _level = self.enter()?;
        if self.is_string(id)? {
            return Ok(quote_if_needed(&self.get_string(id)?));
        }
        if let Some(obj) = self.get_object(id)? {
            let mut out = b"{\r\n".to_vec();
            out.extend(self.object_to_go_string(obj, indent + 1)?);
            out.extend(std::iter::repeat_n(b' ', indent * 2));
            out.push(b'}');
            return Ok(out);
        }
        if let Some(items) = self.get_array(id)? {
            let mut out = b"[".to_vec();
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let part = self.to_go_string(item, indent + 1)?;
                self.tick(part.len())?;
                out.extend(part);
            }
            out.push(b']');
            return Ok(out);
        }
        Ok(b"<<unknown value>>".to_vec())
    }

    fn object_to_go_string(&self, obj: ObjectId, indent: usize) -> Result<Vec<u8>, Failure> {
        let object = self.object(obj)?;
        let mut out = Vec::new();
        for key in &object.keys {
            // go-akka looks the value up under the *quoted* key, finds
            // nothing for a key with a space or tab, and crashes.
            let quoted = key.contains(&b' ') || key.contains(&b'\t');
            let value = match object.items.get(key) {
                Some(v) if !quoted => *v,
                _ => {
                    return Err(Failure::new(format!(
                        "key \"{}\" of an object inside an array contains a space or tab \
                         (conftest's HOCON reader crashes on this)",
                        go_lossy(key)
                    )));
                }
            };
            out.extend(std::iter::repeat_n(b' ', indent * 2));
            out.extend_from_slice(key);
            out.extend_from_slice(b" : ");
            let part = self.to_go_string(value, indent)?;
            self.tick(part.len())?;
            out.extend(part);
            out.extend_from_slice(b"\r\n");
        }
        Ok(out)
    }
}

fn quote_if_needed(text: &[u8]) -> Vec<u8> {
    if text.is_empty() {
        return b"\"\"".to_vec();
    }
    if text.contains(&b' ') || text.contains(&b'\t') {
        let mut out = Vec::with_capacity(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
        return out;
    }
    text.to_vec()
}

/// Bytes as Go's JSON encoder writes a string: each byte that is not part of
/// valid UTF-8 becomes U+FFFD.
pub(super) fn go_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}
