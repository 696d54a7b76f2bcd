//! A type checker for CEL expressions, for the types that are known.
//!
//! The API server compiles every expression with cel-go's checker and refuses
//! a policy whose expression cannot work (`1 + 'a'`, `size(1)`,
//! `request.foo`). The `cel` crate has no checker (it parses and evaluates;
//! its overload declarations exist only to dispatch on runtime values and
//! are not enumerable), so regard has its own, run once per expression at
//! load by [`super::validator`]: [`check`] infers a [`Type`] for every node
//! of the parsed expression from the literals, the typed bindings (`request`,
//! `namespaceObject`, the `variables` compiled before), the operators and the
//! signatures of the functions of [`super::environment`] ([`SIGNATURES`]),
//! and reports cel-go's messages at cel-go's positions.
//!
//! It is sound rather than complete: `object`, `oldObject` and `params` have
//! no schema here and are `dyn`, `dyn` matches every parameter, and an error
//! is reported only where the crate's evaluation would fail for every input
//! too. So it accepts what cel-go refuses but regard evaluates (`1 == 'a'`,
//! mixed list literals, `true || 1`), and a template that evaluates today is
//! never refused. Timestamps of the Namespace type are `dyn`: regard reads
//! them as the JSON strings they are.

use std::collections::HashMap;
use std::fmt;

use cel::common::ast::{
    ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo, operators,
};

/// The type of an expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Type {
    /// Unknown until evaluation: matches everything.
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    /// A type value (`type(x)`, `int`).
    Kind,
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Optional(Box<Type>),
    /// A declared object type (`request`, `namespaceObject`); a map at runtime.
    Object(&'static Object),
    /// A Kubernetes library type (`kubernetes.Quantity`, `net.IP`, ...).
    Opaque(&'static str),
}

impl fmt::Display for Type {
    /// cel-go's spelling, as its messages print types.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Dyn => f.write_str("dyn"),
            Type::Null => f.write_str("null_type"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Duration => f.write_str("google.protobuf.Duration"),
            Type::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Type::Kind => f.write_str("type"),
            Type::List(e) => write!(f, "list({e})"),
            Type::Map(k, v) => write!(f, "map({k}, {v})"),
            Type::Optional(t) => write!(f, "optional_type({t})"),
            Type::Object(o) => f.write_str(o.name),
            Type::Opaque(n) => f.write_str(n),
        }
    }
}

impl Type {
    fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }

    /// The element of a list, the value of an optional, else `dyn`.
    fn inner(&self) -> Type {
        match self {
            Type::List(t) | Type::Optional(t) => (**t).clone(),
            _ => Type::Dyn,
        }
    }

    /// Whether the type is known to be other than `want`.
    pub(crate) fn is_known_not(&self, want: &Type) -> bool {
        self != &Type::Dyn && self != want
    }
}

/// The common type of two expressions (`dyn` when they differ).
fn join(a: &Type, b: &Type) -> Type {
    if a == b { a.clone() } else { Type::Dyn }
}

/// A declared object type: the API server's `kubernetes.AdmissionRequest`
/// and `kubernetes.Namespace` (`apiserver:admission/plugin/cel/compile.go`).
#[derive(Debug, PartialEq)]
pub(crate) struct Object {
    name: &'static str,
    fields: &'static [(&'static str, Field)],
}

