//! `/set` (RFC 8620 §5.3) of any object type: every accepted item of one call
//! is one atomic commit; rejected items are reported per item. Secrets are
//! hashed and sealed before the commit (argon2id never runs on the writer
//! thread); creates are ordered so that an object another create refers to by
//! `#creationId` is created first.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;

use ledger_events::values::ObjectId;
use serde_json::{Map, Value, json};

use crate::auth::Principal;
use crate::command::Writer;
use crate::jmap::context::{CallContext, CreatedIds, MAX_PASSWORDS_IN_REQUEST, Services, blocking};
use crate::jmap::error::{MethodError, SetError, SetErrorType, object_ref};
use crate::jmap::object::{
    JmapObject, ParseContext, PreparedSecrets, SecretRequests, Verb, created_id, in_scope, wire_render,
};
use crate::jmap::patch::{MAX_PATCH_PATHS, apply_patch, check_paths};
use crate::jmap::request::Args;
use crate::jmap::schema::wire::{from_wire, to_wire};
use crate::jmap::session::ACCOUNT_ID;
use crate::jmap::state::{parse_state, state_string, type_state};
use crate::secrets;
use crate::store::Tx;

#[derive(Clone)]
struct SetRequest {
    if_in_state: Option<String>,
    /// In creation order (see [`creation_order`]).
    create: Vec<(String, Value)>,
    update: Map<String, Value>,
    /// Updates refused before the commit (their patch paths), by key.
    refused: std::collections::HashMap<String, SetError>,
    destroy: Vec<String>,
    created_ids: CreatedIds,
    secrets: PreparedSecrets,
    principal: Arc<Principal>,
    writer: Writer,
    /// Preconditions of updates, by key ([`Expected`]).
    expected: std::collections::HashMap<String, Expected>,
}

/// What an update expects of its object's wire form when its commit runs:
/// at each path (`credentials/2/credentialId`), this value, or nothing
/// (`None`). Otherwise the update is refused with [`MOVED`], and nothing
/// of it is kept: positions in lists are read before the commit, and
/// another commit may have moved the entry in between.
pub(crate) type Expected = Vec<(String, Option<Value>)>;

/// The description of the `notFound` SetError of an update whose
/// [`Expected`] did not hold.
pub(crate) const MOVED: &str = "the entry moved while this call ran";

#[derive(Default)]
struct SetOutcome {
    old_state: u64,
    new_state: u64,
    created: Map<String, Value>,
    updated: Map<String, Value>,
    destroyed: Vec<Value>,
    not_created: Map<String, Value>,
    not_updated: Map<String, Value>,
    not_destroyed: Map<String, Value>,
    created_ids: CreatedIds,
}

/// The arguments of a `/set` call (RFC 8620 §5.3): `accountId` (checked),
/// `ifInState`, `create`, `update`, `destroy`.
pub(crate) struct SetArguments {
    pub(crate) if_in_state: Option<String>,
    pub(crate) create: Map<String, Value>,
    pub(crate) update: Map<String, Value>,
    pub(crate) destroy: Vec<String>,
}

impl SetArguments {
    /// Errors: an unknown or ill-typed argument (`invalidArguments`), more
    /// objects in all than `maxObjectsInSet` (`requestTooLarge`).
    pub(crate) fn parse(ctx: &CallContext<'_>, arguments: Value) -> Result<Self, MethodError> {
        let mut args = Args::new(arguments)?;
        args.account_id()?;
        let if_in_state: Option<String> = args.take("ifInState")?;
        let create: Map<String, Value> = args.take("create")?.unwrap_or_default();
        let update: Map<String, Value> = args.take("update")?.unwrap_or_default();
        let destroy: Vec<String> = args.take("destroy")?.unwrap_or_default();
        args.finish()?;
        let max = ctx.services.limits.max_objects_in_set;
        if create.len() + update.len() + destroy.len() > max {
            return Err(MethodError::RequestTooLarge(format!("at most {max} objects per /set")));
        }
        Ok(SetArguments { if_in_state, create, update, destroy })
    }
}

pub(crate) async fn set<O: JmapObject>(ctx: &mut CallContext<'_>, arguments: Value) -> Result<Value, MethodError> {
    set_expecting::<O>(ctx, arguments, Default::default()).await
}

