//! The methods the API serves: a closed set ([`Method`]), parsed from the
//! call's name and the request's `using`, and dispatched to the generic
//! implementations (`get`, `set`, `query`, `changes`, `query_changes`, each
//! over any `JmapObject`) or to the extensions (`history`, `usage`, `database`).

mod account_password;
mod changes;
mod credential;
mod database;
mod get;
mod history;
mod query;
mod query_changes;
mod set;
mod usage;

use ledger_events::ObjectType;
use serde_json::Value;

use super::context::CallContext;
use super::error::MethodError;
use super::object::with_object;
use super::session::{CORE, STALWART};

/// A standard method of an object type (RFC 8620 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standard {
    Get,
    Set,
    Query,
    Changes,
    QueryChanges,
}

/// Every method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `Core/echo` (RFC 8620 §4).
    Echo,
    /// `x:<Type>/get|set|query|changes|queryChanges`.
    Standard(Standard, ObjectType),
    /// `x:AccountHistory/get` (extension).
    AccountHistory,
    /// `x:Account/reportUsage` (extension).
    ReportUsage,
    /// `x:Database/erase` (extension).
    DatabaseErase,
    /// `x:Database/purge` (extension).
    DatabasePurge,
    /// `x:ApiKey/…` and `x:AppPassword/…`: the caller's own credentials.
    Credential(Standard, ledger_events::model::CredentialKind),
    /// `x:AccountPassword/get|set`: the caller's own password (a singleton).
    AccountPassword(Standard),
}

impl Method {
    /// The method `name` stands for, if a capability in `using` provides it.
    fn parse(name: &str, using: &[String]) -> Option<Method> {
        let uses = |capability: &str| using.iter().any(|c| c == capability);
        if name == "Core/echo" {
            return uses(CORE).then_some(Method::Echo);
        }
        if !uses(STALWART) {
            return None;
        }
        let extension = match name {
            "x:AccountHistory/get" => Some(Method::AccountHistory),
            "x:Account/reportUsage" => Some(Method::ReportUsage),
            "x:Database/erase" => Some(Method::DatabaseErase),
            "x:Database/purge" => Some(Method::DatabasePurge),
            _ => None,
        };
        if extension.is_some() {
            return extension;
        }
        let (object, verb) = name.split_once('/')?;
        let verb = match verb {
            "get" => Standard::Get,
            "set" => Standard::Set,
            "query" => Standard::Query,
            "changes" => Standard::Changes,
            "queryChanges" => Standard::QueryChanges,
            _ => return None,
        };
        use ledger_events::model::CredentialKind;
        match (object, verb) {
            ("x:ApiKey", _) => return Some(Method::Credential(verb, CredentialKind::ApiKey)),
            ("x:AppPassword", _) => return Some(Method::Credential(verb, CredentialKind::AppPassword)),
            ("x:AccountPassword", Standard::Get | Standard::Set) => return Some(Method::AccountPassword(verb)),
            _ => {}
        }
        let object = ObjectType::ALL.into_iter().find(|t| t.jmap_name() == object)?;
        Some(Method::Standard(verb, object))
    }
}

/// Runs one method call.
pub(crate) async fn call(
    ctx: &mut CallContext<'_>,
    using: &[String],
    name: &str,
    arguments: Value,
) -> Result<Value, MethodError> {
    let Some(method) = Method::parse(name, using) else {
        return Err(MethodError::UnknownMethod(format!("{name} is not a method of the capabilities in `using`")));
    };
    match method {
        Method::Echo => Ok(arguments),
        Method::AccountHistory => history::get(ctx, arguments).await,
        Method::ReportUsage => usage::report_usage(ctx, arguments).await,
        Method::DatabaseErase => database::erase(ctx, arguments).await,
        Method::DatabasePurge => database::purge(ctx, arguments).await,
        Method::Credential(Standard::Get, kind) => credential::get(ctx, kind, arguments).await,
        Method::Credential(Standard::Set, kind) => credential::set(ctx, kind, arguments).await,
        Method::Credential(Standard::Query, kind) => credential::query(ctx, kind, arguments).await,
        Method::Credential(Standard::Changes, kind) => credential::changes(ctx, kind, arguments).await,
        Method::Credential(Standard::QueryChanges, kind) => credential::query_changes(ctx, kind, arguments).await,
        Method::AccountPassword(Standard::Get) => account_password::get(ctx, arguments).await,
        Method::AccountPassword(_) => account_password::set(ctx, arguments).await,
        Method::Standard(verb, object) => with_object!(object, |O| match verb {
            Standard::Get => get::get::<O>(ctx, arguments).await,
            Standard::Set => set::set::<O>(ctx, arguments).await,
            Standard::Query => query::query::<O>(ctx, arguments).await,
            Standard::Changes => changes::changes::<O>(ctx, arguments).await,
            Standard::QueryChanges => query_changes::query_changes::<O>(ctx, arguments).await,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_capabilities_select_the_method() {
        let both = [CORE.to_owned(), STALWART.to_owned()];
        let core = [CORE.to_owned()];
        assert_eq!(Method::parse("Core/echo", &core), Some(Method::Echo));
        assert_eq!(
            Method::parse("x:Role/queryChanges", &both),
            Some(Method::Standard(Standard::QueryChanges, ObjectType::Role))
        );
        assert_eq!(Method::parse("x:Account/reportUsage", &both), Some(Method::ReportUsage));
        assert_eq!(Method::parse("x:Account/get", &core), None, "x:Account needs urn:stalwart:jmap");
        assert_eq!(Method::parse("Core/echo", &[STALWART.to_owned()]), None);
        for unknown in ["x:Account/copy", "Account/get", "x:Account", "x:Domain/reportUsage"] {
            assert_eq!(Method::parse(unknown, &both), None, "{unknown}");
        }
    }
}