/// The type of an object's field.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Str,
    Bool,
    Int,
    Dyn,
    StrList,
    StrMap,
    /// `map(string, list(string))`.
    Extra,
    Obj(&'static Object),
    ObjList(&'static Object),
}

impl Field {
    fn ty(self) -> Type {
        match self {
            Field::Str => Type::String,
            Field::Bool => Type::Bool,
            Field::Int => Type::Int,
            Field::Dyn => Type::Dyn,
            Field::StrList => Type::list(Type::String),
            Field::StrMap => Type::Map(Box::new(Type::String), Box::new(Type::String)),
            Field::Extra => Type::Map(Box::new(Type::String), Box::new(Type::list(Type::String))),
            Field::Obj(o) => Type::Object(o),
            Field::ObjList(o) => Type::list(Type::Object(o)),
        }
    }
}

const GVK: Object = Object {
    name: "kubernetes.GroupVersionKind",
    fields: &[
        ("group", Field::Str),
        ("version", Field::Str),
        ("kind", Field::Str),
    ],
};
const GVR: Object = Object {
    name: "kubernetes.GroupVersionResource",
    fields: &[
        ("group", Field::Str),
        ("version", Field::Str),
        ("resource", Field::Str),
    ],
};
const USER_INFO: Object = Object {
    name: "kubernetes.UserInfo",
    fields: &[
        ("username", Field::Str),
        ("uid", Field::Str),
        ("groups", Field::StrList),
        ("extra", Field::Extra),
    ],
};

/// `request`: no `uid`, no `object`/`oldObject` (root variables instead).
pub(crate) static REQUEST: Object = Object {
    name: "kubernetes.AdmissionRequest",
    fields: &[
        ("kind", Field::Obj(&GVK)),
        ("resource", Field::Obj(&GVR)),
        ("subResource", Field::Str),
        ("requestKind", Field::Obj(&GVK)),
        ("requestResource", Field::Obj(&GVR)),
        ("requestSubResource", Field::Str),
        ("name", Field::Str),
        ("namespace", Field::Str),
        ("operation", Field::Str),
        ("userInfo", Field::Obj(&USER_INFO)),
        ("dryRun", Field::Bool),
        ("options", Field::Dyn),
    ],
};

const NAMESPACE_METADATA: Object = Object {
    name: "kubernetes.NamespaceMetadata",
    fields: &[
        ("name", Field::Str),
        ("generateName", Field::Str),
        ("namespace", Field::Str),
        ("labels", Field::StrMap),
        ("annotations", Field::StrMap),
        ("UID", Field::Str),
        ("creationTimestamp", Field::Dyn),
        ("deletionGracePeriodSeconds", Field::Int),
        ("deletionTimestamp", Field::Dyn),
        ("generation", Field::Int),
        ("resourceVersion", Field::Str),
        ("finalizers", Field::StrList),
    ],
};
const NAMESPACE_SPEC: Object = Object {
    name: "kubernetes.NamespaceSpec",
    fields: &[("finalizers", Field::StrList)],
};
const NAMESPACE_CONDITION: Object = Object {
    name: "kubernetes.NamespaceCondition",
    fields: &[
        ("status", Field::Str),
        ("type", Field::Str),
        ("lastTransitionTime", Field::Dyn),
        ("message", Field::Str),
        ("reason", Field::Str),
    ],
};
const NAMESPACE_STATUS: Object = Object {
    name: "kubernetes.NamespaceStatus",
    fields: &[
        ("conditions", Field::ObjList(&NAMESPACE_CONDITION)),
        ("phase", Field::Str),
    ],
};

/// `namespaceObject`: the subset of a Namespace the API server declares.
pub(crate) static NAMESPACE: Object = Object {
    name: "kubernetes.Namespace",
    fields: &[
        ("metadata", Field::Obj(&NAMESPACE_METADATA)),
        ("spec", Field::Obj(&NAMESPACE_SPEC)),
        ("status", Field::Obj(&NAMESPACE_STATUS)),
    ],
};

const QUANTITY: &str = "kubernetes.Quantity";
const SEMVER: &str = "kubernetes.Semver";
const IP: &str = "net.IP";
const CIDR: &str = "net.CIDR";
const URL: &str = "kubernetes.URL";

/// A parameter of a signature.
#[derive(Clone, Copy, Debug, PartialEq)]
enum P {
    Any,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    /// Any list.
    List,
    /// Any map (and object: objects are maps at runtime).
    Map,
    /// Any optional.
    Opt,
    Opaque(&'static str),
}

impl P {
    fn accepts(self, t: &Type) -> bool {
        match (self, t) {
            (_, Type::Dyn) | (P::Any, _) => true,
            (P::Bool, Type::Bool)
            | (P::Int, Type::Int)
            | (P::Uint, Type::Uint)
            | (P::Double, Type::Double)
            | (P::String, Type::String)
            | (P::Bytes, Type::Bytes)
            | (P::Duration, Type::Duration)
            | (P::Timestamp, Type::Timestamp)
            | (P::List, Type::List(_))
            | (P::Map, Type::Map(..) | Type::Object(_))
            | (P::Opt, Type::Optional(_)) => true,
            (P::Opaque(a), Type::Opaque(b)) => a == *b,
            _ => false,
        }
    }
}

/// The result of a signature, from the argument types (receiver first).
#[derive(Clone, Copy, Debug, PartialEq)]
enum R {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    TypeValue,
    Opaque(&'static str),
    StringList,
    /// `map(string, list(string))`.
    StringListMap,
    /// The first argument's type.
    Same,
    /// The first argument's element (list) or value (optional).
    Inner,
    /// An optional of the first argument.
    OptionalOf,
    OptionalDyn,
    /// `opt.orValue(v)`: the optional's value type, if `v` has it too.
    OrValue,
    /// The concatenation of two lists.
    ListConcat,
}

impl R {
    fn apply(self, args: &[Type]) -> Type {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Type::Dyn);
        match self {
            R::Dyn => Type::Dyn,
            R::Bool => Type::Bool,
            R::Int => Type::Int,
            R::Uint => Type::Uint,
            R::Double => Type::Double,
            R::String => Type::String,
            R::Bytes => Type::Bytes,
            R::Duration => Type::Duration,
            R::Timestamp => Type::Timestamp,
            R::TypeValue => Type::Kind,
            R::Opaque(n) => Type::Opaque(n),
            R::StringList => Type::list(Type::String),
            R::StringListMap => Field::Extra.ty(),
            R::Same => arg(0),
            R::Inner => arg(0).inner(),
            R::OptionalOf => Type::Optional(Box::new(arg(0))),
            R::OptionalDyn => Type::Optional(Box::new(Type::Dyn)),
            R::OrValue => join(&arg(0).inner(), &arg(1)),
            R::ListConcat => Type::list(join(&arg(0).inner(), &arg(1).inner())),
        }
    }
}

/// One overload: name, whether it is called on a receiver (the first
/// parameter), parameters, result.
type Sig = (&'static str, bool, &'static [P], R);

const G: bool = false;
const M: bool = true;

/// The overloads of the operators the interpreter implements itself, as the
/// crate's values implement them (no cross-type arithmetic; cross-type
/// numeric comparisons).
const OPERATORS: &[Sig] = &[
    ("_+_", G, &[P::Int, P::Int], R::Int),
    ("_+_", G, &[P::Uint, P::Uint], R::Uint),
    ("_+_", G, &[P::Double, P::Double], R::Double),
    ("_+_", G, &[P::String, P::String], R::String),
    ("_+_", G, &[P::Bytes, P::Bytes], R::Bytes),
    ("_+_", G, &[P::List, P::List], R::ListConcat),
    ("_+_", G, &[P::Timestamp, P::Duration], R::Timestamp),
    ("_+_", G, &[P::Duration, P::Timestamp], R::Timestamp),
    ("_+_", G, &[P::Duration, P::Duration], R::Duration),
    ("_-_", G, &[P::Int, P::Int], R::Int),
    ("_-_", G, &[P::Uint, P::Uint], R::Uint),
    ("_-_", G, &[P::Double, P::Double], R::Double),
    ("_-_", G, &[P::Timestamp, P::Timestamp], R::Duration),
    ("_-_", G, &[P::Timestamp, P::Duration], R::Timestamp),
    ("_-_", G, &[P::Duration, P::Duration], R::Duration),
    ("_*_", G, &[P::Int, P::Int], R::Int),
    ("_*_", G, &[P::Uint, P::Uint], R::Uint),
    ("_*_", G, &[P::Double, P::Double], R::Double),
    ("_/_", G, &[P::Int, P::Int], R::Int),
    ("_/_", G, &[P::Uint, P::Uint], R::Uint),
    ("_/_", G, &[P::Double, P::Double], R::Double),
    ("_%_", G, &[P::Int, P::Int], R::Int),
    ("_%_", G, &[P::Uint, P::Uint], R::Uint),
    ("@in", G, &[P::Any, P::List], R::Bool),
    ("@in", G, &[P::Any, P::Map], R::Bool),
    ("!_", G, &[P::Bool], R::Bool),
    ("-_", G, &[P::Int], R::Int),
    ("-_", G, &[P::Double], R::Double),
    ("-_", G, &[P::Duration], R::Duration),
    ("-_", G, &[P::Uint], R::Uint),
];

/// The ordering operators' operand pairs.
const ORDERED: &[(P, P)] = &[
    (P::Int, P::Int),
    (P::Int, P::Uint),
    (P::Int, P::Double),
    (P::Uint, P::Int),
    (P::Uint, P::Uint),
    (P::Uint, P::Double),
    (P::Double, P::Int),
    (P::Double, P::Uint),
    (P::Double, P::Double),
    (P::String, P::String),
    (P::Bytes, P::Bytes),
    (P::Bool, P::Bool),
    (P::Timestamp, P::Timestamp),
    (P::Duration, P::Duration),
];

/// The functions of [`super::environment`]: the crate's standard library and
/// strings extension, and regard's Kubernetes libraries. A name missing here
/// is an undeclared function (the test `signatures_match_the_environment`
/// evaluates every entry against the environment).
const SIGNATURES: &[Sig] = &[
    // Standard library.
    ("size", G, &[P::String], R::Int),
    ("size", G, &[P::Bytes], R::Int),
    ("size", G, &[P::List], R::Int),
    ("size", G, &[P::Map], R::Int),
    ("size", M, &[P::String], R::Int),
    ("size", M, &[P::Bytes], R::Int),
    ("size", M, &[P::List], R::Int),
    ("size", M, &[P::Map], R::Int),
    ("int", G, &[P::Int], R::Int),
    ("int", G, &[P::Uint], R::Int),
    ("int", G, &[P::Double], R::Int),
    ("int", G, &[P::String], R::Int),
    ("int", G, &[P::Timestamp], R::Int),
    ("uint", G, &[P::Uint], R::Uint),
    ("uint", G, &[P::Int], R::Uint),
    ("uint", G, &[P::Double], R::Uint),
    ("uint", G, &[P::String], R::Uint),
    ("double", G, &[P::Double], R::Double),
    ("double", G, &[P::Int], R::Double),
    ("double", G, &[P::Uint], R::Double),
    ("double", G, &[P::String], R::Double),
    ("string", G, &[P::String], R::String),
    ("string", G, &[P::Bool], R::String),
    ("string", G, &[P::Int], R::String),
    ("string", G, &[P::Uint], R::String),
    ("string", G, &[P::Double], R::String),
    ("string", G, &[P::Bytes], R::String),
    ("string", G, &[P::Timestamp], R::String),
    ("string", G, &[P::Duration], R::String),
    ("string", G, &[P::Opaque(IP)], R::String),
    ("string", G, &[P::Opaque(CIDR)], R::String),
    ("bool", G, &[P::Bool], R::Bool),
    ("bool", G, &[P::String], R::Bool),
    ("bytes", G, &[P::String], R::Bytes),
    ("bytes", G, &[P::Bytes], R::Bytes),
    ("timestamp", G, &[P::String], R::Timestamp),
    ("timestamp", G, &[P::Timestamp], R::Timestamp),
    ("timestamp", G, &[P::Int], R::Timestamp),
    ("duration", G, &[P::String], R::Duration),
    ("duration", G, &[P::Duration], R::Duration),
    ("dyn", G, &[P::Any], R::Dyn),
    ("type", G, &[P::Any], R::TypeValue),
    ("matches", G, &[P::String, P::String], R::Bool),
    ("matches", M, &[P::String, P::String], R::Bool),
    ("contains", M, &[P::String, P::String], R::Bool),
    ("endsWith", M, &[P::String, P::String], R::Bool),
    ("startsWith", M, &[P::String, P::String], R::Bool),
    ("getHours", M, &[P::Duration], R::Int),
    ("getMinutes", M, &[P::Duration], R::Int),
    ("getSeconds", M, &[P::Duration], R::Int),
    ("getMilliseconds", M, &[P::Duration], R::Int),
    ("getHours", M, &[P::Timestamp], R::Int),
    ("getMinutes", M, &[P::Timestamp], R::Int),
    ("getSeconds", M, &[P::Timestamp], R::Int),
    ("getMilliseconds", M, &[P::Timestamp], R::Int),
    ("getFullYear", M, &[P::Timestamp], R::Int),
    ("getMonth", M, &[P::Timestamp], R::Int),
    ("getDayOfYear", M, &[P::Timestamp], R::Int),
    ("getDayOfMonth", M, &[P::Timestamp], R::Int),
    ("getDate", M, &[P::Timestamp], R::Int),
    ("getDayOfWeek", M, &[P::Timestamp], R::Int),
    ("getHours", M, &[P::Timestamp, P::String], R::Int),
    ("getMinutes", M, &[P::Timestamp, P::String], R::Int),
    ("getSeconds", M, &[P::Timestamp, P::String], R::Int),
    ("getMilliseconds", M, &[P::Timestamp, P::String], R::Int),
    ("getFullYear", M, &[P::Timestamp, P::String], R::Int),
    ("getMonth", M, &[P::Timestamp, P::String], R::Int),
    ("getDayOfYear", M, &[P::Timestamp, P::String], R::Int),
    ("getDayOfMonth", M, &[P::Timestamp, P::String], R::Int),
    ("getDate", M, &[P::Timestamp, P::String], R::Int),
    ("getDayOfWeek", M, &[P::Timestamp, P::String], R::Int),
    // Optional types.
    ("optional.none", G, &[], R::OptionalDyn),
    ("optional.of", G, &[P::Any], R::OptionalOf),
    ("optional.ofNonZeroValue", G, &[P::Any], R::OptionalOf),
    ("value", M, &[P::Opt], R::Inner),
    ("hasValue", M, &[P::Opt], R::Bool),
    ("or", M, &[P::Opt, P::Opt], R::Same),
    ("orValue", M, &[P::Opt, P::Any], R::OrValue),
    // Strings extension.
    ("charAt", M, &[P::String, P::Int], R::String),
    ("indexOf", M, &[P::String, P::String], R::Int),
    ("indexOf", M, &[P::String, P::String, P::Int], R::Int),
    ("lastIndexOf", M, &[P::String, P::String], R::Int),
    ("lastIndexOf", M, &[P::String, P::String, P::Int], R::Int),
    ("join", M, &[P::List], R::String),
    ("join", M, &[P::List, P::String], R::String),
    ("lowerAscii", M, &[P::String], R::String),
    ("upperAscii", M, &[P::String], R::String),
    ("trim", M, &[P::String], R::String),
    ("replace", M, &[P::String, P::String, P::String], R::String),
    (
        "replace",
        M,
        &[P::String, P::String, P::String, P::Int],
        R::String,
    ),
    ("split", M, &[P::String, P::String], R::StringList),
    ("split", M, &[P::String, P::String, P::Int], R::StringList),
    ("substring", M, &[P::String, P::Int], R::String),
    ("substring", M, &[P::String, P::Int, P::Int], R::String),
    ("format", M, &[P::String, P::List], R::String),
    ("strings.quote", G, &[P::String], R::String),
    ("reverse", M, &[P::String], R::String),
    // Kubernetes lists, regex and sets.
    ("isSorted", M, &[P::List], R::Bool),
    ("sum", M, &[P::List], R::Inner),
    ("min", M, &[P::List], R::Inner),
    ("max", M, &[P::List], R::Inner),
    ("indexOf", M, &[P::List, P::Any], R::Int),
    ("lastIndexOf", M, &[P::List, P::Any], R::Int),
    ("find", M, &[P::String, P::String], R::String),
    ("findAll", M, &[P::String, P::String], R::StringList),
    ("findAll", M, &[P::String, P::String, P::Int], R::StringList),
    ("sets.contains", G, &[P::List, P::List], R::Bool),
    ("sets.equivalent", G, &[P::List, P::List], R::Bool),
    ("sets.intersects", G, &[P::List, P::List], R::Bool),
    // Quantity.
    ("quantity", G, &[P::String], R::Opaque(QUANTITY)),
    ("isQuantity", G, &[P::String], R::Bool),
    ("sign", M, &[P::Opaque(QUANTITY)], R::Int),
    ("isInteger", M, &[P::Opaque(QUANTITY)], R::Bool),
    ("asInteger", M, &[P::Opaque(QUANTITY)], R::Int),
    ("asApproximateFloat", M, &[P::Opaque(QUANTITY)], R::Double),
    (
        "compareTo",
        M,
        &[P::Opaque(QUANTITY), P::Opaque(QUANTITY)],
        R::Int,
    ),
    (
        "isGreaterThan",
        M,
        &[P::Opaque(QUANTITY), P::Opaque(QUANTITY)],
        R::Bool,
    ),
    (
        "isLessThan",
        M,
        &[P::Opaque(QUANTITY), P::Opaque(QUANTITY)],
        R::Bool,
    ),
    (
        "add",
        M,
        &[P::Opaque(QUANTITY), P::Opaque(QUANTITY)],
        R::Opaque(QUANTITY),
    ),
    (
        "add",
        M,
        &[P::Opaque(QUANTITY), P::Int],
        R::Opaque(QUANTITY),
    ),
    (
        "sub",
        M,
        &[P::Opaque(QUANTITY), P::Opaque(QUANTITY)],
        R::Opaque(QUANTITY),
    ),
    (
        "sub",
        M,
        &[P::Opaque(QUANTITY), P::Int],
        R::Opaque(QUANTITY),
    ),
    // Semver.
    ("semver", G, &[P::String], R::Opaque(SEMVER)),
    ("semver", G, &[P::String, P::Bool], R::Opaque(SEMVER)),
    ("isSemver", G, &[P::String], R::Bool),
    ("isSemver", G, &[P::String, P::Bool], R::Bool),
    ("major", M, &[P::Opaque(SEMVER)], R::Int),
    ("minor", M, &[P::Opaque(SEMVER)], R::Int),
    ("patch", M, &[P::Opaque(SEMVER)], R::Int),
    (
        "compareTo",
        M,
        &[P::Opaque(SEMVER), P::Opaque(SEMVER)],
        R::Int,
    ),
    (
        "isGreaterThan",
        M,
        &[P::Opaque(SEMVER), P::Opaque(SEMVER)],
        R::Bool,
    ),
    (
        "isLessThan",
        M,
        &[P::Opaque(SEMVER), P::Opaque(SEMVER)],
        R::Bool,
    ),
    // IP and CIDR.
    ("ip", G, &[P::String], R::Opaque(IP)),
    ("isIP", G, &[P::String], R::Bool),
    ("ip.isCanonical", G, &[P::String], R::Bool),
    ("family", M, &[P::Opaque(IP)], R::Int),
    ("isUnspecified", M, &[P::Opaque(IP)], R::Bool),
    ("isLoopback", M, &[P::Opaque(IP)], R::Bool),
    ("isLinkLocalMulticast", M, &[P::Opaque(IP)], R::Bool),
    ("isLinkLocalUnicast", M, &[P::Opaque(IP)], R::Bool),
    ("isGlobalUnicast", M, &[P::Opaque(IP)], R::Bool),
    ("cidr", G, &[P::String], R::Opaque(CIDR)),
    ("isCIDR", G, &[P::String], R::Bool),
    ("containsIP", M, &[P::Opaque(CIDR), P::Opaque(IP)], R::Bool),
    ("containsIP", M, &[P::Opaque(CIDR), P::String], R::Bool),
    (
        "containsCIDR",
        M,
        &[P::Opaque(CIDR), P::Opaque(CIDR)],
        R::Bool,
    ),
    ("containsCIDR", M, &[P::Opaque(CIDR), P::String], R::Bool),
    ("ip", M, &[P::Opaque(CIDR)], R::Opaque(IP)),
    ("masked", M, &[P::Opaque(CIDR)], R::Opaque(CIDR)),
    ("prefixLength", M, &[P::Opaque(CIDR)], R::Int),
    // URL.
    ("url", G, &[P::String], R::Opaque(URL)),
    ("isURL", G, &[P::String], R::Bool),
    ("getScheme", M, &[P::Opaque(URL)], R::String),
    ("getHost", M, &[P::Opaque(URL)], R::String),
    ("getHostname", M, &[P::Opaque(URL)], R::String),
    ("getPort", M, &[P::Opaque(URL)], R::String),
    ("getEscapedPath", M, &[P::Opaque(URL)], R::String),
    ("getQuery", M, &[P::Opaque(URL)], R::StringListMap),
];

/// The type names an identifier may spell (`type(x) == string`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// Whether `namespace.name(...)` calls a function of the environment
/// (`sets.contains`, `optional.of`), rather than a method of a variable.
pub(crate) fn is_namespaced_function(namespace: &str, name: &str) -> bool {
    SIGNATURES.iter().any(|(n, member, _, _)| {
        !member
            && n.strip_prefix(namespace)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(name)
    })
}

/// cel-go's `ext.Lists` version 3, as Kubernetes 1.34 declares it for
/// ValidatingAdmissionPolicy (`sortBy` is a macro, expanded to an internal
/// function). Results are `dyn`: the element type is not tracked.
const LISTS: &[Sig] = &[
    ("slice", M, &[P::List, P::Int, P::Int], R::Dyn),
    ("flatten", M, &[P::List], R::Dyn),
    ("flatten", M, &[P::List, P::Int], R::Dyn),
    ("distinct", M, &[P::List], R::Dyn),
    ("reverse", M, &[P::List], R::Dyn),
    ("sort", M, &[P::List], R::Dyn),
    ("lists.range", G, &[P::Int], R::Dyn),
];

/// `ERROR: <input>:L:C: message` with cel-go's source line and caret.
pub(crate) fn located(source: &str, offset: u32, message: &str) -> String {
    let offset = usize::try_from(offset).unwrap_or(0).min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    let text = source
        .lines()
        .nth(line - 1)
        .unwrap_or("")
        .replace('\t', " ");
    format!(
        "ERROR: <input>:{line}:{}: {message}\n | {text}\n | {}^",
        col + 1,
        ".".repeat(col)
    )
}

/// What an expression can read, by name.
pub(crate) struct Declarations<'a> {
    /// The types of `variables.<name>` declared so far.
    pub variables: &'a HashMap<String, Type>,
    /// Whether cel-go's list extensions ([`LISTS`]) are declared: in the API
    /// server's ValidatingAdmissionPolicy environment, not in Gatekeeper's.
    pub lists: bool,
}

/// Infers the type of `ast`, or returns the type errors, each located, in
/// source order, one a line block as cel-go prints its issues.
pub(crate) fn check(
    ast: &IdedExpr,
    info: &SourceInfo,
    source: &str,
    decls: &Declarations<'_>,
) -> Result<Type, String> {
    let mut checker = Checker {
        info,
        decls,
        bound: Vec::new(),
        errors: Vec::new(),
    };
    let t = checker.expr(ast);
    if checker.errors.is_empty() {
        return Ok(t);
    }
    checker.errors.sort_by_key(|(offset, _)| *offset);
    Err(checker
        .errors
        .iter()
        .map(|(offset, m)| located(source, *offset, m))
        .collect::<Vec<_>>()
        .join("\n"))
}

struct Checker<'a> {
    info: &'a SourceInfo,
    decls: &'a Declarations<'a>,
    /// Comprehension variables in scope, innermost last.
    bound: Vec<(String, Type)>,
    errors: Vec<(u32, String)>,
}