/// [`set`], with preconditions on updates (`expected`, by update key; see
/// [`Expected`]). For callers that address list entries by a position they
/// read before the commit.
pub(crate) async fn set_expecting<O: JmapObject>(
    ctx: &mut CallContext<'_>,
    arguments: Value,
    expected: std::collections::HashMap<String, Expected>,
) -> Result<Value, MethodError> {
    let SetArguments { if_in_state, create, update, destroy } = SetArguments::parse(ctx, arguments)?;
    // Refused calls cost nothing: the permission check comes before any
    // argon2 work on the secrets they carry.
    let access = Access::<O> { principal: ctx.principal, object: PhantomData };
    if !access.may_any(&create, &update, &destroy) {
        return Err(MethodError::Forbidden("this principal may not change these objects".into()));
    }
    // Only the secrets of items this principal might be allowed to make are
    // hashed: a refused item costs no argon2.
    let creatable = access.may(Verb::Create);
    let updatable = access.may(Verb::Update);
    let hashed = create
        .values()
        .filter(|_| creatable)
        .chain(update.iter().filter_map(|(k, v)| (updatable || access.own(k)).then_some(v)));
    let secrets = prepare_secrets::<O>(ctx.services, hashed, ctx.passwords_left).await?;
    if let Some((key, _)) =
        update.iter().find(|(_, patch)| patch.as_object().is_some_and(|p| p.len() > MAX_PATCH_PATHS))
    {
        return Err(MethodError::RequestTooLarge(format!(
            "the patch of {key:?} sets more than {MAX_PATCH_PATHS} paths"
        )));
    }
    // What needs no state is done here, off the writer thread: the order of
    // creates and the paths of each patch.
    let (create, update, refused) = blocking(move || {
        let refused = update
            .iter()
            .filter_map(|(key, patch)| Some((key.clone(), check_paths(patch.as_object()?).err()?)))
            .collect();
        Ok((creation_order(create), update, refused))
    })
    .await?;
    let request = SetRequest {
        if_in_state,
        create,
        update,
        refused,
        destroy,
        created_ids: ctx.created_ids.clone(),
        principal: Arc::clone(ctx.principal),
        writer: ctx.principal.writer(),
        secrets,
        expected,
    };
    let committed = ctx.services.ledger.commit(ctx.origin.clone(), move |tx| run::<O>(tx, request.clone())).await?;
    let outcome = committed.value?;
    ctx.created_ids.extend(outcome.created_ids);
    let or_null = |m: Map<String, Value>| if m.is_empty() { Value::Null } else { Value::Object(m) };
    Ok(json!({
        "accountId": ACCOUNT_ID,
        "oldState": state_string(outcome.old_state),
        "newState": state_string(outcome.new_state),
        "created": or_null(outcome.created),
        "updated": or_null(outcome.updated),
        "destroyed": if outcome.destroyed.is_empty() { Value::Null } else { Value::Array(outcome.destroyed) },
        "notCreated": or_null(outcome.not_created),
        "notUpdated": or_null(outcome.not_updated),
        "notDestroyed": or_null(outcome.not_destroyed),
    }))
}

/// Hashes every password of the call with argon2id (off the executor) and
/// seals every `otpAuth` URI.
async fn prepare_secrets<'a, O: JmapObject>(
    services: &Services,
    items: impl Iterator<Item = &'a Value>,
    passwords_left: &mut usize,
) -> Result<PreparedSecrets, MethodError> {
    let mut requests = SecretRequests::default();
    let mut objects = 0;
    for v in items {
        objects += 1;
        O::collect_secrets(v, &mut requests);
    }
    let sealed_otp = requests.otps.into_iter().map(|uri| {
        let sealed = services.sealing.seal(uri.expose());
        (uri, sealed)
    });
    let mut prepared = PreparedSecrets { sealed_otp: sealed_otp.collect(), ..Default::default() };
    // An account has one Password: more secrets than objects is a bad call,
    // refused before argon2 spends a second on it; and a request hashes at
    // most MAX_PASSWORDS_IN_REQUEST.
    if requests.passwords.len() > objects {
        return Err(MethodError::invalid("an account has at most one Password; this call sets more"));
    }
    if requests.passwords.len() > *passwords_left {
        return Err(MethodError::RequestTooLarge(format!(
            "at most {MAX_PASSWORDS_IN_REQUEST} passwords per request; send more in further requests"
        )));
    }
    *passwords_left -= requests.passwords.len();
    let unique: HashSet<_> = requests.passwords.into_iter().collect();
    if !unique.is_empty() {
        services.passwords_hashed.fetch_add(unique.len() as u64, std::sync::atomic::Ordering::Relaxed);
        prepared.password_hashes =
            blocking(move || Ok(unique.into_iter().map(|p| (p.clone(), secrets::hash_password(p.expose()))).collect()))
                .await?;
    }
    Ok(prepared)
}

