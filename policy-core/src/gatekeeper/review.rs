//! `input.review`: what a template sees of the object under review.
//!
//! Gatekeeper hands templates the JSON of a Kubernetes `AdmissionRequest`.
//! For a plain object (gator, audit) it synthesises one: only `kind`, `name`,
//! `namespace` and `object` are set, `operation` is `""` and `userInfo` is
//! empty. For an admission request the request is used as received, shaped
//! as Go would serialise it (zero values for absent required fields, empty
//! optional fields dropped), with `object` replaced by `oldObject` on DELETE.

use regorus::Value;

use super::matching::SourceType;
use super::object::{ObjectMeta, is_absent, object, str_at};
use crate::error::Error;

/// A review ready to evaluate: the `input.review` value (converted once and
/// shared by every constraint) plus what matching needs.
#[derive(Debug, Clone)]
pub(crate) struct Review {
    /// `input.review`, without `namespaceObject` (added per review).
    pub value: Value,
    /// The object under review (the old object for DELETE).
    pub object: Value,
    /// The old object of an UPDATE or DELETE (`null` otherwise).
    pub old_object: Value,
    /// `request.namespace`, which Namespace lookups use.
    pub namespace: String,
    /// The Namespace object supplied with the request (`namespaceObject`).
    pub namespace_object: Option<Value>,
    pub source: SourceType,
}

impl Review {
    /// The review gator builds for a plain object.
    pub(crate) fn of_object(obj: &Value, source: SourceType) -> Review {
        let meta = ObjectMeta::of(obj);
        let mut fields = vec![
            ("uid", Value::from("")),
            (
                "kind",
                object(vec![
                    ("group", Value::from(meta.group.as_str())),
                    ("version", Value::from(meta.version.as_str())),
                    ("kind", Value::from(meta.kind.as_str())),
                ]),
            ),
            (
                "resource",
                object(vec![
                    ("group", Value::from("")),
                    ("version", Value::from("")),
                    ("resource", Value::from("")),
                ]),
            ),
            ("operation", Value::from("")),
            ("userInfo", Value::new_object()),
            ("object", obj.clone()),
            ("oldObject", Value::Null),
            ("options", Value::Null),
        ];
        if !meta.name.is_empty() {
            fields.push(("name", Value::from(meta.name.as_str())));
        }
        if !meta.namespace.is_empty() {
            fields.push(("namespace", Value::from(meta.namespace.as_str())));
        }
        Review {
            value: object(fields),
            object: obj.clone(),
            old_object: Value::Null,
            namespace: meta.namespace,
            namespace_object: None,
            source,
        }
    }

    /// The review for an admission request (the `request` of an AdmissionReview).
    pub(crate) fn of_request(request: &Value, source: SourceType) -> Result<Review, Error> {
        let Value::Object(req) = request else {
            return Err(Error::Review {
                object: "AdmissionRequest".to_owned(),
                message: "request must be an object".to_owned(),
            });
        };
        let get = |k: &str| {
            req.get(&Value::from(k))
                .cloned()
                .unwrap_or(Value::Undefined)
        };
        let string_or_empty = |v: Value| match v {
            Value::String(_) => v,
            _ => Value::from(""),
        };
        let gvk = |v: &Value, keys: [&'static str; 3]| {
            object(
                keys.iter()
                    .map(|k| (*k, string_or_empty(v[*k].clone())))
                    .collect(),
            )
        };
        let operation = str_at(request, &["operation"]).unwrap_or("").to_owned();
        let mut object_v = get("object");
        let old_object = get("oldObject");
        let kind = gvk(&get("kind"), ["group", "version", "kind"]);
        let mut namespace = str_at(request, &["namespace"]).unwrap_or("").to_owned();
        // Gatekeeper reviews a Namespace as cluster-scoped whatever the
        // request says (server-side apply sets request.namespace).
        if str_at(&kind, &["kind"]) == Some("Namespace") && str_at(&kind, &["group"]) == Some("") {
            namespace.clear();
        }
        if operation == "DELETE" {
            if is_absent(&old_object) {
                return Err(Error::Review {
                    object: describe_request(request),
                    message: "oldObject cannot be nil for DELETE operations".to_owned(),
                });
            }
            object_v = old_object.clone();
        }
        if is_absent(&object_v) && is_absent(&old_object) {
            return Err(Error::Review {
                object: describe_request(request),
                message:
                    "AdmissionRequest does not contain an \"object\" or \"oldObject\" to review"
                        .to_owned(),
            });
        }
        let absent_to_null = |v: Value| if is_absent(&v) { Value::Null } else { v };
        let mut fields = vec![
            ("uid", string_or_empty(get("uid"))),
            ("kind", kind),
            (
                "resource",
                gvk(&get("resource"), ["group", "version", "resource"]),
            ),
            ("operation", Value::from(operation.as_str())),
            (
                "userInfo",
                match get("userInfo") {
                    v @ Value::Object(_) => v,
                    _ => Value::new_object(),
                },
            ),
            ("object", absent_to_null(object_v.clone())),
            ("oldObject", absent_to_null(old_object.clone())),
            ("options", absent_to_null(get("options"))),
        ];
        for key in ["subResource", "name", "requestSubResource"] {
            if let Value::String(s) = get(key)
                && !s.is_empty()
            {
                fields.push((key, Value::String(s)));
            }
        }
        if !namespace.is_empty() {
            fields.push(("namespace", Value::from(namespace.as_str())));
        }
        for key in ["requestKind", "requestResource", "dryRun"] {
            let v = get(key);
            if !is_absent(&v) {
                fields.push((key, v));
            }
        }
        let namespace_object = match get("namespaceObject") {
            v @ Value::Object(_) => Some(v),
            _ => None,
        };
        Ok(Review {
            value: object(fields),
            object: absent_to_null(object_v),
            old_object: absent_to_null(old_object),
            namespace,
            namespace_object,
            source,
        })
    }