impl Checker<'_> {
    fn error(&mut self, id: u64, message: String) -> Type {
        let offset = self.info.offset_for(id).map_or(0, |(start, _)| start);
        self.errors.push((offset, message));
        Type::Dyn
    }

    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|(n, _)| n == name)
    }

    fn expr(&mut self, e: &IdedExpr) -> Type {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Type::Bool,
                LiteralValue::Bytes(_) => Type::Bytes,
                LiteralValue::Double(_) => Type::Double,
                LiteralValue::Int(_) => Type::Int,
                LiteralValue::Null => Type::Null,
                LiteralValue::String(_) => Type::String,
                LiteralValue::UInt(_) => Type::Uint,
            },
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                if let Expr::Ident(root) = &s.operand.expr
                    && root == "variables"
                    && !self.is_bound(root)
                {
                    // Unknown names are reported by the validator's walk.
                    if s.test {
                        return Type::Bool;
                    }
                    return self
                        .decls
                        .variables
                        .get(&s.field)
                        .cloned()
                        .unwrap_or(Type::Dyn);
                }
                let operand = self.expr(&s.operand);
                let field = self.select(e.id, &operand, &s.field, s.test);
                if s.test { Type::Bool } else { field }
            }
            Expr::Call(c) => {
                let target = c.target.as_deref();
                self.call(e.id, &c.func_name, target, &c.args)
            }
            Expr::List(l) => {
                let mut elem: Option<Type> = None;
                for (i, x) in l.elements.iter().enumerate() {
                    let mut t = self.expr(x);
                    if l.optional_indices.contains(&i) {
                        t = t.inner();
                    }
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => join(&prev, &t),
                    });
                }
                Type::list(elem.unwrap_or(Type::Dyn))
            }
            Expr::Map(m) => {
                let mut kv: Option<(Type, Type)> = None;
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        let k = self.expr(&me.key);
                        let mut v = self.expr(&me.value);
                        if me.optional {
                            v = v.inner();
                        }
                        kv = Some(match kv {
                            None => (k, v),
                            Some((pk, pv)) => (join(&pk, &k), join(&pv, &v)),
                        });
                    }
                }
                let (k, v) = kv.unwrap_or((Type::Dyn, Type::Dyn));
                Type::Map(Box::new(k), Box::new(v))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.expr(&f.value);
                    }
                }
                Type::Dyn
            }
            Expr::Comprehension(c) => self.comprehension(c),
            Expr::Unspecified => Type::Dyn,
        }
    }

    fn ident(&self, name: &str) -> Type {
        if let Some((_, t)) = self.bound.iter().rev().find(|(n, _)| n == name) {
            return t.clone();
        }
        match name {
            "request" => Type::Object(&REQUEST),
            "namespaceObject" => Type::Object(&NAMESPACE),
            _ if TYPE_NAMES.contains(&name) => Type::Kind,
            // `object`, `oldObject`, `params`; undeclared names are the
            // validator's walk's to report.
            _ => Type::Dyn,
        }
    }

    /// `operand.field`, or `has(operand.field)` when `test`.
    fn select(&mut self, id: u64, operand: &Type, field: &str, test: bool) -> Type {
        match operand {
            Type::Dyn => Type::Dyn,
            Type::Map(_, v) => (**v).clone(),
            Type::Object(o) => match o.fields.iter().find(|(n, _)| *n == field) {
                Some((_, f)) => f.ty(),
                None => self.error(id, format!("undefined field '{field}'")),
            },
            // A field of an optional is an optional of the field.
            Type::Optional(_) => Type::Optional(Box::new(Type::Dyn)),
            // `has()` of a path through a non-map is `false` in regard (see
            // `library::presence_test`): only a plain selection fails.
            _ if test => Type::Dyn,
            other => self.error(
                id,
                format!("type '{other}' does not support field selection"),
            ),
        }
    }

    fn call(&mut self, id: u64, name: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) -> Type {
        // `optional.of(x)`, `sets.contains(a, b)`: a function of a namespace.
        if let Some(t) = target
            && let Expr::Ident(ns) = &t.expr
            && !self.is_bound(ns)
            && !matches!(
                ns.as_str(),
                "object" | "oldObject" | "params" | "request" | "namespaceObject"
            )
            && (is_namespaced_function(ns, name) || (self.decls.lists && ns == "lists"))
        {
            let qualified = format!("{ns}.{name}");
            let types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
            let table = self.table();
            return self.resolve(id, &qualified, false, &types, table);
        }
        match name {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                let types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
                // `false && 1` is `false`: only two non-bools always fail.
                if types.iter().all(|t| t.is_known_not(&Type::Bool)) {
                    return self.no_overload(id, name, false, &types);
                }
                return Type::Bool;
            }
            operators::CONDITIONAL => {
                let types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
                if let [cond, then, otherwise] = types.as_slice() {
                    if cond.is_known_not(&Type::Bool) {
                        return self.no_overload(id, name, false, &types);
                    }
                    return join(then, otherwise);
                }
                return Type::Dyn;
            }
            operators::EQUALS | operators::NOT_EQUALS => {
                // Equality is defined between any two values.
                for a in args {
                    self.expr(a);
                }
                return Type::Bool;
            }
            operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => {
                let types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
                if let [a, b] = types.as_slice()
                    && !ORDERED.iter().any(|(p, q)| p.accepts(a) && q.accepts(b))
                    && !matches!(a, Type::Opaque(_))
                {
                    return self.no_overload(id, name, false, &types);
                }
                return Type::Bool;
            }
            operators::INDEX | operators::OPT_INDEX => {
                let types: Vec<Type> = args.iter().map(|a| self.expr(a)).collect();
                let t = match types.as_slice() {
                    [Type::List(e), i] => {
                        if matches!(
                            i,
                            Type::String | Type::Bool | Type::Null | Type::List(_) | Type::Map(..)
                        ) {
                            return self.no_overload(id, name, false, &types);
                        }
                        (**e).clone()
                    }
                    [Type::Map(_, v), _] => (**v).clone(),
                    [Type::Optional(inner), _] => {
                        return Type::Optional(Box::new(match &**inner {
                            Type::List(e) | Type::Map(_, e) => (**e).clone(),
                            _ => Type::Dyn,
                        }));
                    }
                    [
                        Type::Null
                        | Type::Bool
                        | Type::Int
                        | Type::Uint
                        | Type::Double
                        | Type::Duration
                        | Type::Timestamp
                        | Type::Opaque(_),
                        _,
                    ] => return self.no_overload(id, name, false, &types),
                    _ => Type::Dyn,
                };
                return if name == operators::OPT_INDEX {
                    Type::Optional(Box::new(t))
                } else {
                    t
                };
            }
            operators::OPT_SELECT => {
                let operand = args.first().map_or(Type::Dyn, |a| self.expr(a));
                let operand = match operand {
                    Type::Optional(t) => *t,
                    t => t,
                };
                let field = match args.get(1).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::String(s))) => s.inner().to_owned(),
                    _ => return Type::Optional(Box::new(Type::Dyn)),
                };
                let t = self.select(id, &operand, &field, false);
                return Type::Optional(Box::new(t));
            }
            operators::NOT_STRICTLY_FALSE => {
                for a in args {
                    self.expr(a);
                }
                return Type::Bool;
            }
            _ => {}
        }
        if name.starts_with('@') && name != operators::IN {
            // regard's internal functions (`@has`, the two-variable
            // comprehension helpers) and the crate's.
            for a in args {
                self.expr(a);
            }
            return if name == super::library::PRESENCE_TEST {
                Type::Bool
            } else {
                Type::Dyn
            };
        }
        let mut types = Vec::with_capacity(args.len() + 1);
        if let Some(t) = target {
            types.push(self.expr(t));
        }
        types.extend(args.iter().map(|a| self.expr(a)));
        if OPERATORS.iter().any(|(n, _, _, _)| *n == name) {
            return self.resolve(id, name, false, &types, OPERATORS);
        }
        let table = self.table();
        self.resolve(id, name, target.is_some(), &types, table)
    }

    /// The signatures in scope: with the list extensions when they are
    /// declared (`reverse` is then both the strings' and the lists').
    fn table(&self) -> &'static [Sig] {
        static WITH_LISTS: std::sync::LazyLock<Vec<Sig>> =
            std::sync::LazyLock::new(|| SIGNATURES.iter().chain(LISTS).copied().collect());
        if self.decls.lists {
            WITH_LISTS.as_slice()
        } else {
            SIGNATURES
        }
    }

    /// Picks the overloads of `name` the argument types allow; `dyn` when
    /// several with different results do.
    fn resolve(
        &mut self,
        id: u64,
        name: &str,
        member: bool,
        types: &[Type],
        table: &[Sig],
    ) -> Type {
        let mut declared = table
            .iter()
            .filter(|(n, m, _, _)| *n == name && *m == member)
            .peekable();
        if declared.peek().is_none() {
            return self.error(
                id,
                format!("undeclared reference to '{name}' (in container '')"),
            );
        }
        let results: Vec<Type> = declared
            .filter(|(_, _, params, _)| {
                params.len() == types.len() && params.iter().zip(types).all(|(p, t)| p.accepts(t))
            })
            .map(|(_, _, _, r)| r.apply(types))
            .collect();
        match results.split_first() {
            None => self.no_overload(id, name, member, types),
            Some((first, rest)) => {
                if rest.iter().all(|r| r == first) {
                    first.clone()
                } else {
                    Type::Dyn
                }
            }
        }
    }

    fn no_overload(&mut self, id: u64, name: &str, member: bool, types: &[Type]) -> Type {
        let list = |ts: &[Type]| {
            ts.iter()
                .map(Type::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let signature = match types.split_first() {
            Some((receiver, rest)) if member => format!("{receiver}.({})", list(rest)),
            _ => format!("({})", list(types)),
        };
        self.error(
            id,
            format!("found no matching overload for '{name}' applied to '{signature}'"),
        )
    }

    fn comprehension(&mut self, c: &ComprehensionExpr) -> Type {
        let range = self.expr(&c.iter_range);
        let (first, second) = match &range {
            Type::List(e) => match c.iter_var2 {
                Some(_) => (Type::Int, (**e).clone()),
                None => ((**e).clone(), Type::Dyn),
            },
            Type::Map(k, v) => ((**k).clone(), (**v).clone()),
            Type::Object(_) => (Type::String, Type::Dyn),
            Type::Dyn => (Type::Dyn, Type::Dyn),
            other => {
                let m = format!(
                    "expression of type '{other}' cannot be range of a comprehension (must be list, map, or dynamic)"
                );
                self.error(c.iter_range.id, m);
                (Type::Dyn, Type::Dyn)
            }
        };
        let accu = match (&c.accu_init.expr, self.expr(&c.accu_init)) {
            // `map` and `filter` start from `[]`: their element type is the
            // step's, which is not inferred here.
            (Expr::List(l), _) if l.elements.is_empty() => Type::list(Type::Dyn),
            (Expr::Map(m), _) if m.entries.is_empty() => {
                Type::Map(Box::new(Type::Dyn), Box::new(Type::Dyn))
            }
            (_, t) => t,
        };
        let depth = self.bound.len();
        self.bound.push((c.accu_var.clone(), accu.clone()));
        self.bound.push((c.iter_var.clone(), first));
        if let Some(v2) = &c.iter_var2 {
            self.bound.push((v2.clone(), second));
        }
        self.expr(&c.loop_cond);
        self.expr(&c.loop_step);
        self.bound.truncate(depth);
        self.bound.push((c.accu_var.clone(), accu));
        let result = self.expr(&c.result);
        self.bound.truncate(depth);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str) -> Result<String, String> {
        let (ast, info) = super::super::environment()
            .parser()
            .parse_with_source_info(source)
            .map_err(|e| e.to_string())?;
        let variables = HashMap::from([
            ("n".to_owned(), Type::Int),
            ("names".to_owned(), Type::list(Type::String)),
            ("anyObject".to_owned(), Type::Dyn),
        ]);
        let decls = Declarations {
            lists: false,
            variables: &variables,
        };
        check(&ast, &info, source, &decls).map(|t| t.to_string())
    }

    /// Expressions the checker accepts, with their type.
    #[test]
    fn known_types_are_inferred() {
        let cases: &[(&str, &str)] = &[
            ("1 + 2", "int"),
            ("1u * 2u", "uint"),
            ("1.5 / 2.0", "double"),
            ("'a' + 'b'", "string"),
            ("b'a' + b'b'", "bytes"),
            ("[1] + [2]", "list(int)"),
            ("[1] + ['a']", "list(dyn)"),
            ("[1, 'a']", "list(dyn)"),
            ("{'a': 1}", "map(string, int)"),
            ("{'a': 1}.a", "int"),
            ("{'a': 1}['a']", "int"),
            ("[[1]][0]", "list(int)"),
            ("1 < 1.5 && 2u > 1", "bool"),
            ("1 == 'a'", "bool"),
            ("true || 1", "bool"),
            ("!object.x", "bool"),
            ("object.x + 1", "int"),
            ("object.x + object.y", "dyn"),
            ("size(object.items)", "int"),
            ("size('abc') + 'abc'.size()", "int"),
            ("true ? 1 : 2", "int"),
            ("true ? 1 : 'a'", "dyn"),
            ("'a,b'.split(',')", "list(string)"),
            ("'a'.startsWith('b')", "bool"),
            ("'abc'.matches('^a')", "bool"),
            ("request.operation", "string"),
            ("request.userInfo.groups", "list(string)"),
            ("request.userInfo.extra", "map(string, list(string))"),
            ("request.kind.group", "string"),
            ("request.options", "dyn"),
            ("has(request.namespace)", "bool"),
            ("namespaceObject.metadata.labels", "map(string, string)"),
            ("namespaceObject.status.conditions[0].reason", "string"),
            ("variables.n * 2", "int"),
            ("variables.names.all(x, x.startsWith('a'))", "bool"),
            ("variables.names.exists_one(x, x == 'a')", "bool"),
            ("variables.names.map(x, x + 'a')", "list(dyn)"),
            ("variables.names.filter(x, x != 'a')", "list(dyn)"),
            ("variables.anyObject.spec", "dyn"),
            ("{'a': 1}.all(k, k.startsWith('a'))", "bool"),
            ("object.items.all(i, i.x > 0)", "bool"),
            ("[1, 2].all(i, v, i < v)", "bool"),
            ("{'a': 1}.?a", "optional_type(int)"),
            ("{'a': 1}.?a.orValue(0)", "int"),
            ("object.?a.?b.orValue('x')", "dyn"),
            ("[1][?0]", "optional_type(int)"),
            ("optional.of(1).value()", "int"),
            ("optional.none().hasValue()", "bool"),
            ("[?optional.of(1)]", "list(int)"),
            ("quantity('1Gi').isLessThan(quantity('2Gi'))", "bool"),
            ("quantity('1Gi').add(1)", "kubernetes.Quantity"),
            ("semver('1.2.3').major()", "int"),
            ("cidr('10.0.0.0/8').containsIP(ip('10.0.0.1'))", "bool"),
            ("ip('10.0.0.1').family()", "int"),
            ("url('https://x').getQuery()", "map(string, list(string))"),
            ("sets.contains([1], [1])", "bool"),
            ("[1, 2].sum()", "int"),
            ("['a'].join(',')", "string"),
            ("'%s'.format(['a'])", "string"),
            ("strings.quote('a')", "string"),
            ("'a'.find('a')", "string"),
            ("type(1) == int", "bool"),
            (
                "timestamp('2024-01-01T00:00:00Z') + duration('1s')",
                "google.protobuf.Timestamp",
            ),
            ("timestamp(0) - timestamp(0)", "google.protobuf.Duration"),
            ("string(ip('10.0.0.1'))", "string"),
            ("dyn(1) + 1", "int"),
            ("'a' in ['a']", "bool"),
            ("'a' in request", "bool"),
            ("has(object.a.b)", "bool"),
            ("object.items.map(i, i.name).exists(n, n == 'x')", "bool"),
        ];
        for (expr, want) in cases {
            assert_eq!(run(expr).as_deref(), Ok(*want), "{expr}");
        }
    }

    /// Expressions that fail for every input, with cel-go's message.
    #[test]
    fn type_errors_are_reported_as_cel_go_reports_them() {
        let cases: &[(&str, &str)] = &[
            (
                "1 + 'a'",
                "ERROR: <input>:1:3: found no matching overload for '_+_' applied to '(int, string)'\n | 1 + 'a'\n | ..^",
            ),
            (
                "1 + 1.0",
                "ERROR: <input>:1:3: found no matching overload for '_+_' applied to '(int, double)'\n | 1 + 1.0\n | ..^",
            ),
            (
                "size(1)",
                "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'\n | size(1)\n | ....^",
            ),
            (
                "'a'.startsWith(1)",
                "ERROR: <input>:1:15: found no matching overload for 'startsWith' applied to 'string.(int)'\n | 'a'.startsWith(1)\n | ..............^",
            ),
            (
                "request.foo",
                "ERROR: <input>:1:8: undefined field 'foo'\n | request.foo\n | .......^",
            ),
            (
                "has(request.userInfo.foo)",
                "ERROR: <input>:1:4: undefined field 'foo'\n | has(request.userInfo.foo)\n | ...^",
            ),
            (
                "request.?uid.orValue('')",
                "ERROR: <input>:1:8: undefined field 'uid'\n | request.?uid.orValue('')\n | .......^",
            ),
            (
                "namespaceObject.metadata.uid",
                "ERROR: <input>:1:25: undefined field 'uid'\n | namespaceObject.metadata.uid\n | ........................^",
            ),
            (
                "object.name.foo()",
                "ERROR: <input>:1:16: undeclared reference to 'foo' (in container '')\n | object.name.foo()\n | ...............^",
            ),
            (
                "frobnicate(1)",
                "ERROR: <input>:1:11: undeclared reference to 'frobnicate' (in container '')\n | frobnicate(1)\n | ..........^",
            ),
            (
                "'a'.isSorted()",
                "ERROR: <input>:1:13: found no matching overload for 'isSorted' applied to 'string.()'\n | 'a'.isSorted()\n | ............^",
            ),
            (
                "request.operation.size() + request.name",
                "ERROR: <input>:1:26: found no matching overload for '_+_' applied to '(int, string)'\n | request.operation.size() + request.name\n | .........................^",
            ),
            (
                "variables.n.startsWith('a')",
                "ERROR: <input>:1:23: found no matching overload for 'startsWith' applied to 'int.(string)'\n | variables.n.startsWith('a')\n | ......................^",
            ),
            (
                "variables.names.all(x, x > 1)",
                "ERROR: <input>:1:26: found no matching overload for '_>_' applied to '(string, int)'\n | variables.names.all(x, x > 1)\n | .........................^",
            ),
            (
                "1 && 2",
                "ERROR: <input>:1:3: found no matching overload for '_&&_' applied to '(int, int)'\n | 1 && 2\n | ..^",
            ),
            (
                "!'a'",
                "ERROR: <input>:1:1: found no matching overload for '!_' applied to '(string)'\n | !'a'\n | ^",
            ),
            (
                "'a' ? 1 : 2",
                "ERROR: <input>:1:5: found no matching overload for '_?_:_' applied to '(string, int, int)'\n | 'a' ? 1 : 2\n | ....^",
            ),
            (
                "'a' in 'abc'",
                "ERROR: <input>:1:5: found no matching overload for '@in' applied to '(string, string)'\n | 'a' in 'abc'\n | ....^",
            ),
            (
                "[1]['a']",
                "ERROR: <input>:1:4: found no matching overload for '_[_]' applied to '(list(int), string)'\n | [1]['a']\n | ...^",
            ),
            (
                "1.a",
                "ERROR: <input>:1:2: type 'int' does not support field selection\n | 1.a\n | .^",
            ),
            (
                "(1).all(x, x)",
                "ERROR: <input>:1:2: expression of type 'int' cannot be range of a comprehension (must be list, map, or dynamic)\n | (1).all(x, x)\n | .^",
            ),
            (
                "quantity('1').isLessThan(1)",
                "ERROR: <input>:1:25: found no matching overload for 'isLessThan' applied to 'kubernetes.Quantity.(int)'\n | quantity('1').isLessThan(1)\n | ........................^",
            ),
            (
                "'a' < 1",
                "ERROR: <input>:1:5: found no matching overload for '_<_' applied to '(string, int)'\n | 'a' < 1\n | ....^",
            ),
            (
                "size(1) + 'a'.size(2)",
                "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'\n | size(1) + 'a'.size(2)\n | ....^\nERROR: <input>:1:19: found no matching overload for 'size' applied to 'string.(int)'\n | size(1) + 'a'.size(2)\n | ..................^",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(run(expr), Err((*want).to_owned()), "{expr}");
        }
    }

    /// Soundness: what the checker refuses fails at evaluation too.
    #[test]
    fn refused_expressions_fail_at_evaluation() {
        for expr in [
            "1 + 'a'",
            "1 + 1.0",
            "size(1)",
            "'a'.startsWith(1)",
            "'a'.isSorted()",
            "1 && 2",
            "!'a'",
            "'a' ? 1 : 2",
            "'a' in 'abc'",
            "[1]['a']",
            "(1).all(x, x)",
            "quantity('1').isLessThan(1)",
            "'a' < 1",
            "frobnicate(1)",
            "'a'.frobnicate()",
            "1.a",
        ] {
            assert!(run(expr).is_err(), "{expr} is accepted");
            assert!(
                super::super::evaluate_standalone(expr).is_err(),
                "{expr} evaluates"
            );
        }
    }

    /// A value of each parameter type, as CEL source.
    fn sample(p: P) -> &'static str {
        match p {
            P::Any | P::Int => "1",
            P::Bool => "true",
            P::Uint => "1u",
            P::Double => "1.0",
            P::String => "'1'",
            P::Bytes => "b'1'",
            P::Duration => "duration('1s')",
            P::Timestamp => "timestamp(0)",
            P::List => "['1']",
            P::Map => "{'1': ['1']}",
            P::Opt => "optional.of(1)",
            P::Opaque(QUANTITY) => "quantity('1')",
            P::Opaque(SEMVER) => "semver('1.0.0')",
            P::Opaque(IP) => "ip('10.0.0.1')",
            P::Opaque(CIDR) => "cidr('10.0.0.0/8')",
            P::Opaque(_) => "url('https://x')",
        }
    }

    /// Every signature is one the environment evaluates: no
    /// `undeclared reference`, no missing overload.
    #[test]
    fn signatures_match_the_environment() {
        for (name, member, params, _) in SIGNATURES {
            // regard builds the crate without `chrono`: timestamps and
            // durations are cel-go's, declared so that using them is an
            // evaluation error as before, not an undeclared function.
            if matches!(*name, "timestamp" | "duration")
                || params.contains(&P::Timestamp)
                || params.contains(&P::Duration)
            {
                continue;
            }
            let args: Vec<&str> = params.iter().map(|p| sample(*p)).collect();
            let expr = match (member, args.split_first()) {
                (true, Some((receiver, rest))) => {
                    format!("{receiver}.{name}({})", rest.join(", "))
                }
                _ => format!("{name}({})", args.join(", ")),
            };
            if let Err(e) = super::super::evaluate_standalone(&expr) {
                assert!(
                    !e.contains("Undeclared reference") && !e.contains("No such overload"),
                    "{expr}: {e}"
                );
            }
        }
    }
}