/// What the calling principal may do in this `/set`: permissions per verb,
/// self-service on its own object, and its tenant's bounds.
struct Access<'a, O> {
    principal: &'a Principal,
    object: PhantomData<O>,
}

impl<O: JmapObject> Access<'_, O> {
    fn may(&self, verb: Verb) -> bool {
        // A tenant-scoped principal changes only its tenant's accounts: never
        // global objects (roles), nor domains, even its own.
        if O::TENANT_WRITABLE {
            self.principal.may(O::permission(verb))
        } else {
            self.principal.may_globally(O::permission(verb))
        }
    }

    fn forbidden(&self, verb: Verb) -> SetError {
        SetError::forbidden(format!("{} is required", O::permission(verb)))
    }

    /// Whether an update key names the principal's own object (self-service).
    fn own(&self, key: &str) -> bool {
        ObjectId::from_jmap(key).is_some_and(|id| O::is_self(self.principal, id))
    }

    /// Whether any item could be allowed; if none, the whole call is `forbidden`.
    fn may_any(&self, create: &Map<String, Value>, update: &Map<String, Value>, destroy: &[String]) -> bool {
        let self_service = update.keys().any(|k| self.own(k));
        let nothing = create.is_empty() && update.is_empty() && destroy.is_empty();
        nothing
            || (!create.is_empty() && self.may(Verb::Create))
            || (!update.is_empty() && (self.may(Verb::Update) || self_service))
            || (!destroy.is_empty() && self.may(Verb::Destroy))
    }

    /// Checks a create and puts a tenant-scoped principal's tenant on it.
    fn creation(&self, object: Value) -> Result<Value, SetError> {
        if !self.may(Verb::Create) {
            return Err(self.forbidden(Verb::Create));
        }
        let (true, Some(tenant), Value::Object(mut map)) = (O::TENANT_SCOPED, &self.principal.tenant, object.clone())
        else {
            return Ok(object);
        };
        match map.get("memberTenantId") {
            None | Some(Value::Null) => {
                map.insert("memberTenantId".into(), Value::String(tenant.as_str().to_owned()));
                Ok(Value::Object(map))
            }
            Some(Value::String(t)) if t == tenant.as_str() => Ok(Value::Object(map)),
            Some(_) => Err(SetError::forbidden(format!("{}s can only be created in your own tenant", O::SINGULAR))),
        }
    }

    /// Checks an update of `id` with `patch`.
    fn update(&self, tx: &Tx<'_>, id: ObjectId, patch: &Value) -> Result<(), SetError> {
        self.visible(tx, id)?;
        if let (true, Some(tenant), Some(new)) = (O::TENANT_SCOPED, &self.principal.tenant, patch.get("memberTenantId"))
            && new.as_str() != Some(tenant.as_str())
        {
            return Err(SetError::forbidden(format!("{}s cannot leave your tenant", O::SINGULAR)));
        }
        if self.may(Verb::Update) {
            return Ok(());
        }
        let own = O::is_self(self.principal, id) && patch.as_object().is_some_and(O::self_service);
        if own { Ok(()) } else { Err(self.forbidden(Verb::Update)) }
    }

    fn destroy(&self, tx: &Tx<'_>, id: ObjectId) -> Result<(), SetError> {
        self.visible(tx, id)?;
        if self.may(Verb::Destroy) { Ok(()) } else { Err(self.forbidden(Verb::Destroy)) }
    }

    /// A SetError as this principal may see it: `primaryKeyViolation` names
    /// the existing object only when it is within the principal's tenant
    /// (names and addresses are unique across tenants; who holds one is not
    /// shared), and a tenant principal is not told which objects link to one.
    fn scrub(&self, tx: &Tx<'_>, mut error: SetError) -> SetError {
        if let (Some(_), Some(detail)) = (&self.principal.tenant, error.detail.as_mut()) {
            detail.linked_objects = None;
        }
        if let Some(existing) = error.existing_id.as_deref()
            && O::TENANT_SCOPED
            && self.principal.tenant.is_some()
        {
            let visible = ObjectId::from_jmap(existing)
                .and_then(|id| O::fetch(tx.state(), id).ok().flatten())
                .is_some_and(|state| in_scope::<O>(self.principal, &state));
            if !visible {
                error.existing_id = None;
                if let Some(detail) = error.detail.as_mut() {
                    detail.object_id = None;
                }
            }
        }
        error
    }

    /// Objects outside the principal's tenant do not exist for it.
    fn visible(&self, tx: &Tx<'_>, id: ObjectId) -> Result<(), SetError> {
        if !O::TENANT_SCOPED || self.principal.tenant.is_none() {
            return Ok(());
        }
        match O::fetch(tx.state(), id) {
            Ok(Some(state)) if in_scope::<O>(self.principal, &state) => Ok(()),
            Ok(_) => Err(SetError::not_found("no such object")),
            Err(_) => Err(SetError::forbidden("the object could not be read")),
        }
    }
}

