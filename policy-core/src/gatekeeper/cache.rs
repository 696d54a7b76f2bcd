//! Compiled templates kept from one load of a policy set to the next.
//!
//! A server that reloads its policies (a directory that changed, a bundle
//! tag that moved) usually gets most templates back unchanged: a constraint
//! was added, one template was edited. Compiling every template again costs
//! tens of milliseconds of CPU each, taken from the cores that serve
//! admission requests. [`TemplateCache`] remembers the templates of the last
//! load by their file and document, and
//! [`PolicyBundle::from_documents_cached`](super::PolicyBundle::from_documents_cached)
//! reuses those that are byte-for-byte the same document from the same file
//! (errors keep naming the right file), with their RVM programs already
//! compiled.

use std::collections::BTreeMap;
use std::sync::Mutex;

use regorus::Value;

use super::template::CompiledTemplate;

/// The compiled templates of the last load, by (file, document).
#[derive(Debug, Default)]
pub struct TemplateCache {
    last: Mutex<BTreeMap<(String, Value), CompiledTemplate>>,
}

impl TemplateCache {
    /// An empty cache.
    pub fn new() -> TemplateCache {
        TemplateCache::default()
    }

    /// The template compiled from exactly `doc` in `file` last time.
    pub(crate) fn get(&self, file: &str, doc: &Value) -> Option<CompiledTemplate> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&(file.to_owned(), doc.clone())).cloned()
    }

    /// Keeps exactly `templates` (those of the load that just succeeded):
    /// what the set no longer has is dropped.
    pub(crate) fn replace(&self, templates: Vec<((String, Value), CompiledTemplate)>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = templates.into_iter().collect();
    }

    /// How many templates are kept.
    pub fn len(&self) -> usize {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