    /// `input.review` with `namespaceObject` set.
    pub(crate) fn input_review(&self, namespace_object: Option<&Value>) -> Value {
        let mut v = self.value.clone();
        if let Ok(o) = v.as_object_mut() {
            o.insert(
                Value::from("namespaceObject"),
                namespace_object.cloned().unwrap_or(Value::Null),
            );
        }
        v
    }

    /// `Kind namespace/name` of the reviewed object.
    pub(crate) fn describe(&self) -> String {
        let obj = if is_absent(&self.object) {
            &self.old_object
        } else {
            &self.object
        };
        ObjectMeta::of(obj).display()
    }
}

fn describe_request(request: &Value) -> String {
    let kind = str_at(request, &["kind", "kind"]).unwrap_or("object");
    let name = str_at(request, &["name"]).unwrap_or("");
    match str_at(request, &["namespace"]) {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_object_review_is_gator_shaped() {
        let pod = Value::from_json_str(
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"}}"#,
        )
        .unwrap();
        let r = Review::of_object(&pod, SourceType::Original);
        let json = serde_json::to_string(&r.input_review(None)).unwrap();
        let expected = r#"{"kind":{"group":"","kind":"Pod","version":"v1"},"name":"p","namespace":"d","namespaceObject":null,"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"}},"oldObject":null,"operation":"","options":null,"resource":{"group":"","resource":"","version":""},"uid":"","userInfo":{}}"#;
        assert_eq!(json, expected);
    }

    #[test]
    fn delete_reviews_the_old_object() {
        let req = Value::from_json_str(
            r#"{"operation": "DELETE", "kind": {"kind": "Pod", "version": "v1", "group": ""}, "namespace": "d", "name": "p", "oldObject": {"kind": "Pod", "metadata": {"name": "p"}}}"#,
        )
        .unwrap();
        let r = Review::of_request(&req, SourceType::Original).unwrap();
        assert_eq!(r.value["object"]["metadata"]["name"], Value::from("p"));
        assert_eq!(r.object, r.old_object);
        let bad =
            Value::from_json_str(r#"{"operation": "DELETE", "object": {"kind": "Pod"}}"#).unwrap();
        let err = Review::of_request(&bad, SourceType::Original).unwrap_err();
        assert!(
            err.to_string()
                .contains("oldObject cannot be nil for DELETE operations")
        );
    }

    #[test]
    fn request_gets_go_zero_values() {
        let req = Value::from_json_str(
            r#"{"operation": "UPDATE", "object": {"kind": "Pod"}, "junk": 1}"#,
        )
        .unwrap();
        let r = Review::of_request(&req, SourceType::Original).unwrap();
        assert_eq!(r.value["kind"]["kind"], Value::from(""));
        assert_eq!(r.value["uid"], Value::from(""));
        assert_eq!(r.value["oldObject"], Value::Null);
        assert_eq!(r.value["junk"], Value::Undefined);
    }
}