/// The `#creation` ids an object refers to: in values, and in the keys of
/// sets in map form (`{"#r1": true}`).
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix('#') {
                out.push(r.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => {
            out.extend(map.keys().filter_map(|k| k.strip_prefix('#')).map(str::to_owned));
            map.values().for_each(|v| references(v, out));
        }
        _ => {}
    }
}

/// Orders creates so that an object another create refers to is created
/// first: Kahn's algorithm wave by wave, O(n log n) in the creates and their
/// references, keeping the given order within a wave.
/// Creates in a cycle keep their given order after the rest; their
/// unresolved references then fail per item.
fn creation_order(create: Map<String, Value>) -> Vec<(String, Value)> {
    let items: Vec<(String, Value)> = create.into_iter().collect();
    let index: std::collections::HashMap<&str, usize> =
        items.iter().enumerate().map(|(i, (cid, _))| (cid.as_str(), i)).collect();
    let mut waiting_on = vec![0usize; items.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, (cid, value)) in items.iter().enumerate() {
        let mut refs = Vec::new();
        references(value, &mut refs);
        refs.sort_unstable();
        refs.dedup();
        for r in refs.iter().filter(|r| *r != cid) {
            if let Some(&j) = index.get(r.as_str()) {
                waiting_on[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    // Wave by wave: each wave holds, in the given order, the creates whose
    // references are all created by earlier waves.
    let mut wave: Vec<usize> = (0..items.len()).filter(|&i| waiting_on[i] == 0).collect();
    let mut order = Vec::with_capacity(items.len());
    while !wave.is_empty() {
        let mut next = Vec::new();
        for &i in &wave {
            for &d in &dependents[i] {
                waiting_on[d] -= 1;
                if waiting_on[d] == 0 {
                    next.push(d);
                }
            }
        }
        order.append(&mut wave);
        next.sort_unstable();
        wave = next;
    }
    let mut placed = vec![false; items.len()];
    order.iter().for_each(|&i| placed[i] = true);
    order.extend((0..items.len()).filter(|&i| !placed[i]));
    let mut slots: Vec<Option<(String, Value)>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn run<O: JmapObject>(tx: &mut Tx<'_>, request: SetRequest) -> Result<SetOutcome, MethodError> {
    let mut out = SetOutcome { old_state: type_state(tx.state(), O::TYPE)?, ..Default::default() };
    if let Some(expected) = &request.if_in_state
        && parse_state(expected) != Some(out.old_state)
    {
        tx.abort();
        return Err(MethodError::StateMismatch);
    }
    let principal = Arc::clone(&request.principal);
    let access = Access::<O> { principal: &principal, object: PhantomData };
    let mut ids = request.created_ids;
    for (creation_id, object) in request.create {
        // What the client sent, in the wire form, to tell what the server added.
        let mut sent = object.as_object().cloned().unwrap_or_default();
        to_wire(O::PROPERTIES, &mut sent);
        match access
            .creation(object)
            .and_then(|object| create_one::<O>(tx, object, &sent, &ids, &request.secrets, &request.writer))
        {
            Ok((id, rendered)) => {
                ids.insert(creation_id.clone(), id);
                out.created_ids.insert(creation_id.clone(), id);
                out.created.insert(creation_id, Value::Object(rendered));
            }
            Err(e) => {
                out.not_created.insert(creation_id, access.scrub(tx, e).to_json());
            }
        }
    }
    let mut refused = request.refused;
    let mut expected = request.expected;
    for (raw, patch) in request.update {
        let expects = expected.remove(&raw).unwrap_or_default();
        let id = ids.resolve(&raw).ok();
        let prechecked = refused.remove(&raw);
        let key = id.map_or(raw, |id| id.to_jmap());
        if let Some(e) = prechecked {
            out.not_updated.insert(key, e.to_json());
            continue;
        }
        match id
            .ok_or_else(|| SetError::not_found("no such object"))
            .and_then(|id| access.update(tx, id, &patch).map(|_| id))
            .and_then(|id| update_one::<O>(tx, id, patch, &expects, &ids, &request.secrets, &request.writer))
        {
            Ok(result) => {
                out.updated.insert(key, result);
            }
            Err(e) => {
                out.not_updated.insert(key, access.scrub(tx, e).to_json());
            }
        }
    }
    for raw in request.destroy {
        let id = ids.resolve(&raw).ok();
        let key = id.map_or(raw, |id| id.to_jmap());
        let result = match id {
            None => Err(SetError::not_found("no such object")),
            Some(id) => access
                .destroy(tx, id)
                .and_then(|_| tx.execute_as(&O::destroy(id), &request.writer).map_err(SetError::from)),
        };
        match result {
            Ok(_) => out.destroyed.push(Value::String(key)),
            Err(mut e) => {
                if e.kind == SetErrorType::ObjectIsLinked {
                    e.detail.get_or_insert_default().object_id = Some(object_ref(O::TYPE, &key));
                }
                out.not_destroyed.insert(key, access.scrub(tx, e).to_json());
            }
        }
    }
    out.new_state = type_state(tx.state(), O::TYPE)?;
    Ok(out)
}

fn create_one<O: JmapObject>(
    tx: &mut Tx<'_>,
    object: Value,
    sent: &Map<String, Value>,
    ids: &CreatedIds,
    secrets: &PreparedSecrets,
    writer: &Writer,
) -> Result<(ObjectId, Map<String, Value>), SetError> {
    let Value::Object(mut object) = object else {
        return Err(SetError::invalid_properties(vec![], "a create must be an object"));
    };
    from_wire(O::PROPERTIES, &mut object, "")?;
    let mut ctx = ParseContext { ids, secrets, generated: Vec::new() };
    let command = O::parse_create(object, &mut ctx)?;
    let events = tx.execute_as(&command, writer)?;
    let id =
        created_id::<O>(&events).ok_or_else(|| SetError::forbidden(format!("the {} was not created", O::SINGULAR)))?;
    let mut created = revealed::<O>(tx, id, &events, &ctx.generated);
    created.retain(|k, v| k == "id" || sent.get(k) != Some(v));
    Ok((id, created))
}

/// The object as it is now in the commit, in its wire form, with the secrets
/// generated for it shown (the one time they are); empty if it could not be read.
fn revealed<O: JmapObject>(
    tx: &Tx<'_>,
    id: ObjectId,
    events: &[ledger_events::Event],
    generated: &[(usize, crate::secrets::Plaintext)],
) -> Map<String, Value> {
    let Some(state) = O::fetch(tx.state(), id).ok().flatten() else { return Map::new() };
    let mut object = O::render(&state);
    O::reveal(&mut object, events, generated);
    to_wire(O::PROPERTIES, &mut object);
    object
}

/// Applies one patch. The result is `null`, or the properties the server
/// changed beyond the patch (RFC 8620 §5.3: a rename's new `emailAddress`,
/// generated secrets shown once, ids of added credentials).
fn update_one<O: JmapObject>(
    tx: &mut Tx<'_>,
    id: ObjectId,
    patch: Value,
    expects: &Expected,
    ids: &CreatedIds,
    secrets: &PreparedSecrets,
    writer: &Writer,
) -> Result<Value, SetError> {
    let Value::Object(patch) = patch else { return Err(SetError::invalid_patch("a patch must be an object")) };
    let current = O::fetch(tx.state(), id)
        .map_err(|_| SetError::forbidden("the object could not be read"))?
        .ok_or_else(|| SetError::not_found(format!("no such {}", O::SINGULAR)))?;
    // The patch applies to the wire form: set members and list entries are
    // addressed by their keys (`memberGroupIds/<id>`, `aliases/1/name`).
    let mut object = Value::Object(wire_render::<O>(&current));
    for (path, value) in expects {
        let found = path.split('/').try_fold(&object, |v, part| v.get(part));
        if found != value.as_ref() {
            return Err(SetError::not_found(MOVED));
        }
    }
    apply_patch(&mut object, patch)?;
    let Value::Object(mut object) = object else { return Err(SetError::invalid_patch("not an object")) };
    let expected = object.clone();
    from_wire(O::PROPERTIES, &mut object, "")?;
    let mut ctx = ParseContext { ids, secrets, generated: Vec::new() };
    let command = O::parse_update(&current, object, &mut ctx)?;
    let events = tx.execute_as(&command, writer)?;
    let mut after = revealed::<O>(tx, id, &events, &ctx.generated);
    after.retain(|k, v| expected.get(k) != Some(v));
    Ok(if after.is_empty() { Value::Null } else { Value::Object(after) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one `/set` of `O` as the fallback administrator, in its own commit.
    fn set_in(
        ledger: &crate::Ledger,
        create: Vec<(String, Value)>,
        update: Map<String, Value>,
        expected: std::collections::HashMap<String, Expected>,
        run_set: fn(&mut Tx<'_>, SetRequest) -> Result<SetOutcome, MethodError>,
    ) -> SetOutcome {
        let principal = Arc::new(Principal::fallback("admin"));
        let request = SetRequest {
            if_in_state: None,
            create,
            update,
            refused: Default::default(),
            destroy: Vec::new(),
            created_ids: CreatedIds::default(),
            secrets: PreparedSecrets::default(),
            writer: principal.writer(),
            principal,
            expected,
        };
        ledger
            .commit_blocking(crate::CommitOrigin::system(), move |tx| run_set(tx, request.clone()))
            .unwrap()
            .value
            .unwrap()
    }

    #[test]
    fn an_update_whose_expectation_fails_is_refused_and_keeps_nothing() {
        use crate::jmap::object::{account::Account, domain::Domain};
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::Ledger::open(dir.path(), crate::Durability::Fsync).unwrap();
        let none = std::collections::HashMap::new;
        let domain =
            set_in(&ledger, vec![("d".into(), json!({"name": "example.org"}))], Map::new(), none(), run::<Domain>);
        let domain_id = domain.created["d"]["id"].clone();
        let account = json!({"@type": "User", "name": "alice", "domainId": domain_id, "description": "one"});
        let created = set_in(&ledger, vec![("a".into(), account)], Map::new(), none(), run::<Account>);
        let id = created.created["a"]["id"].as_str().unwrap().to_owned();
        let description = || {
            let read = ledger.read();
            let account = ledger_projections::state::account(&read.view, ObjectId::from_jmap(&id).unwrap()).unwrap();
            account.unwrap().description
        };
        let patch = |text: &str| {
            let mut update = Map::new();
            update.insert(id.clone(), json!({"description": text}));
            update
        };
        let expecting = |path: &str, value: Option<Value>| {
            std::collections::HashMap::from([(id.clone(), vec![(path.to_owned(), value)])])
        };

        // Another commit changed the object since the position was read.
        let moved =
            set_in(&ledger, vec![], patch("two"), expecting("description", Some(json!("zero"))), run::<Account>);
        assert_eq!(moved.not_updated[&id]["type"], "notFound");
        assert_eq!(moved.not_updated[&id]["description"], MOVED);
        assert_eq!(description().as_deref(), Some("one"), "nothing of a refused update is kept");
        let taken = set_in(&ledger, vec![], patch("two"), expecting("aliases/0", Some(json!({}))), run::<Account>);
        assert_eq!(taken.not_updated[&id]["description"], MOVED, "an expected entry that is not there");

        // What the call read still holds: the update applies.
        let held = set_in(&ledger, vec![], patch("two"), expecting("description", Some(json!("one"))), run::<Account>);
        assert!(held.updated.contains_key(&id), "{:?}", held.not_updated);
        assert_eq!(description().as_deref(), Some("two"));
        let absent = set_in(&ledger, vec![], patch("three"), expecting("aliases/0", None), run::<Account>);
        assert!(absent.updated.contains_key(&id), "{:?}", absent.not_updated);
        assert_eq!(description().as_deref(), Some("three"));
    }

    #[test]
    fn creates_come_after_what_they_refer_to_and_cycles_keep_their_order() {
        let create = json!({"a": {"x": "#b"}, "b": {"x": {"#c": true}}, "c": {}, "d": {"x": "#e"}, "e": {"x": "#d"},
            "f": {"x": "#f"}, "g": {"x": "#missing"}});
        let Value::Object(create) = create else { unreachable!() };
        let order: Vec<String> = creation_order(create).into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["c", "f", "g", "b", "a", "d", "e"]);
    }
}
